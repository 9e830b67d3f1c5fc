"""`vlcp.typed`, the settings layer of the controller half: what it accepts, what it
refuses and how it names each problem (its callers, config and module settings, rely on
exactly these rules)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from vlcp.typed import Invalid, Typed, dump, from_text, json_schema, setting, unicast_mac, validate


@dataclass(frozen=True)
class Inner(Typed):
    """A nested table."""

    port: int = setting(6653, ge=1, le=65535)
    mac: str | None = setting(None, check=unicast_mac)


@dataclass(frozen=True)
class Outer(Typed):
    name: str = setting(pattern=r"^[a-z]+$")
    ttl: float = setting(10.0, gt=0)
    enabled: bool = True
    inner: Inner = field(default_factory=Inner)


def problems(data: object) -> list[tuple[tuple[str, ...], str]]:
    with pytest.raises(Invalid) as refused:
        validate(Outer, data)
    return refused.value.problems


def test_values_are_kept_converted_only_where_lossless() -> None:
    made = validate(Outer, {"name": "a", "ttl": 3, "inner": {"mac": "02:AA:00:00:00:01"}})
    assert made.ttl == 3.0 and isinstance(made.ttl, float)
    assert made.inner == Inner(port=6653, mac="02:aa:00:00:00:01")  # the check's value kept
    assert dump(made) == {
        "name": "a",
        "ttl": 3.0,
        "enabled": True,
        "inner": {"port": 6653, "mac": "02:aa:00:00:00:01"},
    }


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"name": "a", "enabled": 1}, [(("enabled",), "should be a boolean, not 1")]),
        (
            {"name": "a", "inner": {"port": True}},
            [(("inner", "port"), "should be an integer, not True")],
        ),
        (
            {"name": "a", "inner": {"port": "80"}},
            [(("inner", "port"), "should be an integer, not '80'")],
        ),
        (
            {"name": "a", "inner": {"port": 0}},
            [(("inner", "port"), "should be greater than or equal to 1, not 0")],
        ),
        ({"name": "a", "ttl": 0}, [(("ttl",), "should be greater than 0, not 0.0")]),
        ({"name": "A"}, [(("name",), "'A' should match the pattern '^[a-z]+$'")]),
        (
            {"name": "a", "inner": {"mac": "01:00:00:00:00:01"}},
            [(("inner", "mac"), "'01:00:00:00:00:01' is not a unicast MAC address")],
        ),
        ({"name": "a", "colour": "red"}, [(("colour",), "unknown setting")]),
        ({}, [(("name",), "required")]),
        ([1], [((), "should be an object")]),
    ],
)
def test_each_refusal_names_where_and_why(data: object, expected: list) -> None:
    assert problems(data) == expected


def test_numbers_must_be_finite() -> None:
    for bad in (math.nan, math.inf):
        ((where, why),) = problems({"name": "a", "ttl": bad})
        assert where == ("ttl",) and "finite" in why


def test_text_from_the_environment_becomes_typed_data() -> None:
    assert from_text(bool, "Yes") is True and from_text(bool, "off") is False
    assert from_text(int, "42") == 42 and from_text(float, "0.5") == 0.5
    assert from_text(Inner, '{"port": 80}') == {"port": 80}
    assert from_text(str | None, "x") == "x"
    with pytest.raises(Invalid, match="'maybe' is not a boolean"):
        from_text(bool, "maybe")
    with pytest.raises(Invalid, match="'ten' is not an integer"):
        from_text(int, "ten")


def test_the_schema_says_what_validation_checks() -> None:
    schema = json_schema(Outer)
    assert schema["required"] == ["name"] and schema["additionalProperties"] is False
    assert schema["properties"]["ttl"] == {"type": "number", "exclusiveMinimum": 0, "default": 10.0}
    assert schema["properties"]["name"] == {"type": "string", "pattern": "^[a-z]+$"}
    inner = json_schema(Inner)
    assert inner["description"] == "A nested table."
    assert inner["properties"]["port"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 65535,
        "default": 6653,
    }
    assert inner["properties"]["mac"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
