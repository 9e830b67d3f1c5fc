"""`vlcp demo`: two servers on this machine, two tenants with the same addresses, isolated,
each with two subnets joined by its own distributed router, and the way out to a data
center router on the physical network and back.

The lab (:mod:`vlcp.lab`) gives each "server" a private Open vSwitch in its own network
namespace, joins them by an underlay link (VXLAN) and a trunk (VLAN) on the same
physical segment (each server's `br-phy`, a learning switch), and plugs hosts
(namespaces) into them; the data center is a host on that segment, in the external
network's VLAN. One agent per server and the API share a sqlite store in a temporary
directory. Everything created carries a per-run prefix and is removed on exit, by name and
by PID, also on errors and Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from .config import parse_listen
from .lab import naming
from .lab.netns import cleanup_all, create_veth
from .lab.ovs import (
    UNDERLAY_BRIDGE,
    Host,
    Hypervisor,
    OvsLab,
    connect_underlay,
    missing_tools,
)
from .lab.servers import BRIDGE, agent_config, wait_for_bridge
from .model.service import Model
from .serve import ApiServer, start_agent
from .store import Store, open_store
from .tasks import stop_tasks

TRUNK = "trunk0"
SERVERS = ("hv0", "hv1")
SUBNETS = {"": ("10.0.0.0/24", "10.0.0.254"), "2": ("10.0.1.0/24", "10.0.1.254")}
"""Each tenant's subnets (network `net-<tenant><suffix>`): CIDR and gateway, the same in
both tenants."""


@dataclass(frozen=True)
class DemoHost:
    """A logical port of a tenant, plugged as a host namespace on one server."""

    port: str
    tenant: str
    server: str
    ip: str
    mac: str
    suffix: str = ""
    """Which of the tenant's networks (`SUBNETS`)."""

    @property
    def network(self) -> str:
        return f"net-{self.tenant}{self.suffix}"

    @property
    def subnet(self) -> str:
        return f"sub-{self.tenant}{self.suffix}"


HOSTS = (
    DemoHost("a1", "a", "hv0", "10.0.0.1", "02:00:00:00:00:01"),
    DemoHost("a2", "a", "hv1", "10.0.0.2", "02:00:00:00:00:02"),
    DemoHost("a4", "a", "hv0", "10.0.0.4", "02:00:00:00:00:04"),
    DemoHost("b1", "b", "hv0", "10.0.0.1", "02:00:00:00:00:01"),
    DemoHost("b2", "b", "hv1", "10.0.0.2", "02:00:00:00:00:02"),
    DemoHost("b3", "b", "hv1", "10.0.0.3", "02:00:00:00:00:03"),
    DemoHost("a5", "a", "hv1", "10.0.1.5", "02:00:00:00:00:05", "2"),
    DemoHost("b5", "b", "hv1", "10.0.1.5", "02:00:00:00:00:05", "2"),
)
"""a1/b1 and a2/b2 share IP and MAC; 10.0.0.4 exists only in tenant A, 10.0.0.3 only in B;
a5/b5 share theirs too, in each tenant's second subnet, reached through its router."""

EXTERNAL = ("10.200.0.0/24", "10.200.0.1")
"""The external subnet both routers join (each at an address of its own) and its gateway,
the data center's router."""
BEYOND = "198.51.100.1"
"""An address behind the data center's router (on its loopback)."""
DATACENTER = DemoHost("dc", "dc", "hv1", EXTERNAL[1], "02:00:00:00:0d:01")
"""The data center's router: a namespace on the physical segment, in the external VLAN;
it routes the tenant CIDRs back through router A's external address only."""

TENANTS = {"a": ("vx", "vl"), "b": ("vl", "vx")}
"""Each tenant's physical networks: its first network's and its second's (the other type)."""
KINDS = {"vx": "VXLAN", "vl": "VLAN"}

EXPECTATIONS = (
    # (source port, destination IP, must it answer?)
    ("a1", "10.0.0.2", True),
    ("a2", "10.0.0.1", True),
    ("a2", "10.0.0.4", True),
    ("b1", "10.0.0.2", True),
    ("b2", "10.0.0.1", True),
    ("b1", "10.0.0.3", True),
    ("a1", "10.0.0.3", False),
    ("a2", "10.0.0.3", False),
    ("b1", "10.0.0.4", False),
    ("b2", "10.0.0.4", False),
    # routed, on the source server, VXLAN <-> VLAN (A) and VLAN <-> VXLAN (B)
    ("a1", "10.0.1.5", True),
    ("a5", "10.0.0.4", True),
    ("b1", "10.0.1.5", True),
    ("b5", "10.0.0.3", True),
    ("a5", "10.0.0.3", False),
    ("b5", "10.0.0.4", False),
    # the way out and back in, through the forwarding server (hv0, the lowest id with the
    # physical link): from it and from the other server, and from outside
    ("a1", BEYOND, True),
    ("a5", BEYOND, True),
    ("dc", "10.0.1.5", True),
    ("b1", BEYOND, False),
)


def run_demo(*, check: bool, listen: str | None, echo: Callable[[str], None] = click.echo) -> bool:
    """Build, verify, (unless ``check``) wait for Ctrl-C, clean up; True if all held."""
    if os.geteuid() != 0:
        raise click.ClickException(
            "vlcp demo needs root: it creates network namespaces and private Open vSwitch "
            "daemons (try: sudo vlcp demo)"
        )
    missing = missing_tools()
    if missing:
        raise click.ClickException(f"vlcp demo needs these programs: {', '.join(missing)}")
    prefix = f"vd{os.getpid() % 100000:05d}"
    naming.set_run_prefix(prefix)
    echo(f"vlcp demo: run prefix {prefix} (namespaces, interfaces and temp dirs carry it)")
    workdir = Path(tempfile.mkdtemp(prefix=f"{prefix}-demo-"))
    lab = OvsLab()
    # SIGTERM (like Ctrl-C) interrupts whatever runs, so the cleanup below always happens.
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return asyncio.run(_demo(lab, workdir, check=check, listen=listen, echo=echo))
    except KeyboardInterrupt:
        echo("interrupted")
        return False
    finally:
        _ignore_signals()
        echo("cleaning up: hosts, OVS daemons, namespaces, temp dirs ...")
        with contextlib.suppress(Exception):
            lab.close()
        for error in cleanup_all():
            echo(f"cleanup: {error}")
        shutil.rmtree(workdir, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        echo("cleaned up")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _ignore_signals() -> None:
    """While cleaning up, a second Ctrl-C or SIGTERM must not cut the cleanup short."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


async def _demo(
    lab: OvsLab, workdir: Path, *, check: bool, listen: str | None, echo: Callable[[str], None]
) -> bool:
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, main.cancel)
    url = f"sqlite://{workdir}/state.db"
    stores: list[Store] = []
    tasks: list[asyncio.Task[None]] = []
    api: ApiServer | None = None
    try:
        echo(f"building servers {', '.join(SERVERS)} (private OVS in network namespaces) ...")
        hvs = await asyncio.to_thread(_build_servers, lab)
        for name, hv in hvs.items():
            store = await open_store(url)
            stores.append(store)
            _, task = start_agent(store, agent_config(hv, name))
            tasks.append(task)
            await wait_for_bridge(hv, task)
            echo(f"  {name}: netns {hv.netns}, OVSDB {hv.db_target}, VTEP {hv.vtep_ip}, agent up")
        await asyncio.to_thread(_add_trunk, hvs)
        api_store = await open_store(url)
        stores.append(api_store)
        host, port = _listen(listen)
        api = ApiServer(api_store, host, port)
        await api.start()
        echo(f"API: {api.url}  (try: curl {api.url}/v1/logical-networks)")
        model = Model(api_store)
        await _describe(model)
        external = await _describe_external(model)
        echo("plugging hosts ...")
        hosts = await asyncio.to_thread(_plug_hosts, lab, hvs)
        vlan = (await model.get("logical-networks", "net-ext"))["vlanid"]
        hosts["dc"] = await asyncio.to_thread(_datacenter, lab, hvs, vlan, external)
        for demo_host in HOSTS:
            await model.wait_port_up(demo_host.port, timeout=30)
            _check_agents(tasks)
        echo("all ports up")
        held = await _verify(hosts, echo)
        if check:
            return held
        echo(f"the demo keeps running; the API is at {api.url}. Ctrl-C to stop and clean up.")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:  # Ctrl-C or SIGTERM: the way this phase ends
            echo("stopping")
        return held
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        _ignore_signals()
        await stop_tasks(tasks)
        if api is not None:
            await api.stop()
        for store in stores:
            with contextlib.suppress(Exception):
                await store.close()


def _listen(listen: str | None) -> tuple[str, int]:
    if listen:
        return parse_listen(listen)
    return "127.0.0.1", naming.free_tcp_ports(1)[0]


def _build_servers(lab: OvsLab) -> dict[str, Hypervisor]:
    hvs = {name: lab.hypervisor(name) for name in SERVERS}
    connect_underlay(hvs["hv0"], hvs["hv1"])
    return hvs


def _add_trunk(hvs: dict[str, Hypervisor]) -> None:
    """A 'physical' VLAN trunk from each integration bridge to its server's `br-phy` (the
    segment the underlay link joins, like a NIC cabled to a top-of-rack switch)."""
    for hv in hvs.values():
        create_veth(TRUNK, hv.netns, f"{TRUNK}-phy", hv.netns)
        hv.vsctl("add-port", BRIDGE, TRUNK)
        hv.vsctl("add-port", UNDERLAY_BRIDGE, f"{TRUNK}-phy")


def _check_agents(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        if task.done():
            task.result()  # raises the agent's error
            raise RuntimeError(f"{task.get_name()} stopped")


async def _describe(model: Model) -> None:
    """Tenant A over VXLAN then VLAN, tenant B over VLAN then VXLAN, with the same subnets,
    addresses and routers."""
    await model.create(
        "physical-networks", {"id": "vx", "type": "vxlan", "vnirange": [[5000, 5999]]}
    )
    await model.create("physical-networks", {"id": "vl", "type": "vlan", "vlanrange": [[100, 199]]})
    await model.create("physical-ports", {"physicalnetwork": "vl", "name": TRUNK})
    for tenant, physnets in TENANTS.items():
        await model.create("routers", {"id": f"router-{tenant}"})
        for physnet, (suffix, (cidr, gateway)) in zip(physnets, SUBNETS.items(), strict=True):
            network, subnet = f"net-{tenant}{suffix}", f"sub-{tenant}{suffix}"
            await model.create("logical-networks", {"id": network, "physicalnetwork": physnet})
            await model.create(
                "subnets",
                {"id": subnet, "logicalnetwork": network, "cidr": cidr, "gateway": gateway},
            )
            await model.add_router_interface(f"router-{tenant}", {"subnet": subnet})
    for h in HOSTS:
        await model.create(
            "logical-ports",
            {
                "id": h.port,
                "logicalnetwork": h.network,
                "subnet": h.subnet,
                "mac_address": h.mac,
                "ip_address": h.ip,
            },
        )


async def _describe_external(model: Model) -> str:
    """The external network (VLAN) and subnet, joined by both routers; router A's address
    there (the data center's route back to tenant A)."""
    cidr, gateway = EXTERNAL
    await model.create("logical-networks", {"id": "net-ext", "physicalnetwork": "vl"})
    subnet = {"logicalnetwork": "net-ext", "cidr": cidr, "gateway": gateway, "isexternal": True}
    await model.create("subnets", {"id": "sub-ext", **subnet})
    for tenant in TENANTS:
        await model.add_router_interface(f"router-{tenant}", {"subnet": "sub-ext"})
    router = await model.get("routers", "router-a")
    return next(i["ip_address"] for i in router["interfaces"] if i["subnet"] == "sub-ext")


def _plug_hosts(lab: OvsLab, hvs: dict[str, Hypervisor]) -> dict[str, Host]:
    """Every host, routing the other subnet of its tenant and the outside through its own
    gateway."""
    hosts = {}
    for h in HOSTS:
        host = lab.host(hvs[h.server], BRIDGE, f"{h.ip}/24", mac=h.mac, iface_id=h.port)
        (other,) = (cidr for suffix, (cidr, _) in SUBNETS.items() if suffix != h.suffix)
        for destination in (other, EXTERNAL[0], f"{BEYOND}/32"):
            host.exec("ip", "route", "add", destination, "via", SUBNETS[h.suffix][1])
        hosts[h.port] = host
    return hosts


def _datacenter(lab: OvsLab, hvs: dict[str, Hypervisor], vlan: int, router_a: str) -> Host:
    """The data center's router on the physical segment, in the external VLAN, with
    `BEYOND` behind it and the tenant CIDRs routed back through router A."""
    dc = DATACENTER
    hv = hvs[dc.server]
    cidr = f"{dc.ip}/{EXTERNAL[0].split('/')[1]}"
    host = lab.host(hv, UNDERLAY_BRIDGE, cidr, mac=dc.mac, name="datacenter")
    hv.vsctl("set", "port", host.port_name, f"tag={vlan}")
    host.exec("ip", "addr", "add", f"{BEYOND}/32", "dev", "lo")
    for cidr, _ in SUBNETS.values():
        host.exec("ip", "route", "add", cidr, "via", router_a)
    return host


def _where(port: str) -> DemoHost:
    return next(h for h in (*HOSTS, DATACENTER) if h.port == port)


def _owner(ip: str, tenant: str) -> str:
    """Which port of ``tenant`` has ``ip``, or a note that only the other tenant has it."""
    if ip == BEYOND:
        return "outside" if tenant == "a" else "outside, back via A"
    if tenant == DATACENTER.tenant:
        return f"{_owner(ip, 'a')} via A"
    for h in HOSTS:
        if h.ip == ip and h.tenant == tenant:
            return f"{h.port} ({h.server})"
    other = next(h for h in HOSTS if h.ip == ip)
    return f"only in tenant {other.tenant.upper()}"


async def _verify(hosts: dict[str, Host], echo: Callable[[str], None]) -> bool:
    # OVS drops the first packet to a new tunnel peer while it resolves the peer's MAC on
    # the underlay: a first ping through each path keeps that out of the results.
    for src, dst in (("a1", "10.0.0.2"), ("b1", "10.0.0.2")):
        await asyncio.to_thread(hosts[src].ping_ok, dst, deadline=10)
    echo("")
    for tenant, physnets in TENANTS.items():
        networks = ", ".join(
            f"net-{tenant}{suffix} {cidr} over {KINDS[physnet]}"
            for physnet, (suffix, (cidr, _)) in zip(physnets, SUBNETS.items(), strict=True)
        )
        echo(f"tenant {tenant.upper()}: {networks}, routed by router-{tenant}")
    echo("a1/b1 = 10.0.0.1 02:00:00:00:00:01, a2/b2 = 10.0.0.2 02:00:00:00:00:02 and")
    echo("a5/b5 = 10.0.1.5 02:00:00:00:00:05: the same addresses in both tenants")
    echo(f"outside: {EXTERNAL[0]} (VLAN), both routers on it; dc = {DATACENTER.ip}, the data")
    echo(f"center's router, with {BEYOND} behind it, routes the tenant CIDRs back via A only")
    echo("")
    header = f"{'expect':<7} {'from':<16} {'to':<34} {'ping':<9} result"
    echo(header)
    echo("-" * len(header))
    failures = 0
    for src, dst, must_work in EXPECTATIONS:
        s = _where(src)
        replied = await asyncio.to_thread(hosts[src].ping_ok, dst, deadline=10 if must_work else 3)
        ok = replied == must_work
        failures += not ok
        echo(
            f"{'works' if must_work else 'fails':<7} "
            f"{f'{src} ({s.tenant.upper()}, {s.server})':<16} "
            f"{f'{dst} {_owner(dst, s.tenant)}':<34} "
            f"{'replied' if replied else 'no reply':<9} "
            f"{'OK' if ok else 'UNEXPECTED'}"
        )
    echo("")
    total = len(EXPECTATIONS)
    if failures:
        echo(f"demo check: {failures} of {total} expectations FAILED")
    else:
        echo(f"demo check: all {total} expectations held")
    return failures == 0
