"""The sans-I/O channel: negotiation, liveness, xid correlation, with fake bytes and time.

The switch side is written out with struct here, so these tests do not trust the codec's
encoders to check the channel that uses them. No sockets, no sleeps: time is a number.
"""

from __future__ import annotations

import struct

import pytest

from vlcp.southbound.openflow import wire
from vlcp.southbound.openflow.channel import (
    Closed,
    ConnectionClosed,
    ErrorReceived,
    OpenFlowChannel,
    Ready,
    Reply,
    ReplyTooLarge,
    RequestFailed,
    State,
    Unsolicited,
)
from vlcp.southbound.openflow.flow import Flow, output
from vlcp.southbound.openflow.messages import PacketIn, SwitchError
from vlcp.southbound.openflow.wire import OFP13, OFP14

DPID = 0x0000AABBCCDDEEFF
HELLO, ERROR, ECHO_REQUEST, ECHO_REPLY, FEATURES_REQUEST, FEATURES_REPLY = 0, 1, 2, 3, 5, 6
PACKET_IN, MULTIPART_REPLY, BARRIER_REPLY = 10, 19, 21


def msg(version: int, mtype: int, xid: int, body: bytes = b"") -> bytes:
    return struct.pack("!BBHI", version, mtype, 8 + len(body), xid) + body


def hello(version: int = 6, bitmap: set[int] | None = None) -> bytes:
    """A switch HELLO, optionally with a one-word version bitmap element."""
    if bitmap is None:
        return msg(version, HELLO, 1)
    word = sum(1 << v for v in bitmap)
    return msg(version, HELLO, 1, struct.pack("!HHI", 1, 8, word))


def features_reply(version: int, xid: int, n_tables: int = 254) -> bytes:
    body = struct.pack("!QIBB2xII", DPID, 0, n_tables, 0, 0x4F, 0)
    return msg(version, FEATURES_REPLY, xid, body)


def error(version: int, xid: int, err_type: int, code: int, data: bytes = b"") -> bytes:
    return msg(version, ERROR, xid, struct.pack("!HH", err_type, code) + data)


def flow_stats_part(version: int, xid: int, cookie: int, more: bool) -> bytes:
    """A one-entry OFPMP_FLOW reply (empty match) with or without OFPMPF_REPLY_MORE."""
    match = struct.pack("!HH4x", 1, 4)
    entry = struct.pack("!BxIIHHHH4xQQQ", 0, 1, 0, 10, 0, 0, 0, cookie, 0, 0) + match
    body = struct.pack("!HH4x", 1, int(more)) + struct.pack("!H", 2 + len(entry)) + entry
    return msg(version, MULTIPART_REPLY, xid, body)


def packet_in(version: int, in_port: int, frame: bytes) -> bytes:
    oxm = struct.pack("!HBBI", 0x8000, 0 << 1, 4, in_port)  # OXM_OF_IN_PORT
    match = struct.pack("!HH", 1, 4 + len(oxm)) + oxm
    match += b"\0" * (-len(match) % 8)
    fixed = struct.pack("!IHBBQ", wire.OFP_NO_BUFFER, len(frame), 0, 3, 0x77)
    return msg(version, PACKET_IN, 0, fixed + match + b"\0\0" + frame)


def parse_out(data: bytes) -> list[tuple[wire.Header, bytes]]:
    """The messages the channel wrote, as (header, bytes)."""
    buffer = bytearray(data)
    messages = wire.split_messages(buffer)
    assert not buffer, "the channel wrote a partial message"
    return [(wire.parse_header(m), m) for m in messages]


class FakeSwitch:
    """Drives a channel through the handshake and keeps the clock."""

    def __init__(self, **options: float) -> None:
        self.now = 100.0
        self.channel = OpenFlowChannel(self.now, **options)
        self.out = parse_out(self.channel.data_to_send())

    def feed(self, data: bytes, advance: float = 0.0) -> list[object]:
        self.now += advance
        events = self.channel.receive(data, self.now)
        self.out = parse_out(self.channel.data_to_send())
        return events

    def tick(self, advance: float) -> list[object]:
        self.now += advance
        events = self.channel.handle_timer(self.now)
        self.out = parse_out(self.channel.data_to_send())
        return events

    def connect(self, bitmap: set[int] | None = None, version: int = 6) -> Ready:
        """HELLO then FEATURES_REPLY; returns the Ready event."""
        self.feed(hello(version, {4, 5, 6} if bitmap is None else bitmap))
        ((header, _),) = self.out
        assert header.type == FEATURES_REQUEST
        (ready,) = self.feed(features_reply(header.version, header.xid))
        assert isinstance(ready, Ready)
        return ready


@pytest.fixture
def sw() -> FakeSwitch:
    return FakeSwitch(echo_interval=5.0, echo_timeout=10.0, handshake_timeout=3.0)


@pytest.fixture
def ready(sw: FakeSwitch) -> FakeSwitch:
    sw.connect()
    return sw


# ---------------------------------------------------------------- negotiation


def test_first_bytes_are_a_hello_offering_13_and_14(sw: FakeSwitch) -> None:
    ((header, data),) = sw.out
    assert (header.type, header.version) == (HELLO, OFP14)
    assert wire.decode_hello(data) == {OFP13, OFP14}


def test_highest_common_version_is_chosen_and_features_give_ready(sw: FakeSwitch) -> None:
    event = sw.connect(bitmap={4, 5, 6})
    assert event.version == OFP14
    assert (event.features.datapath_id, event.features.n_tables) == (DPID, 254)
    assert sw.channel.state is State.READY


@pytest.mark.parametrize(
    ("bitmap", "version", "expected"),
    [({4}, 6, OFP13), ({1, 4}, 4, OFP13), (None, 6, OFP14), (None, 4, OFP13), ({5, 6}, 6, OFP14)],
)
def test_negotiation(bitmap: set[int] | None, version: int, expected: int) -> None:
    sw = FakeSwitch()
    sw.feed(hello(version, bitmap) if bitmap else msg(version, HELLO, 1))
    ((header, _),) = sw.out
    assert (header.type, header.version) == (FEATURES_REQUEST, expected)


@pytest.mark.parametrize("offer", [hello(6, {1, 6}), msg(1, HELLO, 1), hello(4, {2, 3})])
def test_no_common_version_sends_hello_failed_and_closes(offer: bytes) -> None:
    sw = FakeSwitch()
    events = sw.feed(offer)
    assert [type(e) for e in events] == [Closed]
    assert "no common OpenFlow version" in events[0].reason
    ((header, data),) = sw.out
    assert header.type == ERROR
    assert struct.unpack_from("!HH", data, 8) == (0, 0)  # HELLO_FAILED / INCOMPATIBLE
    assert sw.channel.state is State.CLOSED
    assert sw.channel.next_timer() is None


def test_anything_but_hello_first_closes(sw: FakeSwitch) -> None:
    (event,) = sw.feed(msg(4, ECHO_REQUEST, 1))
    assert isinstance(event, Closed) and "expected HELLO" in event.reason


def test_switch_refusing_our_hello_closes(sw: FakeSwitch) -> None:
    sw.feed(hello())
    (event,) = sw.feed(error(OFP14, 0, 0, 0, b"no"))
    assert isinstance(event, Closed) and "refused" in event.reason


def test_handshake_timeout(sw: FakeSwitch) -> None:
    assert sw.channel.next_timer() == sw.now + 3.0
    sw.feed(hello())
    assert sw.tick(2.9) == []
    (event,) = sw.tick(0.2)
    assert isinstance(event, Closed) and event.reason == "handshake timeout"


@pytest.mark.parametrize("stage", ["hello", "features", "ready"])
def test_the_timer_never_asks_to_run_again_at_once(stage: str) -> None:
    """Whatever the state, one timer run moves the deadline forward (no busy loop)."""
    sw = FakeSwitch(echo_interval=1.0, echo_timeout=2.0, handshake_timeout=10.0)
    if stage == "features":
        sw.feed(hello())
    elif stage == "ready":
        sw.connect()
    runs = 0
    while (deadline := sw.channel.next_timer()) is not None:
        assert deadline > sw.now or runs == 0
        sw.tick(deadline - sw.now)
        runs += 1
    assert runs <= 3  # probe, verdict (and the handshake deadline at most)
    assert sw.channel.close_reason is not None


def test_messages_split_across_reads_byte_by_byte(sw: FakeSwitch) -> None:
    data = hello() + features_reply(OFP14, 1)
    events = []
    for i in range(len(data)):
        events += sw.feed(data[i : i + 1])
    assert [type(e) for e in events] == [Ready]


# ---------------------------------------------------------------- echo and liveness


def test_echo_requests_from_the_switch_are_answered(ready: FakeSwitch) -> None:
    assert ready.feed(msg(OFP14, ECHO_REQUEST, 0x1234, b"ping")) == []
    ((header, data),) = ready.out
    assert (header.type, header.xid, data[8:]) == (ECHO_REPLY, 0x1234, b"ping")


def test_idle_switch_is_probed_then_declared_dead(ready: FakeSwitch) -> None:
    start = ready.now
    assert ready.channel.next_timer() == start + 5.0
    assert ready.tick(4.9) == [] and ready.out == []
    assert ready.tick(0.1) == []
    ((probe, _),) = ready.out
    assert probe.type == ECHO_REQUEST
    assert ready.channel.next_timer() == start + 15.0
    assert ready.tick(5.0) == [] and ready.out == []  # one probe per idle period
    (event,) = ready.tick(5.0)
    assert isinstance(event, Closed) and event.reason.startswith("echo timeout")


def test_echo_reply_keeps_the_switch_alive(ready: FakeSwitch) -> None:
    ready.tick(5.0)
    ((probe, _),) = ready.out
    assert ready.feed(msg(OFP14, ECHO_REPLY, probe.xid, b"vlcp"), advance=1.0) == []
    assert ready.channel.next_timer() == ready.now + 5.0
    assert ready.tick(9.9) == [] and ready.channel.state is State.READY


def test_a_trickle_of_partial_bytes_does_not_count_as_alive(ready: FakeSwitch) -> None:
    partial = msg(OFP14, ECHO_REPLY, 9, b"x" * 100)
    for i in range(14):
        assert ready.feed(partial[i : i + 1], advance=1.0) == []
        ready.tick(0.0)
    (event,) = ready.tick(1.0)
    assert isinstance(event, Closed) and "echo timeout" in event.reason


# ---------------------------------------------------------------- requests and replies


def test_replies_are_matched_by_xid_in_any_order(ready: FakeSwitch) -> None:
    c = ready.channel.codec
    assert c is not None
    first = ready.channel.request(c.barrier_request())
    second = ready.channel.request(c.echo_request(b"two"))
    assert first != second and 0 not in (first, second)
    events = ready.feed(msg(OFP14, ECHO_REPLY, second, b"two") + msg(OFP14, BARRIER_REPLY, first))
    assert [(type(e), e.xid) for e in events] == [(Reply, second), (Reply, first)]
    assert events[0].messages[0].data == b"two"


def test_multipart_reply_is_collected_until_more_is_clear(ready: FakeSwitch) -> None:
    c = ready.channel.codec
    assert c is not None
    xid = ready.channel.request(c.flow_stats_request())
    assert ready.feed(flow_stats_part(OFP14, xid, 1, more=True)) == []
    assert ready.feed(flow_stats_part(OFP14, xid, 2, more=True)) == []
    (reply,) = ready.feed(flow_stats_part(OFP14, xid, 3, more=False))
    assert isinstance(reply, Reply) and reply.xid == xid
    assert [f.cookie for f in c.decode_flow_stats(reply.messages)] == [1, 2, 3]


def test_an_endless_multipart_reply_fails_at_the_limit() -> None:
    sw = FakeSwitch(echo_interval=5.0, echo_timeout=10.0, max_reply_bytes=1000)
    sw.connect()
    c = sw.channel.codec
    assert c is not None
    xid = sw.channel.request(c.flow_stats_request())
    events: list[object] = []
    for cookie in range(20):
        events += sw.feed(flow_stats_part(OFP14, xid, cookie, more=True))
    (failed,) = events
    assert isinstance(failed, RequestFailed) and isinstance(failed.error, ReplyTooLarge)
    assert sw.feed(flow_stats_part(OFP14, xid, 99, more=False)) == []  # the rest is swallowed
    late = sw.feed(flow_stats_part(OFP14, xid, 100, more=False))
    assert [type(e) for e in late] == [Unsolicited]


def test_error_for_a_request_fails_it_with_names(ready: FakeSwitch) -> None:
    c = ready.channel.codec
    assert c is not None
    xid = ready.channel.request(c.role_request("master"))
    (failed,) = ready.feed(error(OFP14, xid, 11, 1))
    assert isinstance(failed, RequestFailed) and isinstance(failed.error, SwitchError)
    assert (failed.error.type_name, failed.error.code_name) == (
        "OFPET_ROLE_REQUEST_FAILED",
        "OFPRRFC_UNSUP",
    )


def test_barrier_confirms_earlier_failure_only_requests(ready: FakeSwitch) -> None:
    c = ready.channel.codec
    assert c is not None
    good = ready.channel.request(c.add_flow(Flow.make(0, 1, {}, [output(1)])))
    bad = ready.channel.request(c.add_flow(Flow.make(0, 2, {}, [output(2)])))
    barrier = ready.channel.request(c.barrier_request())
    after = ready.channel.request(c.add_flow(Flow.make(0, 3, {}, [output(3)])))
    assert {wire.reply_kind(m) for _, m in ready.out} <= {"none", "one"}
    events = ready.feed(error(OFP14, bad, 5, 0) + msg(OFP14, BARRIER_REPLY, barrier))
    assert [(type(e).__name__, e.xid) for e in events] == [
        ("RequestFailed", bad),
        ("Reply", barrier),
        ("Reply", good),
    ]
    assert events[2].messages == ()
    # the flow-mod sent after the barrier waits for the next one
    barrier2 = ready.channel.request(c.barrier_request())
    events = ready.feed(msg(OFP14, BARRIER_REPLY, barrier2))
    assert [e.xid for e in events] == [barrier2, after]


def test_untracked_error_and_unknown_reply_are_reported_not_fatal(ready: FakeSwitch) -> None:
    c = ready.channel.codec
    assert c is not None
    xid = ready.channel.send(c.packet_out(b"\0" * 60, [output(1)]))
    (event,) = ready.feed(error(OFP14, xid, 1, 8))
    assert isinstance(event, ErrorReceived) and event.error.xid == xid
    (event,) = ready.feed(msg(OFP14, BARRIER_REPLY, 4242))
    assert isinstance(event, Unsolicited)
    assert ready.channel.state is State.READY


def test_cancelled_request_reply_becomes_unsolicited(ready: FakeSwitch) -> None:
    c = ready.channel.codec
    assert c is not None
    xid = ready.channel.request(c.barrier_request())
    ready.channel.cancel(xid)
    (event,) = ready.feed(msg(OFP14, BARRIER_REPLY, xid))
    assert isinstance(event, Unsolicited)


def test_xids_wrap_around_skipping_zero_and_pending(ready: FakeSwitch) -> None:
    c = ready.channel.codec
    assert c is not None
    ready.channel._next_xid = 0xFFFFFFFE
    a = ready.channel.request(c.barrier_request())
    ready.channel._next_xid = 0xFFFFFFFE  # collide on purpose
    b = ready.channel.request(c.barrier_request())
    d = ready.channel.request(c.barrier_request())
    assert (a, b, d) == (0xFFFFFFFE, 0xFFFFFFFF, 1)


def test_packet_in_is_decoded(ready: FakeSwitch) -> None:
    frame = bytes(range(60))
    (event,) = ready.feed(packet_in(OFP14, 3, frame))
    assert isinstance(event, PacketIn)
    assert (event.in_port, event.table_id, event.cookie, event.data) == (3, 3, 0x77, frame)


def test_packet_in_before_ready_is_dropped(sw: FakeSwitch) -> None:
    sw.feed(hello())
    assert sw.feed(packet_in(OFP14, 1, b"\0" * 60)) == []
    assert sw.channel.state is State.FEATURES


# ---------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xff" * 64,  # nonsense header: version 0xff
        struct.pack("!BBHI", OFP14, 2, 4, 1),  # length below the header
        msg(OFP13, ECHO_REQUEST, 1),  # the wrong version after negotiation
        msg(OFP14, 200, 1),  # unknown type
        msg(OFP14, PACKET_IN, 1, b"\0" * 4),  # truncated body
        hello(),  # a second HELLO
    ],
    ids=["junk", "short-length", "wrong-version", "unknown-type", "truncated", "hello-again"],
)
def test_malformed_input_closes_and_fails_pending(ready: FakeSwitch, garbage: bytes) -> None:
    c = ready.channel.codec
    assert c is not None
    xid = ready.channel.request(c.barrier_request())
    events = ready.feed(garbage)
    assert [type(e) for e in events] == [RequestFailed, Closed]
    assert isinstance(events[0].error, ConnectionClosed) and events[0].xid == xid
    assert events[1].reason.startswith("protocol error")
    assert ready.feed(msg(OFP14, BARRIER_REPLY, xid)) == []  # closed for good
    with pytest.raises(ConnectionClosed):
        ready.channel.request(c.barrier_request())


def test_a_flood_of_echo_requests_is_bounded_by_the_output_limit() -> None:
    sw = FakeSwitch(echo_interval=5.0, echo_timeout=10.0, max_output_bytes=10_000)
    sw.connect()
    flood = msg(OFP14, ECHO_REQUEST, 1, b"x" * 100) * 100
    events = sw.channel.receive(flood, sw.now)  # nobody drains data_to_send()
    assert [type(e) for e in events] == [Closed]
    assert "unsent" in events[0].reason


def test_close_is_idempotent_and_stops_timers(ready: FakeSwitch) -> None:
    assert [type(e) for e in ready.channel.close("bye")] == [Closed]
    assert ready.channel.close("again") == []
    assert ready.channel.next_timer() is None
    assert ready.tick(100.0) == []


def test_a_switch_working_through_our_requests_is_busy_not_dead(ready: FakeSwitch) -> None:
    """The echo probe queues behind our batch: silence while the switch owes us answers is
    work (the requests' own timeouts bound it); once it owes nothing, silence is death."""
    c = ready.channel.codec
    assert c is not None
    barrier = ready.channel.request(c.barrier_request())
    assert ready.channel.busy
    assert ready.tick(5.0) == []  # the probe goes out behind the barrier
    assert ready.tick(30.0) == [] and ready.channel.state is State.READY
    ready.channel.cancel(barrier)  # its caller gave up (request timeout)
    assert not ready.channel.busy
    (event,) = ready.tick(0.0)
    assert isinstance(event, Closed) and event.reason.startswith("echo timeout")
