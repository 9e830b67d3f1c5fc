"""The Redis store: one Redis primary, every operation one atomic Lua script.

- Data: the hash ``<prefix>:data`` maps each store key to its bytes, ``<prefix>:ver`` to the
  revision that last wrote it; the sorted set ``<prefix>:index`` (all scores 0) lists the
  keys in byte order, so a prefix listing is one ZRANGEBYLEX instead of a scan of every key.
- Transactions: the commit script compares the read versions, takes the next revision,
  appends the change list to the stream ``<prefix>:log`` with id ``<revision>-1`` and applies
  the writes. Redis runs a script alone, so nobody ever sees half a commit. A deleted key
  loses its version; re-creating it later stamps a newer revision, so versions never repeat.
- Revisions start at the server's clock in microseconds when the counter is created, so
  after the data was lost (a restart without AOF, FLUSHALL) revisions still only go up:
  old versions cannot match again, and watchers notice the gap and resync.
- Watches: XREAD BLOCK on the stream, on a separate connection pool (a blocked connection
  serves nothing else). Commits take consecutive revisions, so a first entry that is not
  ``since + 1`` means the stream was trimmed past ``since``: `Compacted`. Scoped watches
  listen on one pub/sub channel per scope instead, on which the commit script publishes
  each touched scope's changes (`redis_scopes`).
- Liveness: the sorted set ``<prefix>:live`` scores each session by its deadline, computed
  from the server's TIME inside the scripts, so all clients share one clock.

Durability is the server's: run Redis with ``appendonly yes`` and ``appendfsync always``
(see docs/store-backends.md); a replica promoted by Sentinel may lack acknowledged commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from redis import exceptions as redis_errors
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .backend import (
    MISSING_VERSION,
    Backend,
    Compacted,
    LogEntry,
    ScopeFeed,
    Versioned,
    decode_changes,
    encode_changes,
)
from .errors import Conflict, StoreError, StoreUnavailable, TransactionTooLarge
from .lifecycle import start_or_close
from .redis_scopes import RedisScopeFeed, scope_messages
from .url import UrlParams, split_store_url

log = logging.getLogger(__name__)

DEFAULT_PORT = 6379
DEFAULT_TIMEOUT = 5.0
DEFAULT_PREFIX = "vlcp"
LOG_RETAIN = 20000
"""Commits kept in the stream (at least; MAXLEN ~ trims whole stream nodes)."""
_XREAD_COUNT = 256
_MAX_BLOCK = 2.0
"""Longest XREAD BLOCK: an idle watch re-polls this often, so a silent server is noticed."""
_PREFIX_RE = re.compile(r"[A-Za-z0-9_.:{}-]+")

# Shared by the scripts that need the revision: creates the counter on first use (or after
# the data was lost) from the server clock in microseconds, see the module docstring.
_LUA_REVISION = """
local function current_revision(revkey, originkey)
  local rev = redis.call('GET', revkey)
  if rev then return rev end
  local now = redis.call('TIME')
  rev = string.format('%d', tonumber(now[1]) * 1000000 + tonumber(now[2]))
  redis.call('SET', revkey, rev)
  redis.call('SET', originkey, rev)
  return rev
end
"""

# KEYS: data, ver.  ARGV: store keys.  Returns data1, ver1, data2, ver2, ... (nil if absent).
_LUA_FETCH = """
local out = {}
for i, key in ipairs(ARGV) do
  local data = redis.call('HGET', KEYS[1], key)
  out[2 * i - 1] = data
  out[2 * i] = data and redis.call('HGET', KEYS[2], key)
end
return out
"""

# KEYS: data, ver, index, rev, origin, log.
# ARGV: nreads, (key, version)*, nwrites, (op 'p'|'d', key, data)*, (channel, changes)*,
# change record, retain. Each touched scope's changes go out on its channel as
# '<revision> <changes>' (see redis_scopes). Returns {0, changed keys} on a conflict, else
# {1, revision}. Every check comes before the first write: a Lua error after a write would
# leave that write in place.
_LUA_COMMIT = (
    _LUA_REVISION
    + """
local data, ver, index, revkey, originkey, stream = unpack(KEYS)
local i = 2
local changed = {}
for _ = 1, tonumber(ARGV[1]) do
  local have = redis.call('HGET', ver, ARGV[i]) or '0'
  if have ~= ARGV[i + 1] then changed[#changed + 1] = ARGV[i] end
  i = i + 2
end
if #changed > 0 then return {0, changed} end
local rev = current_revision(revkey, originkey)
local nwrites = tonumber(ARGV[i])
i = i + 1
if nwrites == 0 then return {1, rev} end
rev = string.format('%d', tonumber(rev) + 1)
redis.call('XADD', stream, 'MAXLEN', '~', ARGV[#ARGV], rev .. '-1', 'c', ARGV[#ARGV - 1])
redis.call('SET', revkey, rev)
for _ = 1, nwrites do
  local key = ARGV[i + 1]
  if ARGV[i] == 'd' then
    redis.call('HDEL', data, key)
    redis.call('HDEL', ver, key)
    redis.call('ZREM', index, key)
  else
    redis.call('HSET', data, key, ARGV[i + 2])
    redis.call('HSET', ver, key, rev)
    redis.call('ZADD', index, 0, key)
  end
  i = i + 3
end
while i < #ARGV - 1 do
  redis.call('PUBLISH', ARGV[i], rev .. ' ' .. ARGV[i + 1])
  i = i + 2
end
return {1, rev}
"""
)

# KEYS: data, index, rev, origin.  ARGV: nranges, (lower, upper)* ('' = every key), keys*.
# Returns {revision, {key1, data1, ...}}: one script, so every range is read at one revision.
_LUA_SNAPSHOT = (
    _LUA_REVISION
    + """
local rev = current_revision(KEYS[3], KEYS[4])
local nranges = tonumber(ARGV[1])
local out = {}
for r = 1, nranges do
  local lower, upper = ARGV[2 * r], ARGV[2 * r + 1]
  if lower == '' then return {rev, redis.call('HGETALL', KEYS[1])} end
  for _, key in ipairs(redis.call('ZRANGEBYLEX', KEYS[2], '[' .. lower, '(' .. upper)) do
    out[#out + 1] = key
    out[#out + 1] = redis.call('HGET', KEYS[1], key)
  end
end
for i = 2 * nranges + 2, #ARGV do
  local data = redis.call('HGET', KEYS[1], ARGV[i])
  if data then
    out[#out + 1] = ARGV[i]
    out[#out + 1] = data
  end
end
return {rev, out}
"""
)

# KEYS: rev, origin.  Returns {revision, origin}.
_LUA_REVISIONS = (
    _LUA_REVISION
    + """
local rev = current_revision(KEYS[1], KEYS[2])
return {rev, redis.call('GET', KEYS[2]) or rev}
"""
)

_LUA_NOW = """
local function now_ms()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end
"""

# KEYS: live.  ARGV: session id, ttl (ms).  Also drops sessions that expired long ago.
_LUA_LIVE_START = (
    _LUA_NOW
    + """
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%d', now))
redis.call('ZADD', KEYS[1], string.format('%d', now + tonumber(ARGV[2])), ARGV[1])
return 1
"""
)

# KEYS: live.  ARGV: session id, ttl (ms).  1 when extended, 0 when already expired.
_LUA_LIVE_REFRESH = (
    _LUA_NOW
    + """
local now = now_ms()
local deadline = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not deadline or tonumber(deadline) < now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], string.format('%d', now + tonumber(ARGV[2])), ARGV[1])
return 1
"""
)

# KEYS: live.  Returns the ids of sessions whose deadline has not passed.
_LUA_LIVE_SESSIONS = (
    _LUA_NOW
    + """
return redis.call('ZRANGEBYSCORE', KEYS[1], string.format('%d', now_ms()), '+inf')
"""
)

_UNAVAILABLE_REPLIES = (
    "OOM",
    "READONLY",
    "LOADING",
    "MASTERDOWN",
    "MISCONF",
    "BUSY",
    "NOAUTH",
    "WRONGPASS",
    "NOPERM",
    "CLUSTERDOWN",
    "TRYAGAIN",
)
_TOO_LARGE_HINTS = ("too large", "too big", "bulk length", "query buffer", "max-bulk")


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """What a ``redis://`` store URL says."""

    host: str
    port: int
    db: int
    username: str | None
    password: str | None
    timeout: float
    prefix: str
    retain: int

    @property
    def address(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.db} (prefix {self.prefix!r})"


def parse_redis_url(url: str) -> RedisSettings:
    """``redis://[user:password@]host[:port][/db][?timeout=5&prefix=vlcp&retain=20000]``.

    Raises ValueError naming the problem, so a typo in a config file fails at start-up.
    """
    parts = split_store_url(url, "redis")
    params = UrlParams(url, parts.query)
    timeout = params.number("timeout", DEFAULT_TIMEOUT, below=3600)
    retain = params.integer("retain", LOG_RETAIN, minimum=100)
    prefix = params.text("prefix", DEFAULT_PREFIX)
    params.refuse_unknown()
    try:
        port = parts.port or DEFAULT_PORT
        db = int(parts.path.strip("/") or 0)
    except ValueError as exc:
        raise ValueError(f"store URL {url!r}: {exc}") from None
    if not parts.hostname:
        raise ValueError(f"store URL {url!r} needs a host: redis://host:port/db")
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(f"store URL {url!r}: prefix must be letters, digits and _.:{{}}-")
    return RedisSettings(
        host=parts.hostname,
        port=port,
        db=db,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=timeout,
        prefix=prefix,
        retain=retain,
    )


@dataclass(frozen=True, slots=True)
class _Keys:
    """The Redis keys of one store (all under its prefix)."""

    data: str
    ver: str
    index: str
    rev: str
    origin: str
    log: str
    live: str

    @classmethod
    def under(cls, prefix: str) -> _Keys:
        return cls(
            *(
                f"{prefix}:{name}"
                for name in ("data", "ver", "index", "rev", "origin", "log", "live")
            )
        )


def _prefix_range(prefix: str) -> tuple[str, str]:
    """ZRANGEBYLEX bounds of the keys starting with `prefix` ('' for all, handled apart)."""
    if not prefix:
        return "", ""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _text(value: bytes | str | int) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBackend(Backend):
    """A store held by one Redis server (or primary), shared by any number of processes."""

    name = "redis"

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self.timeout = settings.timeout
        self._keys = _Keys.under(settings.prefix)
        self._block = min(_MAX_BLOCK, settings.timeout)
        self._closed = False
        self._client = Redis(connection_pool=self._pool())
        # Blocked XREADs hold their connection for up to `_block`: a pool of their own,
        # so they never starve commits.
        self._blocking = Redis(connection_pool=self._pool())
        register = self._client.register_script
        self._fetch = register(_LUA_FETCH)
        self._commit = register(_LUA_COMMIT)
        self._snapshot = register(_LUA_SNAPSHOT)
        self._revisions = register(_LUA_REVISIONS)
        self._live_start = register(_LUA_LIVE_START)
        self._live_refresh = register(_LUA_LIVE_REFRESH)
        self._live_sessions = register(_LUA_LIVE_SESSIONS)

    def _pool(self) -> ConnectionPool:
        """No client-side retries: one bounded attempt, then StoreUnavailable to the caller.

        No `socket_timeout` either: `_guard` bounds every request, and with a socket timeout
        redis-py sends each command under `asyncio.wait_for`, which on Python 3.11 loses a
        cancellation that arrives as the send completes (the cancelled task, a session
        refresher or the reaper, then runs on and `Store.close` waited for it forever).
        The connect timeout also bounds `disconnect()` at close.
        """
        return ConnectionPool(**self.connection_options(), client_name="vlcp-store")

    def connection_options(self) -> dict[str, Any]:
        """How every connection of this store reaches its server (see `_pool`): the
        pools' and the scoped watches' own (`redis_scopes`)."""
        s = self.settings
        return {
            "host": s.host,
            "port": s.port,
            "db": s.db,
            "username": s.username,
            "password": s.password,
            "socket_timeout": None,
            "socket_connect_timeout": s.timeout,
            "retry": Retry(NoBackoff(), 0),  # a failure is the caller's: never a silent retry
        }

    # -- error translation ---------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _guard(
        self, what: str, timeout: float | None = None, *, write: bool = False
    ) -> AsyncIterator[None]:
        """Bound the time of one request and turn every redis-py failure into a store error.

        A `write` that got no answer may have been applied: its StoreUnavailable says so
        (`maybe_applied`), since a server that is gone cannot be asked afterwards.
        """
        if self._closed:
            raise StoreUnavailable(f"{self.settings.address}: the store was closed")
        limit = timeout or self.timeout
        doubt = "; the commit may or may not have been applied" if write else ""
        try:
            async with asyncio.timeout(limit):
                yield
        except TimeoutError:
            raise StoreUnavailable(
                f"{self.settings.address}: no answer to {what} within {limit:g} s{doubt}",
                maybe_applied=write,
            ) from None
        except redis_errors.ResponseError as exc:
            raise self._rejected(what, exc) from None
        except (redis_errors.RedisError, OSError) as exc:
            raise StoreUnavailable(
                f"{self.settings.address}: {what} failed: {exc or type(exc).__name__}{doubt}",
                maybe_applied=write,
            ) from None

    def _rejected(self, what: str, exc: redis_errors.ResponseError) -> StoreError:
        """An error reply: too large, a server in a state that passes (OOM, loading...), or a bug.

        redis-py strips the error code of the replies it knows (``OOM``, ``READONLY``...)
        from the message and keeps it in ``status_code``.
        """
        code = getattr(exc, "status_code", None) or str(exc).split(" ", 1)[0]
        reason = f"{code} {exc}" if getattr(exc, "status_code", None) else str(exc)
        if any(hint in reason.lower() for hint in _TOO_LARGE_HINTS):
            return TransactionTooLarge(f"{self.settings.address} refused {what}: {reason}")
        if code in _UNAVAILABLE_REPLIES:
            return StoreUnavailable(f"{self.settings.address}: {what} refused: {reason}")
        return StoreError(f"{self.settings.address}: {what} failed: {reason}")

    async def connect(self) -> None:
        """Check the server answers and keeps streams; warn about settings that lose data."""
        async with self._guard("connecting"):
            info = await self._client.info("server")
            await self._revisions(keys=[self._keys.rev, self._keys.origin])
        version = tuple(int(part) for part in str(info.get("redis_version", "0")).split(".")[:2])
        if version < (5, 0):
            raise StoreError(f"{self.settings.address}: Redis {version} has no streams; need 5.0+")
        await self._warn_about_durability()

    async def _warn_about_durability(self) -> None:
        """CONFIG GET may be disabled on managed servers; then there is nothing to check."""
        try:
            async with self._guard("reading the server configuration"):
                config = await self._client.config_get("append*")
                config.update(await self._client.config_get("maxmemory-policy"))
        except StoreError as exc:
            log.debug("redis store: cannot check the server configuration: %s", exc)
            return
        config = {_text(k): _text(v) for k, v in config.items()}
        if config.get("appendonly") != "yes" or config.get("appendfsync") != "always":
            log.warning(
                "%s: appendonly=%s appendfsync=%s; a server crash may lose committed "
                "transactions (set appendonly yes, appendfsync always)",
                self.settings.address,
                config.get("appendonly"),
                config.get("appendfsync"),
            )
        if config.get("maxmemory-policy", "noeviction").startswith("allkeys"):
            log.warning(
                "%s: maxmemory-policy %s may evict store keys; use noeviction",
                self.settings.address,
                config["maxmemory-policy"],
            )

    # -- data --------------------------------------------------------------------------

    async def fetch(self, keys: Iterable[str]) -> dict[str, Versioned]:
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        async with self._guard("reading keys"):
            flat = await self._fetch(keys=[self._keys.data, self._keys.ver], args=keys)
        return {
            key: Versioned(None, MISSING_VERSION) if data is None else Versioned(data, int(ver))
            for key, data, ver in zip(keys, flat[0::2], flat[1::2], strict=True)
        }

    async def commit(self, reads: Mapping[str, int], writes: Mapping[str, bytes | None]) -> int:
        args: list[Any] = [len(reads)]
        for key, version in reads.items():
            args += [key, str(version)]
        args.append(len(writes))
        for key, data in writes.items():
            args += ["d", key, b""] if data is None else ["p", key, data]
        args += scope_messages(self.settings.prefix, writes)
        args += [encode_changes(writes) if writes else b"", self.settings.retain]
        k = self._keys
        async with self._guard("committing", write=True):
            ok, result = await self._commit(
                keys=[k.data, k.ver, k.index, k.rev, k.origin, k.log], args=args
            )
        if not ok:
            changed = [_text(key) for key in result]
            raise Conflict(f"changed since read: {', '.join(changed[:5])}")
        return int(result)

    async def snapshot(self, prefix: str) -> tuple[int, dict[str, bytes]]:
        return await self.snapshot_of([prefix], [])

    async def snapshot_of(
        self, prefixes: Sequence[str], keys: Sequence[str]
    ) -> tuple[int, dict[str, bytes]]:
        """Every range and key in one script: consistent, and only what was asked for."""
        bounds = [bound for prefix in prefixes for bound in _prefix_range(prefix)]
        k = self._keys
        async with self._guard(f"reading {len(prefixes)} prefixes and {len(keys)} keys"):
            revision, flat = await self._snapshot(
                keys=[k.data, k.index, k.rev, k.origin], args=[len(prefixes), *bounds, *keys]
            )
        return int(revision), {
            _text(key): data for key, data in zip(flat[0::2], flat[1::2], strict=True)
        }

    # -- change log ----------------------------------------------------------------------

    async def changes(self, since: int) -> AsyncIterator[LogEntry]:
        async with self._guard("reading the revision"):
            revision, origin = await self._revisions(keys=[self._keys.rev, self._keys.origin])
        revision, origin = int(revision), int(origin)
        if since == 0:
            since = origin  # "from the beginning": the first commit is origin + 1
        if revision < since:
            raise Compacted(f"store revision {revision} is behind {since}: its data was lost")
        while True:
            async with self._guard("waiting for changes", self._block + self.timeout):
                reply = await self._blocking.xread(
                    {self._keys.log: f"{since}-1"},
                    count=_XREAD_COUNT,
                    block=int(self._block * 1000),
                )
            for entry in self._entries(reply, since):
                since = entry.revision
                yield entry

    async def entries_after(self, since: int) -> list[LogEntry]:
        """The commits after `since` that the stream holds now, without waiting;
        `Compacted` when it was trimmed past `since`."""
        async with self._guard("reading the change log"):
            reply = await self._client.xread({self._keys.log: f"{since}-1"})
        return self._entries(reply, since)

    def scope_feed(self, since: int) -> ScopeFeed:
        """Commits of the followed scopes only, pushed on their channels (redis_scopes)."""
        return RedisScopeFeed(self, since)

    @staticmethod
    def _entries(reply: Any, since: int) -> list[LogEntry]:
        """Decode an XREAD reply; a gap after `since` means the stream was trimmed."""
        entries = []
        for _stream, items in reply or ():
            for entry_id, fields in items:
                revision = int(_text(entry_id).split("-", 1)[0])
                if revision != since + 1:
                    raise Compacted(f"change log starts at revision {revision}, after {since + 1}")
                entries.append(LogEntry(revision, decode_changes(fields[b"c"])))
                since = revision
        return entries

    # -- liveness -------------------------------------------------------------------------

    async def live_start(self, session_id: str, ttl: float) -> None:
        async with self._guard("starting a session"):
            await self._live_start(keys=[self._keys.live], args=[session_id, int(ttl * 1000)])

    async def live_refresh(self, session_id: str, ttl: float) -> bool:
        async with self._guard("refreshing a session"):
            alive = await self._live_refresh(
                keys=[self._keys.live], args=[session_id, int(ttl * 1000)]
            )
        return alive == 1

    async def live_sessions(self) -> set[str]:
        async with self._guard("listing live sessions"):
            sids = await self._live_sessions(keys=[self._keys.live])
        return {_text(sid) for sid in sids}

    async def live_end(self, session_id: str) -> None:
        async with self._guard("ending a session"):
            await self._client.zrem(self._keys.live, session_id)

    async def close(self) -> None:
        """Drop every connection, including those of blocked watches (they then fail)."""
        self._closed = True
        for client in (self._client, self._blocking):
            with contextlib.suppress(Exception):
                await client.connection_pool.disconnect()
            with contextlib.suppress(Exception):
                await client.aclose()


async def open_redis(url: str) -> RedisBackend:
    """Connect to the store at `url`; raises StoreUnavailable when the server cannot be reached."""
    backend = RedisBackend(parse_redis_url(url))
    return await start_or_close(backend, backend.connect)
