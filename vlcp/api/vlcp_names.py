"""The original VLCP API's calls and field names, and how they map onto the model.

Kept apart from the request handling so that the mapping documented in docs/api.md has
exactly one home in the code. A call is `<module>/<method>`; each names a kind, a verb,
and for plural forms the one list parameter that carries the objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from vlcp.model.kind import Kind
from vlcp.model.kinds import KINDS, ROUTER_INTERFACES

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


RENAMES: dict[str, dict[str, str]] = {}
"""VLCP name -> model name, per kind name; none today: every field has the same name in
both. A kind or field not listed keeps its name."""

PORT_KEY_DEFAULTS = {"vhost": "", "systemid": "%", "bridge": "%"}
"""Physical ports are named by `name` with these selectors (the original API's defaults)."""


def _build() -> dict[tuple[str, str], Call]:
    calls: list[Call] = [call for kind in KINDS for call in _crud(kind)]
    iface = ("router", "subnet", "id", "ip_address")
    calls += [
        Call("vrouterapi", "addrouterinterface", ROUTER_INTERFACES, "add", None, iface),
        Call("vrouterapi", "addrouterinterfaces", ROUTER_INTERFACES, "add", "interfaces"),
        Call(
            "vrouterapi",
            "removerouterinterface",
            ROUTER_INTERFACES,
            "remove",
            None,
            ("router", "subnet"),
        ),
        Call("vrouterapi", "removerouterinterfaces", ROUTER_INTERFACES, "remove", "interfaces"),
        Call("vrouterapi", "listrouterinterfaces", ROUTER_INTERFACES, "interfaces", None, ("id",)),
    ]
    return {(c.module, c.method): c for c in calls}


def _crud(kind: Kind) -> list[Call]:
    """The seven calls of one kind, named by its `VlcpNames`."""
    names = kind.vlcp
    module, one, many, plural = names.module, names.noun, f"{names.noun}s", names.plural
    parent = (kind.parent,) if kind.parent else ()
    lookup = tuple(dict.fromkeys((*names.key, *parent)))
    return [
        Call(module, f"create{one}", kind.name, "create", None, names.params),
        Call(module, f"create{many}", kind.name, "create", plural, (plural,)),
        Call(module, f"update{one}", kind.name, "update", None, names.params),
        Call(module, f"update{many}", kind.name, "update", plural, (plural,)),
        Call(module, f"delete{one}", kind.name, "delete", None, names.key),
        Call(module, f"delete{many}", kind.name, "delete", plural, (plural,)),
        Call(module, f"list{many}", kind.name, "list", None, lookup),
    ]


CALLS: dict[tuple[str, str], Call] = _build()
MANAGER = "manager"
"""The original module that loaded, unloaded and reloaded the controller's modules."""
VTEPCONTROLLER = "vtepcontroller"
"""The original module that bound hardware VTEP switch ports to logical networks."""
MODULES = ("viperflow", "vrouterapi", MANAGER, VTEPCONTROLLER)
"""Every original module served: their paths answer in the original API's shapes."""

ORIGINAL_MODULES: dict[str, str] = {
    "vlcp.service.sdn.ioprocessing.IOProcessing": "ingress",
    "vlcp.service.sdn.arpresponder.ARPResponder": "arp_responder",
    "vlcp.service.sdn.l2switch.L2Switch": "l2_forward",
    "vlcp.service.sdn.vxlancast.VXLANCast": "vxlan",
    "vlcp.service.sdn.plugins.networkvxlandriver.NetworkVxlanDriver": "vxlan",
    "vlcp.service.sdn.plugins.networkvlandriver.NetworkVlanDriver": "vlan",
    "vlcp.service.sdn.plugins.networknativedriver.NetworkNativeDriver": "native",
}
"""The original's module paths (as `manager.loadmodule` took them) -> the vlcp module doing
that function; the original's service names (the class name in lower case, as its
`activemodules` listed them) name the same module."""


def to_model(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """VLCP field names -> the model's."""
    renames = RENAMES.get(kind, {})
    return {renames.get(name, name): value for name, value in params.items()}


def from_model(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The model's field names -> VLCP's (fields the original API lacks keep their names)."""
    back = {model: vlcp for vlcp, model in RENAMES.get(kind, {}).items()}
    return {back.get(name, name): value for name, value in obj.items()}
