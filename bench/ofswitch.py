"""A lightweight OpenFlow 1.3 switch for the scale benchmark: one asyncio process plays the
integration bridge of many simulated servers.

A real vswitchd per simulated server costs tens of MiB and a core's worth of CPU at
startup; what the benchmark needs from the switch is only the control channel: it must
say hello and describe itself, hold the flows it is sent (so the agent's reconciler reads
back what it installed, and a restarted agent sends nothing), answer barriers, echoes and
the stats the reconciler asks for, apply ONF bundles (the agent sends every change as one),
and note when each flow arrived. No packet is ever forwarded.

Flow-mods are decoded with vlcp's own codec (os-ken's parser), so the benchmark sees the
matches the agent meant; the table keeps each flow's match and instructions as the bytes
received, which is also what a flow-stats reply carries back. Each bridge listens on a
unix socket where the agent dials it (`<ovs_rundir>/<bridge>.mgmt`, as vswitchd's), and
keeps its flows across the agent's restarts, as a real switch does.

Groups are kept (group-desc answers them); meters are not supported (a meter-features
request gets an error, which the agent takes as "no meters"). Anything else gets the
OpenFlow error a switch sends for a request it does not know.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlcp.southbound.openflow import wire
from vlcp.southbound.openflow.codec import codec_for

OFP13 = 4
CODEC = codec_for(OFP13)
OFPT_FEATURES_REQUEST, OFPT_FEATURES_REPLY = 5, 6
OFPT_GET_CONFIG_REQUEST, OFPT_GET_CONFIG_REPLY = 7, 8
OFPT_SET_CONFIG, OFPT_PACKET_OUT, OFPT_FLOW_MOD, OFPT_GROUP_MOD = 9, 13, 14, 15
OFPT_MULTIPART_REQUEST, OFPT_MULTIPART_REPLY = 18, 19
OFPT_BARRIER_REQUEST, OFPT_BARRIER_REPLY = 20, 21
OFPT_ROLE_REQUEST, OFPT_ROLE_REPLY, OFPT_SET_ASYNC, OFPT_METER_MOD = 24, 25, 28, 29
OFPT_ECHO_REQUEST, OFPT_EXPERIMENTER = 2, 4
OFPMP_FLOW, OFPMP_GROUP_DESC, OFPMP_METER_CONFIG, OFPMP_PORT_DESC = 1, 7, 10, 13
OFPBRC_BAD_TYPE, OFPBRC_BAD_MULTIPART = 1, 2
OFPFC_ADD, OFPFC_MODIFY, OFPFC_MODIFY_STRICT, OFPFC_DELETE, OFPFC_DELETE_STRICT = range(5)
OFPGC_ADD, OFPGC_MODIFY, OFPGC_DELETE = range(3)
OFPTT_ALL = 0xFF
OFPG_ALL = 0xFFFFFFFC

FLOW_MOD = struct.Struct("!QQBBHHHIIIH2x")  # after the header: 40 bytes, then the match
FLOW_STATS = struct.Struct("!HBxIIHHHH4xQQQ")
FEATURES = struct.Struct("!QIBB2xII")
MULTIPART = struct.Struct("!HH4x")
GROUP_MOD = struct.Struct("!HBxI")
GROUP_DESC = struct.Struct("!HBxI")
ROLE = struct.Struct("!I4xQ")
ONF_HEAD = struct.Struct("!II")  # experimenter, exp_type
BUNDLE_CTRL = struct.Struct("!IHH")  # bundle_id, type, flags
BUNDLE_ADD = struct.Struct("!I2xH")  # bundle_id, pad, flags
ONF_ET_BUNDLE_CONTROL, ONF_ET_BUNDLE_ADD = 2300, 2301
REPLY_BODY_LIMIT = 60000
"""Bytes of flow entries per multipart reply message (OpenFlow's limit is 64 KiB)."""


@dataclass
class FlowEntry:
    """One flow as received: its identity (table, priority, match bytes) and the rest."""

    cookie: int
    idle_timeout: int
    hard_timeout: int
    flags: int
    instructions: bytes


@dataclass(frozen=True)
class Installed:
    """A flow-mod add (or modify) applied to a bridge: when, and what it matches."""

    at: float
    table: int
    match: dict[str, Any]


@dataclass
class Bridge:
    """One simulated server's switch: its flows, groups and what it was sent."""

    name: str
    dpid: int
    flows: dict[tuple[int, int, bytes], FlowEntry] = field(default_factory=dict)
    groups: dict[int, bytes] = field(default_factory=dict)
    """Group id -> its desc entry (type and buckets as received)."""
    flow_mods: int = 0
    """Flow-mods applied, adds and deletes, since the bridge was created."""
    barriers: int = 0
    connections: int = 0
    _waiters: list[tuple[Callable[[Installed], bool], asyncio.Future[float]]] = field(
        default_factory=list
    )

    def installed(self, predicate: Callable[[Installed], bool]) -> asyncio.Future[float]:
        """A future set to the time of the next add that `predicate` accepts."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        return future

    def matches(self, table: int | None = None) -> list[dict[str, Any]]:
        """The decoded matches of the flows held (of one table, or all)."""
        return [
            dict(_match_fields(raw)) for (t, _, raw) in self.flows if table is None or t == table
        ]

    def apply(self, message: bytes, at: float) -> None:
        """One flow-mod or group-mod (alone or out of a committed bundle)."""
        mtype = message[1]
        if mtype == OFPT_FLOW_MOD:
            self._flow_mod(message, at)
        elif mtype == OFPT_GROUP_MOD:
            self._group_mod(message)

    def _flow_mod(self, message: bytes, at: float) -> None:
        decoded = CODEC.parse(message)  # the real parser: what the agent meant
        (cookie, cookie_mask, table, command, idle, hard, priority, _, _, _, flags) = (
            FLOW_MOD.unpack_from(message, wire.HEADER_SIZE)
        )
        start = wire.HEADER_SIZE + FLOW_MOD.size
        match_len = struct.unpack_from("!H", message, start + 2)[0]
        end = start + (match_len + 7) // 8 * 8
        raw_match, instructions = message[start:end], message[end:]
        self.flow_mods += 1
        if command in (OFPFC_ADD, OFPFC_MODIFY, OFPFC_MODIFY_STRICT):
            key = (table, priority, raw_match)
            self.flows[key] = FlowEntry(cookie, idle, hard, flags, instructions)
            event = Installed(at, table, dict(_fields_of(decoded.match)))
            waiting, self._waiters = self._waiters, []
            for predicate, future in waiting:
                if future.done():
                    continue
                if predicate(event):
                    future.set_result(at)
                else:
                    self._waiters.append((predicate, future))
            return

        def chosen(key: tuple[int, int, bytes]) -> bool:
            entry = self.flows[key]
            if (entry.cookie ^ cookie) & cookie_mask:
                return False
            if table != OFPTT_ALL and key[0] != table:
                return False
            if command == OFPFC_DELETE_STRICT:
                return key[1] == priority and key[2] == raw_match
            return match_len <= 4 or key[2] == raw_match  # empty match: every flow

        for key in [k for k in self.flows if chosen(k)]:
            del self.flows[key]

    def _group_mod(self, message: bytes) -> None:
        command, gtype, group_id = GROUP_MOD.unpack_from(message, wire.HEADER_SIZE)
        buckets = message[wire.HEADER_SIZE + GROUP_MOD.size :]
        if command == OFPGC_DELETE:
            if group_id == OFPG_ALL:
                self.groups.clear()
            else:
                self.groups.pop(group_id, None)
            return
        self.groups[group_id] = GROUP_DESC.pack(GROUP_DESC.size + len(buckets), gtype, group_id)
        self.groups[group_id] += buckets

    def flow_stats(self) -> list[bytes]:
        """Every flow as flow-stats entries, as they went in."""
        out = []
        for (table, priority, raw_match), e in self.flows.items():
            length = FLOW_STATS.size + len(raw_match) + len(e.instructions)
            head = FLOW_STATS.pack(
                length, table, 0, 0, priority, e.idle_timeout, e.hard_timeout, e.flags,
                e.cookie, 0, 0,
            )  # fmt: skip
            out.append(head + raw_match + e.instructions)
        return out


def to_mac(mac: str) -> Callable[[Installed], bool]:
    """For `Bridge.installed`: an add whose match sends frames to `mac` (the flow of a
    port, local or behind a tunnel, in the L2 forwarding table)."""
    return lambda event: event.match.get("eth_dst") == mac


def _fields_of(match: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((str(k), v) for k, v in match._fields2))


def _match_fields(raw_match: bytes) -> tuple[tuple[str, Any], ...]:
    """Decode a match kept as bytes (os-ken's parser, as for a received flow-mod)."""
    return _fields_of(CODEC.parser.OFPMatch.parser(raw_match, 0))


def _message(mtype: int, xid: int, body: bytes = b"") -> bytes:
    return wire.HEADER.pack(OFP13, mtype, wire.HEADER_SIZE + len(body), xid) + body


def _multipart_replies(mp_type: int, xid: int, entries: list[bytes]) -> list[bytes]:
    """Entries split over as many reply messages as the size limit needs, the last one
    without OFPMPF_REPLY_MORE (an empty reply for no entries)."""
    chunks: list[list[bytes]] = [[]]
    size = 0
    for entry in entries:
        if size + len(entry) > REPLY_BODY_LIMIT and chunks[-1]:
            chunks.append([])
            size = 0
        chunks[-1].append(entry)
        size += len(entry)
    return [
        _message(
            OFPT_MULTIPART_REPLY,
            xid,
            MULTIPART.pack(mp_type, wire.OFPMPF_REPLY_MORE if i < len(chunks) - 1 else 0)
            + b"".join(chunk),
        )
        for i, chunk in enumerate(chunks)
    ]


class SwitchConnection(asyncio.Protocol):
    """The control channel of one bridge to one controller."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.bundles: dict[int, list[bytes]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.bridge.connections += 1
        transport.write(wire.encode_hello([OFP13]))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            for message in wire.split_messages(self.buffer):
                self._handle(message)
        except wire.MalformedMessage:
            assert self.transport is not None
            self.transport.close()

    def _send(self, *messages: bytes) -> None:
        assert self.transport is not None
        self.transport.write(b"".join(messages))

    def _error(self, message: bytes, code: int) -> None:
        xid = wire.parse_header(message).xid
        self._send(wire.encode_error(OFP13, wire.OFPET_BAD_REQUEST, code, message[:64], xid))

    def _handle(self, message: bytes) -> None:
        header = wire.parse_header(message)
        mtype, xid = header.type, header.xid
        if mtype == 0:  # hello: the controller's; we offered 1.3 only
            return
        if mtype == OFPT_ECHO_REQUEST:
            self._send(wire.encode_echo(OFP13, True, message[wire.HEADER_SIZE :], xid))
        elif mtype == OFPT_FEATURES_REQUEST:
            body = FEATURES.pack(self.bridge.dpid, 0, 254, 0, 0x4F, 0)
            self._send(_message(OFPT_FEATURES_REPLY, xid, body))
        elif mtype == OFPT_GET_CONFIG_REQUEST:
            self._send(_message(OFPT_GET_CONFIG_REPLY, xid, struct.pack("!HH", 0, 0xFFFF)))
        elif mtype in (OFPT_SET_CONFIG, OFPT_SET_ASYNC, OFPT_PACKET_OUT, OFPT_METER_MOD):
            return
        elif mtype in (OFPT_FLOW_MOD, OFPT_GROUP_MOD):
            self.bridge.apply(message, time.time())
        elif mtype == OFPT_BARRIER_REQUEST:
            self.bridge.barriers += 1
            self._send(_message(OFPT_BARRIER_REPLY, xid))
        elif mtype == OFPT_ROLE_REQUEST:
            role, generation = ROLE.unpack_from(message, wire.HEADER_SIZE)
            self._send(_message(OFPT_ROLE_REPLY, xid, ROLE.pack(role, generation)))
        elif mtype == OFPT_MULTIPART_REQUEST:
            self._multipart(message, xid)
        elif mtype == OFPT_EXPERIMENTER:
            self._experimenter(message, xid)
        else:
            self._error(message, OFPBRC_BAD_TYPE)

    def _multipart(self, message: bytes, xid: int) -> None:
        mp_type = MULTIPART.unpack_from(message, wire.HEADER_SIZE)[0]
        if mp_type == OFPMP_FLOW:
            entries = self.bridge.flow_stats()
        elif mp_type == OFPMP_GROUP_DESC:
            entries = list(self.bridge.groups.values())
        elif mp_type in (OFPMP_METER_CONFIG, OFPMP_PORT_DESC):
            entries = []
        else:  # meter features among them: no meters here
            self._error(message, OFPBRC_BAD_MULTIPART)
            return
        self._send(*_multipart_replies(mp_type, xid, entries))

    def _experimenter(self, message: bytes, xid: int) -> None:
        """ONF bundles (EXT-230), the way OpenFlow 1.3 controllers send atomic changes."""
        experimenter, exp_type = ONF_HEAD.unpack_from(message, wire.HEADER_SIZE)
        offset = wire.HEADER_SIZE + ONF_HEAD.size
        if experimenter != wire.ONF_EXPERIMENTER:
            self._error(message, OFPBRC_BAD_TYPE)
        elif exp_type == ONF_ET_BUNDLE_ADD:
            bundle_id = BUNDLE_ADD.unpack_from(message, offset)[0]
            self.bundles.setdefault(bundle_id, []).append(message[offset + BUNDLE_ADD.size :])
        elif exp_type == ONF_ET_BUNDLE_CONTROL:
            bundle_id, kind, flags = BUNDLE_CTRL.unpack_from(message, offset)
            if kind == 4:  # commit: everything at once, at one instant
                now = time.time()
                for inner in self.bundles.pop(bundle_id, []):
                    self.bridge.apply(inner, now)
            elif kind == 6:  # discard
                self.bundles.pop(bundle_id, None)
            body = ONF_HEAD.pack(experimenter, exp_type) + BUNDLE_CTRL.pack(
                bundle_id, kind + 1, flags
            )
            self._send(_message(OFPT_EXPERIMENTER, xid, body))
        else:
            self._error(message, OFPBRC_BAD_TYPE)


class FakeSwitches:
    """Many bridges in one event loop, each listening on its own unix socket."""

    def __init__(self) -> None:
        self.bridges: dict[str, Bridge] = {}
        self._servers: list[asyncio.AbstractServer] = []
        self._connections: set[SwitchConnection] = set()

    async def add(self, name: str, dpid: int, socket: Path) -> Bridge:
        """A bridge named `name` with datapath id `dpid`, listening at `socket`."""
        bridge = Bridge(name, dpid)
        self.bridges[name] = bridge
        socket.unlink(missing_ok=True)
        loop = asyncio.get_running_loop()

        def connection() -> SwitchConnection:
            made = SwitchConnection(bridge)
            self._connections.add(made)
            return made

        server = await loop.create_unix_server(connection, str(socket))
        self._servers.append(server)
        return bridge

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for made in self._connections:  # else wait_closed waits for the controllers
            if made.transport is not None:
                made.transport.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
