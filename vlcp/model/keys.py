"""The model's ids, and the values its keys and documents hold besides object ids.

Every key prefix and key builder lives in `vlcp.layout` (the contract with the
controllers); each kind's prefix is in its `Kind` (`kind.py`). See docs/model.md.
"""

from __future__ import annotations

import re

from .errors import Invalid

ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._:@+=~-]{0,63}$"
"""Ids become one store key segment, so they use only the characters keys allow."""
_ID_RE = re.compile(ID_PATTERN[1:-1])


def check_id(value: object, field: str = "id") -> str:
    """`value` if it is a valid id, else `Invalid` saying what an id may contain."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise Invalid(
            f"{field}: {value!r} is not a valid id (1 to 64 letters, digits or ._:@+=~-, "
            "the first one a letter, digit or _)",
            field=field,
        )
    return value


NATIVE_TAG = 0
"""The tag key a native network's one logical network holds (at most one per network)."""

ROUTER_OWNER = "router:"
"""Prefix of a subnet-ip value held by a router interface rather than a port."""
