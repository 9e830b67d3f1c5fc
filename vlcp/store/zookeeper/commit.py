"""Commits: one ZooKeeper multi per transaction.

The multi holds a version check of the log head, a check or write per key, a check of
the tombstone epoch the read versions depend on, the log entry (with the commit's id),
and an empty entry per scope the commit writes to (what scoped subscribers watch:
`scopes`). What this process knows of data znodes (`core`) decides how each key is written; a
stale hint only costs a retried multi, never a wrong result. A multi whose answer was
lost with the connection is settled from the log (`in_doubt`) and sent again only if it
was not applied, all within the call's deadline.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from kazoo.exceptions import NodeExistsError
from kazoo.protocol.serialization import Transaction as MultiRequest

from vlcp.layout import scope_of

from ..backend import MISSING_VERSION, encode_changes
from ..errors import Conflict, StoreUnavailable, TransactionTooLarge
from .core import INTERNAL_RETRIES
from .in_doubt import InDoubt, Unanswered
from .kazoo_bridge import ConnectionLost, failed_op
from .layout import entry_position, revision, split_version
from .reads import Reads

log = logging.getLogger(__name__)

COMMIT_RACES = 4 * INTERNAL_RETRIES
"""Multis a commit may lose to other processes' progress (a new log segment, a znode
created meanwhile) before it gives up with `Conflict`. Each loss means another commit
went through; after a new segment a process also creates that segment's scope znodes
before its next multi (a round trip), during which small segments can rotate again."""

_TXN_METHODS = {"create": "create", "set": "set_data", "check": "check", "delete": "delete"}


@dataclass
class _Plan:
    """One commit's multi: its kazoo transaction and what each operation stands for."""

    txn: Any
    segment: int
    """The log segment its entry goes to (the multi checks that it is still current)."""
    ops: list[tuple[str, str, str]] = field(default_factory=list)
    """(kind, key, op) per operation: kind is head, read, blind, log or scope (whose key
    is the scope's znode)."""
    epochs: set[int] = field(default_factory=set)
    """Tombstone epochs the read versions depend on."""

    def add(self, kind: str, key: str, op: str, *args: Any, **options: Any) -> None:
        getattr(self.txn, _TXN_METHODS[op])(*args, **options)
        self.ops.append((kind, key, op))


class Commits(InDoubt, Reads):
    """commit: plan the multi, send it, learn from its outcome."""

    async def commit(self, reads: Mapping[str, int], writes: Mapping[str, bytes | None]) -> int:
        zk, _client = self._require()
        with zk.operation():
            if not writes:
                return await zk.retrying(partial(self._validate_reads, dict(reads)))
            try:
                return await self._commit_writes(reads, writes)
            except StoreUnavailable as exc:
                if exc.maybe_applied:
                    raise
                raise StoreUnavailable(f"{exc}; the commit was not applied") from None

    async def _commit_writes(
        self, reads: Mapping[str, int], writes: Mapping[str, bytes | None]
    ) -> int:
        """Send the multi until it is applied or conflicts; a lost answer is settled first."""
        zk, _client = self._require()
        commit_id = uuid.uuid4().hex
        races = 0
        while races < COMMIT_RACES:
            try:
                committed = await zk.retrying(partial(self._try_commit, reads, writes, commit_id))
            except Unanswered as lost:
                sequence = await self._settle(lost, commit_id)
                applied = "applied" if sequence is not None else "not applied: sending it again"
                log.info("zookeeper: a commit lost its answer (%s); the log says %s", lost, applied)
                if sequence is not None:
                    for key in writes:  # their new znode versions are unknown
                        self._forget(key)
                    return self._logged(lost.segment, sequence)
                if zk.expired():
                    raise zk.unavailable(
                        f"a commit lost its answer ({lost}), and no time was left to send it again"
                    ) from None
                continue  # not applied, and never will be: send it again
            if committed is not None:
                return committed
            races += 1
        raise Conflict("the commit kept racing with concurrent writers; retrying")

    async def _try_commit(
        self, reads: Mapping[str, int], writes: Mapping[str, bytes | None], commit_id: str
    ) -> int | None:
        """One multi; the revision, None to retry at once, or Conflict when a read changed.

        Raises Unanswered when the multi was sent and its answer lost, and ConnectionLost
        (safe to try again) when the connection failed before the multi was sent.
        """
        zk, client = self._require()
        await self._prepare(reads, writes)
        plan = self._plan(reads, writes, commit_id)
        self._check_size(plan)
        last_zxid = client.last_zxid  # before sending: the multi's zxid will be above it
        try:
            results = await zk.run_one(plan.txn.commit_async)
        except ConnectionLost as exc:
            raise Unanswered(plan.segment, last_zxid, str(exc)) from None
        failed = failed_op(results)
        if failed is None:
            return self._committed(plan, results, writes)
        kind, key, _op = plan.ops[failed]
        if kind == "read":
            raise Conflict(f"changed since read: {key or 'a key (tombstones were collected)'}")
        if kind == "blind" and isinstance(results[failed], NodeExistsError):
            self._known.put(self._data_path(key), True)
        elif kind == "blind":  # its tombstone was collected
            self._forget(key)
        elif kind == "scope":  # its parent was removed (by hand: compaction moves the head)
            self._scope_dirs.discard(key)
        else:  # the head moved on (a new log segment)
            await self._refresh_head()
        return None

    async def _prepare(self, reads: Mapping[str, int], writes: Mapping[str, bytes | None]) -> None:
        """Create missing key containers and scope znodes, and learn which blindly
        written znodes exist."""
        zk, client = self._require()
        if self._head is None:
            await self._refresh_head()
        assert self._head is not None
        containers = {self._container_path(k) for k in (*reads, *writes)} - self._containers
        parents = [
            p for p in self._scope_parents(self._head[0], writes) if p not in self._scope_dirs
        ]
        unknown = [
            self._data_path(k)
            for k in writes
            if k not in reads and self._data_path(k) not in self._known
        ]
        if not containers and not parents and not unknown:
            return
        # parents before children: a session's requests are applied in order
        created = [*containers, *parents]
        calls = [partial(client.create_async, path, b"") for path in created]
        calls += [partial(client.exists_async, path) for path in unknown]
        results = await zk.run(calls)
        self._containers.update(containers)
        for path in parents:
            self._scope_dirs.put(path, True)
        for path, stat in zip(unknown, results[len(created) :], strict=True):
            if stat is not None:
                self._known.put(path, True)

    def _scope_parents(self, segment: int, writes: Mapping[str, bytes | None]) -> list[str]:
        """The znodes the scope entries of `writes` go under, parents first."""
        scopes = sorted({scope_of(key) for key in writes})
        return [
            self._scopes_root,
            self._scope_segment_path(segment),
            *(self._scope_path(segment, scope) for scope in scopes),
        ]

    def _plan(
        self, reads: Mapping[str, int], writes: Mapping[str, bytes | None], commit_id: str
    ) -> _Plan:
        _zk, client = self._require()
        assert self._head is not None
        segment, head_version = self._head
        plan = _Plan(client.transaction(), segment)
        plan.add("head", "", "check", self._head_path, head_version)
        for key in dict.fromkeys((*reads, *writes)):
            self._key_ops(plan, key, reads, writes)
        if len(plan.epochs) > 1:
            raise Conflict("read before and after tombstones were collected")
        for epoch in plan.epochs:
            plan.add("read", "", "check", self._gc_path, epoch)
        log_entry = f"{self._segment_path(segment)}/e"
        entry = encode_changes(writes, commit_id)
        plan.add("log", "", "create", log_entry, entry, sequence=True)
        for parent in self._scope_parents(segment, writes)[2:]:
            plan.add("scope", parent, "create", f"{parent}/e", b"", sequence=True)
        return plan

    def _key_ops(
        self, plan: _Plan, key: str, reads: Mapping[str, int], writes: Mapping[str, bytes | None]
    ) -> None:
        """Add the operations for `key`: write it, check it still has the version read."""
        path = self._data_path(key)
        data = writes.get(key) or b""
        writing = key in writes
        if key not in reads:
            if path in self._known:
                plan.add("blind", key, "set", path, data, -1)
            else:
                self._create_or_probe(plan, "blind", key, data)
            return
        if reads[key] != MISSING_VERSION:
            epoch, version = split_version(reads[key])
        elif (tombstone := self._tombstones.get(key)) is not None:
            version, epoch = tombstone  # absent: still the same tombstone?
        else:  # absent and no znode: creating it fails if the key appeared since
            self._create_or_probe(plan, "read", key, data if writing else b"")
            return
        plan.epochs.add(epoch)
        if writing and (data or reads[key] != MISSING_VERSION):
            plan.add("read", key, "set", path, data, version)
        else:
            plan.add("read", key, "check", path, version)

    def _create_or_probe(self, plan: _Plan, kind: str, key: str, data: bytes) -> None:
        """Create the znode with `data`; with no data, create and delete it in the same
        multi: that proves it is absent without leaving a tombstone behind."""
        path = self._data_path(key)
        plan.add(kind, key, "create", path, data)
        if not data:
            plan.add(kind, key, "delete", path, 0)

    def _check_size(self, plan: _Plan) -> None:
        """Refuse what the server would drop the connection for (jute.maxbuffer)."""
        size = len(MultiRequest(plan.txn.operations).serialize()) + 8
        if size > self.config.max_request_bytes:
            raise TransactionTooLarge(
                f"ZooKeeper would refuse this commit: the request is {size} bytes and the "
                f"server accepts at most jute.maxbuffer = {self.config.max_request_bytes} bytes "
                "(each written value is sent twice: the key and the change log; each touched "
                "scope adds a small entry)"
            )

    def _committed(
        self, plan: _Plan, results: list[Any], writes: Mapping[str, bytes | None]
    ) -> int:
        """Update the caches from a successful multi and return its revision."""
        last: dict[str, tuple[str, Any]] = {}
        for (kind, key, op), result in zip(plan.ops, results, strict=True):
            if kind in ("read", "blind") and key:
                last[key] = (op, result)
        for key, (op, result) in last.items():
            self._remember(key, op, result, writes.get(key))
        logged = next(i for i, (kind, _key, _op) in enumerate(plan.ops) if kind == "log")
        return self._logged(*entry_position(results[logged]))

    def _logged(self, segment: int, sequence: int) -> int:
        """The revision of a commit logged at `sequence`; a full segment starts rotating."""
        if sequence + 1 >= self.config.log_segment:
            self._start_rotation(segment)
        return revision(segment, sequence)

    def _remember(self, key: str, op: str, result: Any, data: bytes | None) -> None:
        """What the last operation on a key left: no znode, a new znode version, or as is."""
        if op == "delete":
            self._forget(key)
            return
        if op == "check":
            return
        version = 0 if op == "create" else result.version
        self._known.put(self._data_path(key), True)
        if data:
            self._tombstones.discard(key)
        else:  # a stale epoch here only makes a later check fail, never pass wrongly
            self._tombstones.put(key, (version, self._epoch))
