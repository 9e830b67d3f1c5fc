"""DHCP benchmark: from a port's plug to its lease with a real client, vlcp and OVN.

    make bench-dhcp                      # 100 ports on one server, dhclient; needs root
    .venv/bin/python bench/dhcp.py --systems ovn --client udhcpc --servers 1,2

Each system starts as in bench/portup.py (same classes and private lab, prefixed `dhNNNNN`,
everything removed at the end) with DHCP options on its one subnet: router (the gateway),
DNS, domain, MTU, lease time and a host route (vlcp: the subnet's fields; OVN: one
DHCP_Options row given to every port with `lsp-set-dhcpv4-options`). Every port is a lab
host (a namespace, its veth in br-int without iface-id) running a real client of
tests/lab/dhcp (`--client dhclient` or `udhcpc`), whose script records when it applied
the lease. A warm-up port gets a lease first (not counted); without one within
`LEASE_TIMEOUT` the run stops there with "no lease" (vlcp before it answers DHCP).

1. plug -> lease, one port at a time: the create call, then t0, the plug (`iface-id` on
   the host's veth) and the client started at once, as a booting VM would; the time is
   t0 -> the client script done applying the lease (its own clock). The client is then
   stopped, keeping its address.
2. N clients at once: every port up, N fresh clients (new lease files: a full DISCOVER,
   OFFER, REQUEST, ACK) started together; `leases/s` is N over the time from the first
   start to the last lease applied; controller CPU (utime+stime of the vlcp processes or
   of the ovn-controllers) over that phase, per lease.

Prints a table and writes bench/results/dhcp.json; a port without a lease fails a check
(non-zero exit after writing the JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Checks
from bench.portup import (
    CLK_TCK,
    SUBNET,
    WARM,
    Ovn,
    Row,
    System,
    Vlcp,
    bind,
    cpu_seconds,
    finish,
    lab_arguments,
    lport,
    ms,
    port_mac,
    print_table,
    run_in_labs,
    summary,
)
from tests.lab.dhcp import CLIENTS, DhcpClient, NoLease, dhcp_clients_missing
from vlcp.lab.netns import wait_until
from vlcp.lab.ovs import Host, Hypervisor
from vlcp.lab.servers import BRIDGE

RESULTS = Path(__file__).parent / "results" / "dhcp.json"
GATEWAY = "10.0.255.254"
DNS = ["10.0.255.53", "10.0.255.54"]
DOMAIN = "bench.example"
MTU = 1400
LEASE_SECONDS = 3600
HOST_ROUTE = ("10.1.0.0/24", GATEWAY)
LEASE_TIMEOUT = 10.0
"""Seconds a client may take for a lease (its retries are 1-3 s apart)."""


class VlcpDhcp(Vlcp):
    """portup's vlcp, its subnet carrying the DHCP options."""

    def subnet(self) -> dict[str, Any]:
        return {
            **super().subnet(),
            "gateway": GATEWAY,
            "dns_nameservers": DNS,
            "domain_name": DOMAIN,
            "mtu": MTU,
            "lease_time": LEASE_SECONDS,
            "host_routes": [list(HOST_ROUTE)],
        }


class OvnDhcp(Ovn):
    """portup's OVN, every port given one DHCP_Options row with the same options."""

    dhcp = ""

    def _network(self) -> None:
        routes = f"{{{HOST_ROUTE[0]},{HOST_ROUTE[1]}, 0.0.0.0/0,{GATEWAY}}}"
        options = {
            "server_id": GATEWAY,
            "server_mac": "02:00:00:00:ff:fe",
            "router": GATEWAY,
            "dns_server": "{" + ", ".join(DNS) + "}",
            "domain_name": f'"{DOMAIN}"',
            "mtu": str(MTU),
            "lease_time": str(LEASE_SECONDS),
            "classless_static_route": routes,
        }
        self.dhcp = self.ovn.create_dhcp_options(str(SUBNET), options)
        super()._network()

    def _lsp(self, name: str, ip: str, mac: str) -> list[str]:
        return [*super()._lsp(name, ip, mac), "--", "lsp-set-dhcpv4-options", name, self.dhcp]


SYSTEMS: dict[type[System], type[System]] = {Vlcp: VlcpDhcp, Ovn: OvnDhcp}


async def lease_after(client: DhcpClient, t0: float) -> float:
    """Seconds from `t0` (time.time()) to the client's first lease applied."""
    lease = await asyncio.to_thread(client.wait_lease, LEASE_TIMEOUT)
    return lease.at - t0


async def measure_dhcp(
    system: System, n: int, checks: Checks, *, client_class: type[DhcpClient]
) -> dict[str, Any]:
    """Start `system`, then time N plug -> lease one at a time and N clients at once."""
    lab, hvs = system.lab, system.hvs
    await system.start()
    label = f"{system.name} N={n} servers={len(hvs)} {client_class.program}"
    result: dict[str, Any] = {
        "system": system.name,
        "ports": n,
        "servers": len(hvs),
        "client": client_class.program,
        "plug_to_lease_s": summary([]),
        "at_once": None,
        "failures": [],
    }

    def where(i: int) -> Hypervisor:
        return hvs[i % len(hvs)] if i != WARM else hvs[-1]

    def host(i: int) -> Host:
        # the client flushes the placeholder address before it asks
        return lab.host(where(i), BRIDGE, "192.0.2.1/32", mac=port_mac(i), name=lport(i))

    hosts = {i: await asyncio.to_thread(host, i) for i in [WARM, *range(n)]}
    clients: list[DhcpClient] = []

    async def plug_and_lease(i: int) -> float:
        await system.create(i)
        t0 = time.time()
        await asyncio.to_thread(bind, where(i), hosts[i].port_name, lport(i))
        client = client_class(hosts[i].netns)
        clients.append(client)
        client.start()
        try:
            return await lease_after(client, t0)
        finally:
            client.stop()

    try:
        try:
            await plug_and_lease(WARM)
        except NoLease as exc:
            result["failures"].append(f"warm-up port: {exc}")
            checks.check(f"{label}: warm-up lease", False, str(exc).splitlines()[0])
            return result
        leases, failures = [], result["failures"]
        pids = system.controller_pids()
        cpu0 = sum(cpu_seconds(p) for p in pids)
        for i in range(n):
            try:
                leases.append(await plug_and_lease(i))
            except NoLease as exc:
                failures.append(f"{lport(i)}: {str(exc).splitlines()[0]}")
        result["plug_to_lease_s"] = summary(leases)
        result["plug_phase_cpu_s"] = sum(cpu_seconds(p) for p in pids) - cpu0
        checks.equal(f"{label}: leases, one port at a time", len(leases), n)
        result["at_once"] = await at_once(system, [hosts[i] for i in range(n)], client_class)
        checks.equal(f"{label}: leases, all at once", result["at_once"]["leased"], n)
        return result
    finally:
        for client in clients:
            client.close()


async def at_once(
    system: System, hosts: list[Host], client_class: type[DhcpClient]
) -> dict[str, Any]:
    """N fresh clients started together on ports already up: leases/s and CPU per lease."""
    await asyncio.gather(*(system.wait_up(host.name) for host in hosts))
    pids = system.controller_pids()
    cpu0 = sum(cpu_seconds(p) for p in pids)
    clients = [client_class(host.netns).prepare() for host in hosts]
    try:
        starts = []
        for client in clients:
            starts.append(time.time())
            client.start()
        t0, started = starts[0], time.time() - starts[0]

        def leases() -> list[tuple[float, float]]:
            """(start, lease applied) of every client leased so far."""
            return [
                (start, lease.at)
                for start, client in zip(starts, clients, strict=True)
                if (lease := client.lease()) is not None
            ]

        def all_leased() -> bool:
            return len(leases()) == len(clients)

        timeout = LEASE_TIMEOUT + len(clients) / 10
        with contextlib.suppress(TimeoutError):
            await asyncio.to_thread(wait_until, all_leased, timeout=timeout, interval=0.05)
        cpu = sum(cpu_seconds(p) for p in pids) - cpu0
        pairs = leases()
        times = [at for _, at in pairs]
        wall = max(times) - t0 if times else None
        return {
            "clients": len(clients),
            "leased": len(times),
            "start_all_s": started,
            "all_leased_s": wall,
            "leases_per_s": len(times) / wall if wall else None,
            "lease_s": summary([at - t0 for at in times]),
            "start_to_lease_s": summary([at - start for start, at in pairs]),
            "controller_cpu_s": cpu,
        }
    finally:
        for client in clients:
            client.close()


def at_once_cell(key: str, fmt: str) -> Callable[[dict[str, Any]], str]:
    """A table cell showing the at-once phase's `key` ("-" where it did not run)."""

    def cell(r: dict[str, Any]) -> str:
        value = (r["at_once"] or {}).get(key)
        return "-" if value is None else format(value, fmt)

    return cell


def cpu_per_lease(r: dict[str, Any]) -> str:
    """CPU ms per lease in the at-once phase; under one clock tick (/proc counts whole
    ticks, 10 ms) for all leases together it shows as "<" one tick per lease."""
    phase = r["at_once"]
    if not phase or not phase["leased"]:
        return "-"
    if phase["controller_cpu_s"] == 0:
        return f"<{1000 / CLK_TCK / phase['leased']:.2f}"
    return f"{phase['controller_cpu_s'] * 1000 / phase['leased']:.2f}"


def at_once_percentiles(key: str) -> Callable[[dict[str, Any]], str]:
    """A table cell "p50/p99" in ms of the at-once phase's `key` summary."""

    def cell(r: dict[str, Any]) -> str:
        if not r["at_once"]:
            return "-"
        found = r["at_once"][key]
        return f"{ms(found['p50'])}/{ms(found['p99'])}"

    return cell


ROWS: list[Row] = [
    ("plug -> lease p50 ms", lambda r: ms(r["plug_to_lease_s"]["p50"])),
    ("plug -> lease p99 ms", lambda r: ms(r["plug_to_lease_s"]["p99"])),
    ("plug -> lease max ms", lambda r: ms(r["plug_to_lease_s"]["max"])),
    ("leased, one at a time", lambda r: f"{r['plug_to_lease_s']['count']}/{r['ports']}"),
    (
        "controller CPU s, plugs",
        lambda r: "-" if r.get("plug_phase_cpu_s") is None else f"{r['plug_phase_cpu_s']:.2f}",
    ),
    ("at once: leased", lambda r: f"{(r['at_once'] or {}).get('leased', 0)}/{r['ports']}"),
    ("at once: clients started s", at_once_cell("start_all_s", ".2f")),
    ("at once: all leased s", at_once_cell("all_leased_s", ".2f")),
    ("at once: leases/s", at_once_cell("leases_per_s", ".0f")),
    ("at once: lease p50/p99 ms", at_once_percentiles("lease_s")),
    ("  from own start p50/p99", at_once_percentiles("start_to_lease_s")),
    ("controller CPU ms / lease", cpu_per_lease),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    lab_arguments(parser, [100], RESULTS)
    parser.add_argument("--client", choices=sorted(CLIENTS), default="dhclient")
    args = parser.parse_args()
    if missing := dhcp_clients_missing():
        sys.exit(f"bench/dhcp.py needs {missing} (scripts/install-debian-packages.sh)")
    args.systems = [SYSTEMS[kind] for kind in args.systems]
    measure = functools.partial(measure_dhcp, client_class=CLIENTS[args.client])
    results, checks = run_in_labs(parser, args, "dhcp", "dh", measure)
    print_table(results, ROWS)
    finish(args, results, checks, client=args.client)


if __name__ == "__main__":
    main()
