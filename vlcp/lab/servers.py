"""vlcp agents on lab hypervisors: the configuration and start-up check the demo, the
end-to-end tests and the benchmarks share."""

from __future__ import annotations

import asyncio

from vlcp.agent.agent import AgentConfig

from .ovs import Hypervisor

BRIDGE = "br-int"


def agent_config(hv: Hypervisor, name: str, *, listen: bool = False) -> AgentConfig:
    """An agent for `hv`'s private OVS, known in the store as `name`.

    `listen`: vswitchd connects to the agent on a unix socket in `hv`'s directory (a path
    works across network namespaces, where a loopback address would not), rather than the
    agent dialling the bridge's management socket.
    """
    return AgentConfig(
        ovsdb=hv.db_target,
        ovs_rundir=str(hv.dir),
        openflow_listen=f"unix:{hv.dir}/vlcp-openflow.sock" if listen else None,
        bridge=BRIDGE,
        datapath_type="netdev",
        vtep=hv.vtep_ip,
        system_id=name,
        node_name=name,
        session_ttl=5.0,
    )


async def wait_for_bridge(hv: Hypervisor, agent: asyncio.Task[None], timeout: float = 30) -> None:
    """Return once the agent has created its bridge; raise the agent's error if it died."""
    async with asyncio.timeout(timeout):
        while True:
            if agent.done():
                agent.result()
            if BRIDGE in (await asyncio.to_thread(hv.vsctl, "list-br")).split():
                return
            await asyncio.sleep(0.05)
