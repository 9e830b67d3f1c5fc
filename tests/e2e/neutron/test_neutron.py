"""Issue 17's Neutron ML2 driver end to end: a real Neutron API server (Neutron 29 from
PyPI, gunicorn, sqlite, ML2 with the `logger` and `vlcp` mechanism drivers) on a real vlcp
cloud (`vlcp api`, a `vlcp run` on each of two lab servers). Scenarios 1 and 3 are driven
by OpenStack's `openstack` CLI as a user drives it (with no Keystone: `OS_AUTH_TYPE=none`),
the others by Neutron's REST API as Nova and other services drive it.

1. A tenant network (vxlan, VNI chosen by Neutron), its subnet with DHCP options and two
   ports appear in vlcp with Neutron's ids, tag, gateway, pool, routes and addresses. The
   ports are bound to the lab servers (vif_type ovs on br-int, as vlcp's controllers run
   there); two "VMs" plugged as Nova plugs them (iface-id = the Neutron port id) get
   their Neutron addresses by DHCP from vlcp, ping each other across the servers, and
   their ports turn ACTIVE. Deleting them in Neutron deletes them in vlcp.
2. Provider networks: vlan with its segmentation id, flat on vlcp's native network.
   What vlcp refuses (a physical network it does not have) is a 400 from Neutron with
   vlcp's message, and the network is not left in Neutron; so is what vlcp would not carry
   as Neutron means it (a subnet without DHCP, a port without port security or with two
   IPv4 addresses, created or updated so), left in neither; a port on a host without a
   vlcp controller is not bound.
3. A Neutron router between two subnets of two networks is vlcp's router, with an
   interface on each gateway: VMs on two servers, one in each subnet, leased by DHCP with
   their gateway as default route (ports ACTIVE), ping each other through it. Detached
   and deleted in Neutron, it is gone from vlcp.
4. vlcp's API down while Neutron creates a network, subnet, port and a router with an
   interface on that subnet, and deletes another network and another router: Neutron
   answers as usual (the driver logs what it could not write), and `vlcp-neutron sync`,
   once vlcp is back, creates, attaches and deletes exactly those in vlcp and says so;
   run again, it finds nothing to do. With the driver's periodic sync on instead, vlcp
   gets the same repair by itself.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.lab.dhcp import Dhclient
from tests.lab.marks import needs_dhcp_clients, needs_ovs_lab
from tests.lab.neutron import NeutronError, NeutronServer
from tests.lab.waiting import eventually
from vlcp.client import ApiError

from ..conftest import Cloud, CloudFactory
from .conftest import NeutronFactory

pytestmark = [pytest.mark.root, pytest.mark.slow, needs_ovs_lab, needs_dhcp_clients]

SERVERS = ["hv0", "hv1"]
PLACEHOLDER = "169.254.9.9/32"
"""A VM's address until DHCP gives it one (the client flushes it first)."""


async def turned_active(neutron: NeutronServer, ports: list[dict[str, Any]]) -> None:
    """Wait until Neutron shows `ports` ACTIVE (vlcp reported them up, the driver lifted
    their provisioning blocks). Also before the next write to Neutron: the driver's
    thread writes Neutron's database then, and sqlite, unlike Neutron's production
    databases, refuses a second writer ("database is locked") instead of waiting."""

    async def active() -> bool:
        return all(neutron.show("port", p["id"])["status"] == "ACTIVE" for p in ports)

    await eventually(active, 30, what="the Neutron ports ACTIVE")


def fields(stored: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: stored.get(name) for name in names}


async def absent(cloud: Cloud, kind: str, id: str) -> bool:
    try:
        await cloud.api.get(kind, id)
    except ApiError as error:
        return error.status == 404
    return False


async def neutron_cloud(
    cloud_factory: CloudFactory, neutron_factory: NeutronFactory, sync_interval: int = 0
) -> tuple[Cloud, NeutronServer]:
    """Two servers; vlcp's physical networks as an operator makes them (Neutron's VNI
    range on a vxlan one, physnet1's VLANs, a native one for flat networks). The driver's
    periodic sync is off unless `sync_interval` is given: a test sees each write's own
    effect."""
    cloud = await cloud_factory(SERVERS)
    for body in (
        {"id": "vx", "type": "vxlan", "vnirange": [[5000, 5999]]},
        {"id": "physnet1", "type": "vlan", "vlanrange": [[100, 199]]},
        {"id": "flat0", "type": "native"},
    ):
        await cloud.api.create("physical-networks", body)
    neutron = await neutron_factory(
        cloud,
        vxlan_physical_network="vx",
        physical_network_mappings="flatnet:flat0",
        sync_interval=str(sync_interval),
    )
    return cloud, neutron


async def test_vms_get_neutron_addresses_by_dhcp_and_ping_across_servers(
    cloud_factory: CloudFactory, neutron_factory: NeutronFactory
):
    cloud, neutron = await neutron_cloud(cloud_factory, neutron_factory)
    net = neutron.cli_create("network", "tenant")
    assert net["provider:network_type"] == "vxlan"
    stored = await cloud.api.get("logical-networks", net["id"])
    assert fields(stored, "physicalnetwork", "vni", "mtu", "neutron") == {
        "physicalnetwork": "vx",
        "vni": net["provider:segmentation_id"],
        "mtu": net["mtu"],
        "neutron": True,
    }

    sub = neutron.cli_create(
        "subnet",
        *("--network", net["id"], "--subnet-range", "10.20.0.0/24", "--gateway", "10.20.0.1"),
        *("--allocation-pool", "start=10.20.0.10,end=10.20.0.99"),
        *("--dns-nameserver", "198.51.100.53"),
        *("--host-route", "destination=203.0.113.0/24,gateway=10.20.0.254"),
        "tenant-v4",
    )
    stored = await cloud.api.get("subnets", sub["id"])
    assert fields(stored, "logicalnetwork", "cidr", "gateway", "dns_nameservers") == {
        "logicalnetwork": net["id"],
        "cidr": "10.20.0.0/24",
        "gateway": "10.20.0.1",
        "dns_nameservers": ["198.51.100.53"],
    }
    assert (stored["allocated_start"], stored["allocated_end"]) == ("10.20.0.10", "10.20.0.99")
    assert stored["host_routes"] == [["203.0.113.0/24", "10.20.0.254"]]

    ports = [
        neutron.cli_create(
            "port",
            *("--network", net["id"], "--host", server, "--device-owner", "compute:nova"),
            *("--device", f"vm-{server}", f"vm-{server}"),
        )
        for server in SERVERS
    ]
    for port in ports:
        assert port["binding:vif_type"] == "ovs", port
        assert port["binding:vif_details"]["bridge_name"] == "br-int"
        assert port["status"] == "DOWN"
        vlcp_port = await cloud.api.get("logical-ports", port["id"])
        assert vlcp_port["mac_address"] == port["mac_address"]
        assert vlcp_port["ip_address"] == port["fixed_ips"][0]["ip_address"]
        assert vlcp_port["subnet"] == sub["id"]

    vms = [
        cloud.host(server, PLACEHOLDER, mac=port["mac_address"], port=port["id"])
        for server, port in zip(SERVERS, ports, strict=True)
    ]
    addresses = [port["fixed_ips"][0]["ip_address"] for port in ports]
    for vm, address in zip(vms, addresses, strict=True):
        with Dhclient(vm.netns) as client:
            result = await asyncio.to_thread(client.acquire, 20.0)
        assert str(result.lease.address) == address
        assert [str(r) for r in result.lease.routers] == ["10.20.0.1"]
        assert [str(d) for d in result.lease.dns] == ["198.51.100.53"]
        assert result.lease.mtu == net["mtu"]
    assert await asyncio.to_thread(vms[0].ping_ok, addresses[1], deadline=15)
    assert await asyncio.to_thread(vms[1].ping_ok, addresses[0], deadline=15)

    await turned_active(neutron, ports)

    for port in ports:
        neutron.openstack("port", "delete", port["id"])
        assert await absent(cloud, "logical-ports", port["id"])
    neutron.openstack("subnet", "delete", sub["id"])
    assert await absent(cloud, "subnets", sub["id"])
    neutron.openstack("network", "delete", net["id"])
    assert await absent(cloud, "logical-networks", net["id"])


async def test_provider_networks_and_what_vlcp_refuses(
    cloud_factory: CloudFactory, neutron_factory: NeutronFactory
):
    cloud, neutron = await neutron_cloud(cloud_factory, neutron_factory)
    vlan = neutron.create(
        "network",
        name="vlan150",
        **{
            "provider:network_type": "vlan",
            "provider:physical_network": "physnet1",
            "provider:segmentation_id": 150,
        },
    )
    stored = await cloud.api.get("logical-networks", vlan["id"])
    assert (stored["physicalnetwork"], stored["vlanid"]) == ("physnet1", 150)

    flat = neutron.create(
        "network",
        name="flat",
        **{"provider:network_type": "flat", "provider:physical_network": "flatnet"},
    )
    stored = await cloud.api.get("logical-networks", flat["id"])
    assert stored["physicalnetwork"] == "flat0"
    assert (stored["vlanid"], stored["vni"]) == (None, None)

    # a physical network vlcp does not have: vlcp refuses, Neutron says why and keeps nothing
    with pytest.raises(NeutronError) as refused:
        neutron.create(
            "network",
            name="nowhere",
            **{"provider:network_type": "flat", "provider:physical_network": "nowhere"},
        )
    assert refused.value.status == 400
    assert "vlcp refused this" in refused.value.message
    assert "nowhere" in refused.value.message
    names = [n["name"] for n in neutron.request("GET", "networks")["networks"]]
    assert sorted(names) == ["flat", "vlan150"]

    # what vlcp would not carry as Neutron means it: a 400 saying why, nothing in vlcp
    sub = neutron.create("subnet", network_id=vlan["id"], ip_version=4, cidr="10.50.0.0/24")
    no_dhcp = {"network_id": vlan["id"], "ip_version": 4, "cidr": "10.51.0.0/24"}
    refused_with(
        "enable_dhcp=false is not supported",
        lambda: neutron.create("subnet", **no_dhcp, enable_dhcp=False),
    )
    refused_with(
        "port_security_enabled=false is not supported",
        lambda: neutron.create("port", network_id=vlan["id"], port_security_enabled=False),
    )
    two = [{"subnet_id": sub["id"]}] * 2
    refused_with(
        "a vlcp port has one IPv4 address, not 2",
        lambda: neutron.create("port", network_id=vlan["id"], fixed_ips=two),
    )
    assert neutron.request("GET", "ports")["ports"] == []
    assert [s["id"] for s in neutron.request("GET", "subnets")["subnets"]] == [sub["id"]]
    assert [s["id"] for s in cloud.api.client.list("subnets")] == [sub["id"]]
    assert list(cloud.api.client.list("logical-ports")) == []
    # a port on a host where no vlcp controller runs stays unbound
    port = neutron.create(
        "port", network_id=vlan["id"], device_owner="compute:nova", **{"binding:host_id": "hv9"}
    )
    assert port["binding:vif_type"] == "binding_failed"
    # and an update to what vlcp would not carry is refused, the object left as it was
    refused_with(
        "enable_dhcp=false is not supported",
        lambda: neutron.update("subnet", sub["id"], enable_dhcp=False),
    )
    refused_with(
        "port_security_enabled=false is not supported",
        lambda: neutron.update("port", port["id"], port_security_enabled=False, security_groups=[]),
    )
    assert neutron.show("subnet", sub["id"])["enable_dhcp"] is True
    assert neutron.show("port", port["id"])["port_security_enabled"] is True


def refused_with(words: str, call: Callable[[], object]) -> None:
    """`call()` (a write to Neutron) answers 400 with `words` in its message."""
    with pytest.raises(NeutronError) as refused:
        call()
    assert (refused.value.status, words in refused.value.message) == (400, True), refused.value


def vlcp_neutron_sync(cloud: Cloud, neutron: NeutronServer) -> list[str]:
    """`vlcp-neutron sync`'s report (it ran as an operator runs it, and succeeded)."""
    command = [sys.executable, "-m", "vlcp.integrations.neutron.cli", "sync"]
    command += ["--neutron-url", neutron.url, "--api", cloud.api.client.url]
    command += ["--vxlan-physical-network", "vx", "--physical-network-mapping", "flatnet:flat0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


async def test_sync_repairs_what_vlcp_missed_while_down(
    cloud_factory: CloudFactory, neutron_factory: NeutronFactory
):
    cloud, neutron = await neutron_cloud(cloud_factory, neutron_factory)
    missed = await missed_while_down(cloud, neutron)
    assert await absent(cloud, "logical-networks", missed.net["id"])
    assert await absent(cloud, "routers", missed.router["id"])
    assert await cloud.api.get("logical-networks", missed.gone["id"])
    assert await cloud.api.get("routers", missed.gone_router["id"])
    router, sub = missed.router["id"], missed.sub["id"]
    assert sorted(vlcp_neutron_sync(cloud, neutron)) == sorted(
        [
            f"create logical-networks {missed.net['id']}",
            f"create subnets {sub}",
            f"create logical-ports {missed.port['id']}",
            f"create routers {router}",
            f"create router-interfaces {router}/{sub}",
            f"delete routers {missed.gone_router['id']}",
            f"delete logical-networks {missed.gone['id']}",
        ]
    )
    await assert_repaired(cloud, missed)
    assert vlcp_neutron_sync(cloud, neutron) == ["in sync"]


async def test_the_periodic_sync_repairs_by_itself(
    cloud_factory: CloudFactory, neutron_factory: NeutronFactory
):
    cloud, neutron = await neutron_cloud(cloud_factory, neutron_factory, sync_interval=1)
    missed = await missed_while_down(cloud, neutron)

    async def repaired() -> bool:
        return (
            await absent(cloud, "routers", missed.gone_router["id"])
            and await absent(cloud, "logical-networks", missed.gone["id"])
            and not await absent(cloud, "routers", missed.router["id"])
            and bool(cloud.api.client.interfaces(missed.router["id"]))
            and not await absent(cloud, "logical-ports", missed.port["id"])
        )

    await eventually(repaired, 30, what="the periodic sync to repair vlcp")
    await assert_repaired(cloud, missed)


@dataclass(frozen=True)
class Missed:
    """What Neutron changed while vlcp's API was down (`missed_while_down`)."""

    gone: dict[str, Any]
    """A network made in both, then deleted in Neutron only."""
    gone_router: dict[str, Any]
    """A router made in both, then deleted in Neutron only."""
    net: dict[str, Any]
    sub: dict[str, Any]
    port: dict[str, Any]
    router: dict[str, Any]
    """A router made in Neutron only, with an interface on `sub`."""


async def missed_while_down(cloud: Cloud, neutron: NeutronServer) -> Missed:
    """Network `gone` and router `gone_router` made in both; then, while vlcp's API is
    down, those deleted, and a network, subnet, port and router with an interface on that
    subnet made in Neutron only."""
    gone = neutron.create("network", name="gone")
    gone_router = neutron.create("router", name="gone")
    assert await cloud.api.get("logical-networks", gone["id"])
    assert await cloud.api.get("routers", gone_router["id"])
    cloud.api_process.stop()
    net = neutron.create("network", name="late")
    sub = neutron.create("subnet", network_id=net["id"], ip_version=4, cidr="10.30.0.0/24")
    port = neutron.create("port", network_id=net["id"])
    router = neutron.create("router", name="late")
    neutron.request("PUT", f"routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    neutron.delete("network", gone["id"])
    neutron.delete("router", gone_router["id"])
    cloud.api_process.start()
    await cloud.api_process.ready()
    return Missed(gone, gone_router, net, sub, port, router)


async def assert_repaired(cloud: Cloud, missed: Missed) -> None:
    sub = missed.sub
    assert (await cloud.api.get("subnets", sub["id"]))["logicalnetwork"] == sub["network_id"]
    stored = await cloud.api.get("logical-ports", missed.port["id"])
    assert stored["ip_address"] == missed.port["fixed_ips"][0]["ip_address"]
    assert [
        (i["subnet"], i["ip_address"]) for i in cloud.api.client.interfaces(missed.router["id"])
    ] == [(sub["id"], sub["gateway_ip"])]
    assert await absent(cloud, "logical-networks", missed.gone["id"])
    assert await absent(cloud, "routers", missed.gone_router["id"])


async def test_a_neutron_router_routes_between_subnets_on_two_servers(
    cloud_factory: CloudFactory, neutron_factory: NeutronFactory
):
    cloud, neutron = await neutron_cloud(cloud_factory, neutron_factory)
    router = neutron.cli_create("router", "r1")
    assert (await cloud.api.get("routers", router["id"]))["routes"] == []
    subnets, vms, addresses = [], [], []
    for index, server in enumerate(SERVERS, start=1):
        net = neutron.cli_create("network", f"net{index}")
        sub = neutron.cli_create(
            "subnet", "--network", net["id"], "--subnet-range", f"10.40.{index}.0/24", f"sub{index}"
        )
        neutron.openstack("router", "add", "subnet", router["id"], sub["id"])
        port = neutron.cli_create(
            "port",
            *("--network", net["id"], "--host", server, "--device-owner", "compute:nova"),
            f"vm{index}",
        )
        vm = cloud.host(server, PLACEHOLDER, mac=port["mac_address"], port=port["id"])
        with Dhclient(vm.netns) as client:
            result = await asyncio.to_thread(client.acquire, 20.0)
        assert [str(r) for r in result.lease.routers] == [f"10.40.{index}.1"]
        await turned_active(neutron, [port])
        subnets.append(sub)
        vms.append(vm)
        addresses.append(port["fixed_ips"][0]["ip_address"])
    interfaces = cloud.api.client.interfaces(router["id"])
    assert sorted((i["subnet"], i["ip_address"]) for i in interfaces) == sorted(
        (s["id"], s["gateway_ip"]) for s in subnets
    )
    assert await asyncio.to_thread(vms[0].ping_ok, addresses[1], deadline=15)
    assert await asyncio.to_thread(vms[1].ping_ok, addresses[0], deadline=15)

    for sub in subnets:
        neutron.openstack("router", "remove", "subnet", router["id"], sub["id"])
    assert cloud.api.client.interfaces(router["id"]) == []
    neutron.openstack("router", "delete", router["id"])
    assert await absent(cloud, "routers", router["id"])
