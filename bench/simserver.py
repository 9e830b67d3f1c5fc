"""A simulated server: a real `vlcp run` agent, a real ovsdb-server, a lightweight switch.

What makes it a server to the agent is its local OVSDB (the integration bridge, the
tunnel port and one interface per local port carrying `external_ids:iface-id`, as a
hypervisor's VIF would) and the bridge's OpenFlow channel on `<rundir>/br-int.mgmt`,
where the agent dials it. No vswitchd runs: the benchmark writes the rows vswitchd would
(the interfaces' `ofport`, `mac_in_use`), and the switch is a `bench.ofswitch.Bridge`
shared by every simulated server in the benchmark's own process. The agent is the same
process users run (`vlcp run` with `[agent] enabled = true`, `[api] enabled = false`).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.ofswitch import Bridge, FakeSwitches
from tests.lab.ovsdb import VSWITCH_SCHEMA, OvsdbServer
from tests.lab.vlcp_processes import VlcpProcess
from vlcp.agent.agent import AgentConfig
from vlcp.agent.view_builder import TUNNEL_PORT
from vlcp.lab.netns import run
from vlcp.lab.servers import BRIDGE, run_settings

FIRST_OFPORT = 10
PORTS_PER_TRANSACTION = 200
"""Local ports are numbered from here; the tunnel port is 1, as vswitchd would number it."""


@dataclass(frozen=True)
class SimPort:
    """A logical port bound on a simulated server."""

    id: str
    network: str
    mac: str


def _set(*named: str) -> list[Any]:
    return ["set", [["named-uuid", n] for n in named]]


def _port_uuid(name: str) -> str:
    """The uuid-name `_interface_ops` gives the Port row of interface `name`."""
    return f"p{name.replace('-', '_')}"


def _interface_ops(name: str, ofport: int, iface_id: str | None, mac: str | None) -> list[dict]:
    """Insert a Port and its Interface (named `p<name>`, `i<name>`) as vswitchd shows them."""
    iface: dict[str, Any] = {"name": name, "ofport": ofport}
    if iface_id is not None:
        iface["external_ids"] = ["map", [["iface-id", iface_id]]]
    if mac is not None:
        iface["mac_in_use"] = mac
    tag = name.replace("-", "_")
    return [
        {"op": "insert", "table": "Interface", "uuid-name": f"i{tag}", "row": iface},
        {
            "op": "insert",
            "table": "Port",
            "uuid-name": _port_uuid(name),
            "row": {"name": name, "interfaces": ["named-uuid", f"i{tag}"]},
        },
    ]


class SimServer:
    """One simulated hypervisor; `start()` its OVSDB and switch, then `agent.start()`."""

    def __init__(self, index: int, directory: Path, store_url: str, session_ttl: float) -> None:
        self.index = index
        self.name = f"sim{index}"
        self.dpid = index + 1
        self.vtep = f"10.{64 + index // 250}.{index % 250}.1"
        self.directory = directory
        self.store_url = store_url
        self.session_ttl = session_ttl
        self.db = OvsdbServer([VSWITCH_SCHEMA], tcp=False)
        self.bridge: Bridge | None = None
        self.agent: VlcpProcess | None = None
        self._next_ofport = FIRST_OFPORT

    def _transact(self, ops: list[dict]) -> None:
        out = run(
            "ovsdb-client", "transact", self.db.unix_target, json.dumps(["Open_vSwitch", *ops])
        )
        errors = [r for r in json.loads(out.stdout) if isinstance(r, dict) and "error" in r]
        if errors:
            raise RuntimeError(f"{self.name}: OVSDB transaction failed: {errors}")

    def _start_db(self, ports: list[SimPort]) -> None:
        self.db.start()
        ops = _interface_ops(BRIDGE, 65534, None, None)
        ops[0]["row"]["type"] = "internal"
        ops += _interface_ops(TUNNEL_PORT, 1, None, None)
        ops[-2]["row"] |= {
            "type": "vxlan",
            "options": ["map", [["key", "flow"], ["remote_ip", "flow"]]],
        }
        bridge = {
            "name": BRIDGE,
            "fail_mode": "secure",
            "datapath_id": f"{self.dpid:016x}",
            "ports": _set(*(_port_uuid(n) for n in (BRIDGE, TUNNEL_PORT))),
        }
        ops.append({"op": "insert", "table": "Bridge", "uuid-name": "br", "row": bridge})
        system = {"external_ids": ["map", [["system-id", self.name]]], "bridges": _set("br")}
        ops.append({"op": "insert", "table": "Open_vSwitch", "row": system})
        self._transact(ops)
        # The VIFs in batches: one command-line argument holds at most 128 KiB.
        for first in range(0, len(ports), PORTS_PER_TRANSACTION):
            ops, names = [], []
            for port in ports[first : first + PORTS_PER_TRANSACTION]:
                names.append(self._port_name(port))
                ops += _interface_ops(names[-1], self._ofport(), port.id, port.mac)
            added = ["ports", "insert", _set(*map(_port_uuid, names))]
            where = [["name", "==", BRIDGE]]
            ops.append({"op": "mutate", "table": "Bridge", "where": where, "mutations": [added]})
            self._transact(ops)

    def _port_name(self, port: SimPort) -> str:
        return f"tap-{port.id}"[:15]

    def _ofport(self) -> int:
        self._next_ofport += 1
        return self._next_ofport - 1

    async def start(self, switches: FakeSwitches, ports: list[SimPort]) -> None:
        """The OVSDB with `ports` bound, the switch listening; the agent not yet started."""
        await asyncio.to_thread(self._start_db, ports)
        self.bridge = await switches.add(self.name, self.dpid, self.db.dir / f"{BRIDGE}.mgmt")
        config = AgentConfig(
            ovsdb=self.db.unix_target,
            ovs_rundir=str(self.db.dir),
            bridge=BRIDGE,
            vtep=self.vtep,
            system_id=self.name,
            node_name=self.name,
            session_ttl=self.session_ttl,
        )
        settings = run_settings(config, self.store_url)
        self.agent = VlcpProcess(f"vlcp-run-{self.name}", self.directory, settings, ["run"])

    async def plug(self, port: SimPort) -> None:
        """A new VIF for `port` on the bridge, as a hypervisor plugging a VM would add it."""
        name = self._port_name(port)
        ops = _interface_ops(name, self._ofport(), port.id, port.mac)
        ops.append(
            {
                "op": "mutate",
                "table": "Bridge",
                "where": [["name", "==", BRIDGE]],
                "mutations": [["ports", "insert", _set(f"p{name.replace('-', '_')}")]],
            }
        )
        await asyncio.to_thread(self._transact, ops)

    def stop(self) -> None:
        if self.agent is not None:
            self.agent.stop()
        self.db.stop()
