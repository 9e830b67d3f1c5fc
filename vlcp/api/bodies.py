"""What the API knows of each kind's fields, read from the model's pydantic classes.

The model owns the field definitions (each `Kind`'s create, update and stored classes,
`vlcp.model.kinds.SHAPES`). The API borrows their JSON schemas for two things only:
documenting request bodies in the OpenAPI document (so clients and schemathesis see the
real shape), and typing list filters given as query-string text (`?mtu=1500` must match
the integer 1500). Validation itself stays in the model. Without a class (router
interfaces are not updated), a body is documented as a plain JSON object.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

from pydantic import BaseModel

from vlcp.api_error import ApiError
from vlcp.model.kinds import KINDS, SHAPES

_MAX_INLINE_DEPTH = 16
_ACTIONS = ("create", "update", "")
"""The order of a kind's classes in `SHAPES`: create body, update body, stored object."""
REPORTED = {kind.name: kind.reported for kind in KINDS}
"""Fields the API reads beside the stored object rather than in it (a port's status, which
its server writes): a list's filters compare stored objects, so these cannot filter one."""


def _model_class(kind: str, action: str) -> type[BaseModel] | None:
    return SHAPES[kind][_ACTIONS.index(action)]


@cache
def kind_schema(kind: str, action: str) -> dict[str, Any] | None:
    """The JSON schema of `kind` ("create", "update", or "" for the stored object)."""
    model = _model_class(kind, action)
    if model is None:
        return None
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})
    return _inline(schema, defs, 0)


def extensible(kind: str) -> bool:
    """Whether objects of `kind` keep unknown fields as extra attributes."""
    model = _model_class(kind, "")
    return model is not None and model.model_config.get("extra") == "allow"


def _inline(node: Any, defs: dict[str, Any], depth: int) -> Any:
    """Replace `#/$defs/X` references by their definitions (the OpenAPI document has no $defs)."""
    if isinstance(node, list):
        return [_inline(item, defs, depth) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = defs.get(ref.removeprefix("#/$defs/"))
        if target is None or depth >= _MAX_INLINE_DEPTH:
            return {}
        return _inline(copy.deepcopy(target), defs, depth + 1)
    return {key: _inline(value, defs, depth) for key, value in node.items()}


def body_schema(kind: str, action: str) -> dict[str, Any]:
    """`openapi_extra` documenting the request body of a create or update of `kind`."""
    schema = kind_schema(kind, action) or {"type": "object", "additionalProperties": True}
    return {"requestBody": {"content": {"application/json": {"schema": schema}}, "required": True}}


@cache
def field_types(kind: str) -> dict[str, set[str]] | None:
    """JSON types of each field of the stored objects of `kind` (None when unknown)."""
    schema = kind_schema(kind, "")
    if schema is None:
        return None
    types: dict[str, set[str]] = {"id": {"string"}}
    for name, prop in (schema.get("properties") or {}).items():
        found: set[str] = set()
        for option in [prop, *prop.get("anyOf", []), *prop.get("oneOf", [])]:
            kind_type = option.get("type")
            if isinstance(kind_type, str):
                found.add(kind_type)
            elif isinstance(kind_type, list):
                found.update(kind_type)
            if "enum" in option or "const" in option:
                found.add("string")
        types[name] = found or {"string"}
    return types


def refuse_reported(kind: str, body: object, field_prefix: str = "") -> None:
    """A 422 for a create or update body that sets a field servers report (a port's status).

    The model refuses it too, as a name no extra attribute may take; this says why.
    """
    if not isinstance(body, dict):
        return
    for name in REPORTED.get(kind, ()):
        if name in body:
            field = f"{field_prefix}{name}"
            raise ApiError(
                422,
                f"{field}: is read only; the server binding the port reports it (read it with GET)",
                field,
            )


def filter_value(kind: str, name: str, text: str) -> object:
    """A query-string filter value typed like the field it filters, or a 400 naming it."""
    if name in REPORTED.get(kind, ()):
        raise ApiError(
            400,
            f"filter {name!r}: {kind} cannot be filtered by {name}, which their servers report "
            "beside the stored object (read it from the list's items)",
            name,
        )
    types = field_types(kind)
    if types is None:
        return text
    if name not in types and extensible(kind):
        return text
    if name not in types:
        known = ", ".join(sorted(types))
        raise ApiError(400, f"unknown filter {name!r}; {kind} can be filtered by {known}", name)
    wanted = types[name]
    if "null" in wanted and text == "null":
        return None
    if "boolean" in wanted and text in ("true", "false"):
        return text == "true"
    if "integer" in wanted:
        try:
            return int(text)
        except ValueError:
            if wanted <= {"integer", "null"}:
                raise ApiError(400, f"filter {name!r}: {text!r} is not an integer", name) from None
    if "number" in wanted:
        try:
            return float(text)
        except ValueError:
            if wanted <= {"number", "null"}:
                raise ApiError(400, f"filter {name!r}: {text!r} is not a number", name) from None
    if wanted & {"array", "object"} and "string" not in wanted:
        try:
            return json.loads(text)
        except ValueError:
            raise ApiError(400, f"filter {name!r}: {text!r} is not JSON", name) from None
    if wanted <= {"boolean", "null"}:
        raise ApiError(400, f"filter {name!r}: {text!r} is not true or false", name)
    return text


def filter_parameters(kind: str) -> list[dict[str, Any]]:
    """OpenAPI query parameters for the filterable fields of `kind` (none if unknown)."""
    types = field_types(kind)
    if types is None:
        return []
    return [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": f"only objects whose {name} equals this",
            "schema": {"type": "string"},
        }
        for name in sorted(types)
        if name not in ("limit", "after") and name not in REPORTED.get(kind, ())
    ]
