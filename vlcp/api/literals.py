"""Safe parsing of the original VLCP API's backquoted literals (`` `[1, 2]` ``, `` `{"a": 1}` ``).

Users of the original API write typed values into query strings and forms by wrapping a
Python literal in backquotes. The text comes from the network, so it is parsed with
`ast.literal_eval` only after the syntax tree has been checked: bounded length, nesting
depth and node count (a hostile value cannot exhaust the parser or memory), only literal
node types (no names, calls, attributes or operators besides a sign), and a result that
JSON can carry (no sets, bytes, complex numbers, infinities or non-string keys), because
the value ends up in the JSON store.
"""

from __future__ import annotations

import ast
import math
from typing import Any

MAX_CHARS = 65536
"""Longest literal accepted, in characters (the whole backquoted text)."""
MAX_DEPTH = 32
"""Deepest nesting of lists and dicts accepted."""
MAX_NODES = 20000
"""Most syntax-tree nodes accepted (items, keys and values together)."""

_JSON_NAMES = {"true": True, "false": False, "null": None}
_CONTAINERS = (ast.List, ast.Tuple, ast.Dict)


class LiteralError(ValueError):
    """A backquoted value is not a safe literal; the message says why."""


def is_literal(text: str) -> bool:
    """Whether `text` is written as a literal: wrapped in backquotes."""
    return len(text) >= 2 and text.startswith("`") and text.endswith("`")


def parse_value(text: str) -> Any:
    """The value a parameter stands for: a parsed literal if backquoted, else the text."""
    return parse_literal(text) if is_literal(text) else text


def parse_literal(text: str) -> Any:
    """Parse a backquoted literal into a JSON-compatible value, or raise `LiteralError`."""
    if len(text) > MAX_CHARS:
        raise LiteralError(f"literal is too long ({len(text)} characters; at most {MAX_CHARS})")
    if not is_literal(text):
        raise LiteralError("a literal is written between backquotes, like `[1, 2]`")
    source = text[1:-1].strip()
    if not source:
        raise LiteralError("empty literal")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, SyntaxError) else str(exc) or type(exc).__name__
        raise LiteralError(f"not a valid literal: {reason}") from None
    _check(tree.body)
    try:
        value = ast.literal_eval(_json_names(tree.body))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise LiteralError(f"not a literal: {exc}") from None
    return _to_json(value, 0)


def _check(root: ast.AST) -> None:
    """Reject anything that is not a plain literal before evaluating it."""
    stack: list[tuple[ast.AST, int]] = [(root, 0)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise LiteralError(f"literal has too many elements (at most {MAX_NODES})")
        if isinstance(node, _CONTAINERS):
            if depth >= MAX_DEPTH:
                raise LiteralError(f"literal is nested too deeply (at most {MAX_DEPTH} levels)")
            children = [*node.keys, *node.values] if isinstance(node, ast.Dict) else node.elts
            for child in children:
                if child is None:  # `{**x}` leaves a None key
                    raise LiteralError("dict unpacking (**) is not a literal")
                stack.append((child, depth + 1))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            if not (isinstance(node.operand, ast.Constant) and _is_number(node.operand.value)):
                raise LiteralError("a sign (+/-) may only precede a number")
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, str | int | float | bool | type(None)):
                raise LiteralError(f"{type(node.value).__name__} values are not supported")
        elif isinstance(node, ast.Name) and node.id in _JSON_NAMES:
            pass
        else:
            raise LiteralError(f"{_describe(node)} is not allowed in a literal")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _describe(node: ast.AST) -> str:
    names = {
        ast.Call: "a function call",
        ast.Name: "a name",
        ast.Attribute: "an attribute",
        ast.BinOp: "an operator",
        ast.Set: "a set",
        ast.Subscript: "a subscript",
        ast.Lambda: "a lambda",
        ast.JoinedStr: "an f-string",
    }
    return names.get(type(node), f"an expression ({type(node).__name__})")


def _json_names(node: ast.expr) -> ast.expr:
    """Let JSON spellings `true`, `false` and `null` stand for their Python literals."""

    class Rewrite(ast.NodeTransformer):
        def visit_Name(self, name: ast.Name) -> ast.AST:
            return ast.copy_location(ast.Constant(_JSON_NAMES[name.id]), name)

    return Rewrite().visit(node)


def _to_json(value: Any, depth: int) -> Any:
    """Tuples become lists; anything JSON cannot carry is refused."""
    if isinstance(value, float) and not math.isfinite(value):
        raise LiteralError("infinite or NaN numbers are not supported")
    if isinstance(value, list | tuple):
        return [_to_json(item, depth + 1) for item in value]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise LiteralError("dict keys must be strings")
        return {key: _to_json(item, depth + 1) for key, item in value.items()}
    return value
