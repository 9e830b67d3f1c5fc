"""Router benchmark: the first routed ping to a new port on another server, vlcp and OVN.

    make bench-router                    # 100 ports, two servers; needs root
    .venv/bin/python bench/router.py --systems ovn --sizes 20

Each system starts as in bench/portup.py (same classes and private lab, prefixed `rtNNNNN`,
everything removed at the end), on two servers, with two subnets of one tenant attached to
one router: `sub` (10.0.0.0/16, gateway 10.0.255.254) with the peer on hv0, and `sub2`
(10.1.0.0/16, gateway 10.1.255.254) where the measured ports go, all on hv1 (vlcp: a
second logical network on the same VXLAN physical network, a router with an interface on
each subnet; OVN: a second logical switch and a logical router with a port on each). Every
host's default route is its subnet's gateway.

1. Flows per router interface: the flows on both servers before the router's interfaces
   are added and after (both subnets already have a port), over the two interfaces.
2. Routed first ping, one port at a time: t0, the create call, the plug (`iface-id` on the
   host's veth), then the peer pings the port's address until the first reply; the time
   is t0 -> that reply. The first packet crosses the router on hv0 and the tunnel to hv1.
3. Flows per routed port: the flows the N ports added, over N.

Prints a table and writes bench/results/router.json; a port never answering fails a check
(non-zero exit after writing the JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Checks
from bench.portup import (
    PEER_IP,
    PEER_MAC,
    RESOURCE_ROWS,
    SUBNET,
    WARM,
    Ovn,
    Row,
    System,
    Vlcp,
    bind,
    count_flows,
    cpu_seconds,
    finish,
    first_reply,
    lab_arguments,
    lport,
    ms,
    port_mac,
    print_table,
    resources,
    run_in_labs,
    summary,
)
from vlcp.lab.ovs import Host, Hypervisor, OvsLab
from vlcp.lab.servers import BRIDGE

RESULTS = Path(__file__).parent / "results" / "router.json"
GATEWAY = "10.0.255.254"
ROUTED = ipaddress.ip_network("10.1.0.0/16")
ROUTED_GATEWAY = "10.1.255.254"
ROUTER_MACS = ("02:00:00:00:fe:01", "02:00:00:00:fe:02")
"""OVN's router port MACs (vlcp derives its own from the subnets)."""


def routed_ip(i: int) -> str:
    """Port `i`'s address in the routed subnet (the warm-up port takes the last one)."""
    return str(ROUTED[i + 1] if i != WARM else ROUTED[-3])


class VlcpRouted(Vlcp):
    """portup's vlcp, plus a second network and subnet and a router across both."""

    def subnet(self) -> dict[str, Any]:
        return {**super().subnet(), "gateway": GATEWAY}

    async def start(self) -> None:
        await super().start()
        assert self.model is not None
        await self.model.create("logical-networks", {"id": "net2", "physicalnetwork": "vx"})
        body = {"id": "sub2", "logicalnetwork": "net2", "cidr": str(ROUTED)}
        await self.model.create("subnets", {**body, "gateway": ROUTED_GATEWAY})
        await self.model.create("routers", {"id": "r"})

    async def attach(self) -> None:
        """The router's interfaces on both subnets (on their gateways)."""
        assert self.model is not None
        for subnet in ("sub", "sub2"):
            await self.model.add_router_interface("r", {"subnet": subnet})

    async def create(self, i: int) -> None:
        assert self.model is not None
        body = {"id": lport(i), "logicalnetwork": "net2", "subnet": "sub2"}
        await self.model.create(
            "logical-ports", {**body, "mac_address": port_mac(i), "ip_address": routed_ip(i)}
        )


class OvnRouted(Ovn):
    """portup's OVN, plus a second logical switch and a logical router across both."""

    def _network(self) -> None:
        super()._network()
        self.nbctl("ls-add", "sw1")
        self.nbctl("lr-add", "lr0")

    def _attach(self) -> None:
        cidrs = (f"{GATEWAY}/{SUBNET.prefixlen}", f"{ROUTED_GATEWAY}/{ROUTED.prefixlen}")
        for k, (cidr, mac) in enumerate(zip(cidrs, ROUTER_MACS, strict=True)):
            self.nbctl("lrp-add", "lr0", f"lrp{k}", mac, cidr)
            self.nbctl(
                *("lsp-add", f"sw{k}", f"sw{k}-lr0", "--", "lsp-set-type", f"sw{k}-lr0"),
                *("router", "--", "lsp-set-addresses", f"sw{k}-lr0", "router", "--"),
                *("lsp-set-options", f"sw{k}-lr0", f"router-port=lrp{k}"),
            )

    async def attach(self) -> None:
        await asyncio.to_thread(self._attach)

    async def create(self, i: int) -> None:
        await asyncio.to_thread(
            self.nbctl,
            *("lsp-add", "sw1", lport(i), "--", "lsp-set-addresses", lport(i)),
            f"{port_mac(i)} {routed_ip(i)}",
        )


SYSTEMS: dict[type[System], type[System]] = {Vlcp: VlcpRouted, Ovn: OvnRouted}


def routed_host(lab: OvsLab, hv: Hypervisor, cidr: str, mac: str, gateway: str, **kw: Any) -> Host:
    """A lab host whose default route is `gateway`."""
    host = lab.host(hv, BRIDGE, cidr, mac=mac, **kw)
    host.exec("ip", "route", "add", "default", "via", gateway)
    return host


async def measure_routing(system: System, n: int, checks: Checks) -> dict[str, Any]:
    """Start `system` on two servers, attach the router, then time N routed first pings."""
    assert isinstance(system, VlcpRouted | OvnRouted)
    lab, (hv0, hv1) = system.lab, system.hvs
    await system.start()
    cidr = f"{PEER_IP}/{SUBNET.prefixlen}"
    peer = await asyncio.to_thread(routed_host, lab, hv0, cidr, PEER_MAC, GATEWAY, iface_id="peer")
    await system.wait_up("peer")

    def host(i: int) -> Host:
        cidr = f"{routed_ip(i)}/{ROUTED.prefixlen}"
        return routed_host(lab, hv1, cidr, port_mac(i), ROUTED_GATEWAY, name=lport(i))

    hosts = {i: await asyncio.to_thread(host, i) for i in [WARM, *range(n)]}
    await system.create(WARM)
    await asyncio.to_thread(bind, hv1, hosts[WARM].port_name, lport(WARM))
    await system.wait_up(lport(WARM))

    label = f"{system.name} N={n}"
    unrouted = await asyncio.to_thread(count_flows, system.hvs)
    await system.attach()
    warm = await first_reply(peer, routed_ip(WARM))
    checks.check(f"{label}: warm-up routed ping", warm is not None)
    routed = await asyncio.to_thread(count_flows, system.hvs)

    pids, central = system.controller_pids(), system.central_pids()
    cpu0, central0 = sum(map(cpu_seconds, pids)), sum(map(cpu_seconds, central))
    first_ping: list[float] = []
    failures: list[str] = []
    started = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        await system.create(i)
        await asyncio.to_thread(bind, hv1, hosts[i].port_name, lport(i))
        replied = await first_reply(peer, routed_ip(i))
        if replied is None:
            failures.append(f"{lport(i)}: no routed reply")
        else:
            first_ping.append(replied - t0)
    seconds = time.perf_counter() - started
    cpu = sum(map(cpu_seconds, pids)) - cpu0
    central_cpu = sum(map(cpu_seconds, central)) - central0
    flows = await asyncio.to_thread(count_flows, system.hvs)
    checks.equal(f"{label}: routed pings answered", len(first_ping), n)
    return {
        "system": system.name,
        "ports": n,
        "servers": 2,
        "seconds": seconds,
        "first_ping_s": summary(first_ping),
        **resources(pids, central, cpu, central_cpu),
        "flows": flows,
        "flows_per_port": flows / n,
        "flows_per_interface": (routed - unrouted) / 2,
        "added_flows_per_port": (flows - routed) / n,
        "failures": failures,
    }


ROWS: list[Row] = [
    ("routed first ping p50 ms", lambda r: ms(r["first_ping_s"]["p50"])),
    ("routed first ping p99 ms", lambda r: ms(r["first_ping_s"]["p99"])),
    ("routed first ping max ms", lambda r: ms(r["first_ping_s"]["max"])),
    ("answered", lambda r: f"{r['first_ping_s']['count']}/{r['ports']}"),
    ("flows per interface", lambda r: f"{r['flows_per_interface']:.1f}"),
    *RESOURCE_ROWS,
    ("wall s (N ports)", lambda r: f"{r['seconds']:.1f}"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    lab_arguments(parser, [100], RESULTS)
    args = parser.parse_args()
    args.servers = [2]  # across two servers: the point of a distributed router
    args.systems = [SYSTEMS[kind] for kind in args.systems]
    results, checks = run_in_labs(parser, args, "router", "rt", measure_routing)
    print_table(results, ROWS)
    finish(args, results, checks)


if __name__ == "__main__":
    main()
