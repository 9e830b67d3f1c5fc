"""Key shapes and value encoding, checked before anything reaches a backend.

Every backend stores the same bytes for the same value (canonical JSON), and refuses the
same keys, so a program that works on the embedded store works on ZooKeeper too.
"""

from __future__ import annotations

import json
import math
import re
from sys import intern
from typing import Any

from .errors import InvalidKey, InvalidValue

MAX_KEY_BYTES = 400
MAX_VALUE_BYTES = 256 * 1024
"""One value; a transaction is bounded separately (see `limits`)."""

_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9._:@+=~-]*"
_KEY_RE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
RESERVED_FIRST_SEGMENT = "_"
"""Keys whose first segment starts with '_' belong to the store itself (sessions, owners)."""


def check_key(key: object, *, internal: bool = False) -> str:
    """Return `key` if it has the accepted shape, else raise `InvalidKey` saying why."""
    if not isinstance(key, str):
        raise InvalidKey(f"key must be a string, not {type(key).__name__}")
    if not key:
        raise InvalidKey("key must not be empty")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidKey(f"key {key[:40]!r}... is longer than {MAX_KEY_BYTES} bytes")
    if not _KEY_RE.fullmatch(key):
        raise InvalidKey(
            f"key {key!r} must be '/'-separated segments of letters, digits and ._:@+=~- "
            "(no empty segment, no leading or trailing '/')"
        )
    if not internal and key.startswith(RESERVED_FIRST_SEGMENT):
        raise InvalidKey(f"key {key!r}: keys starting with '_' are reserved for the store")
    return key


def check_prefix(prefix: object) -> str:
    """A prefix is '' (everything) or a valid key followed by '/'."""
    if prefix == "":
        return ""
    if not isinstance(prefix, str) or not prefix.endswith("/"):
        raise InvalidKey(f"prefix {prefix!r} must be '' or a key followed by '/'")
    check_key(prefix[:-1], internal=True)
    return prefix


def _reject_non_finite(value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidValue(f"value contains {value!r}, which JSON cannot represent")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidValue(f"object keys must be strings, not {type(key).__name__}")
            _reject_non_finite(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _reject_non_finite(item)


def encode_value(value: Any) -> bytes:
    """Canonical JSON bytes for `value`; `None` is not a value (it means 'absent')."""
    if value is None:
        raise InvalidValue("None is not a value; delete the key instead")
    _reject_non_finite(value)
    try:
        data = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidValue(f"value is not JSON-serialisable: {exc}") from None
    if len(data) > MAX_VALUE_BYTES:
        raise InvalidValue(f"value is {len(data)} bytes; the limit is {MAX_VALUE_BYTES}")
    return data


def _shared_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are the interned strings: an agent holds thousands of values
    with the same few keys, each decoded with copies of its own. (Not the values: most are
    unique, and interning them grows the interpreter's table of interned strings by more
    than the repeated ones save.)"""
    return {intern(k): v for k, v in pairs}


_DECODER = json.JSONDecoder(object_pairs_hook=_shared_keys)


def decode_value(data: bytes | None) -> Any:
    """The value stored as `data` (UTF-8 JSON, as `encode_value` writes), or None when the
    key is absent."""
    if data is None:
        return None
    return _DECODER.decode(data.decode())
