"""The flow-mod choreography (bundles, barriers, fallbacks) against a scripted switch.

`SwitchOperations` runs on a real `OpenFlowChannel` whose peer is a function: it sees each
message we send and answers with bytes. This covers what real OVS cannot show, such as a
switch without bundles, with no sockets and no waiting.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from vlcp.southbound.openflow import wire
from vlcp.southbound.openflow.channel import (
    ConnectionClosed,
    OpenFlowChannel,
    Reply,
    ReplyKind,
    RequestFailed,
)
from vlcp.southbound.openflow.codec import Codec
from vlcp.southbound.openflow.flow import Flow, output
from vlcp.southbound.openflow.messages import FlowMod, SwitchError
from vlcp.southbound.openflow.operations import FlowModsRejected, SwitchOperations, Tracked
from vlcp.southbound.openflow.wire import OFP14

FLOW_MOD, BARRIER_REQUEST, BUNDLE_CONTROL, BUNDLE_ADD = 14, 20, 33, 34
Responder = Callable[[wire.Header, bytes], bytes]


def msg(mtype: int, xid: int, body: bytes = b"") -> bytes:
    return wire.HEADER.pack(OFP14, mtype, 8 + len(body), xid) + body


def error(xid: int, err_type: int, code: int) -> bytes:
    return msg(1, xid, struct.pack("!HH", err_type, code))


def bundle_reply(request: bytes) -> bytes:
    """OFPT_BUNDLE_CONTROL reply: same bundle, request type + 1 (OPEN -> OPEN_REPLY...)."""
    header = wire.parse_header(request)
    bundle_id, kind, flags = struct.unpack_from("!IHH", request, 8)
    return msg(BUNDLE_CONTROL, header.xid, struct.pack("!IHH", bundle_id, kind + 1, flags))


def priority_of(flow_mod: bytes) -> int:
    return struct.unpack_from("!H", flow_mod, 8 + 22)[0]


class Scripted(SwitchOperations):
    """The four primitives over a channel whose switch is ``respond``."""

    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.channel = OpenFlowChannel(0.0)
        self.channel.data_to_send()
        self.channel.receive(wire.encode_hello([OFP14]), 0.0)
        header = wire.parse_header(self.channel.data_to_send())
        features = struct.pack("!QIBB2xII", 1, 0, 254, 0, 0, 0)
        self.channel.receive(msg(6, header.xid, features), 0.0)
        self.futures: dict[int, asyncio.Future[Any]] = {}
        self.seen: list[tuple[wire.Header, bytes]] = []
        self._bundle_ids = iter(range(1, 1000))  # type: ignore[assignment]

    @property
    def codec(self) -> Codec:
        assert self.channel.codec is not None
        return self.channel.codec

    def send(self, message: bytes) -> int:
        xid = self.channel.send(message)
        self._pump()
        return xid

    def _track(self, message: bytes | int, kind: ReplyKind = "none") -> Tracked:
        if isinstance(message, int):
            xid = message
            self.channel.watch(xid)
        else:
            xid = self.channel.request(message, kind)
        future = asyncio.get_running_loop().create_future()
        self.futures[xid] = future
        return xid, future

    async def _wait(self, requests: Sequence[Tracked], timeout: float | None) -> list[Any]:
        self._pump()
        return await asyncio.gather(*(f for _, f in requests), return_exceptions=True)

    def _pump(self) -> None:
        """Deliver what we sent to the scripted switch and its answers back to us."""
        buffer = bytearray(self.channel.data_to_send())
        answers = b""
        for raw in wire.split_messages(buffer):
            header = wire.parse_header(raw)
            self.seen.append((header, raw))
            answers += self.respond(header, raw)
        for event in self.channel.receive(answers, 0.0):
            if isinstance(event, Reply | RequestFailed) and event.xid in self.futures:
                future = self.futures.pop(event.xid)
                if isinstance(event, Reply):
                    future.set_result(event.messages)
                else:
                    future.set_exception(event.error)

    def types(self) -> list[int]:
        return [h.type for h, _ in self.seen]

    def bundle_kinds(self) -> list[int]:
        return [struct.unpack_from("!H", m, 12)[0] for h, m in self.seen if h.type == 33]


FLOWS = [Flow.make(0, p, {"in_port": p}, [output(1)]) for p in (10, 20, 30)]
MODS = [FlowMod.add(f) for f in FLOWS]


def ovs_like(reject_at_add: int | None = None, reject_at_commit: int | None = None) -> Responder:
    """A switch with bundles that refuses the flow of a given priority at add or commit."""
    added: list[tuple[int, int]] = []  # (xid, priority) of bundled flow-mods

    def respond(header: wire.Header, raw: bytes) -> bytes:
        if header.type == BUNDLE_CONTROL:
            kind = struct.unpack_from("!H", raw, 12)[0]
            if kind == 4:  # commit
                bad = [xid for xid, prio in added if prio == reject_at_commit]
                if bad:
                    return error(bad[0], 2, 9) + error(header.xid, 17, 13)
            return bundle_reply(raw)
        if header.type == BUNDLE_ADD:
            priority = priority_of(raw[16:])
            if priority == reject_at_add:
                return error(header.xid, 4, 9)  # OFPBMC_BAD_PREREQ
            added.append((header.xid, priority))
            return b""
        if header.type == BARRIER_REQUEST:
            return msg(21, header.xid)
        return b""

    return respond


async def test_atomic_batch_opens_adds_checks_then_commits() -> None:
    switch = Scripted(ovs_like())
    await switch.send_flow_mods(MODS, atomic=True)
    assert switch.types() == [33, 34, 34, 34, 20, 33, 20]
    assert switch.bundle_kinds() == [0, 4]  # open, commit
    adds = [m for h, m in switch.seen if h.type == BUNDLE_ADD]
    assert [priority_of(m[16:]) for m in adds] == [10, 20, 30]
    assert all(m[4:8] == m[20:24] for m in adds)  # inner xid == outer xid


async def test_rejected_add_discards_the_bundle_instead_of_committing() -> None:
    switch = Scripted(ovs_like(reject_at_add=20))
    with pytest.raises(FlowModsRejected) as rejected:
        await switch.send_flow_mods(MODS, atomic=True)
    (index, err), *_ = rejected.value.failures
    assert index == 1 and isinstance(err, SwitchError)
    assert err.code_name == "OFPBMC_BAD_PREREQ"
    assert switch.bundle_kinds() == [0, 6]  # open, discard: never commit


async def test_commit_time_error_names_the_mod_and_the_bundle() -> None:
    switch = Scripted(ovs_like(reject_at_commit=30))
    with pytest.raises(FlowModsRejected) as rejected:
        await switch.send_flow_mods(MODS, atomic=True)
    failures = [(i, e.code_name) for i, e in rejected.value.failures]  # type: ignore[attr-defined]
    assert failures == [(2, "OFPBAC_BAD_OUT_GROUP"), (None, "OFPBFC_MSG_FAILED")]
    assert rejected.value.error is rejected.value.failures[0][1]


async def test_switch_without_bundles_gets_ordered_mods_and_a_barrier() -> None:
    def no_bundles(header: wire.Header, raw: bytes) -> bytes:
        if header.type in (BUNDLE_CONTROL, BUNDLE_ADD):
            return error(header.xid, 1, 1)  # OFPBRC_BAD_TYPE
        return msg(21, header.xid) if header.type == BARRIER_REQUEST else b""

    switch = Scripted(no_bundles)
    await switch.send_flow_mods(MODS, atomic=True)
    assert not switch.supports_bundles
    assert switch.types()[5:] == [FLOW_MOD, FLOW_MOD, FLOW_MOD, BARRIER_REQUEST]
    await switch.send_flow_mods(MODS[:1], atomic=True)  # no second attempt at a bundle
    assert switch.types()[9:] == [FLOW_MOD, BARRIER_REQUEST]


async def test_non_atomic_reports_each_rejected_mod() -> None:
    def refuse_20(header: wire.Header, raw: bytes) -> bytes:
        if header.type == FLOW_MOD and priority_of(raw) == 20:
            return error(header.xid, 5, 0)
        return msg(21, header.xid) if header.type == BARRIER_REQUEST else b""

    switch = Scripted(refuse_20)
    with pytest.raises(FlowModsRejected) as rejected:
        await switch.send_flow_mods([*MODS, switch.codec.barrier_request()], atomic=False)
    assert [i for i, _ in rejected.value.failures] == [1]
    await switch.send_flow_mods([], atomic=True)  # nothing to do, nothing sent
    assert switch.types().count(FLOW_MOD) == 3


async def test_a_lost_connection_outranks_switch_errors() -> None:
    def hang_up(header: wire.Header, raw: bytes) -> bytes:
        return error(header.xid, 5, 0) + b"\xff" * 8  # an error, then garbage

    switch = Scripted(hang_up)
    with pytest.raises(ConnectionClosed):
        await switch.send_flow_mods(MODS, atomic=False)


async def test_a_flow_too_large_to_encode_is_skipped_and_blocks_no_other(caplog) -> None:
    """OpenFlow messages stop at 64 KiB: a flow of 5,000 outputs can never be sent. It is
    logged and left out; the rest of the batch is installed (it once failed every try)."""
    huge = Flow.make(0, 5, {"in_port": 5}, [output(p) for p in range(1, 5001)])
    switch = Scripted(ovs_like())
    await switch.apply([FLOWS[0], huge, FLOWS[1]], [FLOWS[2]])
    adds = [m for h, m in switch.seen if h.type == BUNDLE_ADD]
    assert [priority_of(m[16:]) for m in adds] == [10, 20, 30]  # two adds, one delete
    assert "65535-byte message limit" in caplog.text
