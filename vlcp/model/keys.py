"""The model's names for what it stores: object kinds, ids, and an object's key.

Every key prefix and key builder lives in `vlcp.layout` (the contract with the
controllers); this module maps the API's kinds onto it. See docs/model.md.
"""

from __future__ import annotations

import re

from vlcp import layout

from .errors import Invalid

ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._:@+=~-]{0,63}$"
"""Ids become one store key segment, so they use only the characters keys allow."""
_ID_RE = re.compile(ID_PATTERN[1:-1])

# REST kind names, their store prefixes and how messages call them.
PHYSNETS = "physical-networks"
PHYSPORTS = "physical-ports"
LOGNETS = "logical-networks"
LPORTS = "logical-ports"
SUBNETS = "subnets"
ROUTERS = "routers"
ROUTER_INTERFACES = "router-interfaces"
KINDS = (PHYSNETS, PHYSPORTS, LOGNETS, LPORTS, SUBNETS, ROUTERS)

PREFIX = {
    PHYSNETS: layout.PHYSNET,
    PHYSPORTS: layout.PHYSPORT,
    LOGNETS: layout.LOGNET,
    LPORTS: layout.LPORT,
    SUBNETS: layout.SUBNET,
    ROUTERS: layout.ROUTER,
}
NOUN = {
    PHYSNETS: "physical network",
    PHYSPORTS: "physical port",
    LOGNETS: "logical network",
    LPORTS: "logical port",
    SUBNETS: "subnet",
    ROUTERS: "router",
}


def check_id(value: object, field: str = "id") -> str:
    """`value` if it is a valid id, else `Invalid` saying what an id may contain."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise Invalid(
            f"{field}: {value!r} is not a valid id (1 to 64 letters, digits or ._:@+=~-, "
            "the first one a letter, digit or _)",
            field=field,
        )
    return value


def object_key(kind: str, id: str) -> str:
    return f"{PREFIX[kind]}{id}"


def kind_prefix(kind: str) -> str:
    """The store prefix holding every object of `kind` (and nothing else)."""
    return PREFIX[kind]


NATIVE_TAG = 0
"""The tag key a native network's one logical network holds (at most one per network)."""

ROUTER_OWNER = "router:"
"""Prefix of a subnet-ip value held by a router interface rather than a port."""
