"""Reading the original VLCP API's parameters from a query string, a form or a JSON body.

The original API took the same parameters from any of the three, and typed values as
backquoted literals; existing scripts rely on both. Values without backquotes are text,
which is then typed by the model's field types where that is unambiguous (`mtu=1500` is
the integer 1500), because the original API also accepted such text.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from .bodies import field_types
from .literals import LiteralError, is_literal, parse_value

MAX_PARAMS = 1000


class ParamError(ValueError):
    """A parameter cannot be read; the message names it (answered with a 400)."""


async def read_params(request: Request) -> dict[str, Any]:
    """All parameters of a request, literals parsed; a parameter given twice is an error."""
    params: dict[str, Any] = {}
    _merge(params, request.query_params.multi_items(), parse=True)
    body = await request.body()
    if not body.strip():
        return params
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ParamError(f"malformed JSON body: {exc}") from None
        if not isinstance(document, dict):
            raise ParamError("a JSON body must be an object of parameters")
        _merge(params, document.items(), parse=False)
    elif content_type in ("application/x-www-form-urlencoded", ""):
        try:
            pairs = parse_qsl(
                body.decode(),
                keep_blank_values=True,
                strict_parsing=False,
                max_num_fields=MAX_PARAMS,
            )
        except (UnicodeDecodeError, ValueError) as exc:
            raise ParamError(f"malformed form body: {exc}") from None
        _merge(params, pairs, parse=True)
    else:
        raise ParamError(
            f"unsupported body type {content_type!r}: send application/json or "
            "application/x-www-form-urlencoded"
        )
    return params


def _merge(params: dict[str, Any], pairs: Any, *, parse: bool) -> None:
    for name, value in pairs:
        if not isinstance(name, str) or not name:
            raise ParamError("parameter names must be non-empty text")
        if name in params:
            raise ParamError(f"parameter {name!r} is given more than once")
        if len(params) >= MAX_PARAMS:
            raise ParamError(f"too many parameters (at most {MAX_PARAMS})")
        params[name] = _parse(name, value) if parse or _backquoted(value) else value


def _backquoted(value: object) -> bool:
    return isinstance(value, str) and is_literal(value)


def _parse(name: str, value: str) -> Any:
    try:
        return parse_value(value)
    except LiteralError as exc:
        raise ParamError(f"parameter {name!r}: {exc}") from None


def typed(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Text values made into numbers/booleans/JSON where the field cannot be text."""
    types = field_types(kind)
    if types is None:
        return fields
    return {name: _typed(types.get(name), value) for name, value in fields.items()}


def _typed(wanted: set[str] | None, value: Any) -> Any:
    if not isinstance(value, str) or wanted is None or "string" in wanted:
        return value
    if "boolean" in wanted and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if "null" in wanted and value in ("", "null", "None"):
        return None
    for convert in (int, float) if wanted & {"integer", "number"} else ():
        try:
            return convert(value)
        except ValueError:
            pass
    if wanted & {"array", "object"}:
        try:
            return json.loads(value)
        except ValueError:
            pass
    return value
