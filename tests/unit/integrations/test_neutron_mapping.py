"""The Neutron driver's mapping without Neutron: ML2's dicts (as Neutron 29 hands them to a
mechanism driver) in, REST v1 bodies out. What reaches vlcp is tested end to end in
tests/e2e/neutron."""

from __future__ import annotations

import pytest

from vlcp.integrations.neutron.mapping import (
    NEUTRON_OWNED,
    Settings,
    Unsupported,
    check_port,
    check_subnet,
    logical_network,
    logical_network_changes,
    logical_port,
    port_changes,
    subnet,
    subnet_changes,
)

NET = "0b7c2f3e-5d4a-4f7e-9c41-3a1f0e2d9b10"
SUB = "5e0d9a61-2c4b-4d3e-8f1a-7b6c5d4e3f20"
PORT = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c30"
SETTINGS = Settings({"datacentre": "phys-dc"}, vxlan_physical_network="vx")


def segment(kind: str, physnet: str | None = None, tag: int | None = None) -> dict:
    return {"network_type": kind, "physical_network": physnet, "segmentation_id": tag}


@pytest.mark.parametrize(
    ("seg", "expected"),
    [
        (segment("vxlan", tag=42), {"physicalnetwork": "vx", "vni": 42}),
        (segment("vlan", "datacentre", 100), {"physicalnetwork": "phys-dc", "vlanid": 100}),
        (segment("vlan", "other", 7), {"physicalnetwork": "other", "vlanid": 7}),
        (segment("flat", "datacentre"), {"physicalnetwork": "phys-dc"}),
    ],
)
def test_networks_keep_their_id_segment_and_mtu(seg: dict, expected: dict):
    network = {"id": NET, "mtu": 1450, "name": "ignored"}
    body = logical_network(network, [seg], SETTINGS)
    assert body == {"id": NET, "mtu": 1450, NEUTRON_OWNED: True, **expected}


@pytest.mark.parametrize(
    ("segments", "words"),
    [
        ([segment("geneve", tag=5)], "not 'geneve'"),
        ([segment("gre", tag=5)], "not 'gre'"),
        ([segment("vxlan", tag=5), segment("vlan", "dc", 3)], "one segment, not 2"),
        ([], "one segment, not 0"),
    ],
)
def test_what_vlcp_cannot_carry_is_refused_with_why(segments: list, words: str):
    with pytest.raises(Unsupported, match=words):
        logical_network({"id": NET}, segments, SETTINGS)


def test_a_network_update_changes_or_clears_the_mtu():
    assert logical_network_changes({"mtu": 1400}) == {"mtu": 1400}
    assert logical_network_changes({"mtu": 0}) == {"mtu": None}


NEUTRON_SUBNET = {
    "id": SUB,
    "network_id": NET,
    "ip_version": 4,
    "cidr": "10.1.0.0/24",
    "gateway_ip": "10.1.0.1",
    "allocation_pools": [
        {"start": "10.1.0.100", "end": "10.1.0.200"},
        {"start": "10.1.0.20", "end": "10.1.0.50"},
    ],
    "dns_nameservers": ["198.51.100.53", "2001:db8::53"],
    "host_routes": [{"destination": "203.0.113.0/24", "nexthop": "10.1.0.254"}],
    "enable_dhcp": True,
}


def test_subnets_carry_gateway_pool_routes_and_ipv4_dns():
    assert subnet(NEUTRON_SUBNET) == {
        "id": SUB,
        "logicalnetwork": NET,
        "cidr": "10.1.0.0/24",
        "gateway": "10.1.0.1",
        "allocated_start": "10.1.0.20",
        "allocated_end": "10.1.0.200",
        "host_routes": [["203.0.113.0/24", "10.1.0.254"]],
        "dns_nameservers": ["198.51.100.53"],
    }


def test_a_bare_subnet_leaves_out_what_neutron_did_not_set():
    bare = {"id": SUB, "network_id": NET, "ip_version": 4, "cidr": "10.1.0.0/24"}
    assert subnet(bare | {"gateway_ip": None}) == {
        "id": SUB,
        "logicalnetwork": NET,
        "cidr": "10.1.0.0/24",
    }
    assert subnet_changes(bare) == {
        "gateway": None,
        "allocated_start": None,
        "allocated_end": None,
        "host_routes": None,
        "dns_nameservers": None,
    }


def test_ipv6_subnets_are_not_mapped():
    assert subnet({"id": SUB, "network_id": NET, "ip_version": 6, "cidr": "fd00::/64"}) is None


NEUTRON_PORT = {
    "id": PORT,
    "network_id": NET,
    "mac_address": "fa:16:3e:00:00:01",
    "fixed_ips": [
        {"subnet_id": "v6-subnet", "ip_address": "fd00::5"},
        {"subnet_id": SUB, "ip_address": "10.1.0.21"},
    ],
    "allowed_address_pairs": [
        {"ip_address": "10.1.0.250", "mac_address": "fa:16:3e:00:00:01"},
        {"ip_address": "10.9.0.0/16"},
        {"ip_address": "fd00::/64", "mac_address": "fa:16:3e:00:00:01"},
    ],
    "device_owner": "compute:nova",
}


def test_ports_carry_mac_first_ipv4_address_and_ipv4_pairs():
    assert logical_port(NEUTRON_PORT) == {
        "id": PORT,
        "logicalnetwork": NET,
        NEUTRON_OWNED: True,
        "mac_address": "fa:16:3e:00:00:01",
        "subnet": SUB,
        "ip_address": "10.1.0.21",
        "allowed_address_pairs": [
            {"ip_address": "10.1.0.250", "mac_address": "fa:16:3e:00:00:01"},
            {"ip_address": "10.9.0.0/16"},
        ],
    }


def test_a_port_update_clears_what_neutron_removed():
    bare = NEUTRON_PORT | {"fixed_ips": [], "allowed_address_pairs": []}
    assert port_changes(bare) == {
        "mac_address": "fa:16:3e:00:00:01",
        "subnet": None,
        "ip_address": None,
        "allowed_address_pairs": None,
    }


@pytest.mark.parametrize("owner", ["network:router_interface", "network:router_gateway"])
def test_router_ports_are_not_logical_ports(owner: str):
    assert logical_port(NEUTRON_PORT | {"device_owner": owner}) is None


def test_a_subnet_without_dhcp_is_refused_and_one_with_is_not():
    v4 = {"id": SUB, "network_id": NET, "ip_version": 4, "cidr": "10.1.0.0/24"}
    with pytest.raises(Unsupported, match=r"10\.1\.0\.0/24: vlcp serves DHCP .* enable_dhcp=false"):
        check_subnet(v4 | {"enable_dhcp": False})
    check_subnet(v4 | {"enable_dhcp": True})
    check_subnet(v4)
    check_subnet(v4 | {"ip_version": 6, "cidr": "fd00::/64", "enable_dhcp": False})


V4_PORT = NEUTRON_PORT | {"port_security_enabled": True}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"port_security_enabled": False}, "port_security_enabled=false is not supported"),
        (
            {"fixed_ips": [*V4_PORT["fixed_ips"], {"subnet_id": SUB, "ip_address": "10.1.0.22"}]},
            r"one IPv4 address, not 2 \(10.1.0.21, 10.1.0.22\)",
        ),
    ],
)
def test_a_port_vlcp_would_not_carry_as_neutron_means_it_is_refused(change: dict, words: str):
    with pytest.raises(Unsupported, match=words):
        check_port(V4_PORT | change)
    check_port(V4_PORT | change | {"device_owner": "network:router_interface"})


def test_a_port_with_one_ipv4_and_an_ipv6_address_and_port_security_passes():
    check_port(V4_PORT)
    check_port(NEUTRON_PORT)
