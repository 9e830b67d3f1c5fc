"""The shapes of the model's objects: what each kind accepts and what it returns.

Per kind: `<Kind>Create` (fields accepted on create; `id` optional, generated when absent),
`<Kind>Update` (every field optional; only the fields given change; null clears an optional
field or an extra attribute), and `<Kind>` (the stored and returned object). The models are
strict (no "5" for 5) and feed the API's OpenAPI document; what a value *means* (ranges,
addresses, references) is checked by the kind's module with messages naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .checks import EXTRA_NAME_PATTERN, MAX_ADDRESS_PAIRS
from .errors import Invalid
from .keys import ID_PATTERN

Id = Annotated[str, Field(pattern=ID_PATTERN, description="1-64 of [A-Za-z0-9._:@+=~-]")]
Range = Annotated[list[int], Field(min_length=2, max_length=2, description="[start, end]")]
Route = Annotated[list[str], Field(min_length=2, max_length=2, description="[cidr, nexthop]")]
DhcpOptions = Annotated[
    dict[str, Any], Field(description='extra DHCP options: {"<code 1..254>": value}')
]
NetworkType = Literal["vlan", "vxlan", "native", "local"]

_EXTRAS_DOC = f"Unknown fields named like {EXTRA_NAME_PATTERN} are kept as extra attributes."


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class _Extensible(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


# -- physical networks ------------------------------------------------------------------


class PhysicalNetworkCreate(_Extensible):
    __doc__ = f"A physical network: how logical networks are carried. {_EXTRAS_DOC}"
    id: Id | None = None
    type: NetworkType = "vlan"
    vlanrange: list[Range] | None = Field(None, description="vlan: VLAN ids to allocate")
    vnirange: list[Range] | None = Field(None, description="vxlan: VNIs to allocate")


class PhysicalNetworkUpdate(_Extensible):
    __doc__ = f"Changes to a physical network (type cannot change). {_EXTRAS_DOC}"
    type: NetworkType | None = None
    vlanrange: list[Range] | None = None
    vnirange: list[Range] | None = None


class PhysicalNetwork(_Extensible):
    id: Id
    type: NetworkType
    vlanrange: list[Range] | None = None
    vnirange: list[Range] | None = None


# -- physical ports ---------------------------------------------------------------------


class PhysicalPortCreate(_Strict):
    """The OVS port carrying a physical network on the servers its selectors match."""

    id: Id | None = None
    physicalnetwork: Id
    name: str = Field(description="OVS port name")
    vhost: str = Field("", description="controller vhost ('' for the default)")
    systemid: str = Field("%", description="OVS system-id of the server, or '%' for any")
    bridge: str = Field("%", description="bridge name, or '%' for any")


class PhysicalPortUpdate(_Strict):
    physicalnetwork: Id | None = None
    name: str | None = None
    vhost: str | None = None
    systemid: str | None = None
    bridge: str | None = None


class PhysicalPort(_Strict):
    id: Id
    physicalnetwork: Id
    name: str
    vhost: str
    systemid: str
    bridge: str


# -- logical networks -------------------------------------------------------------------


class _DhcpFields(BaseModel):
    mtu: int | None = None
    dns_nameservers: list[str] | None = None
    domain_name: str | None = None
    ntp_servers: list[str] | None = None
    lease_time: int | None = Field(None, description="DHCP lease time in seconds")
    extra_dhcp_options: DhcpOptions | None = None


class LogicalNetworkCreate(_DhcpFields, _Extensible):
    __doc__ = f"A logical (tenant) network on a physical network. {_EXTRAS_DOC}"
    id: Id | None = None
    physicalnetwork: Id
    vlanid: int | None = Field(None, description="vlan: allocated when absent")
    vni: int | None = Field(None, description="vxlan: allocated when absent")


class LogicalNetworkUpdate(_DhcpFields, _Extensible):
    __doc__ = f"Changes to a logical network. {_EXTRAS_DOC}"
    vlanid: int | None = None
    vni: int | None = None


class LogicalNetwork(_DhcpFields, _Extensible):
    id: Id
    physicalnetwork: Id
    vlanid: int | None = None
    vni: int | None = None


# -- subnets ----------------------------------------------------------------------------


class PreHostConfig(_Strict):
    """Per-server settings of a subnet (most specific selector wins)."""

    systemid: str = "%"
    bridge: str = "%"
    vhost: str = ""
    cidr: str | None = None
    local_address: str | None = None
    gateway: str | None = None


class _SubnetFields(_DhcpFields):
    gateway: str | None = None
    allocated_start: str | None = Field(None, description="first address of the pool")
    allocated_end: str | None = Field(None, description="last address of the pool")
    host_routes: list[Route] | None = None
    isexternal: bool | None = None
    pre_host_config: list[PreHostConfig] | None = None


class SubnetCreate(_SubnetFields, _Strict):
    """An IP subnet of a logical network; the pool defaults to every host address."""

    id: Id | None = None
    logicalnetwork: Id
    cidr: str


class SubnetUpdate(_SubnetFields, _Strict):
    cidr: str | None = None


class Subnet(_SubnetFields, _Strict):
    id: Id
    logicalnetwork: Id
    cidr: str


# -- logical ports ----------------------------------------------------------------------


class AddressPair(_Strict):
    """An address a port may send from besides its own, and the MAC it sends it from."""

    ip_address: str = Field(description="an address (10.0.0.9) or a network (10.0.8.0/24)")
    mac_address: str | None = Field(None, description="the port's own MAC when absent")


class _PortFields(BaseModel):
    subnet: Id | None = None
    mac_address: str | None = Field(None, description="generated when absent")
    ip_address: str | None = Field(None, description="first free in the pool when absent")
    hostname: str | None = None
    extra_dhcp_options: DhcpOptions | None = None
    allowed_address_pairs: list[AddressPair] | None = Field(
        None,
        description=f"at most {MAX_ADDRESS_PAIRS} more sources the port may send from "
        "(anti-spoofing drops any other source address)",
    )


class LogicalPortCreate(_PortFields, _Extensible):
    __doc__ = f"An endpoint; its id is the OVS interface's external_ids:iface-id. {_EXTRAS_DOC}"
    id: Id | None = None
    logicalnetwork: Id


class LogicalPortUpdate(_PortFields, _Extensible):
    __doc__ = f"Changes to a logical port. {_EXTRAS_DOC}"


class PortStatus(_Strict):
    """Written by the server that binds the port."""

    state: Literal["up", "down"]
    host: str
    since: float


class LogicalPort(_PortFields, _Extensible):
    id: Id
    logicalnetwork: Id
    mac_address: str
    status: PortStatus | None = None


# -- routers ----------------------------------------------------------------------------


class RouterInterfaceCreate(_Strict):
    """Attach a router to a subnet; the address defaults to the subnet's gateway."""

    id: Id | None = None
    subnet: Id
    ip_address: str | None = None


class RouterInterface(_Strict):
    id: Id
    router: Id
    subnet: Id
    ip_address: str


class RouterCreate(_Extensible):
    __doc__ = f"A virtual router: static routes, and interfaces on subnets. {_EXTRAS_DOC}"

    id: Id | None = None
    routes: list[Route] | None = None


class RouterUpdate(_Extensible):
    __doc__ = f"Changes to a router's routes (interfaces have their own calls). {_EXTRAS_DOC}"
    routes: list[Route] | None = None


class Router(_Extensible):
    id: Id
    routes: list[Route]
    interfaces: list[RouterInterface]


# -- parsing ----------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def _where(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _describe(error: dict[str, Any]) -> str:
    if error["type"] == "missing":
        return "is required"
    if error["type"] == "extra_forbidden":
        return "unknown field"
    message = error["msg"][0].lower() + error["msg"][1:]
    return f"{message} (got {error['input']!r})"


def parse(model: type[M], body: object) -> M:
    """Validate `body` against `model`; every problem goes into one `Invalid` message."""
    if not isinstance(body, dict):
        raise Invalid(f"body: expected a JSON object, got {type(body).__name__}", field="body")
    try:
        return model.model_validate(body, strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        parts = [f"{_where(e['loc'])}: {_describe(e)}" for e in errors]
        raise Invalid("; ".join(parts), field=_where(errors[0]["loc"])) from None


def given(model: BaseModel) -> dict[str, Any]:
    """The declared fields the request actually set (null included), without extras."""
    extra = model.model_extra or {}
    return {
        name: getattr(model, name)
        for name in model.model_fields_set
        if name not in extra and name != "id"
    }


def extras(model: BaseModel) -> dict[str, Any]:
    return dict(model.model_extra or {})


def field_names(*models: type[BaseModel]) -> frozenset[str]:
    """Names an extra attribute may not take: the declared fields of `models`."""
    names: set[str] = set()
    for model in models:
        names |= set(model.model_fields)
    return frozenset(names)
