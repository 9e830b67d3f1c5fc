"""Routers through both APIs of a real `vlcp api` process, proven on routed packets: the
routed world of test_routing.py.

REST v1 and the original VLCP API (`vrouterapi`, as old scripts call it: GET with query
parameters) do the same: a router with interfaces cannot be deleted (409, naming its
subnets), removing an interface stops routing into its subnet and nothing else, and a
router built again with `createvirtualrouter` and `addrouterinterfaces` routes as the
REST-built one did (one hop, TTL 63) until its interfaces are removed and it is deleted.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.api.test_vlcp_http import Vlcp, literal
from tests.lab.marks import needs_ovs_lab
from tests.lab.waiting import eventually
from vlcp.api_error import ApiError

from . import test_routing
from .test_routing import World

pytestmark = [pytest.mark.root, pytest.mark.slow, needs_ovs_lab]

world = test_routing.world
"""test_routing.py's fixture, a fixture of this module too."""

VR = "vrouterapi"
STILL_ATTACHED = "router router-a still has 2 interfaces (on subnets sub-a, sub-a2)"


def answered(world: World, src: str, dst: str, *, expected: bool):
    """A condition: whether an echo request from `src` to `dst` is answered is `expected`."""
    sender, target = world.hosts[src], world.hosts[dst]

    async def check() -> bool:
        result = await asyncio.to_thread(sender.ping, target.ip, count=1)
        return (result.received == 1) == expected

    return check


async def test_rest_and_vrouterapi_guard_remove_and_rebuild_a_router_alike(world: World) -> None:
    vlcp = Vlcp(world.cloud.api_process)
    api = world.api

    with pytest.raises(ApiError) as refused:
        await api.delete("routers", "router-a")
    assert (refused.value.status, refused.value.message) == (409, STILL_ATTACHED)
    error = vlcp.fails(409, f"{VR}/deletevirtualrouter", id="router-a")
    assert error == STILL_ATTACHED

    # removing an interface (the original API) stops routing into its subnet only
    assert vlcp.ok(f"{VR}/removerouterinterface", router="router-a", subnet="sub-a2") == {
        "status": "OK"
    }
    await eventually(answered(world, "a1", "a5", expected=False), 20, what="a1 -> a5 unrouted")
    assert await answered(world, "a1", "a2", expected=True)()  # a1's own network
    assert await answered(world, "b1", "b5", expected=True)()  # the other tenant's router
    left = vlcp.ok(f"{VR}/listrouterinterfaces", id="router-a")
    assert [i["subnet"] for i in left] == ["sub-a"]
    assert [i["subnet"] for i in await asyncio.to_thread(api.client.interfaces, "router-a")] == [
        "sub-a"
    ]

    # REST: the last interface, then the router itself
    await asyncio.to_thread(api.client.remove_interface, "router-a", "sub-a")
    await api.delete("routers", "router-a")
    with pytest.raises(ApiError) as gone:
        await api.get("routers", "router-a")
    assert gone.value.status == 404

    # the original API builds it again, and it routes as before
    vlcp.ok(f"{VR}/createvirtualrouter", id="router-a")
    interfaces = [{"router": "router-a", "subnet": s} for s in ("sub-a", "sub-a2")]
    vlcp.ok(f"{VR}/addrouterinterfaces", interfaces=literal(interfaces))
    await eventually(answered(world, "a1", "a5", expected=True), 20, what="a1 -> a5 routed")
    result = await asyncio.to_thread(world.hosts["a1"].ping, world.hosts["a5"].ip, count=3)
    assert result.received == 3 and "ttl=63" in result.output, result.output
    assert error == vlcp.fails(409, f"{VR}/deletevirtualrouter", id="router-a")

    vlcp.ok(f"{VR}/removerouterinterfaces", interfaces=literal(interfaces))
    await eventually(answered(world, "a1", "a5", expected=False), 20, what="a1 -> a5 unrouted")
    assert vlcp.ok(f"{VR}/deletevirtualrouter", id="router-a") == {"status": "OK"}
    assert vlcp.ok(f"{VR}/listvirtualrouters", id="router-a") == []
    assert await answered(world, "b3", "b5", expected=True)()
