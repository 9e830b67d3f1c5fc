"""The routed world of `test_routing`, for the tests of static routes: both tenants, each
with a router joining 10.0.0.0/24 to its second network's 10.0.1.0/24, on three servers."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.lab.ovs import Host

from .tenants import SERVERS, plug_tenants
from .test_routing import FIRST_GATEWAY, SECOND_GATEWAY, routed, second_network


async def routed_tenants(cloud_factory) -> tuple[Any, dict[str, Host]]:
    """The cloud and its hosts by port, every port up (no host route added yet)."""
    cloud = await cloud_factory(SERVERS)
    gateway = {"gateway": FIRST_GATEWAY}
    hosts = await plug_tenants(cloud, subnets={"a": gateway, "b": gateway})
    for tenant in "ab":
        await second_network(cloud, tenant, hosts)
    for name in hosts:
        await cloud.api.wait_port_up(name, timeout=30)
    return cloud, hosts


def route_through_gateway(name: str, host: Host, *prefixes: str) -> None:
    """The other subnet and `prefixes` routed by the host of port `name` through its
    subnet's gateway."""
    other, via = ("10.0.0.0/24", SECOND_GATEWAY) if routed(name) else ("10.0.1.0/24", FIRST_GATEWAY)
    for prefix in (other, *prefixes):
        host.exec("ip", "route", "add", prefix, "via", via)


async def set_routes(cloud, router: str, routes: list[list[str]]) -> None:
    """A router's static routes, through the REST API."""
    await asyncio.to_thread(cloud.api.client.update, "routers", router, {"routes": routes})
