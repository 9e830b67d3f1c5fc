"""Every refused input says which field is wrong and why, with the right status."""

from __future__ import annotations

import pytest

from vlcp.model import Conflict, Invalid, Model, ModelError, NotFound

CASES = [
    # physical networks
    (
        "physical-networks",
        {"type": "vlan"},
        Invalid,
        "vlanrange",
        "vlanrange: is required for vlan",
    ),
    (
        "physical-networks",
        {"type": "vlan", "vlanrange": [[1, 2], [3, 4095]]},
        Invalid,
        "vlanrange[1]",
        "vlanrange[1]: 4095 is not in 1..4094",
    ),
    (
        "physical-networks",
        {"type": "vlan", "vlanrange": [[10, 5]]},
        Invalid,
        "vlanrange[0]",
        "vlanrange[0]: start 10 is after end 5",
    ),
    (
        "physical-networks",
        {"type": "vlan", "vlanrange": [[1, 10], [5, 20]]},
        Invalid,
        "vlanrange[1]",
        "vlanrange[1]: [5, 20] overlaps vlanrange[0]: [1, 10]",
    ),
    (
        "physical-networks",
        {"type": "vlan", "vlanrange": [[1, 2, 3]]},
        Invalid,
        "vlanrange[0]",
        "list should have at most 2 items",
    ),
    (
        "physical-networks",
        {"type": "vlan", "vlanrange": []},
        Invalid,
        "vlanrange",
        "needs at least one",
    ),
    (
        "physical-networks",
        {"type": "vxlan", "vnirange": [[1, 1 << 24]]},
        Invalid,
        "vnirange[0]",
        "vnirange[0]: 16777216 is not in 1..16777215",
    ),
    (
        "physical-networks",
        {"type": "vxlan", "vnirange": [[1, 9]], "vlanrange": [[1, 2]]},
        Invalid,
        "vlanrange",
        "only vlan networks have a vlanrange; this is a vxlan network",
    ),
    (
        "physical-networks",
        {"type": "native", "vnirange": [[1, 2]]},
        Invalid,
        "vnirange",
        "only vxlan networks",
    ),
    ("physical-networks", {"type": "gre"}, Invalid, "type", "type: input should be"),
    (
        "physical-networks",
        {"type": "vlan", "vlanrange": [["1", 2]]},
        Invalid,
        "vlanrange[0][0]",
        "valid integer",
    ),
    ("physical-networks", {"id": "a/b", "type": "local"}, Invalid, "id", "id: string should"),
    ("physical-networks", {"type": "local", "Rack": 1}, Invalid, "Rack", "Rack: unknown field"),
    (
        "physical-networks",
        {"type": "local", "status": 1},
        Invalid,
        "status",
        "is a field of the model",
    ),
    ("physical-networks", [1], Invalid, "body", "expected a JSON object"),
    # physical ports
    (
        "physical-ports",
        {"physicalnetwork": "nope", "name": "eth0"},
        Invalid,
        "physicalnetwork",
        "physicalnetwork: physical network nope does not exist",
    ),
    (
        "physical-ports",
        {"physicalnetwork": "p1", "name": "eth 0"},
        Invalid,
        "name",
        "name: 'eth 0' must be",
    ),
    ("physical-ports", {"physicalnetwork": "p1", "name": "%"}, Invalid, "name", "name:"),
    (
        "physical-ports",
        {"physicalnetwork": "p1", "name": "e", "systemid": "a~b"},
        Invalid,
        "systemid",
        "or '%' for any",
    ),
    (
        "physical-ports",
        {"physicalnetwork": "p1", "name": "e", "color": "red"},
        Invalid,
        "color",
        "unknown field",
    ),
    (
        "physical-ports",
        {"physicalnetwork": "loc", "name": "eth0"},
        Conflict,
        "physicalnetwork",
        "physical network loc is a local network, which has no physical ports",
    ),
    # logical networks
    (
        "logical-networks",
        {"physicalnetwork": "p1", "vlanid": 99},
        Invalid,
        "vlanid",
        "vlanid: 99 is not in the vlanrange [[100, 109]] of physical network p1",
    ),
    (
        "logical-networks",
        {"physicalnetwork": "p1", "vni": 5},
        Invalid,
        "vni",
        "vni: physical network p1 is a vlan network; set vlanid instead",
    ),
    (
        "logical-networks",
        {"physicalnetwork": "p1", "vlanid": 100},
        Conflict,
        "vlanid",
        "vlanid: VLAN id 100 of physical network p1 is already used by logical network n1",
    ),
    (
        "logical-networks",
        {"physicalnetwork": "p1", "mtu": 20},
        Invalid,
        "mtu",
        "mtu: 20 is not in 68..65535",
    ),
    (
        "logical-networks",
        {"physicalnetwork": "p1", "dns_nameservers": ["8.8.8.8", "x"]},
        Invalid,
        "dns_nameservers[1]",
        "dns_nameservers[1]: 'x' is not an IP address",
    ),
    (
        "logical-networks",
        {"physicalnetwork": "p1", "domain_name": "-bad.example"},
        Invalid,
        "domain_name",
        "is not a host name",
    ),
    (
        "logical-networks",
        {"physicalnetwork": "p1", "extra_dhcp_options": {"255": "x"}},
        Invalid,
        "extra_dhcp_options.255",
        "255 is not in 1..254",
    ),
    (
        "logical-networks",
        {"physicalnetwork": "p1", "extra_dhcp_options": {"x1": 1}},
        Invalid,
        "extra_dhcp_options.x1",
        "option codes are decimal numbers",
    ),
    (
        "logical-networks",
        {"physicalnetwork": "p1", "lease_time": 0},
        Invalid,
        "lease_time",
        "lease_time: 0 is not in",
    ),
    (
        "logical-networks",
        {"id": "n1", "physicalnetwork": "p1"},
        Conflict,
        "id",
        "logical network n1 already exists",
    ),
    ("logical-networks", {"physicalnetwork": "p1", "mtu": "1500"}, Invalid, "mtu", "valid integer"),
    # subnets
    (
        "subnets",
        {"logicalnetwork": "n1", "cidr": "10.1.0.5/24"},
        Invalid,
        "cidr",
        "cidr: 10.1.0.5/24 has host bits set; the network is 10.1.0.0/24",
    ),
    (
        "subnets",
        {"logicalnetwork": "n1", "cidr": "10.1.0.0"},
        Invalid,
        "cidr",
        "not in CIDR notation",
    ),
    (
        "subnets",
        {"logicalnetwork": "n1", "cidr": "10.0.0.128/25"},
        Conflict,
        "cidr",
        "cidr: 10.0.0.128/25 overlaps subnet s1 (10.0.0.0/24) of logical network n1",
    ),
    (
        "subnets",
        {"logicalnetwork": "n1", "cidr": "10.1.0.0/24", "gateway": "10.2.0.1"},
        Invalid,
        "gateway",
        "gateway: 10.2.0.1 is not in subnet",
    ),
    (
        "subnets",
        {"logicalnetwork": "n1", "cidr": "10.1.0.0/24", "gateway": "10.1.0.255"},
        Invalid,
        "gateway",
        "is the network or broadcast address",
    ),
    (
        "subnets",
        {
            "logicalnetwork": "n1",
            "cidr": "10.1.0.0/24",
            "allocated_start": "10.1.0.9",
            "allocated_end": "10.1.0.5",
        },
        Invalid,
        "allocated_end",
        "allocated_end: 10.1.0.5 is before allocated_start 10.1.0.9",
    ),
    (
        "subnets",
        {"logicalnetwork": "n1", "cidr": "10.1.0.0/24", "gateway": "fd00::1"},
        Invalid,
        "gateway",
        "not an IPv4 address",
    ),
    (
        "subnets",
        {"logicalnetwork": "n1", "cidr": "10.1.0.0/24", "host_routes": [["0/0", "x"]]},
        Invalid,
        "host_routes[0][0]",
        "host_routes[0][0]: '0/0' is not a network",
    ),
    (
        "subnets",
        {"logicalnetwork": "n1", "cidr": "10.1.0.0/24", "isexternal": "yes"},
        Invalid,
        "isexternal",
        "valid boolean",
    ),
    (
        "subnets",
        {
            "logicalnetwork": "n1",
            "cidr": "10.1.0.0/24",
            "pre_host_config": [{"systemid": "h1", "local_address": "x"}],
        },
        Invalid,
        "pre_host_config[0].local_address",
        "is not an IP address",
    ),
    (
        "subnets",
        {"logicalnetwork": "nx", "cidr": "10.1.0.0/24"},
        Invalid,
        "logicalnetwork",
        "logicalnetwork: logical network nx does not exist",
    ),
    ("subnets", {"logicalnetwork": "n1"}, Invalid, "cidr", "cidr: is required"),
    # logical ports
    (
        "logical-ports",
        {"logicalnetwork": "n1", "mac_address": "01:00:00:00:00:01"},
        Invalid,
        "mac_address",
        "mac_address: 01:00:00:00:00:01 is a multicast address",
    ),
    (
        "logical-ports",
        {"logicalnetwork": "n1", "mac_address": "02:00:00:00:00"},
        Invalid,
        "mac_address",
        "is not a MAC address",
    ),
    (
        "logical-ports",
        {"logicalnetwork": "n1", "subnet": "s1", "ip_address": "10.0.1.5"},
        Invalid,
        "ip_address",
        "ip_address: 10.0.1.5 is not in subnet s1 (10.0.0.0/24)",
    ),
    (
        "logical-ports",
        {"logicalnetwork": "n1", "ip_address": "10.9.0.5"},
        Invalid,
        "ip_address",
        "ip_address: 10.9.0.5 is in no subnet of logical network n1",
    ),
    (
        "logical-ports",
        {"logicalnetwork": "n1", "ip_address": "10.0.0.1"},
        Conflict,
        "ip_address",
        "ip_address: 10.0.0.1 is the gateway of subnet s1",
    ),
    (
        "logical-ports",
        {"logicalnetwork": "n1", "ip_address": "10.0.0.0"},
        Invalid,
        "ip_address",
        "is the network or broadcast address of subnet s1",
    ),
    (
        "logical-ports",
        {"logicalnetwork": "n1", "ip_address": "10.0.0.50"},
        Conflict,
        "ip_address",
        "ip_address: 10.0.0.50 of subnet s1 is already used by logical port lp1",
    ),
    (
        "logical-ports",
        {"logicalnetwork": "n1", "mac_address": "02:00:00:00:00:01"},
        Conflict,
        "mac_address",
        "mac_address: 02:00:00:00:00:01 is already used by logical port lp1 in logical network n1",
    ),
    (
        "logical-ports",
        {"logicalnetwork": "n1", "subnet": "s2"},
        Invalid,
        "subnet",
        "subnet: subnet s2 belongs to logical network n2, not n1",
    ),
    (
        "logical-ports",
        {"logicalnetwork": "n1", "hostname": "a_b"},
        Invalid,
        "hostname",
        "is not a host name",
    ),
    (
        "logical-ports",
        {"logicalnetwork": "n1", "Bad-Name": 1},
        Invalid,
        "Bad-Name",
        "unknown field (extra attributes are named like",
    ),
    (
        "logical-ports",
        {"logicalnetwork": "n1", "extra": float("nan")},
        Invalid,
        "extra",
        "not a JSON value",
    ),
    # routers
    (
        "routers",
        {"routes": [["10.0.0.0/8", "fd00::1"]]},
        Invalid,
        "routes[0][1]",
        "routes[0][1]: fd00::1 is not an IPv4 address",
    ),
    ("routers", {"routes": [["10.0.0.0/8"]]}, Invalid, "routes[0]", "at least 2 items"),
]


@pytest.fixture
async def world(net: Model) -> Model:
    await net.create("physical-networks", {"id": "loc", "type": "local"})
    await net.create("logical-networks", {"id": "n2", "physicalnetwork": "loc"})
    await net.create("subnets", {"id": "s2", "logicalnetwork": "n2", "cidr": "10.5.0.0/24"})
    await net.create(
        "logical-ports",
        {
            "id": "lp1",
            "logicalnetwork": "n1",
            "ip_address": "10.0.0.50",
            "mac_address": "02:00:00:00:00:01",
        },
    )
    return net


@pytest.mark.parametrize(("kind", "body", "error", "field", "message"), CASES)
async def test_refused_with_field_and_reason(
    world: Model, kind: str, body: object, error: type[ModelError], field: str, message: str
) -> None:
    before = (await world.store.read_prefix("")).values
    with pytest.raises(error) as info:
        await world.create(kind, body)  # type: ignore[arg-type]
    assert type(info.value) is error
    assert info.value.field == field, str(info.value)
    assert message in info.value.message
    assert (await world.store.read_prefix("")).values == before


async def test_missing_object_is_not_found(net: Model) -> None:
    with pytest.raises(NotFound, match="logical port nope does not exist"):
        await net.get("logical-ports", "nope")
    with pytest.raises(NotFound, match="subnet nope does not exist"):
        await net.update("subnets", "nope", {"mtu": 1400})
    with pytest.raises(NotFound, match="router nope does not exist"):
        await net.delete("routers", "nope")
    with pytest.raises(NotFound, match="unknown kind"):
        await net.list("widgets")


async def test_statuses() -> None:
    assert (Invalid("x").status, NotFound("x").status, Conflict("x").status) == (422, 404, 409)
