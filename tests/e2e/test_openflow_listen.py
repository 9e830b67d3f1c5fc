"""Controllers that listen for their switch (`[agent] openflow_listen`) rather than dial it.

The bridge's controller becomes the configured target, packets flow across servers, and
a restarted controller is reconnected to by vswitchd and serves changes made after it.
"""

from __future__ import annotations

import pytest

from tests.lab.marks import needs_ovs_lab
from vlcp.lab.servers import BRIDGE, agent_config

from .tenants import IP1, IP2, IP3, MAC1, MAC2, MAC3, describe_tenants
from .test_live_changes import reachable

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    needs_ovs_lab,
]


async def test_a_listening_controller_serves_its_switch_and_survives_a_restart(
    cloud_factory,
) -> None:
    cloud = await cloud_factory(["hv0", "hv1"], listen=True)
    await describe_tenants(cloud.api)
    hv0 = cloud.servers["hv0"]
    target = agent_config(hv0.hv, "hv0", listen=True).openflow_listen
    controllers = hv0.hv.vsctl("get-controller", BRIDGE).split()
    assert controllers == [target]

    a1 = cloud.host("hv0", f"{IP1}/24", mac=MAC1, port="a1")
    cloud.host("hv1", f"{IP2}/24", mac=MAC2, port="a2")
    for port in ("a1", "a2"):
        await cloud.api.wait_port_up(port, timeout=30)
    assert await reachable(a1, IP2)

    # restart hv0's controller: vswitchd dials the new one, which serves a port plugged after
    hv0.controller.stop()
    hv0.controller.start()
    await hv0.controller.ready(cloud.store)
    assert await reachable(a1, IP2)  # flows stayed while no controller was there
    a3 = cloud.host("hv0", f"{IP3}/24", mac=MAC3, port="a3")
    await cloud.api.wait_port_up("a3", timeout=30)
    assert await reachable(a3, IP2)
