"""Reads: plain fetches, and snapshots and read-only commits consistent at one revision.

ZooKeeper has no multi-key read at a revision. A consistent read syncs with the leader,
reads the log head, does its reads, reads the head again, and then accounts for every
commit logged in between (see `_consistent`). Reads cut off by a lost connection are
simply made again once kazoo has reconnected, within the call's deadline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from kazoo.exceptions import NoNodeError

from ..backend import LogEntry, Versioned
from ..errors import Conflict
from .core import INTERNAL_RETRIES
from .kazoo_bridge import Call
from .layout import SEGMENT_SPAN, spans_containers, stat_version
from .log import ChangeLog

T = TypeVar("T")


@dataclass(frozen=True)
class _Marker:
    """Where the log head was (segment, entries in it), and the tombstone epoch then."""

    segment: int
    count: int
    epoch: int

    @property
    def revision(self) -> int:
        return self.segment * SEGMENT_SPAN + self.count


class Reads(ChangeLog):
    """fetch, snapshot, and the validation of a read-only commit."""

    async def fetch(self, keys: Iterable[str]) -> dict[str, Versioned]:
        zk, _client = self._require()
        keys = list(dict.fromkeys(keys))
        with zk.operation():
            return await zk.retrying(partial(self._fetch_once, keys))

    async def _fetch_once(self, keys: list[str]) -> dict[str, Versioned]:
        zk, client = self._require()
        gc, *results = await zk.run(
            [
                partial(client.exists_async, self._gc_path),  # first: see store_version
                *(partial(client.get_async, self._data_path(k)) for k in keys),
            ]
        )
        epoch = self._note_epoch(gc)
        return {
            key: self._versioned(key, result, epoch)
            for key, result in zip(keys, results, strict=True)
        }

    def _marker_calls(self, segment: int) -> list[Call]:
        _zk, client = self._require()
        return [
            partial(client.get_async, self._head_path),
            partial(client.exists_async, self._segment_path(segment)),
            partial(client.exists_async, self._gc_path),
        ]

    def _marker(self, segment: int, answers: Sequence[Any]) -> _Marker | None:
        """The log head from `_marker_calls` answers, None if `segment` is not current."""
        head, stat, gc = answers
        if isinstance(head, NoNodeError):
            raise self._require()[0].unavailable(f"{self._head_path} is missing: layout removed")
        epoch = self._note_epoch(gc)
        current = int(head[0])
        self._head = max(self._head or (0, 0), (current, head[1].version))
        if current != segment or stat is None:
            return None
        return _Marker(segment, stat.cversion, epoch)

    async def _consistent(
        self, reads: Callable[[], Awaitable[T]], relevant: Callable[[str], bool]
    ) -> tuple[_Marker, T, list[LogEntry]]:
        """Run `reads` between two reads of the log head, after a sync with the leader.

        Returns the head after the reads, their outcome, and the commits that ran
        meanwhile and wrote a key for which `relevant` is true (the caller re-applies them
        or treats them as a conflict). A segment change or a tombstone collection in
        between makes it try again.
        """
        zk, client = self._require()
        for _attempt in range(INTERNAL_RETRIES):
            if self._head is None:
                await self._refresh_head()
            assert self._head is not None
            segment = self._head[0]
            sync = partial(client.sync_async, self.config.root)
            before = self._marker(segment, (await zk.run([sync, *self._marker_calls(segment)]))[1:])
            if before is None:
                continue
            outcome = await reads()
            after = self._marker(segment, await zk.run(self._marker_calls(segment)))
            if after is None or after.epoch != before.epoch:
                continue
            window = await self._read_range(segment, before.count, after.count)
            if window is None:
                continue
            return after, outcome, [e for e in window if any(relevant(k) for k, _ in e.changes)]
        raise zk.unavailable("the change log head kept moving during a consistent read")

    async def _validate_reads(self, reads: dict[str, int]) -> int:
        """A read-only commit: every read version is still current at the returned revision."""
        zk, client = self._require()
        keys = list(reads)

        async def read_versions() -> list[Any]:
            return await zk.run([partial(client.exists_async, self._data_path(k)) for k in keys])

        marker, stats, window = await self._consistent(read_versions, reads.__contains__)
        for key, stat in zip(keys, stats, strict=True):
            if stat is not None and stat.dataLength == 0:
                self._tombstones.put(key, (stat.version, marker.epoch))
            if stat_version(stat, marker.epoch) != reads[key]:
                raise Conflict(f"changed since read: {key}")
        if window:
            raise Conflict(f"changed while validating: {window[0].changes[0][0]}")
        return marker.revision

    async def snapshot(self, prefix: str) -> tuple[int, dict[str, bytes]]:
        zk, _client = self._require()
        with zk.operation():
            marker, values, window = await zk.retrying(
                partial(
                    self._consistent,
                    partial(self._read_prefix, prefix),
                    lambda key: key.startswith(prefix),
                )
            )
        _replay(values, window, lambda key: key.startswith(prefix))
        return marker.revision, values

    async def snapshot_of(
        self, prefixes: Sequence[str], keys: Sequence[str]
    ) -> tuple[int, dict[str, bytes]]:
        """Only the containers of `prefixes` are listed and only `keys` read besides: an
        agent's restart never reads the sessions' bookkeeping or the port statuses."""
        if "" in prefixes:
            return await self.snapshot("")
        zk, _client = self._require()
        wanted = set(keys)

        def relevant(key: str) -> bool:
            return key in wanted or key.startswith(tuple(prefixes))

        with zk.operation():
            marker, values, window = await zk.retrying(
                partial(self._consistent, partial(self._read_some, prefixes, keys), relevant)
            )
        _replay(values, window, relevant)
        return marker.revision, values

    async def _read_some(self, prefixes: Sequence[str], keys: Sequence[str]) -> dict[str, bytes]:
        paths = [(key, self._data_path(key)) for key in keys]
        return await self._read_paths(paths + await self._listed(prefixes))

    async def _read_prefix(self, prefix: str) -> dict[str, bytes]:
        return await self._read_paths(await self._listed([prefix]))

    async def _listed(self, prefixes: Sequence[str]) -> list[tuple[str, str]]:
        """(key, znode path) of every key under `prefixes`, from their containers' lists
        (the data root's first, when a prefix spans several containers)."""
        zk, client = self._require()
        containers = [self._container_path(p) for p in prefixes if not spans_containers(p)]
        spanning = [p for p in prefixes if spans_containers(p)]
        if spanning:
            names = await zk.run_one(partial(client.get_children_async, self._data_root))
            for prefix in spanning:
                containers += self._containers_under(prefix, names)
        containers = list(dict.fromkeys(containers))
        listings = await zk.run([partial(client.get_children_async, c) for c in containers])
        paths: list[tuple[str, str]] = []
        for container, names in zip(containers, listings, strict=True):
            if not isinstance(names, NoNodeError):
                paths += _under(container, names, prefixes)
        return paths

    async def _read_paths(self, paths: list[tuple[str, str]]) -> dict[str, bytes]:
        """The data of these (key, znode path) pairs; absent and tombstoned keys left out."""
        zk, client = self._require()
        results = await zk.run([partial(client.get_async, path) for _key, path in paths])
        values = {}
        for (key, _path), result in zip(paths, results, strict=True):
            if not isinstance(result, NoNodeError) and result[0]:
                values[key] = result[0]
        return values


def _under(container: str, names: Iterable[str], prefixes: Sequence[str]) -> list[tuple[str, str]]:
    """(key, znode path) of the children of a data container under one of `prefixes`."""
    found = []
    for name in names:
        key = name.replace("|", "/")
        if key.startswith(tuple(prefixes)):
            found.append((key, f"{container}/{name}"))
    return found


def _replay(
    values: dict[str, bytes], window: Iterable[LogEntry], relevant: Callable[[str], bool]
) -> None:
    """Apply the commits that ran during a consistent read to what it read."""
    for entry in window:
        for key, data in entry.changes:
            if not relevant(key):
                continue
            if data is None:
                values.pop(key, None)
            else:
                values[key] = data
