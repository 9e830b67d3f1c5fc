"""`PacketInDispatcher`: packet-ins to the loaded modules' handlers, within each port's
limit, counted, and never fatal. A fake switch and a fake clock: no OVS, no event loop.

Two test modules with tables after `l2_forward` (so the built-in ids stay): `echo`, whose
handler sends the frame back out of its port, and `boom`, whose handler raises.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from vlcp.agent.packet_in import WHOLE_PACKETS, Counters, PacketInDispatcher
from vlcp.pipeline import (
    BUILTIN,
    BadPacket,
    Catalog,
    Context,
    Learned,
    Module,
    ModuleSet,
    PacketIn,
    PacketOut,
    Received,
    Table,
    View,
)
from vlcp.pipeline.fields import NETWORK
from vlcp.southbound.openflow.channel import ConnectionClosed
from vlcp.southbound.openflow.codec import codec_for
from vlcp.southbound.openflow.flow import Action, output
from vlcp.southbound.openflow.messages import PacketIn as SwitchPacketIn
from vlcp.southbound.openflow.server import Connected
from vlcp.southbound.openflow.server import Received as SwitchReceived

OFPT_SET_CONFIG = 9
FRAME = bytes.fromhex("ffffffffffff020000000001") + b"\x88\xb5" + b"payload"
RATE, BURST = 2.0, 3
CALLS: list[Received] = []


def echo(ctx: Context, view: View, received: Received) -> Sequence[PacketOut]:
    CALLS.append(received)
    return [PacketOut(received.in_port, received.data)]


def boom(ctx: Context, view: View, received: Received) -> Sequence[PacketOut]:
    raise RuntimeError("handler bug")


def module(name: str, handler: Any) -> Module:
    return Module(
        name,
        tables=(Table(name, after=("l2_forward",)),),
        packet_ins=(PacketIn(name, handler, rate=RATE, burst=BURST),),
    )


ECHO, BOOM = module("echo", echo), module("boom", boom)
CATALOG = Catalog([*BUILTIN, ECHO, BOOM])
ALL = ModuleSet.all(CATALOG)
ECHO_TABLE, BOOM_TABLE = CATALOG.pipeline["echo"].id, CATALOG.pipeline["boom"].id


class FakeSwitch:
    """Records packet-outs; `closed` makes them fail as a dead connection does."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[Action, ...]]] = []
        self.closed = False
        self.codec = codec_for(4)
        self.messages: list[bytes] = []

    def packet_out(self, data: bytes, actions: Iterable[Action]) -> int:
        if self.closed:
            raise ConnectionClosed("gone")
        self.sent.append((data, tuple(actions)))
        return 1

    def send(self, message: bytes) -> int:
        self.messages.append(message)
        return 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Setup:
    def __init__(self, modules: ModuleSet = ALL, view: View | None = None) -> None:
        self.modules = modules
        self.view: View | None = view if view is not None else View()
        self.clock = Clock()
        self.switch = FakeSwitch()
        self.dispatcher = PacketInDispatcher(
            lambda: self.modules, lambda: self.view, clock=self.clock
        )

    def send(self, table: int, in_port: int | None = 1, **options: Any) -> None:
        packet = SwitchPacketIn(
            in_port=in_port,
            table_id=table,
            cookie=0,
            reason=1,
            data=options.pop("data", FRAME),
            match_fields=options.pop("match_fields", (("in_port", in_port),)),
            **options,
        )
        self.dispatcher.dispatch(self.switch, packet)

    def counters(self, name: str = "echo") -> Counters:
        return self.dispatcher.counters.get(name, Counters())


@pytest.fixture(autouse=True)
def _forget_calls() -> None:
    CALLS.clear()


def test_a_packet_goes_to_the_handler_of_its_table_and_its_answer_to_the_switch() -> None:
    s = Setup()
    network = 0x1234
    s.send(ECHO_TABLE, 7, match_fields=(("in_port", 7), (NETWORK.reg, network)))
    assert [Received(7, network, FRAME)] == CALLS
    assert s.switch.sent == [(FRAME, (output(7),))]
    assert s.counters() == Counters(received=1, handled=1)
    assert s.counters("boom") == Counters()


def test_without_the_network_register_the_handler_gets_no_network() -> None:
    s = Setup()
    s.send(ECHO_TABLE, 7)
    assert [Received(7, None, FRAME)] == CALLS


@pytest.mark.parametrize("loaded", [[], ["boom"]], ids=["none", "another"])
def test_a_packet_of_a_module_not_loaded_is_dropped_and_counted(loaded: list[str]) -> None:
    s = Setup(ModuleSet(CATALOG, [*[m.name for m in BUILTIN], *loaded]))
    s.send(ECHO_TABLE)
    assert CALLS == [] and s.switch.sent == []
    assert s.dispatcher.unhandled == {"echo": 1}
    assert "echo" not in s.dispatcher.counters
    s.modules = ALL  # loaded now: the next packet is handled
    s.send(ECHO_TABLE)
    assert s.counters().handled == 1


def test_packets_from_tables_without_a_handler_are_dropped_and_counted() -> None:
    s = Setup()
    s.send(CATALOG.pipeline["ingress"].id)
    s.send(200)  # no table of the catalog
    s.send(200)
    assert s.dispatcher.unhandled == {"ingress": 1, "200": 2}
    assert CALLS == []


def test_before_the_agent_has_a_view_packets_are_unhandled() -> None:
    s = Setup()
    s.view = None
    s.send(ECHO_TABLE)
    assert s.dispatcher.unhandled == {"echo": 1} and CALLS == []


def test_each_port_has_its_own_limit() -> None:
    s = Setup()
    for _ in range(BURST + 5):
        s.send(ECHO_TABLE, 1)
    assert s.counters() == Counters(received=BURST + 5, handled=BURST, limited=5)
    s.send(ECHO_TABLE, 2)  # another port's bucket is full
    assert s.counters().handled == BURST + 1
    s.clock.now += 1 / RATE  # one token back on port 1
    s.send(ECHO_TABLE, 1)
    s.send(ECHO_TABLE, 1)
    assert s.counters() == Counters(received=BURST + 8, handled=BURST + 2, limited=6)
    assert [r.in_port for r in CALLS] == [1] * BURST + [2, 1]


def test_a_reloaded_declaration_gets_fresh_buckets_and_others_keep_theirs() -> None:
    s = Setup()
    for _ in range(BURST + 1):
        s.send(ECHO_TABLE, 1)
    s.modules = ALL.unload("boom")  # another module changed: same declaration, same buckets
    s.send(ECHO_TABLE, 1)
    assert s.counters().limited == 2
    s.modules = ALL.reload(module("echo", echo))  # new code: a new declaration
    s.send(ECHO_TABLE, 1)
    assert s.counters().handled == BURST + 1


def test_a_handler_that_raises_is_counted_logged_once_and_stops_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = Setup()
    caplog.set_level(logging.WARNING, logger="vlcp.agent.packet_in")
    for port in range(1, 51):  # under every port's limit
        s.send(BOOM_TABLE, port)
    assert s.counters("boom") == Counters(received=50, errors=50)
    (line,) = caplog.records
    assert "handler bug" in line.getMessage() and line.exc_info is not None
    s.send(ECHO_TABLE)
    assert s.counters().handled == 1
    s.clock.now += 61  # the next line says how many were held back
    s.send(BOOM_TABLE, 1)
    assert "(49 more like it" in caplog.records[-1].getMessage()


def test_an_answer_that_is_not_packet_outs_is_an_error() -> None:
    def wrong(ctx: Context, view: View, received: Received) -> Sequence[PacketOut]:
        return [b"raw bytes"]  # type: ignore[list-item]

    s = Setup(ModuleSet.all(CATALOG.replace(module("echo", wrong))))
    s.send(ECHO_TABLE)
    assert s.counters() == Counters(received=1, errors=1)
    assert s.switch.sent == []


def test_what_a_handler_learned_goes_to_the_agent_with_the_packets_time() -> None:
    fact = Learned("n", "10.0.0.9", "02:00:00:00:00:09")

    def learner(ctx: Context, view: View, received: Received) -> Sequence[Learned]:
        return [fact]

    s = Setup(ModuleSet.all(CATALOG.replace(module("echo", learner))))
    kept: list[tuple[Learned, float]] = []
    s.dispatcher = PacketInDispatcher(
        lambda: s.modules,
        lambda: s.view,
        clock=s.clock,
        on_learned=lambda f, t: kept.append((f, t)),
    )
    s.send(ECHO_TABLE)
    assert kept == [(fact, s.clock.now)] and s.switch.sent == []
    assert s.counters() == Counters(received=1, handled=1)


def test_a_packet_out_the_connection_cannot_take_is_an_error() -> None:
    s = Setup()
    s.switch.closed = True
    s.send(ECHO_TABLE)
    assert s.counters() == Counters(received=1, errors=1)


@pytest.mark.parametrize(
    "packet",
    [
        {"in_port": None},
        {"data": FRAME[:13]},
        {"total_len": len(FRAME) + 1},
    ],
    ids=["no in_port", "short", "truncated"],
)
def test_a_malformed_packet_in_is_counted_logged_and_dropped(
    packet: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    s = Setup()
    caplog.set_level(logging.WARNING, logger="vlcp.agent.packet_in")
    for _ in range(3):
        s.send(ECHO_TABLE, **{"in_port": 1, **packet})
    assert CALLS == []
    assert s.counters() == Counters(received=3, malformed=3)
    assert len(caplog.records) == 1


def test_a_packet_its_handler_calls_malformed_is_counted_so_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def picky(ctx: Context, view: View, received: Received) -> Sequence[PacketOut]:
        raise BadPacket("truncated option")

    s = Setup(ModuleSet.all(CATALOG.replace(module("echo", picky))))
    caplog.set_level(logging.WARNING, logger="vlcp.agent.packet_in")
    for port in range(1, 11):
        s.send(ECHO_TABLE, port)
    assert s.counters() == Counters(received=10, malformed=10)
    (line,) = caplog.records
    assert "malformed packet-in from port 1" in line.getMessage()
    assert "truncated option" in line.getMessage() and line.exc_info is None


def test_a_connected_switch_is_asked_for_whole_packet_ins() -> None:
    s = Setup()
    s.dispatcher.on_event(Connected(s.switch))  # type: ignore[arg-type]
    (message,) = s.switch.messages
    assert message[1] == OFPT_SET_CONFIG
    assert int.from_bytes(message[10:12], "big") == WHOLE_PACKETS


def test_packet_in_events_are_dispatched_and_others_ignored() -> None:
    s = Setup()
    packet = SwitchPacketIn(1, ECHO_TABLE, 0, 1, FRAME, (("in_port", 1),))
    s.dispatcher.on_event(SwitchReceived(s.switch, packet))  # type: ignore[arg-type]
    s.dispatcher.on_event(SwitchReceived(s.switch, object()))  # type: ignore[arg-type]
    assert s.counters().handled == 1


def test_the_summary_is_logged_when_the_counters_changed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = Setup()
    caplog.set_level(logging.INFO, logger="vlcp.agent.packet_in")
    s.send(ECHO_TABLE)
    s.dispatcher.report(s.clock.now)
    s.dispatcher.report(s.clock.now)  # nothing new: nothing logged
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert "echo: 1 received, 0 malformed, 0 limited, 1 handled, 0 errors" in caplog.text
    for _ in range(BURST + 1):
        s.send(ECHO_TABLE, 2)
    s.dispatcher.report(s.clock.now)  # a drop since the last one: a warning
    assert caplog.records[-1].levelno == logging.WARNING
