"""The per-server controller: store + OVSDB in, flows and port status out.

Wiring only; the decisions live in pure functions: `view_builder.build_view` (what this
server sees), `vlcp.pipeline` (the flows it implies, recompiled only for the owners a
change touches) and the reconciler (the difference to send). Any change, from the store
or from OVSDB, marks the view dirty; one task rebuilds it and hands the touched owners'
flows to the reconciler, which sends only what changed. Once the switch holds a port's
flows, the port is announced up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from vlcp.pipeline.changes import apply_all
from vlcp.pipeline.compile import compile_owner, owners
from vlcp.pipeline.view import View
from vlcp.southbound.flow_manager import FlowManager
from vlcp.southbound.openflow.server import OpenFlowServer
from vlcp.southbound.ovsdb.client import OvsdbClient
from vlcp.southbound.ovsdb.monitor import Monitor
from vlcp.southbound.ovsdb.vswitch import BINDING_TABLES, DB, system_id
from vlcp.store import Session, Store

from .binding import bridge_ports
from .bridge_setup import ensure_bridge
from .mirror import Mirror
from .view_builder import Identity, build_view, netports_key
from .view_diff import diff_views

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentConfig:
    """How to reach the local switch and who this server is."""

    ovsdb: str = "unix:/var/run/openvswitch/db.sock"
    ovs_rundir: str = "/var/run/openvswitch"
    bridge: str = "br-int"
    datapath_type: str = ""
    vtep: str | None = None
    system_id: str | None = None
    """Default: OVSDB's Open_vSwitch external_ids:system-id, else the node name."""
    node_name: str = "localhost"


class Agent:
    """One server's controller; `run()` until cancelled."""

    def __init__(self, store: Store, config: AgentConfig, session: Session) -> None:
        self.store = store
        self.config = config
        self.session = session
        self.mirror = Mirror(store)
        self.ovsdb = OvsdbClient(config.ovsdb)
        self.monitor = Monitor(self.ovsdb, DB, BINDING_TABLES)
        self.server = OpenFlowServer()
        self.flows = FlowManager(self.server)
        self.identity: Identity | None = None
        self.view = View()
        self._seeded: set[int] = set()
        """Bridges (datapath ids) whose reconciler has been given every owner's flows."""
        self._dirty = asyncio.Event()
        self._announced: dict[str, tuple[str, dict]] = {}

    async def run(self) -> None:
        await self.ovsdb.start()
        await self.monitor.start()
        self.identity = Identity(
            system_id=self.config.system_id or system_id(self.monitor) or self.config.node_name,
            bridge=self.config.bridge,
            vtep=self.config.vtep,
        )
        cfg = self.config
        await ensure_bridge(self.ovsdb, self.monitor, cfg.bridge, cfg.datapath_type, cfg.vtep)
        await self.session.put(
            f"chassis/{self.identity.system_id}",
            {"vtep": cfg.vtep, "bridge": cfg.bridge, "node": cfg.node_name},
        )
        self.monitor.add_listener(lambda _changes: self._dirty.set())
        self.mirror.add_listener(lambda _keys: self._dirty.set())
        mgmt = f"unix:{cfg.ovs_rundir}/{cfg.bridge}.mgmt"
        log.info("agent %s on bridge %s (%s)", self.identity.system_id, cfg.bridge, mgmt)
        tasks = [self.mirror.run(), self.flows.run(), self.flows.dial(mgmt), self._converge()]
        try:
            async with asyncio.TaskGroup() as group:
                for task in tasks:
                    group.create_task(task)
        finally:
            await self.server.close()
            await self.monitor.stop()
            await self.ovsdb.close()

    async def _converge(self) -> None:
        """Rebuild the view on every change, push flows, then announce what is installed."""
        await self.mirror.ready.wait()
        await self.monitor.wait_synced()
        self._dirty.set()
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await asyncio.sleep(0.005)  # let a burst of changes collapse into one rebuild
            try:
                await self._apply()
            except Exception:  # keep the controller alive; the next change retries
                log.exception("could not apply the view")

    async def _apply(self) -> None:
        assert self.identity is not None
        ports = bridge_ports(self.monitor, self.config.bridge)
        view = build_view(self.mirror.values, ports, self.identity)
        bridge = self.monitor.find("Bridge", name=self.config.bridge)
        if not bridge:
            return
        dpid = _datapath_id(bridge[0][1])
        if dpid is None:
            return
        reconciler = self.flows.reconciler(dpid)
        self.view, touched = apply_all(self.view, diff_views(self.view, view))
        if dpid not in self._seeded:  # a new bridge: every owner, the base flows included
            touched = frozenset(owners(self.view))
            self._seeded.add(dpid)
        for owner in touched:
            reconciler.set_flows(owner, compile_owner(self.view, owner))
        await reconciler.synced()
        await self._announce(view)

    async def _announce(self, view: View) -> None:
        """Mark installed ports up (and where they are); withdraw ports no longer here."""
        assert self.identity is not None
        wanted: dict[str, tuple[str, dict]] = {}
        for port in view.ports.values():
            entry = {
                "host": self.identity.system_id,
                "vtep": self.config.vtep,
                "mac": port.mac,
                "ip": port.ip,
            }
            wanted[port.id] = (port.network, entry)
        for port_id, (network, entry) in wanted.items():
            if self._announced.get(port_id) == (network, entry):
                continue
            await self.session.put(netports_key(network, port_id), entry)
            status = {"state": "up", "host": self.identity.system_id, "since": time.time()}
            await self.session.put(f"lport-status/{port_id}", status)
            self._announced[port_id] = (network, entry)
        for port_id in set(self._announced) - set(wanted):
            network, _ = self._announced.pop(port_id)
            down = {"state": "down", "host": self.identity.system_id, "since": time.time()}
            with contextlib.suppress(Exception):  # the port may be gone from the store too
                await self.session.delete(netports_key(network, port_id))
                if self.mirror.get(f"lport/{port_id}") is not None:
                    await self.session.put(f"lport-status/{port_id}", down)


def _datapath_id(row: dict) -> int | None:
    value = row.get("datapath_id")
    try:
        return int(str(value), 16) if value else None
    except ValueError:
        return None
