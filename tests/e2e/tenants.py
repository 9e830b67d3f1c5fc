"""The end-to-end tests' usual world: two tenants with the same MAC and IP addresses.

Tenant A's network runs over VXLAN, tenant B's over VLAN on the `trunk0` physical ports;
each has ports 1..3 with the addresses of `ADDRESSES`, so that any frame crossing tenants
would reach a host that looks the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from tests.lab.ovs import Host

MAC1, MAC2, MAC3 = "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"
IP1, IP2, IP3 = "10.0.0.1", "10.0.0.2", "10.0.0.3"
ADDRESSES = ((MAC1, IP1), (MAC2, IP2), (MAC3, IP3))
SERVERS = ["hv0", "hv1", "hv2"]
WARM_PATHS = (("a1", "a2"), ("a1", "a3"), ("b1", "b2"), ("b1", "b3"))
"""OVS drops the first packet to a new tunnel peer while it resolves the peer's MAC on the
underlay: a ping through each path first keeps that out of the checks that follow."""


async def describe_tenants(api, subnets: Mapping[str, Mapping[str, Any]] = {}) -> None:
    """Tenant A on VXLAN, tenant B on VLAN, with identical addresses; `subnets`: more
    fields of a tenant's subnet, by tenant ("a", "b"), e.g. its DHCP options."""
    await api.create("physical-networks", {"id": "vx", "type": "vxlan", "vnirange": [[5000, 5999]]})
    await api.create("physical-networks", {"id": "vl", "type": "vlan", "vlanrange": [[100, 199]]})
    await api.create("physical-ports", {"physicalnetwork": "vl", "name": "trunk0"})
    for tenant, physnet in (("a", "vx"), ("b", "vl")):
        await api.create("logical-networks", {"id": f"net-{tenant}", "physicalnetwork": physnet})
        await api.create(
            "subnets",
            {
                "id": f"sub-{tenant}",
                "logicalnetwork": f"net-{tenant}",
                "cidr": "10.0.0.0/24",
                **subnets.get(tenant, {}),
            },
        )
        for n, (mac, ip) in enumerate(ADDRESSES, start=1):
            await api.create(
                "logical-ports",
                {
                    "id": f"{tenant}{n}",
                    "logicalnetwork": f"net-{tenant}",
                    "subnet": f"sub-{tenant}",
                    "mac_address": mac,
                    "ip_address": ip,
                },
            )


async def plug_tenants(
    cloud, servers: list[str] = SERVERS, subnets: Mapping[str, Mapping[str, Any]] = {}
) -> dict[str, Host]:
    """Both tenants on `servers` of `cloud` (`SERVERS` or its first ones): port n on the
    n-th server, every port up and every path of `WARM_PATHS` between them warm. Returns
    the hosts by port. `subnets`: see `describe_tenants` (a port is up once its server's
    view holds it, hence its subnet as created)."""
    cloud.trunks("trunk0")
    await describe_tenants(cloud.api, subnets)
    hosts = {}
    for tenant in "ab":
        for n, (server, (mac, ip)) in enumerate(zip(servers, ADDRESSES, strict=False), start=1):
            hosts[f"{tenant}{n}"] = cloud.host(server, f"{ip}/24", mac=mac, port=f"{tenant}{n}")
    for port in hosts:
        await cloud.api.wait_port_up(port, timeout=30)
    for src, dst in (path for path in WARM_PATHS if hosts.keys() >= set(path)):
        assert await asyncio.to_thread(hosts[src].ping_ok, hosts[dst].ip, deadline=10), (src, dst)
    return hosts
