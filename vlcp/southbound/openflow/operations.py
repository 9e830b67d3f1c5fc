"""What a controller does with a connected switch, in terms of four primitives.

`SwitchOperations` is mixed into the asyncio `Switch`: it needs only `codec`, `send`,
`_track` (send a request, or watch an xid again, and get a future) and `_wait` (gather
with a timeout). Keeping the bundle and barrier choreography here leaves server.py with
nothing but I/O, and makes the rules of `send_flow_mods` readable in one place.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from vlcp.southbound.openflow.channel import ConnectionClosed, ReplyKind
from vlcp.southbound.openflow.codec import Codec, Message
from vlcp.southbound.openflow.flow import Action, Flow
from vlcp.southbound.openflow.messages import (
    FlowMod,
    InstalledFlow,
    InstalledGroup,
    Meter,
    MeterSupport,
    SwitchError,
)
from vlcp.southbound.openflow.wire import OFPET_BAD_REQUEST

log = logging.getLogger(__name__)

Tracked = tuple[int, "asyncio.Future[Any]"]

_NOT_UNDERSTOOD = {(OFPET_BAD_REQUEST, code) for code in (1, 3, 4)}
"""BAD_TYPE, BAD_EXPERIMENTER, BAD_EXP_TYPE: how a switch without bundles refuses one."""


class FlowModsRejected(Exception):
    """The switch refused flow-mods; ``failures`` pairs a mod's index (None for the bundle
    or barrier itself) with the switch's error. With ``atomic`` nothing was applied."""

    def __init__(self, failures: list[tuple[int | None, BaseException]]) -> None:
        self.failures = sorted(failures, key=lambda f: (f[0] is None, f[0] or 0))
        self.error = self.failures[0][1]
        super().__init__("; ".join(f"mod {i}: {e}" for i, e in self.failures))

    @classmethod
    def check(cls, results: list[object], offset: int, count: int) -> None:
        """Raise for the outcomes of a batch: results[offset:offset+count] are the mods,
        the rest control messages; a lost connection outranks the switch's errors."""
        errors = [(i, r) for i, r in enumerate(results) if isinstance(r, BaseException)]
        for _, error in errors:
            if isinstance(error, ConnectionClosed):
                raise error
        if errors:
            raise cls([(i - offset if 0 <= i - offset < count else None, e) for i, e in errors])


class SwitchOperations:
    """Requests, flow tables, groups and packets on one switch (see module docstring)."""

    supports_bundles = True
    """Cleared when the switch refuses to open a bundle; atomic batches then fall back
    to in-order flow-mods plus a barrier."""

    _bundle_ids: itertools.count[int]

    @property
    def codec(self) -> Codec:
        raise NotImplementedError

    def send(self, message: bytes) -> int:
        raise NotImplementedError

    def _track(self, message: bytes | int, kind: ReplyKind = "none") -> Tracked:
        raise NotImplementedError

    async def _wait(self, requests: Sequence[Tracked], timeout: float | None) -> list[Any]:
        raise NotImplementedError

    async def _one(self, message: bytes, kind: ReplyKind, timeout: float | None) -> Any:
        (result,) = await self._wait([self._track(message, kind)], timeout)
        if isinstance(result, BaseException):
            raise result
        return result

    async def request(self, message: bytes, timeout: float | None = None) -> Message:
        """Send a request answered by one message (barrier, echo, role, ...) and return it."""
        return (await self._one(message, "one", timeout))[0]

    async def multipart(self, message: bytes, timeout: float | None = None) -> list[Message]:
        """Send a multipart request; returns every reply piece once MORE is clear."""
        return list(await self._one(message, "multipart", timeout))

    async def barrier(self, timeout: float | None = None) -> None:
        await self.request(self.codec.barrier_request(), timeout)

    async def flow_stats(
        self, table: int | None = None, cookie: int = 0, cookie_mask: int = 0
    ) -> list[InstalledFlow]:
        replies = await self.multipart(self.codec.flow_stats_request(table, cookie, cookie_mask))
        return self.codec.decode_flow_stats(replies)

    def packet_out(
        self, data: bytes, actions: Iterable[Action], in_port: int | str = "controller"
    ) -> int:
        return self.send(self.codec.packet_out(data, actions, in_port))

    async def send_flow_mods(
        self, mods: Iterable[FlowMod | bytes], *, atomic: bool, timeout: float | None = None
    ) -> None:
        """Apply flow-mods (or other encoded mods) and wait until the switch has them.

        ``atomic``: inside one bundle, added and checked before it is committed (so an add
        the switch rejects discards the lot), else all in order then a barrier. Raises
        `FlowModsRejected` with the switch's errors.
        """
        data = [m if isinstance(m, bytes) else self.codec.flow_mod(m) for m in mods]
        if not data:
            return
        c, n = self.codec, len(data)
        if not (atomic and self.supports_bundles):
            sent = [*(self._track(d) for d in data), self._track(c.barrier_request(), "one")]
            return FlowModsRejected.check(await self._wait(sent, timeout), 0, n)
        bundle = next(self._bundle_ids) & 0xFFFFFFFF
        sent = [self._track(c.bundle_ctrl(bundle, "open"), "one")]
        sent += [self._track(c.bundle_add(bundle, d)) for d in data]
        sent.append(self._track(c.barrier_request(), "one"))
        results = await self._wait(sent, timeout)
        opened = results[0]
        if isinstance(opened, SwitchError) and (opened.type, opened.code) in _NOT_UNDERSTOOD:
            log.warning("%r: no bundles (%s); sending flow-mods in order instead", self, opened)
            self.supports_bundles = False
            return await self.send_flow_mods(data, atomic=False, timeout=timeout)
        if any(isinstance(r, BaseException) for r in results):
            if not isinstance(opened, BaseException):
                self.send(c.bundle_ctrl(bundle, "discard"))
            return FlowModsRejected.check(results, 1, n)
        final = [self._track(xid) for xid, _ in sent[1:-1]]  # commit-time errors
        final += [self._track(c.bundle_ctrl(bundle, "commit"), "one")]
        final += [self._track(c.barrier_request(), "one")]
        FlowModsRejected.check(await self._wait(final, timeout), 0, n)

    # The reconciler's `FlowTarget` (vlcp.southbound.reconciler), satisfied directly.

    async def read_flows(self) -> list[InstalledFlow]:
        """Every flow the switch holds, in all tables."""
        return await self.flow_stats()

    async def apply(self, adds: list[Flow], deletes: Sequence[Flow | InstalledFlow]) -> None:
        """Adds then strict deletes, in one bundle. A delete is limited to its cookie, so
        an add that replaced a flow in place (same match and priority) survives it."""
        mods: list[bytes] = []
        for flow in adds:
            try:
                mods.append(self.codec.add_flow(flow))
            except ValueError as exc:  # one flow the switch can never take blocks no other
                log.error("%r: flow not installed, it cannot be encoded: %s", self, exc)
        mods += [self.codec.delete_flow(flow) for flow in deletes]
        await self.send_flow_mods(mods, atomic=True)

    async def groups(self) -> list[InstalledGroup]:
        return self.codec.decode_group_desc(await self.multipart(self.codec.group_desc_request()))

    async def meter_support(self) -> MeterSupport:
        """What meters the switch can keep (none, if it does not answer the request)."""
        try:
            replies = await self.multipart(self.codec.meter_features_request())
        except SwitchError:  # no meters at all
            return MeterSupport(0, False)
        return self.codec.decode_meter_features(replies)

    async def meters(self) -> list[Meter]:
        return self.codec.decode_meter_config(
            await self.multipart(self.codec.meter_config_request())
        )

    async def send_meter_mods(self, mods: Iterable[bytes]) -> None:
        """Apply meter-mods in order and wait for the switch (FlowModsRejected names the
        ones it refused)."""
        await self.send_flow_mods(mods, atomic=False)
