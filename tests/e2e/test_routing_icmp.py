"""ICMP errors from routers, on real OVS: the routed world of test_routing.py (three
servers, two tenants with the same addresses, each with a router joining 10.0.0.0/24
and 10.0.1.0/24 over different network types).

- `traceroute` (busybox's, UDP probes) from a host to a host of the other subnet shows
  exactly one hop, its gateway's address, then the destination: same server, across
  servers, across network types, from hv2 (no port in B's second network), and back;
  to the router's address on the other subnet, that one hop, which answers ping too;
- a ping with TTL 1 gets "time exceeded" from the sender's gateway (its address and
  MAC); a ping to an address in none of the router's subnets gets "net unreachable";
- every host of the other tenant, with the same addresses, captures nothing of it;
- a port flooding expiring packets gets at most its bound of answers (the handler's
  per-port bucket, behind the port's meter), and another port of the same server is
  answered right after; a frame with a broken IPv4 header is logged as malformed and
  the controller answers on;
- `icmp_errors` unloaded, such packets are dropped on the switch again (no answer at
  all), and loaded back they are answered again.
"""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from scapy.layers.inet import ICMP, IP, UDP, IPerror
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from tests.lab.marks import needs_ovs_lab
from tests.lab.ovs import Host
from vlcp.pipeline.builtin import PIPELINE
from vlcp.pipeline.gateway import gateway_mac
from vlcp.pipeline.icmp_errors import (
    ICMP_ERRORS,
    MODULE,
    PRIO_NO_ROUTE,
    PRIO_TO_CONTROLLER,
    PRIO_TTL,
)

from . import test_routing
from .converged import installed_flows
from .modules import applied
from .test_routing import FIRST_GATEWAY, PATHS, SECOND_GATEWAY, World, routed, subnet_of

world = test_routing.world
"""test_routing.py's fixture, a fixture of this module too."""

pytestmark = [pytest.mark.root, pytest.mark.slow, needs_ovs_lab]


@pytest.fixture
def store_url(embedded_store_url: str) -> str:
    """The embedded store only: ICMP errors are answered from each controller's view; the
    stores are proven under routing by test_routing.py, on both."""
    return embedded_store_url


NOWHERE = "198.51.100.7"
"""An address in none of the routers' subnets; each sender routes it to its gateway, as
a host with a default route would."""
TIME_EXCEEDED, UNREACHABLE = 11, 3
FLOOD = 2000
(BOUND,) = MODULE.packet_ins
PROBE_PORT = 33434
PORTS_ON = {"hv0": 4, "hv1": 4, "hv2": 2}
"""Local ports per server, all in routed networks (ports 1-3 of both tenants on hv0-hv2,
4 and 5 on hv0 and hv1)."""


def module_flows(ports: int) -> list[tuple[int, int]]:
    """(table, priority) of the module's flows on a switch with `ports` routed ports."""
    l3, table = PIPELINE["l3"].id, PIPELINE[ICMP_ERRORS.name].id
    return [(l3, PRIO_TTL)] * 2 + [(l3, PRIO_NO_ROUTE)] + [(table, PRIO_TO_CONTROLLER)] * ports


def gateway_of(port: str) -> str:
    return SECOND_GATEWAY if routed(port) else FIRST_GATEWAY


PROBES = 3


def traceroute(host: Host, destination: str) -> list[tuple[list[str], int]]:
    """busybox traceroute's hops (three probes each): the addresses that answered, and
    how many probes were answered (a round-trip time each; `*` for the others)."""
    done = host.exec(
        "busybox",
        "traceroute",
        "-n",
        *("-q", str(PROBES), "-w", "2", "-m", "4"),
        destination,
        timeout=60,
    )
    hops = []
    for line in done.stdout.splitlines()[1:]:
        words = line.split()[1:]
        hops.append(([w for w in words if _is_address(w)], words.count("ms")))
    return hops


def _is_address(word: str) -> bool:
    try:
        ipaddress.IPv4Address(word)
    except ValueError:
        return False
    return True


def icmp_error(kind: int, source: str, mac: str, about: str):
    """An ICMP error of type `kind` from `source` at `mac`, about a datagram to `about`."""

    def matches(p: Packet) -> bool:
        return (
            ICMP in p
            and p[ICMP].type == kind
            and p[ICMP].code == 0
            and (p[Ether].src, p[IP].src) == (mac, source)
            and IPerror in p
            and p[IPerror].dst == about
        )

    return matches


def other_tenant_captures(world: World, tenant: str) -> dict:
    other = "b" if tenant == "a" else "a"
    return {n: h.capture("icmp or udp") for n, h in world.hosts.items() if n.startswith(other)}


def assert_nothing_seen(captures: dict) -> None:
    for name, capture in captures.items():
        assert capture.stop() == [], f"{name} of the other tenant saw something"


def ping_once(host: Host, destination: str, *extra: str) -> str:
    done = host.exec(
        "ping", "-n", "-c", "1", "-W", "2", *extra, destination, check=False, timeout=30
    )
    return done.stdout + done.stderr


async def test_traceroute_shows_one_router_hop_then_the_destination(world: World) -> None:
    hosts = world.hosts
    for tenant in ("a", "b"):
        watchers = other_tenant_captures(world, tenant)
        for src, dst in PATHS[tenant]:
            hops = await asyncio.to_thread(traceroute, hosts[src], hosts[dst].ip)
            expected = [([gateway_of(src)], PROBES), ([hosts[dst].ip], PROBES)]
            assert hops == expected, (src, dst, hops)
        assert_nothing_seen(watchers)


async def test_the_routers_far_addresses_answer_ping_and_end_a_traceroute(world: World) -> None:
    """The router's address on the other subnet is the router itself: one hop, which
    answers (UDP port unreachable, echo reply), through the sender's own gateway MAC."""
    hosts = world.hosts
    for src, far in (("a1", SECOND_GATEWAY), ("a4", FIRST_GATEWAY), ("b3", SECOND_GATEWAY)):
        hops = await asyncio.to_thread(traceroute, hosts[src], far)
        assert hops == [([far], PROBES)], (src, far, hops)
        result = await asyncio.to_thread(hosts[src].ping, far, count=2)
        assert result.received == 2, (src, far, result.output)


async def test_ttl_expiry_and_no_route_are_answered_by_the_senders_gateway(world: World) -> None:
    hosts = world.hosts
    for tenant in ("a", "b"):
        watchers = other_tenant_captures(world, tenant)
        for src, dst in PATHS[tenant]:
            sender, gateway = hosts[src], gateway_of(src)
            mac = gateway_mac(subnet_of(src))
            sender.exec("ip", "route", "replace", f"{NOWHERE}/32", "via", gateway)
            errors = sender.capture("icmp")
            expired = await asyncio.to_thread(ping_once, sender, hosts[dst].ip, "-t", "1")
            assert f"From {gateway} icmp_seq=1 Time to live exceeded" in expired, (src, expired)
            unreachable = await asyncio.to_thread(ping_once, sender, NOWHERE)
            assert f"From {gateway} icmp_seq=1 Destination Net Unreachable" in unreachable
            for kind, about in ((TIME_EXCEEDED, hosts[dst].ip), (UNREACHABLE, NOWHERE)):
                await asyncio.to_thread(errors.wait_for, icmp_error(kind, gateway, mac, about))
            errors.stop()
        assert_nothing_seen(watchers)


async def test_unloaded_they_are_dropped_again_and_loaded_answered_again(world: World) -> None:
    """Unloading takes exactly the module's flows off each switch: 3 in `l3`, and one per
    local port of a routed network (every port here: 4 on hv0 and hv1, 2 on hv2)."""
    cloud, a1, a5 = world.cloud, world.hosts["a1"], world.hosts["a5"]
    a1.exec("ip", "route", "replace", f"{NOWHERE}/32", "via", FIRST_GATEWAY)
    before = {s: await installed_flows(server) for s, server in cloud.servers.items()}
    await cloud.api.change_modules("unload", ["icmp_errors"])
    await applied(cloud, lambda r: "icmp_errors" not in r["loaded"])
    for s, server in cloud.servers.items():
        after = await installed_flows(server)
        gone = [before[s][c] for c in before[s].keys() - after.keys()]
        assert after.items() <= before[s].items(), s
        assert sorted(gone) == sorted(module_flows(PORTS_ON[s])), s
    errors = a1.capture("icmp")
    expired = await asyncio.to_thread(ping_once, a1, a5.ip, "-t", "1")
    unreachable = await asyncio.to_thread(ping_once, a1, NOWHERE)
    routed_ping = await asyncio.to_thread(a1.ping, a5.ip, count=1)
    assert routed_ping.received == 1  # routing is untouched
    assert [p for p in errors.stop() if ICMP in p and p[ICMP].type not in (0, 8)] == []
    assert "From" not in expired + unreachable

    await cloud.api.change_modules("load", ["icmp_errors"])
    await applied(cloud, lambda r: "icmp_errors" in r["loaded"])
    for s, server in cloud.servers.items():
        assert await installed_flows(server) == before[s], s
    expired = await asyncio.to_thread(ping_once, a1, a5.ip, "-t", "1")
    assert f"From {FIRST_GATEWAY} icmp_seq=1 Time to live exceeded" in expired


def expiring(host: Host, subnet: str, destination: str, **ip: object) -> Packet:
    """A UDP probe with TTL 1 from `host` to the gateway MAC of its `subnet`."""
    frame = Ether(src=host.mac, dst=gateway_mac(subnet))
    return frame / IP(src=host.ip, dst=destination, ttl=1, **ip) / UDP(dport=PROBE_PORT)


async def test_a_flood_gets_its_ports_bound_of_answers_and_others_are_answered(
    world: World,
) -> None:
    """a1 sends 2000 expiring probes at once: the meter lets the packet-in budget's burst
    through and the handler answers its own burst of them (a bucket full to begin with),
    then at most its rate; b1 on the same server (its own buckets) is answered after a
    probe with a broken IPv4 header, which is logged as malformed."""
    a1, b1 = world.hosts["a1"], world.hosts["b1"]  # both on hv0
    a5, b5 = world.hosts["a5"].ip, world.hosts["b5"].ip
    at_a1, at_b1 = a1.capture("icmp"), b1.capture("icmp")
    await asyncio.to_thread(a1.send, *(expiring(a1, "sub-a", a5, id=n) for n in range(FLOOD)))
    exceeded = icmp_error(TIME_EXCEEDED, FIRST_GATEWAY, gateway_mac("sub-a"), a5)
    await asyncio.to_thread(at_a1.wait_for, exceeded, count=BOUND.burst)
    broken = expiring(b1, "sub-b", b5, chksum=0x1234)
    await asyncio.to_thread(b1.send, broken, expiring(b1, "sub-b", b5))
    exceeded_b = icmp_error(TIME_EXCEEDED, FIRST_GATEWAY, gateway_mac("sub-b"), b5)
    (answer,) = await asyncio.to_thread(at_b1.wait_for, exceeded_b)
    assert answer[IPerror].chksum != 0x1234  # the well-formed probe's
    at_b1.stop()
    answers = [p for p in at_a1.stop() if exceeded(p)]
    # each answer spent a token of a1's bucket, full (the burst) at the first one and
    # refilled at the rate until the last
    span = float(answers[-1].time - answers[0].time)
    assert len(answers) <= BOUND.burst + BOUND.rate * span + 1, (len(answers), span)
    log = world.cloud.servers["hv0"].controller.log.read_text()
    assert "icmp_errors: malformed packet-in from port" in log
    assert "bad IPv4 header checksum" in log
