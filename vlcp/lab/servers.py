"""vlcp agents on lab hypervisors: the configuration and start-up check the demo, the
end-to-end tests and the benchmarks share, in process (`AgentConfig`) or as the settings
of a `vlcp run` process."""

from __future__ import annotations

import asyncio
from typing import Any

from vlcp.agent.agent import AgentConfig

from .ovs import Hypervisor

BRIDGE = "br-int"


def agent_config(
    hv: Hypervisor, name: str, *, listen: bool = False, session_ttl: float = 5.0
) -> AgentConfig:
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
        session_ttl=session_ttl,
    )


def run_settings(config: AgentConfig, store_url: str) -> dict[str, Any]:
    """The `vlcp run` settings (`vlcp.config.Settings`, as nested tables) of a server that
    runs only the controller described by `config`: `[api] enabled = false`, `[agent]
    enabled = true`, the way a user configures a hypervisor beside an API-only node."""
    agent = {
        "enabled": True,
        "ovsdb": config.ovsdb,
        "ovs_rundir": config.ovs_rundir,
        "openflow_listen": config.openflow_listen,
        "bridge": config.bridge,
        "datapath_type": config.datapath_type,
        "vtep": config.vtep,
        "system_id": config.system_id,
    }
    return {
        "node_name": config.node_name,
        "store": {"url": store_url, "session_ttl": config.session_ttl},
        "api": {"enabled": False},
        "agent": {key: value for key, value in agent.items() if value is not None},
    }


async def wait_for_bridge(hv: Hypervisor, agent: asyncio.Task[None], timeout: float = 30) -> None:
    """Return once the agent has created its bridge; raise the agent's error if it died."""
    async with asyncio.timeout(timeout):
        while True:
            if agent.done():
                agent.result()
            if BRIDGE in (await asyncio.to_thread(hv.vsctl, "list-br")).split():
                return
            await asyncio.sleep(0.05)
