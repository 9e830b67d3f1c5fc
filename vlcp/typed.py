"""Typed settings checked without pydantic: frozen dataclasses whose fields carry bounds,
patterns and checks, built from JSON-like data with every problem named by its path.

Why not pydantic here: every `vlcp run` on every server loads its configuration and its
pipeline modules' settings, and importing pydantic with pydantic-settings cost each agent
process some 23 MiB of its ~50 (issue 16). The controller half needs only a few scalar
types, so this small layer serves it (`vlcp.config`, the built-in modules' `Settings`);
the REST API keeps pydantic for its own models. A third-party module may still give a
pydantic model as its settings: `validate`, `dump` and `json_schema` take either.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")
Location = tuple[str, ...]


class Invalid(ValueError):
    """Data a settings class refuses: each problem with where it is (`store.session_ttl`)."""

    def __init__(self, problems: list[tuple[Location, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{'.'.join(loc) or '(settings)'}: {m}" for loc, m in problems))


def setting(
    default: Any = dataclasses.MISSING,
    *,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
    description: str | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    pattern: str | None = None,
    check: Callable[[Any], Any] | None = None,
) -> Any:
    """A field of a `Typed` class: its default, the bounds of a number, the pattern of a
    text, and `check` (value -> the value kept, or ValueError with why)."""
    rules = {"description": description, "ge": ge, "gt": gt, "le": le, "pattern": pattern}
    metadata = {k: v for k, v in rules.items() if v is not None}
    if check is not None:
        metadata["check"] = check
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Typed:
    """A frozen (so hashable) settings class whose values are checked when it is made:
    subclasses are dataclasses themselves (`@dataclass(frozen=True)`)."""

    def __post_init__(self) -> None:
        problems: list[tuple[Location, str]] = []
        for field, kind in _fields(type(self)):
            try:
                value = _convert(kind, getattr(self, field.name), field.metadata)
            except Invalid as exc:
                problems += [((field.name, *loc), msg) for loc, msg in exc.problems]
            else:
                object.__setattr__(self, field.name, value)
        if problems:
            raise Invalid(problems)


def validate(cls: type[T], data: Any) -> T:
    """`data` (a mapping, as JSON or TOML give it) as an instance of `cls`; a pydantic
    model class is given to pydantic (whose ValidationError is a ValueError too)."""
    model_validate = getattr(cls, "model_validate", None)
    if model_validate is not None:
        try:
            return typing.cast(T, model_validate(data))
        except ValueError as exc:  # pydantic's ValidationError: its problems, as ours
            errors = getattr(exc, "errors", None)
            if errors is None:
                raise
            problems = [(tuple(str(p) for p in e["loc"]), e["msg"]) for e in errors()]
            raise Invalid(problems) from exc
    if not isinstance(data, Mapping):
        raise Invalid([((), "should be an object")])
    fields = dict(_fields(cls))
    names = {f.name for f in fields}
    problems = [((str(k),), "unknown setting") for k in data if k not in names]
    problems += [
        ((f.name,), "required")
        for f in fields
        if f.name not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if problems:
        raise Invalid(problems)
    return cls(**data)


def dump(value: Any) -> dict[str, Any]:
    """A settings instance as JSON-ready data (nested ones as objects)."""
    model_dump = getattr(value, "model_dump", None)
    if model_dump is not None:
        return typing.cast(dict[str, Any], model_dump(mode="json"))
    return dataclasses.asdict(value)


def json_schema(cls: type) -> dict[str, Any]:
    """The JSON schema of a settings class, which module reports publish."""
    model_json_schema = getattr(cls, "model_json_schema", None)
    if model_json_schema is not None:
        return typing.cast(dict[str, Any], model_json_schema())
    properties = {}
    for field, kind in _fields(cls):
        schema = _schema_of(kind)
        bounds = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum"}
        schema |= {bounds.get(k, k): v for k, v in field.metadata.items() if k != "check"}
        if field.default is not dataclasses.MISSING:
            schema["default"] = dump(field.default) if _is_typed(kind) else field.default
        properties[field.name] = schema
    required = [
        f.name
        for f, _ in _fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    schema: dict[str, Any] = {
        "title": cls.__name__,
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if cls.__doc__:
        schema["description"] = cls.__doc__
    return schema | ({"required": required} if required else {})


def from_text(kind: Any, text: str) -> Any:
    """A value given as text (an environment variable) as the data of type `kind`:
    numbers and booleans parsed, a nested settings object as JSON, text kept."""
    kind = _optional_of(kind) or kind
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise Invalid([((), f"{text!r} is not a boolean (true or false)")])
    try:
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if _is_typed(kind):
            return json.loads(text)
    except ValueError:
        raise Invalid([((), f"{text!r} is not {_article(kind)}")]) from None
    return text


_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def unicast_mac(value: str) -> str:
    """A `check`: a unicast MAC address, in lower case."""
    mac = value.lower()
    if not _MAC.match(mac) or int(mac[:2], 16) & 1:
        raise ValueError(f"{value!r} is not a unicast MAC address")
    return mac


def fields_of(cls: type) -> dict[str, Any]:
    """Field name -> its type, of a `Typed` class."""
    return {f.name: kind for f, kind in _fields(cls)}


@functools.cache
def _fields(cls: type) -> tuple[tuple[dataclasses.Field[Any], Any], ...]:
    """(field, its type) of a dataclass, its annotations resolved once per class."""
    hints = typing.get_type_hints(cls)
    return tuple((f, hints[f.name]) for f in dataclasses.fields(cls))


def _is_typed(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, Typed)


def _optional_of(kind: Any) -> Any:
    """T of `T | None`, else None."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(kind)) == 2:
            return args[0]
    return None


_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _article(kind: Any) -> str:
    """'an integer', 'a number', 'an object': a type as a refusal names it."""
    name = _NAMES.get(kind, "object")
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _schema_of(kind: Any) -> dict[str, Any]:
    if (inner := _optional_of(kind)) is not None:
        return {"anyOf": [_schema_of(inner), {"type": "null"}]}
    if _is_typed(kind):
        return {"type": "object"}
    if kind not in _NAMES:
        raise TypeError(f"{kind!r}: settings fields are str, int, float, bool, Typed or None")
    return {"type": _NAMES[kind]}


def _convert(kind: Any, value: Any, rules: Mapping[str, Any]) -> Any:
    """`value` checked as `kind` under `rules`, as kept (raises Invalid)."""
    if (inner := _optional_of(kind)) is not None:
        return None if value is None else _convert(inner, value, rules)
    if _is_typed(kind):
        return value if isinstance(value, kind) else validate(kind, value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Invalid([((), f"should be {_article(kind)}, not {value!r}")])
    if kind is float and not math.isfinite(value):  # NaN would pass every bound
        raise Invalid([((), f"should be a finite number, not {value!r}")])
    problems = [
        message
        for rule, broken, message in (
            ("ge", lambda bound: value < bound, "greater than or equal to"),
            ("gt", lambda bound: value <= bound, "greater than"),
            ("le", lambda bound: value > bound, "less than or equal to"),
        )
        if rule in rules and broken(rules[rule])
        for message in [f"should be {message} {rules[rule]}, not {value!r}"]
    ]
    if "pattern" in rules and not re.search(rules["pattern"], value):
        problems.append(f"{value!r} should match the pattern {rules['pattern']!r}")
    if not problems and "check" in rules:
        try:
            value = rules["check"](value)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise Invalid([((), p) for p in problems])
    return value
