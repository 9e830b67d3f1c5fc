"""The OpenFlow southbound against a real Open vSwitch (private, userspace datapath).

Every test drives a real ovs-vswitchd from the test lab: the handshake it negotiates, the
flows it accepts and reports, how it applies bundles, and packets that really cross it.
Misbehaving peers are plain asyncio clients written here; they share a server with a real
switch, which must keep working whatever they send.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from tests.lab.fixtures_ovs import HostFactory
from tests.lab.marks import needs_ovs_lab
from tests.lab.ovs import Hypervisor
from vlcp.southbound.openflow.channel import ErrorReceived
from vlcp.southbound.openflow.flow import Action, Flow, controller, output, resubmit
from vlcp.southbound.openflow.messages import Bucket, FlowMod, PacketIn, SwitchError
from vlcp.southbound.openflow.operations import FlowModsRejected
from vlcp.southbound.openflow.server import (
    Connected,
    Disconnected,
    OpenFlowServer,
    Received,
    Switch,
    SwitchEvent,
)
from vlcp.southbound.openflow.wire import OFP13, OFP14

pytestmark = [
    pytest.mark.root,
    needs_ovs_lab,
]

ALL_VERSIONS = "OpenFlow13,OpenFlow14,OpenFlow15"
WAIT = 10.0
"""Seconds to wait for something OVS does by itself (connect, answer); never a sleep."""


# ---------------------------------------------------------------- helpers


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[OpenFlowServer]:
    """A server on a private unix socket; unhandled loop exceptions fail the test."""
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    async with OpenFlowServer(echo_interval=1.0, echo_timeout=2.0) as srv:
        srv.socket_path = tmp_path / "of.sock"  # type: ignore[attr-defined]
        await srv.listen(f"unix:{srv.socket_path}")  # type: ignore[attr-defined]
        yield srv
    loop.set_exception_handler(None)
    assert unhandled == []


async def next_event(
    server: OpenFlowServer, predicate: Callable[[SwitchEvent], bool], timeout: float = WAIT
) -> SwitchEvent:
    """The next event that satisfies ``predicate`` (others are dropped)."""
    async with asyncio.timeout(timeout):
        while True:
            event = await server.events.get()
            if predicate(event):
                return event


def datapath_id(hv: Hypervisor, bridge: str) -> int:
    return int(hv.vsctl("get", "bridge", bridge, "datapath_id").strip('"'), 16)


async def attach(
    server: OpenFlowServer, hv: Hypervisor, bridge: str = "br0", protocols: str = ALL_VERSIONS
) -> Switch:
    """A secure bridge controlled by ``server`` (one OVSDB transaction, so the first
    connection already uses ``protocols``); returns its switch once it is ready."""
    target = hv.controller_target(server.socket_path)  # type: ignore[attr-defined]
    await asyncio.to_thread(
        hv.vsctl,
        *("add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev"),
        *(f"protocols={protocols}", "fail_mode=secure"),
        *("--", "set-controller", bridge, target),
        *("--", "set", "controller", bridge, "max_backoff=1000"),
    )
    dpid = datapath_id(hv, bridge)
    event = await next_event(server, lambda e: isinstance(e, Connected) and e.switch.dpid == dpid)
    assert isinstance(event, Connected)
    return event.switch


def cookies(flows: list[object]) -> set[int]:
    return {f.cookie for f in flows}  # type: ignore[attr-defined]


# ---------------------------------------------------------------- handshake


async def test_handshake_negotiates_openflow_14(
    server: OpenFlowServer, hypervisor: Hypervisor
) -> None:
    started = time.monotonic()
    switch = await attach(server, hypervisor)
    elapsed = time.monotonic() - started
    assert switch.channel.version == OFP14  # OVS offers 1.3-1.5, we offer 1.3-1.4
    assert switch.dpid == datapath_id(hypervisor, "br0")
    assert switch.features is not None and switch.features.n_tables == 254
    assert server.switches == {switch.dpid: switch}
    assert elapsed < WAIT
    await switch.barrier()


async def test_openflow13_only_bridge_negotiates_13_and_still_has_bundles(
    server: OpenFlowServer, hypervisor: Hypervisor
) -> None:
    switch = await attach(server, hypervisor, protocols="OpenFlow13")
    assert switch.channel.version == OFP13
    flows = [Flow.make(0, 10 + i, {"in_port": i + 1}, [output(9)]) for i in range(3)]
    await switch.send_flow_mods([FlowMod.add(f) for f in flows], atomic=True)
    assert switch.supports_bundles  # the ONF bundle extension worked
    assert cookies(await switch.flow_stats()) == cookies(flows)
    bad = Flow.make(0, 1, {"ipv4_dst": "10.0.0.1"}, [])  # no eth_type prerequisite
    with pytest.raises(FlowModsRejected) as rejected:
        await switch.send_flow_mods([FlowMod.delete(flows[0]), FlowMod.add(bad)], atomic=True)
    assert rejected.value.failures[0][0] == 1
    assert cookies(await switch.flow_stats()) == cookies(flows)  # the delete was not applied


async def test_server_connects_to_a_listening_switch(hypervisor: Hypervisor) -> None:
    """The active direction: OVS listens (``punix:``) and we dial it."""
    hypervisor.add_bridge("br0", fail_mode="secure")
    listen = hypervisor.dir / "br0.listen"
    hypervisor.vsctl("set-controller", "br0", f"punix:{listen}")
    async with asyncio.timeout(WAIT):
        while not listen.exists():
            await asyncio.sleep(0.05)
    async with OpenFlowServer() as srv:
        switch = await srv.connect(f"unix:{listen}")
        assert switch.dpid == datapath_id(hypervisor, "br0")
        assert await switch.flow_stats() == []


# ---------------------------------------------------------------- flows


NICIRA_FLOWS = [
    Flow.make(0, 100, {"in_port": 1}, [resubmit(10), output(2)], goto=5),
    Flow.make(0, 90, {"eth_type": 0x0800, "ipv4_dst": "10.0.0.1"}, [controller()]),
    Flow.make(0, 95, {"eth_type": 0x0800, "nw_ttl": 1}, [controller()], goto=5),
    Flow.make(
        5,
        10,
        {"reg0": 5, "metadata": (0x100, 0xF00), "ct_state": (0x21, 0x21), "ct_zone": 3},
        [Action.make("nx_conjunction", id=7, clause=1, n_clauses=2)],
    ),
    Flow.make(5, 20, {"conj_id": 7}, [Action.make("nx_reg_load", field="reg1", value=9)]),
    Flow.make(
        6,
        30,
        {"tunnel_id": 5000, "tun_ipv4_dst": "192.0.2.1", "eth_type": 0x0800},
        [
            Action.make("nx_ct", commit=True, zone=4, actions=()),
            Action.make("nx_reg_move", src="reg1", dst="reg2", n_bits=16),
            Action.make(
                "nx_learn",
                table=9,
                priority=5,
                idle_timeout=60,
                specs=[
                    {"type": "match", "src": "eth_src", "dst": "eth_dst"},
                    {"type": "output", "src": "in_port", "n_bits": 16},
                ],
            ),
        ],
    ),
]


async def test_flows_are_read_back_with_their_cookies_and_deleted_strictly(
    server: OpenFlowServer, hypervisor: Hypervisor
) -> None:
    switch = await attach(server, hypervisor)
    await switch.send_flow_mods([FlowMod.add(f) for f in NICIRA_FLOWS], atomic=False)
    installed = await switch.flow_stats()
    assert cookies(installed) == cookies(NICIRA_FLOWS)
    by_cookie = {f.cookie: f for f in installed}
    for flow in NICIRA_FLOWS:
        got = by_cookie[flow.cookie]
        assert (got.table, got.priority) == (flow.table, flow.priority)
    dumped = "\n".join(hypervisor.dump_flows("br0"))
    assert "conjunction(7,1/2)" in dumped and "resubmit(,10)" in dumped
    assert "ct(commit,zone=4)" in dumped and "learn(table=9" in dumped
    assert len(await switch.flow_stats(table=5)) == 2

    # strict delete of a Flow value, then of flows as read back
    await switch.send_flow_mods([FlowMod.delete(NICIRA_FLOWS[0])], atomic=False)
    remaining = await switch.flow_stats()
    assert cookies(remaining) == cookies(NICIRA_FLOWS[1:])
    await switch.send_flow_mods([FlowMod.delete(f) for f in remaining], atomic=True)
    assert await switch.flow_stats() == []


async def test_a_foreign_flow_is_deleted_exactly_as_ovs_reported_it(
    server: OpenFlowServer, hypervisor: Hypervisor
) -> None:
    """Flows added by someone else come back in OVS's normal form (prerequisites added,
    masks canonical); deleting by the reported match bytes removes exactly that flow."""
    switch = await attach(server, hypervisor)
    await asyncio.to_thread(
        hypervisor.add_flows,
        "br0",
        [
            "cookie=0x1,priority=5,tcp,nw_src=10.0.0.0/8,tp_dst=80,actions=drop",
            "cookie=0x1,priority=5,udp,nw_src=10.0.0.0/8,tp_dst=80,actions=drop",
        ],
    )
    installed = await switch.flow_stats(cookie=1, cookie_mask=2**64 - 1)
    assert len(installed) == 2
    tcp = next(f for f in installed if dict(f.match_fields).get("ip_proto") == 6)
    assert dict(tcp.match_fields)["eth_type"] == 0x0800  # OVS added the prerequisite
    await switch.send_flow_mods([FlowMod.delete(tcp)], atomic=False)
    left = await switch.flow_stats()
    assert [dict(f.match_fields)["ip_proto"] for f in left] == [17]


# ---------------------------------------------------------------- bundles


async def test_bundles_apply_all_or_nothing(server: OpenFlowServer, hypervisor: Hypervisor) -> None:
    switch = await attach(server, hypervisor)
    base = [Flow.make(1, p, {"reg3": p}, [output(1)]) for p in range(1, 4)]
    await switch.send_flow_mods([FlowMod.add(f) for f in base], atomic=True)
    assert cookies(await switch.flow_stats()) == cookies(base)

    # rejected while being added to the bundle: the bundle is discarded, not committed
    extra = Flow.make(1, 50, {"reg3": 50}, [output(1)])
    bad = Flow.make(1, 51, {"tcp_dst": 80}, [output(1)])  # lacks ip_proto/eth_type
    mods = [FlowMod.delete(base[0]), FlowMod.add(extra), FlowMod.add(bad)]
    with pytest.raises(FlowModsRejected) as add_time:
        await switch.send_flow_mods(mods, atomic=True)
    index, error = add_time.value.failures[0]
    assert index == 2 and isinstance(error, SwitchError)
    assert (error.type_name, error.code_name) == ("OFPET_BAD_MATCH", "OFPBMC_BAD_PREREQ")
    assert cookies(await switch.flow_stats()) == cookies(base)

    # rejected only at commit (the group does not exist yet): OVS rolls the bundle back
    uses_group = Flow.make(1, 60, {"reg3": 60}, [Action.make("group", group_id=7)])
    with pytest.raises(FlowModsRejected) as commit_time:
        await switch.send_flow_mods([FlowMod.add(extra), FlowMod.add(uses_group)], atomic=True)
    reported = {(i, e.code_name) for i, e in commit_time.value.failures}  # type: ignore[attr-defined]
    assert reported == {(1, "OFPBAC_BAD_OUT_GROUP"), (None, "OFPBFC_MSG_FAILED")}
    assert cookies(await switch.flow_stats()) == cookies(base)

    # with the group in place the same bundle goes through
    group = switch.codec.group_mod("add", 7, "all", [Bucket((output(2),))])
    await switch.send_flow_mods([group, FlowMod.add(extra), FlowMod.add(uses_group)], atomic=True)
    assert cookies(await switch.flow_stats()) == cookies([*base, extra, uses_group])
    c = switch.codec
    groups = c.decode_group_desc(await switch.multipart(c.group_desc_request()))
    assert [(g.group_id, g.group_type, g.n_buckets) for g in groups] == [(7, "all", 1)]
    stats = c.decode_group_stats(await switch.multipart(c.group_stats_request()))
    assert [(s.group_id, s.ref_count) for s in stats] == [(7, 1)]


async def test_replacing_a_flow_in_place_then_deleting_the_old_cookie_keeps_the_new(
    server: OpenFlowServer, hypervisor: Hypervisor
) -> None:
    """What the reconciler does when a flow's actions change: the add overwrites the
    entry of equal match and priority, and the strict delete of the old cookie must not
    take the new flow with it."""
    switch = await attach(server, hypervisor)
    old = Flow.make(2, 40, {"reg7": 1}, [output(1)])
    new = Flow.make(2, 40, {"reg7": 1}, [output(2)])
    await switch.apply([old], [])
    (installed,) = await switch.read_flows()
    assert installed.cookie == old.cookie
    await switch.apply([new], [installed])
    assert cookies(await switch.read_flows()) == {new.cookie}
    assert hypervisor.dump_flows("br0", table=2)[0].endswith("actions=output:2")


async def test_non_atomic_mods_apply_in_order_up_to_the_rejected_one(
    server: OpenFlowServer, hypervisor: Hypervisor
) -> None:
    switch = await attach(server, hypervisor)
    good = Flow.make(0, 10, {"in_port": 1}, [output(2)])
    bad = Flow.make(0, 11, {"tcp_dst": 80}, [])
    later = Flow.make(0, 12, {"in_port": 3}, [output(2)])
    with pytest.raises(FlowModsRejected) as rejected:
        await switch.send_flow_mods([FlowMod.add(f) for f in (good, bad, later)], atomic=False)
    assert [i for i, _ in rejected.value.failures] == [1]
    assert cookies(await switch.flow_stats()) == cookies([good, later])


# ---------------------------------------------------------------- packets


async def test_packet_in_and_packet_out_round_trip(
    server: OpenFlowServer, hypervisor: Hypervisor, host_factory: HostFactory
) -> None:
    switch = await attach(server, hypervisor)
    h1 = host_factory(hypervisor, "br0", "10.20.0.1/24", mac="02:00:00:00:20:01", ofport=1)
    h2 = host_factory(hypervisor, "br0", "10.20.0.2/24", mac="02:00:00:00:20:02", ofport=2)
    await switch.send_flow_mods([FlowMod.add(Flow.make(0, 0, {}, [controller()]))], atomic=True)
    token = os.urandom(8).hex().encode()
    frame = (
        Ether(src=h1.mac, dst=h2.mac)
        / IP(src=h1.ip, dst=h2.ip)
        / UDP(sport=4000, dport=4242)
        / Raw(b"vlcp-" + token)
    )
    capture = await asyncio.to_thread(h2.capture, "udp port 4242")

    started = time.monotonic()
    await asyncio.to_thread(h1.send, frame)
    event = await next_event(
        server,
        lambda e: (
            isinstance(e, Received) and isinstance(e.event, PacketIn) and token in e.event.data
        ),
    )
    assert isinstance(event, Received) and isinstance(event.event, PacketIn)
    packet_in = event.event
    assert packet_in.in_port == h1.ofport == 1
    assert packet_in.table_id == 0 and packet_in.data == bytes(frame)

    switch.packet_out(packet_in.data, [output(h2.ofport)])
    await switch.barrier()
    (received,) = await asyncio.to_thread(
        capture.wait_for, lambda p: Raw in p and token in p[Raw].load
    )
    elapsed = time.monotonic() - started
    assert bytes(received) == bytes(frame)
    assert elapsed < WAIT


async def test_rejected_packet_out_is_reported_as_an_event(
    server: OpenFlowServer, hypervisor: Hypervisor
) -> None:
    switch = await attach(server, hypervisor)
    xid = switch.packet_out(b"\0" * 10, [output(1)], in_port=0xFFFFFF00 + 1)  # reserved range
    event = await next_event(server, lambda e: isinstance(e, Received))
    assert isinstance(event, Received) and isinstance(event.event, ErrorReceived)
    assert event.event.error.xid == xid
    await switch.barrier()  # the connection is fine


# ---------------------------------------------------------------- liveness and hostile peers


class FakePeer:
    """A hand-written "switch" on our unix socket: says what a test tells it to say."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, path: Path) -> FakePeer:
        return cls(*await asyncio.open_unix_connection(str(path)))

    async def read_message(self) -> tuple[int, int, int, bytes]:
        header = await self.reader.readexactly(8)
        version, mtype, length, xid = struct.unpack("!BBHI", header)
        return version, mtype, xid, await self.reader.readexactly(length - 8)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def handshake(self, dpid: int) -> None:
        """HELLO (bitmap 1.3+1.4), then answer the features request as datapath ``dpid``."""
        version, mtype, _, _ = await self.read_message()
        assert (version, mtype) == (OFP14, 0)
        self.send(struct.pack("!BBHIHHI", OFP14, 0, 16, 1, 1, 8, 0b110000))
        version, mtype, xid, _ = await self.read_message()
        assert mtype == 5
        body = struct.pack("!QIBB2xII", dpid, 0, 254, 0, 0, 0)
        self.send(struct.pack("!BBHI", OFP14, 6, 8 + len(body), xid) + body)
        await self.writer.drain()

    async def closed_by_server(self, timeout: float = WAIT) -> bytes:
        """Read until the server closes us; returns what it sent before closing."""
        async with asyncio.timeout(timeout):
            data = b""
            while chunk := await self.reader.read(65536):
                data += chunk
            return data

    def close(self) -> None:
        self.writer.close()


async def test_echo_timeout_detects_a_silent_peer_while_ovs_stays_connected(
    server: OpenFlowServer, hypervisor: Hypervisor
) -> None:
    real = await attach(server, hypervisor)
    fake = await FakePeer.open(server.socket_path)  # type: ignore[attr-defined]
    await fake.handshake(dpid=0xFA4E)
    await next_event(server, lambda e: isinstance(e, Connected) and e.switch.dpid == 0xFA4E)
    started = time.monotonic()  # the fake now says nothing and answers no echo
    event = await next_event(server, lambda e: isinstance(e, Disconnected))
    elapsed = time.monotonic() - started
    assert isinstance(event, Disconnected) and event.switch.dpid == 0xFA4E
    assert event.reason.startswith("echo timeout")
    assert 2.9 <= elapsed < 4.5  # echo_interval 1 s + echo_timeout 2 s
    await fake.closed_by_server()
    fake.close()
    # the real switch answered every probe in the meantime and is still with us
    assert server.switches == {real.dpid: real}
    await real.barrier()


def hello(version: int = OFP14) -> bytes:
    return struct.pack("!BBHIHHI", version, 0, 16, 1, 1, 8, 1 << version)


MISBEHAVIOUR = {
    "garbage": os.urandom(4096),
    "truncated": hello()[:11],
    "wrong-version": struct.pack("!BBHIHHI", 1, 0, 16, 1, 1, 8, 0b10),  # only OpenFlow 1.0
    "length-below-8": hello() + struct.pack("!BBHI", OFP14, 2, 4, 7),
    "huge-length-then-junk": struct.pack("!BBHI", 0x99, 0, 0xFFFF, 1) + b"x" * 1000,
}


async def test_hostile_peers_are_closed_and_a_real_switch_keeps_working(
    server: OpenFlowServer, hypervisor: Hypervisor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vlcp.southbound.openflow")
    real = await attach(server, hypervisor)
    server.max_events = 50
    path = server.socket_path  # type: ignore[attr-defined]

    async def misbehave(name: str, data: bytes) -> bytes:
        peer = await FakePeer.open(path)
        peer.send(data)
        if name == "truncated":
            peer.writer.write_eof()  # and never send the rest
        received = await peer.closed_by_server()
        peer.close()
        return received

    results = await asyncio.gather(*(misbehave(n, d) for n, d in MISBEHAVIOUR.items()))
    by_name = dict(zip(MISBEHAVIOUR, results, strict=True))
    # every one got our HELLO; the 1.0-only one also got HELLO_FAILED/INCOMPATIBLE
    assert all(r.startswith(hello()[:2]) for r in results)
    assert by_name["wrong-version"][17] == 1  # OFPT_ERROR
    assert struct.unpack_from("!HH", by_name["wrong-version"], 24) == (0, 0)

    # a peer that floods echo requests and packet-ins and never reads what we answer
    flooder = await FakePeer.open(path)
    await flooder.handshake(dpid=0xF100D)
    await next_event(server, lambda e: isinstance(e, Connected) and e.switch.dpid == 0xF100D)
    echo = struct.pack("!BBHI", OFP14, 2, 8 + 256, 5) + b"e" * 256
    oxm = struct.pack("!HBBI", 0x8000, 0, 4, 1)
    match = struct.pack("!HH", 1, 4 + len(oxm)) + oxm + b"\0" * 4
    body = struct.pack("!IHBBQ", 0xFFFFFFFF, 60, 0, 0, 0) + match + b"\0\0" + b"p" * 60
    packet_in = struct.pack("!BBHI", OFP14, 10, 8 + len(body), 0) + body
    burst = (echo + packet_in) * 200

    async def flood() -> None:
        try:
            while True:
                flooder.send(burst)
                await flooder.writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return

    flooding = asyncio.create_task(flood())
    latencies = []
    for _ in range(30):  # meanwhile the real switch answers promptly
        started = time.monotonic()
        await real.barrier()
        latencies.append(time.monotonic() - started)
    flows = [Flow.make(0, i, {"in_port": i}, [output(1)]) for i in range(1, 50)]
    await real.send_flow_mods([FlowMod.add(f) for f in flows], atomic=True)
    assert cookies(await real.flow_stats()) == cookies(flows)
    assert max(latencies) < 0.5, latencies
    assert server.events.qsize() <= server.max_events + 10  # lifecycle events may exceed
    assert server.dropped > 0
    # the flooder, paused while it does not read our replies, ends up declared dead
    event = await next_event(
        server, lambda e: isinstance(e, Disconnected) and e.switch.dpid == 0xF100D
    )
    assert isinstance(event, Disconnected)
    flooding.cancel()
    await asyncio.gather(flooding, return_exceptions=True)
    flooder.close()

    assert server.switches == {real.dpid: real}
    await real.barrier()
    assert "internal error" not in caplog.text
    for name in ("expected HELLO", "no common OpenFlow version", "< 8"):
        assert name in caplog.text, name
