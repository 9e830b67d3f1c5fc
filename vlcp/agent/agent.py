"""The per-server controller: store + OVSDB in, flows and port status out.

Wiring only; the decisions live elsewhere: `view_builder.LocalView` (what this server
sees), `vlcp.pipeline` (the flows it implies, recompiled only for the owners a change
touches) and the reconciler (the difference to send). The store keys and bridge ports
that change are collected as they arrive; one task catches the view up with them after
each burst, hands the touched owners' flows to the reconciler, which sends only what
changed, and once the switch holds them announces the ports that changed, in one store
transaction. Every step costs what changed, not what the server holds. The modules the
flows are compiled with follow the server's wanted set in the store (`modules.py`); a
change of them hands every owner over again, and a module whose code raises is unloaded
rather than stopping the others.

Nothing here depends on the store being reachable once the state is loaded: during an
outage of any length the switch keeps its flows, local changes still reach it, and the
announcements wait; the store's return catches everything up (see `Presence` for the
server's liveness key and `announcer` for why port announcements are durable).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

from vlcp.layout import NETPORTS, chassis_key, netports_key, split_remote_key
from vlcp.pipeline.builtin import DEFAULT
from vlcp.pipeline.catalog import ModuleSet
from vlcp.pipeline.changes import Change
from vlcp.pipeline.module import Learned, ModuleFailed, PacketOut
from vlcp.pipeline.nexthops import Settings as NexthopSettings
from vlcp.pipeline.view import Owner, View
from vlcp.southbound.flow_manager import FlowManager
from vlcp.southbound.openflow.flow import output
from vlcp.southbound.openflow.messages import Meter
from vlcp.southbound.openflow.server import OpenFlowServer
from vlcp.southbound.ovsdb.cache import ChangeSet
from vlcp.southbound.ovsdb.client import OvsdbClient
from vlcp.southbound.ovsdb.monitor import Monitor
from vlcp.southbound.ovsdb.vswitch import BINDING_TABLES, DB, system_id
from vlcp.southbound.reconciler import Reconciler
from vlcp.store import Store, StoreError
from vlcp.store.presence import Presence
from vlcp.typed import dump, validate

from .announcer import Announcer, Location
from .binding import BridgePorts, OvsPort, date_bindings
from .bridge_setup import ensure_bridge
from .forwarding import forwarded_here, forwards_on, gratuitous_arps
from .mirror import VIEW_PREFIXES, Mirror
from .modules import Discovery, ModuleManager, discover
from .neighbours import Resolver
from .packet_in import PacketInDispatcher
from .view_builder import Identity, LocalView, linked_physnets

log = logging.getLogger(__name__)

BURST = 0.0
"""Seconds to let a burst of changes gather before catching up with them at once. Zero
still yields to the event loop once, so what has already arrived joins this catch-up,
and changes arriving while one runs are taken together by the next: the work batches
itself under load without a fixed delay on every port (measured: 4 ms from plug to up
at 10 ports, against 7 ms with a 2 ms gathering delay)."""
RETRY = 1.0
"""Seconds before trying again when catching up failed (the store or OVSDB is away)."""
RESOLVE_TICK = 0.25
"""Seconds between two steps of the next hop resolver: its own settings say how often
it asks each next hop (`nexthops.Settings.retry`); this only bounds how late."""


@dataclass(frozen=True)
class AgentConfig:
    """How to reach the local switch and who this server is."""

    ovsdb: str = "unix:/var/run/openvswitch/db.sock"
    ovs_rundir: str = "/var/run/openvswitch"
    openflow_listen: str | None = None
    """"tcp:HOST:PORT" or "unix:PATH": listen there and make it the bridge's controller.
    None: dial the bridge's `<ovs_rundir>/<bridge>.mgmt` socket (the default, because a
    restarted controller is then back at once; vswitchd's reconnect backoff to a
    listening controller can reach seconds, and ignores `max_backoff` on unix targets)."""
    bridge: str = "br-int"
    datapath_type: str = ""
    vtep: str | None = None
    system_id: str | None = None
    """Default: OVSDB's Open_vSwitch external_ids:system-id, else the node name."""
    node_name: str = "localhost"
    session_ttl: float = 10.0
    """Seconds without this controller before its presence (`chassis/<id>`) vanishes."""
    forwarding: bool = True
    """Whether this server may be elected forwarding server of the external networks on
    the physical networks it has a port of (`forwarding.elect`)."""


class Agent:
    """One server's controller; `run()` until cancelled."""

    def __init__(
        self, store: Store, config: AgentConfig, discovery: Discovery | None = None
    ) -> None:
        self.store = store
        self.config = config
        self.discovery = discovery or discover()
        """The modules this controller knows (the installed ones, fixed at start)."""
        self.modules: ModuleManager | None = None
        """The loaded modules, which the flows are compiled with (once the server's id is
        known: its wanted set is keyed by it)."""
        self.presence = Presence(store, config.session_ttl)
        self.announcer: Announcer | None = None
        self.mirror = Mirror(
            store, sorted({*VIEW_PREFIXES, *self.discovery.catalog.watches()}), scoped=True
        )
        """What the view and the known modules read, whether loaded or not: loading one
        then needs no new subscription, nor a read of what it missed. Scoped: of the
        networks and ports, only those this server's view needs (`LocalView.scopes`)."""
        self.ovsdb = OvsdbClient(config.ovsdb)
        self.monitor = Monitor(self.ovsdb, DB, BINDING_TABLES)
        self.server = OpenFlowServer()
        self.packet_ins = PacketInDispatcher(
            lambda: self.modules.current if self.modules is not None else None,
            lambda: self.local.view if self.local is not None else None,
            on_learned=self._learned,
        )
        self.resolver: Resolver | None = None
        """This server's ARP resolution of next hops outside vlcp (module `nexthops`)."""
        self.flows = FlowManager(self.server, on_event=self.packet_ins.on_event)
        self.identity: Identity | None = None
        self.local: LocalView | None = None
        self.bridge: BridgePorts | None = None
        self._seeded: set[int] = set()
        """Bridges (datapath ids) whose reconciler has been given every owner's flows."""
        self._dirty = asyncio.Event()
        self._keys: set[str] = set()
        """Store keys changed since the view last caught up."""
        self._names: set[str] = set()
        """Bridge ports (by name) changed since the view last caught up."""
        self._unannounced: set[str] = set()
        """Local ports whose announcement (up, down, where) is still to be written."""
        self._undated: dict[str, OvsPort] = {}
        """Bindings dated in memory whose date is still to be written to OVSDB."""
        self._announced: dict[str, str] | None = None
        """Port -> the network this server announces it in; None until read from the store
        (a restarted controller finds there what it announced before)."""
        self._forwards: list[str] = []
        """The physical networks this server's presence says it may forward on."""
        self._forwarding: frozenset[str] = frozenset()
        """The external networks this server forwards for, as its switch has it."""

    async def run(self) -> None:
        await self.ovsdb.start()
        await self.monitor.start()
        self.identity = Identity(
            system_id=self.config.system_id or system_id(self.monitor) or self.config.node_name,
            bridge=self.config.bridge,
            vtep=self.config.vtep,
        )
        cfg = self.config
        if cfg.openflow_listen:
            await self.server.listen(cfg.openflow_listen)
        controllers = [cfg.openflow_listen] if cfg.openflow_listen else []
        await ensure_bridge(
            self.ovsdb, self.monitor, cfg.bridge, cfg.datapath_type, cfg.vtep, controllers
        )
        self.announcer = Announcer(self.store, self.identity.system_id)
        self.resolver = Resolver(self.identity.system_id)
        self.modules = ModuleManager(self.discovery, self.identity.system_id)
        self.mirror.follow(*self.modules.keys)
        await self._present(await self._previous_forwards())
        self.bridge = BridgePorts(self.monitor, cfg.bridge)
        self.local = LocalView(self.identity)
        self._names.update(self.bridge.ports)
        self.monitor.add_listener(self._on_ovsdb)
        self.mirror.add_listener(self._on_store)
        tasks = [
            self.presence.run(),
            self.mirror.run(),
            self.flows.run(),
            self._converge(),
            self._resolve(),
        ]
        if cfg.openflow_listen:
            openflow = f"listening on {cfg.openflow_listen}"
        else:
            mgmt = f"unix:{cfg.ovs_rundir}/{cfg.bridge}.mgmt"
            openflow = f"dialling {mgmt}"
            tasks.append(self.flows.dial(mgmt))
        log.info("agent %s on bridge %s (%s)", self.identity.system_id, cfg.bridge, openflow)
        try:
            async with asyncio.TaskGroup() as group:
                for task in tasks:
                    group.create_task(task)
        finally:
            await self.presence.close()
            await self.server.close()
            await self.monitor.stop()
            await self.ovsdb.close()

    def _on_ovsdb(self, changes: ChangeSet) -> None:
        assert self.bridge is not None
        self._names |= self.bridge.update(changes)
        self._dirty.set()

    def _on_store(self, keys: set[str]) -> None:
        self._keys |= keys
        self._dirty.set()

    async def _converge(self) -> None:
        """Catch up with every change, push flows, then announce what is installed."""
        await self.mirror.ready.wait()
        await self.monitor.wait_synced()
        self._dirty.set()
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await asyncio.sleep(BURST)
            try:
                await self._apply()
            except StoreError as exc:  # an outage: the switch is up to date, the store waits
                log.warning("announcements wait for the store: %s", exc)
                await asyncio.sleep(RETRY)
                self._dirty.set()
            except Exception:  # keep the controller alive, and try again shortly
                log.exception("could not apply the latest changes; starting over from the store")
                self._start_over()
                await asyncio.sleep(RETRY)
                self._dirty.set()

    def _start_over(self) -> None:
        """Forget the incremental state after an unexpected failure part-way through
        `_apply`, which consumed changes it may not have acted on: the next round rebuilds
        the view from the whole mirror and bridge and hands every owner's flows to the
        reconciler again. The switch keeps its flows; only what differs is sent."""
        assert self.identity is not None and self.bridge is not None
        self.local = LocalView(self.identity)
        self._seeded.clear()
        self._keys |= set(self.mirror.values)
        self._names |= set(self.bridge.ports)

    async def _apply(self) -> None:
        assert self.local is not None and self.bridge is not None
        assert self.modules is not None
        if self.modules.update(self.mirror.get):
            self._seeded.clear()  # other modules: every owner's flows again
        keys, self._keys = self._keys, set()
        names, self._names = self._names, set()
        for port in self.bridge.date(names, time.time()):
            self._undated[port.name] = port
        delta = self.local.update(self.mirror, self.bridge.ports, keys, names)
        self.mirror.scope(self.local.scopes())
        owners = delta.owners | self.local.learned(self._resolve_step())
        view = self.local.view
        self._unannounced |= delta.ports
        for key in keys:
            if key.startswith(NETPORTS) and (port := split_remote_key(key)[1]) in view.ports:
                self._unannounced.add(port)  # replaced by another server
        dpid = self._dpid()
        if dpid is None:
            return  # no switch yet: seeding it, once it is there, sends everything
        reconciler = self.flows.reconciler(dpid)
        seeded = dpid in self._seeded
        if not seeded and not self.mirror.settled:
            return  # every owner's flows only from every scope the view needs: next round
        await self._meter(dpid, view, None if not seeded else delta.ports)
        if seeded:
            self._push(reconciler, view, owners)
        else:  # a new bridge, new modules or starting over: every owner, base included
            log.info(
                "every owner's flows (%d keys at revision %d, %d local ports, modules %s): "
                "reconciling %016x",
                len(self.mirror.values),
                self.mirror.revision,
                len(view.ports),
                ", ".join(sorted(self.modules.current.loaded)),
                dpid,
            )
            self._push(reconciler, view, None)
        self._seeded.add(dpid)
        reconciler.desired_complete()  # seeded from a loaded mirror: safe to reconcile
        await reconciler.synced()
        self._take_over(view)
        await self._offer_forwarding()
        await self.modules.publish(self.store)
        await self._announce()
        if self._undated:  # now that the ports are up, keep their dates with them
            undated, self._undated = self._undated, {}
            try:
                await date_bindings(self.ovsdb, undated.values())
            except Exception:
                self._undated = undated | self._undated
                raise

    async def _present(self, forwards: list[str]) -> None:
        """This server's presence (`chassis/<id>`): where the others tunnel to it, and the
        physical networks it may forward on (`forwarding`)."""
        assert self.identity is not None
        cfg = self.config
        self._forwards = forwards
        value = {
            "vtep": cfg.vtep,
            "bridge": cfg.bridge,
            "node": cfg.node_name,
            "forwards": forwards,
        }
        await self.presence.put(chassis_key(self.identity.system_id), value)

    async def _previous_forwards(self) -> list[str]:
        """What this server's presence said before a restart (a killed controller's
        session holds it until it expires): kept until the first catch-up says otherwise,
        so that a restarting forwarding server is not replaced for that moment."""
        assert self.identity is not None
        key = chassis_key(self.identity.system_id)
        if not self.config.forwarding:
            return []
        try:
            value = (await self.store.read([key])).values.get(key)
        except StoreError:
            return []
        return sorted(forwards_on(value))

    async def _offer_forwarding(self) -> None:
        """Say which physical networks this server has a port of, when it may forward."""
        assert self.identity is not None and self.bridge is not None
        if not self.config.forwarding:
            return
        forwards = sorted(linked_physnets(self.mirror, self.bridge.ports, self.identity))
        if forwards != self._forwards:
            await self._present(forwards)

    def _take_over(self, view: View) -> None:
        """Newly elected for external networks (its flows now installed): announce their
        routers' addresses, so that the physical switches learn this server's port."""
        here = forwarded_here(view)
        new, self._forwarding = here - self._forwarding, here
        if new:
            log.info("forwarding server of %s", ", ".join(sorted(new)))
            self._send(gratuitous_arps(view, new), "a gratuitous ARP")

    def _send(self, packets: Iterable[PacketOut], what: str) -> None:
        """Packet-outs to the switch, if connected (a closed connection drops them)."""
        dpid = self._dpid()
        switch = self.server.switches.get(dpid) if dpid is not None else None
        for packet in packets if switch is not None else ():
            try:
                switch.packet_out(packet.data, (output(packet.port),))
            except Exception as exc:
                log.info("could not send %s: %s", what, exc)

    def _dpid(self) -> int | None:
        """The integration bridge's datapath id, once OVSDB has it."""
        bridge = self.monitor.find("Bridge", name=self.config.bridge)
        return _datapath_id(bridge[0][1]) if bridge else None

    def _learned(self, fact: Learned, now: float) -> None:
        """An outside next hop answered (a `nexthops` packet-in): into the view next round."""
        if self.resolver is not None:
            self.resolver.learn(fact, now)
            self._dirty.set()

    async def _resolve(self) -> None:
        """Ask the outside next hops for their MACs on time, and notice answers that age
        out, between the rounds that changes of the store or the bridge start."""
        while True:
            await asyncio.sleep(RESOLVE_TICK)
            try:
                if self._resolve_step():
                    self._dirty.set()
            except Exception:  # the next tick tries again; the rest of the agent goes on
                log.exception("could not resolve next hops")

    def _resolve_step(self) -> list[Change]:
        """One step of the resolver: its ARP requests sent now, the view's changes
        returned (none while `nexthops` is not loaded)."""
        modules, resolver, local = self.modules, self.resolver, self.local
        if modules is None or resolver is None or local is None:
            return []
        if "nexthops" not in modules.current.loaded:
            return []
        settings = modules.current.context("nexthops").settings
        # as data: a reloaded module's settings are of its new class
        resolver.settings = validate(NexthopSettings, dump(settings) if settings else {})
        changes, requests = resolver.step(local.view, time.monotonic())
        self._send(requests, "an ARP request for a next hop")  # else on the next connection
        return changes

    async def _meter(self, dpid: int, view: View, ports: Iterable[str] | None) -> None:
        """Give the `ports` (None: every local port) their packet-in meters, on the switch
        before the flows that name them: OVS binds a flow to its meter when the flow is
        added, and one added before its meter stays unmetered."""
        assert self.modules is not None
        meters = self.flows.meter_keeper(dpid)
        budget = self.modules.current.packet_in_budget()
        if ports is None:
            meters.replace(
                {p: m for p in view.ports if (m := port_meter(view, p, budget)) is not None}
            )
        else:
            for port_id in ports:
                meters.set_meter(port_id, port_meter(view, port_id, budget))
        meters.complete()
        await meters.sync()

    def _push(self, reconciler: Reconciler, view: View, touched: Iterable[Owner] | None) -> None:
        assert self.modules is not None
        if push_isolated(reconciler, view, touched, self.modules):
            self._seeded.clear()  # the modules changed: other bridges need every owner

    async def _announce(self) -> None:
        """Mark installed ports up (and where they are); withdraw ports no longer here.

        A few transactions per burst of changes, not per port (see `Announcer`). Only what
        differs from the store is written, so a restarted controller with nothing new
        writes nothing. A port yielded to a newer binding elsewhere is withdrawn the same
        way: its keys, now the other server's, are left alone. A failure keeps the ports
        for next time.
        """
        assert self.identity is not None and self.local is not None
        assert self.announcer is not None
        announced = self._previously_announced()
        up: dict[str, Location] = {}
        gone: dict[str, str] = {}
        for port_id in self._unannounced:
            port = self.local.view.ports.get(port_id)
            network = announced.get(port_id)
            if network is not None and (port is None or port.network != network):
                gone[port_id] = network
            if port is not None:
                entry = {
                    "host": self.identity.system_id,
                    "vtep": self.config.vtep,
                    "mac": port.mac,
                    "ip": port.ip,
                    "bound_at": self.local.bound_at(port_id),
                }
                location = Location(port.network, entry)
                if self.mirror.get(netports_key(port.network, port_id)) != entry:
                    up[port_id] = location
        now = time.time()
        await self.announcer.withdraw(gone, now)
        await self.announcer.announce(up, now)
        for port_id in self._unannounced:
            port = self.local.view.ports.get(port_id)
            if port is None:
                announced.pop(port_id, None)
            else:
                announced[port_id] = port.network
        self._unannounced.clear()

    def _previously_announced(self) -> dict[str, str]:
        """What this server announced, read once from the loaded mirror after a start.

        A port unplugged while the controller was down is still announced there; it is
        queued, so the first announcement withdraws it. The one pass over the mirror's
        index is paid once per start.
        """
        if self._announced is None:
            assert self.identity is not None
            me = self.identity.system_id
            self._announced = {
                port: network
                for network, ports in self.mirror.netports.items()
                for port, entry in ports.items()
                if isinstance(entry, dict) and entry.get("host") == me
            }
            self._unannounced |= self._announced.keys()
        return self._announced


def push_flows(
    reconciler: Reconciler,
    view: View,
    touched: Iterable[Owner] | None,
    modules: ModuleSet = DEFAULT,
) -> None:
    """Give the reconciler the flows of the `touched` owners, recompiled from `view` by
    the loaded `modules`.

    None means every owner: the desired state becomes exactly the view's, and owners the
    reconciler still holds but the view no longer has (left by an interrupted round) go.
    (A change of the loaded modules touches every owner: pass None.)
    """
    if touched is None:
        touched = frozenset(modules.owners(view))
        for stale in reconciler.owners() - touched:
            reconciler.remove_owner(stale)
    for owner in touched:
        reconciler.set_flows(owner, modules.compile_owner(view, owner))


def push_isolated(
    reconciler: Reconciler,
    view: View,
    touched: Iterable[Owner] | None,
    modules: ModuleManager,
) -> bool:
    """`push_flows` with the manager's loaded modules; a module whose code raises is
    unloaded (with what needs it) and every owner handed over again without it, so one
    broken module never stops the others, nor makes the agent start over and over.
    Returns whether a module was unloaded."""
    failed = False
    while True:
        try:
            push_flows(reconciler, view, touched, modules.current)
            return failed
        except ModuleFailed as failure:
            modules.fail(failure)
            failed, touched = True, None


def port_meter(view: View, port_id: str, budget: tuple[float, int] | None) -> Meter | None:
    """The meter a local port's packet-ins go through (`to_controller`): the loaded
    modules' packet-in budget, rounded up to whole packets; none without packet-ins."""
    port = view.ports.get(port_id)
    if port is None or budget is None or not port.ofport:
        return None
    rate, burst = budget
    return Meter(port.ofport, max(1, math.ceil(rate)), burst)


def _datapath_id(row: dict) -> int | None:
    value = row.get("datapath_id")
    try:
        return int(str(value), 16) if value else None
    except ValueError:
        return None
