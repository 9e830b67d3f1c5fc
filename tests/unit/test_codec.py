"""Key shapes and value encoding: the first line of defence for every backend."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vlcp.store.codec import check_key, check_prefix, decode_value, encode_value
from vlcp.store.errors import InvalidKey, InvalidValue

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
).filter(lambda v: v is not None)


@given(json_values)
def test_values_round_trip_and_encode_canonically(value: object) -> None:
    data = encode_value(value)
    assert decode_value(data) == value
    assert encode_value(decode_value(data)) == data


def test_dict_order_does_not_change_the_bytes() -> None:
    assert encode_value({"b": 1, "a": 2}) == encode_value({"a": 2, "b": 1}) == b'{"a":2,"b":1}'


@pytest.mark.parametrize("key", ["a", "lport/123", "net/a.b/c:d@e+f=g~h-i", "x_y/_z"])
def test_good_keys(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("a/", "segments"),
        ("a b", "segments"),
        ("_x", "reserved"),
        (b"a", "string"),
        ("k" * 401, "longer"),
    ],
)
def test_bad_keys_say_why(key: object, reason: str) -> None:
    with pytest.raises(InvalidKey, match=reason):
        check_key(key)


def test_reserved_keys_are_allowed_internally() -> None:
    assert check_key("_sessions/abc", internal=True) == "_sessions/abc"


@pytest.mark.parametrize("prefix", ["", "a/", "a/b/"])
def test_good_prefixes(prefix: str) -> None:
    assert check_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["a", "/", "a//", 3])
def test_bad_prefixes(prefix: object) -> None:
    with pytest.raises(InvalidKey):
        check_prefix(prefix)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "delete"),
        (float("nan"), "JSON"),
        ([1, float("-inf")], "JSON"),
        ({1: 2}, "strings"),
        ({"a": {1, 2}}, "serialisable"),
        ("v" * 300_000, "limit"),
    ],
)
def test_bad_values_say_why(value: object, reason: str) -> None:
    with pytest.raises(InvalidValue, match=reason):
        encode_value(value)
