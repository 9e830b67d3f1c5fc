"""OVSDB JSON-RPC framing and message rules, fed bytes directly (no sockets, no clock)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vlcp.southbound.ovsdb.errors import ProtocolError
from vlcp.southbound.ovsdb.protocol import (
    JsonRpcProtocol,
    JsonStreamParser,
    Liveness,
    Notification,
    ProbeAction,
    Request,
    Response,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=15,
)
objects = st.dictionaries(st.text(), json_values, max_size=4)


def feed_in_pieces(parser: JsonStreamParser, data: bytes, cuts: list[int]) -> list[object]:
    """Feed ``data`` split at the given offsets; collect every object produced."""
    out: list[object] = []
    last = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        out += parser.feed(data[last:cut])
        last = cut
    return out


# ---------------------------------------------------------------- framing


@given(st.lists(objects, min_size=1, max_size=5), st.lists(st.integers(0, 10_000), max_size=8))
def test_concatenated_objects_split_anywhere_come_out_whole(
    messages: list[dict[str, object]], cuts: list[int]
) -> None:
    wire = b"".join(json.dumps(m, ensure_ascii=False).encode() for m in messages)
    parser = JsonStreamParser()
    assert feed_in_pieces(parser, wire, cuts) == messages
    assert parser.buffered == 0


def test_every_single_byte_split_of_tricky_strings() -> None:
    """Braces, quotes and backslashes inside strings, and a multi-byte UTF-8 character."""
    messages = [
        {"s": 'a}b{c]"d[', "e": "\\", "f": '\\"}'},
        {"u": "é€😀", "n": [1, [2, {"x": "}"}]]},
    ]
    wire = b"".join(json.dumps(m, ensure_ascii=False).encode() for m in messages)
    parser = JsonStreamParser()
    out: list[object] = []
    for i in range(len(wire)):
        out += parser.feed(wire[i : i + 1])
    assert out == messages


def test_a_long_string_arriving_in_small_pieces() -> None:
    value = ("x" * 1000 + '\\"{[') * 1000
    wire = json.dumps({"big": value}).encode()
    parser = JsonStreamParser()
    out: list[object] = []
    for i in range(0, len(wire), 4096):
        out += parser.feed(wire[i : i + 4096])
    assert out == [{"big": value}]


def test_whitespace_between_messages_is_ignored() -> None:
    parser = JsonStreamParser()
    assert parser.feed(b' \n{"a":1}\r\n\t {"b":2}  ') == [{"a": 1}, {"b": 2}]
    assert parser.feed(b"\n") == []


@pytest.mark.parametrize(
    "wire",
    [
        b"garbage",
        b"[1,2]",  # JSON-RPC messages are objects
        b'"string"',
        b"{]",
        b'{"a": NaN}',
        b'{"a": tru}',
        b'{"a": "\xff\xfe"}',  # not UTF-8
        b'{"a":1}}',
    ],
)
def test_malformed_input_is_a_protocol_error(wire: bytes) -> None:
    parser = JsonStreamParser()
    with pytest.raises(ProtocolError):
        parser.feed(wire)
    with pytest.raises(ProtocolError):  # the stream cannot be trusted any more
        parser.feed(b'{"a":1}')


def test_message_size_is_bounded_even_before_it_completes() -> None:
    parser = JsonStreamParser(max_message_size=100)
    parser.feed(b'{"a": "' + b"x" * 50)
    with pytest.raises(ProtocolError, match="larger than 100"):
        parser.feed(b"x" * 60)


def test_messages_up_to_the_limit_pass() -> None:
    message = b'{"a":"' + b"x" * 90 + b'"}'
    parser = JsonStreamParser(max_message_size=len(message))
    assert parser.feed(message * 3) == [{"a": "x" * 90}] * 3


def test_nesting_depth_is_bounded() -> None:
    parser = JsonStreamParser(max_depth=10)
    with pytest.raises(ProtocolError, match="deeper"):
        parser.feed(b'{"a":' + b"[" * 20)


def test_deep_nesting_within_the_limit_parses() -> None:
    parser = JsonStreamParser()
    assert parser.feed(b'{"a":' + b"[" * 100 + b"]" * 100 + b"}") == [{"a": _nest(99)}]


def _nest(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


# ---------------------------------------------------------------- JSON-RPC


def test_requests_get_fresh_ids_and_responses_are_matched() -> None:
    proto = JsonRpcProtocol()
    id1, data1 = proto.request("echo", ["x"])
    id2, _ = proto.request("transact", ["db"])
    assert id1 != id2
    assert json.loads(data1) == {"method": "echo", "params": ["x"], "id": id1}
    reply = {"id": id2, "result": [{}], "error": None}
    assert proto.receive(json.dumps(reply).encode()) == [Response(id2, [{}], None)]
    assert set(proto.pending) == {id1}


def test_a_response_to_an_unknown_or_answered_id_is_a_protocol_error() -> None:
    proto = JsonRpcProtocol()
    request_id, _ = proto.request("echo", [])
    reply = json.dumps({"id": request_id, "result": [], "error": None}).encode()
    proto.receive(reply)
    with pytest.raises(ProtocolError, match="unknown request id"):
        JsonRpcProtocol().receive(reply)
    proto2 = JsonRpcProtocol()
    proto2.request("echo", [])
    with pytest.raises(ProtocolError, match="foreign id"):
        proto2.receive(b'{"id":"echo","result":[],"error":null}')


def test_requests_and_notifications_from_the_server() -> None:
    proto = JsonRpcProtocol()
    wire = (
        b'{"id":"echo","method":"echo","params":[]}'
        b'{"id":null,"method":"update2","params":["m",{}]}'
        b'{"method":"locked","params":["lk"]}'
    )
    assert proto.receive(wire) == [
        Request("echo", "echo", []),
        Notification("update2", ["m", {}]),
        Notification("locked", ["lk"]),
    ]


@pytest.mark.parametrize(
    "message",
    [
        {"method": 3, "params": []},
        {"method": "update", "params": {"not": "a list"}},
        {"id": 1},
    ],
)
def test_invalid_messages_are_protocol_errors(message: dict[str, object]) -> None:
    with pytest.raises(ProtocolError):
        JsonRpcProtocol().receive(json.dumps(message).encode())


def test_replies_we_send_echo_the_peer_id() -> None:
    proto = JsonRpcProtocol()
    assert json.loads(proto.response("echo", ["x"])) == {
        "result": ["x"],
        "error": None,
        "id": "echo",
    }
    assert json.loads(proto.error_response(7, "unknown method"))["error"] == "unknown method"


# ---------------------------------------------------------------- inactivity probe


def test_probe_sends_an_echo_after_silence_then_declares_death() -> None:
    live = Liveness(5.0, now=100.0)
    assert live.poll(104.9) is ProbeAction.NONE
    assert live.deadline() == 105.0
    assert live.poll(105.0) is ProbeAction.SEND_ECHO
    assert live.deadline() == 110.0
    assert live.poll(109.0) is ProbeAction.NONE
    assert live.poll(110.0) is ProbeAction.DEAD


def test_any_traffic_resets_the_probe() -> None:
    live = Liveness(5.0, now=0.0)
    assert live.poll(5.0) is ProbeAction.SEND_ECHO
    live.received(6.0)  # the echo reply, or anything else
    assert live.poll(10.9) is ProbeAction.NONE
    assert live.poll(11.0) is ProbeAction.SEND_ECHO


def test_probe_can_be_disabled() -> None:
    live = Liveness(None, now=0.0)
    assert live.deadline() is None
    assert live.poll(1e9) is ProbeAction.NONE
    with pytest.raises(ValueError):
        Liveness(0, now=0.0)
