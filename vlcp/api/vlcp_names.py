"""The original VLCP API's calls and field names, and how they map onto the model.

Kept apart from the request handling so that the mapping documented in docs/api.md has
exactly one home in the code. A call is `<module>/<method>`; each names a kind, a verb,
and for plural forms the one list parameter that carries the objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Verb = Literal["create", "update", "delete", "list", "add", "remove", "interfaces"]


@dataclass(frozen=True)
class Call:
    """One method of the original API."""

    module: str
    method: str
    kind: str
    verb: Verb
    plural: str | None = None  # the list parameter of a plural form
    params: tuple[str, ...] = ()  # documented parameters (others pass through as attributes)


PARENT = {
    "physical-ports": "physicalnetwork",
    "logical-networks": "physicalnetwork",
    "logical-ports": "logicalnetwork",
    "subnets": "logicalnetwork",
}
"""The parent reference of each kind, by its VLCP name (list calls filter by it)."""

# VLCP name -> model name, per kind; names not listed are the same in both.
RENAMES: dict[str, dict[str, str]] = {
    "physical-networks": {},
    "physical-ports": {},
    "logical-networks": {},
    "logical-ports": {},
    "subnets": {},
    "routers": {},
    "router-interfaces": {},
}

PORT_KEY_DEFAULTS = {"vhost": "", "systemid": "%", "bridge": "%"}
"""Physical ports are named by `name` with these selectors (the original API's defaults)."""

_PARAMS = {
    "physical-networks": ("id", "type", "vlanrange", "vnirange"),
    "physical-ports": ("physicalnetwork", "name", "vhost", "systemid", "bridge"),
    "logical-networks": (
        "physicalnetwork",
        "id",
        "vni",
        "vlanid",
        "mtu",
        "dns_nameservers",
        "domain_name",
        "ntp_servers",
        "lease_time",
        "extra_dhcp_options",
    ),
    "logical-ports": (
        "logicalnetwork",
        "id",
        "subnet",
        "mac_address",
        "ip_address",
        "hostname",
        "extra_dhcp_options",
        "allowed_address_pairs",
    ),
    "subnets": (
        "logicalnetwork",
        "cidr",
        "id",
        "gateway",
        "allocated_start",
        "allocated_end",
        "host_routes",
        "isexternal",
        "pre_host_config",
        "mtu",
        "dns_nameservers",
        "domain_name",
        "ntp_servers",
        "lease_time",
        "extra_dhcp_options",
    ),
    "routers": ("id", "routes"),
}

_VIPERFLOW = {
    "physicalnetwork": ("physical-networks", "networks"),
    "physicalport": ("physical-ports", "ports"),
    "logicalnetwork": ("logical-networks", "networks"),
    "logicalport": ("logical-ports", "ports"),
    "subnet": ("subnets", "subnets"),
}


def _build() -> dict[tuple[str, str], Call]:
    calls: list[Call] = []
    for noun, (kind, plural) in _VIPERFLOW.items():
        calls += _crud("viperflow", noun, kind, plural)
    calls += _crud("vrouterapi", "virtualrouter", "routers", "routers")
    iface = ("router", "subnet", "id", "ip_address")
    calls += [
        Call("vrouterapi", "addrouterinterface", "router-interfaces", "add", None, iface),
        Call("vrouterapi", "addrouterinterfaces", "router-interfaces", "add", "interfaces"),
        Call(
            "vrouterapi",
            "removerouterinterface",
            "router-interfaces",
            "remove",
            None,
            ("router", "subnet"),
        ),
        Call("vrouterapi", "removerouterinterfaces", "router-interfaces", "remove", "interfaces"),
        Call(
            "vrouterapi", "listrouterinterfaces", "router-interfaces", "interfaces", None, ("id",)
        ),
    ]
    return {(c.module, c.method): c for c in calls}


def _crud(module: str, noun: str, kind: str, plural: str) -> list[Call]:
    params = _PARAMS[kind]
    key = ("name", "vhost", "systemid", "bridge") if kind == "physical-ports" else ("id",)
    parent = (PARENT[kind],) if kind in PARENT else ()
    many = f"{noun}s"
    return [
        Call(module, f"create{noun}", kind, "create", None, params),
        Call(module, f"create{many}", kind, "create", plural, (plural,)),
        Call(module, f"update{noun}", kind, "update", None, params),
        Call(module, f"update{many}", kind, "update", plural, (plural,)),
        Call(module, f"delete{noun}", kind, "delete", None, key),
        Call(module, f"delete{many}", kind, "delete", plural, (plural,)),
        Call(module, f"list{many}", kind, "list", None, tuple(dict.fromkeys((*key, *parent)))),
    ]


CALLS: dict[tuple[str, str], Call] = _build()
MODULES = ("viperflow", "vrouterapi")


def to_model(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """VLCP field names -> the model's."""
    renames = RENAMES.get(kind, {})
    return {renames.get(name, name): value for name, value in params.items()}


def from_model(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The model's field names -> VLCP's (fields the original API lacks keep their names)."""
    back = {model: vlcp for vlcp, model in RENAMES.get(kind, {}).items()}
    return {back.get(name, name): value for name, value in obj.items()}
