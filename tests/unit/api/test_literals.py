"""Backquoted literals: the values users mean are parsed; hostile text is refused clearly."""

from __future__ import annotations

import time

import pytest

from vlcp.api.literals import MAX_CHARS, MAX_DEPTH, LiteralError, parse_literal, parse_value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("`10`", 10),
        ("`-3`", -3),
        ("`+2.5`", 2.5),
        ("`[1, 2]`", [1, 2]),
        ("`(1, 2)`", [1, 2]),
        ('`{"a": 1}`', {"a": 1}),
        ("`{'a': [1, {'b': None}]}`", {"a": [1, {"b": None}]}),
        ("`'text'`", "text"),
        ("`True`", True),
        ("`null`", None),
        ('`{"x": true, "y": false}`', {"x": True, "y": False}),
        ("` [[100, 200]] `", [[100, 200]]),
        ("`[]`", []),
    ],
)
def test_literals_parse_to_json_values(text: str, value: object) -> None:
    assert parse_literal(text) == value


def test_text_without_backquotes_stays_text() -> None:
    assert parse_value("10") == "10"
    assert parse_value("`") == "`"
    assert parse_value("a`b`") == "a`b`"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("`__import__('os').system('true')`", "function call"),
        ("`open('/etc/passwd')`", "function call"),
        ("`os`", "a name"),
        ("`().__class__`", "an attribute"),
        ("`1 + 1`", "an operator"),
        ("`2 ** 1000000`", "an operator"),
        ("`--1`", "sign"),
        ("`{1, 2}`", "a set"),
        ("`b'x'`", "bytes"),
        ("`1j`", "complex"),
        ("`1e999`", "infinite"),
        ("`{1: 2}`", "keys must be strings"),
        ("`[x for x in ()]`", "ListComp"),
        ("`lambda: 0`", "a lambda"),
        ("`{**{}}`", "unpacking"),
        ("``", "empty"),
        ("`[1,`", "not a valid literal"),
        ("`" + "9" * 5000 + "`", "not a valid literal"),
        ("`f'{1}'`", "f-string"),
    ],
)
def test_hostile_literals_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(LiteralError, match=reason):
        parse_literal(text)


def test_deep_nesting_is_refused_before_evaluation() -> None:
    ok = "`" + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "`"
    assert parse_literal(ok) is not None
    too_deep = "`" + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "`"
    with pytest.raises(LiteralError, match="nested too deeply"):
        parse_literal(too_deep)
    for opener, closer in (("[", "]"), ("(", ")"), ("{'a':", "}")):
        hostile = "`" + opener * 20000 + closer * 20000 + "`"
        with pytest.raises(LiteralError):
            parse_literal(hostile[:MAX_CHARS])


def test_huge_literals_are_refused_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(LiteralError, match="too long"):
        parse_literal("`[" + "1," * 10_000_000 + "]`")
    with pytest.raises(LiteralError, match="too many elements"):
        parse_literal("`[" + "1," * 30000 + "]`")
    with pytest.raises(LiteralError):
        parse_literal("`" + "-" * 60000 + "1`")
    assert time.monotonic() - started < 2.0
