"""Issue 12's DHCP end to end: real clients (ISC dhclient, busybox udhcpc) on three
servers, each a private OVS with its own `vlcp run` process, one `vlcp api`, both tenants
of `tenants.py` (same MACs and addresses; A over VXLAN, B over VLAN), every DHCP field set
through the API with different values per tenant.

1. Every client gets its own port's lease from its own server's controller and applies it:
   dhclient on a2 and b2 (hv1), udhcpc on a3 and b3 (hv2) — the same MAC and address in
   both tenants, each with its network's address, mask, router, DNS, domain, NTP, host
   name, MTU (the VXLAN default 1450, B's explicit 1400), lease time and classless routes
   (121 and 249), applied in its namespace (address, routes, MTU, the private
   resolv.conf), and a1 pings the leased
   address. A renewal after the subnets' DNS changed (through the API) carries each
   tenant's new server; after b2's address changed, dhclient's INIT-REBOOT for the old
   one is NAKed and it starts over and gets the new one. A port without an address (a9 on
   hv0) gets nothing: its DISCOVERs are flooded over the tunnel to hv1 and hv2 (seen on
   the underlay), and no DHCP reply ever crosses the underlay.
2. The `dhcp` module unloaded under a 50 pps ping (a1 -> a2 over VXLAN, b1 -> b2 over
   VLAN), first on hv0 alone: new clients there (a4, b4: ports *with* an address) get no
   lease, their requests are flooded to hv1 and hv2 (seen on the underlay), whose
   controllers hold those ports in their view and still never answer a request from the
   tunnel or the trunk (no DHCP reply crosses the underlay); then on every server: new
   clients on hv2 (a5, b5) get none either. Exactly the module's flows leave each switch,
   nothing else changes at any moment (flow monitors). Loaded back: the very same flows,
   and all four get their tenant's lease. No ping lost.
3. A port that floods (a2 on hv1: 3,000 frames a second for 8 s, and on until b2 has its
   lease, valid DISCOVERs mixed with truncated ones, BOOTP without the DHCP cookie and
   DISCOVERs carrying hundreds of options) is cut down by its own meter on the switch,
   while b2 on the same server gets its lease with dhclient; the controller logs the
   malformed ones once (not thousands of lines), keeps running, and answers a2 itself
   once the flood stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from itertools import pairwise
from pathlib import Path

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet

from tests.lab.dhcp import Dhclient, DhcpClient, DhcpResult, Route, Udhcpc
from tests.lab.dhcp.flood import flood
from tests.lab.marks import needs_dhcp_clients, needs_ovs_lab
from tests.lab.naming import unique_name
from tests.lab.ovs import Host
from tests.lab.waiting import eventually
from vlcp.lab.servers import BRIDGE
from vlcp.pipeline.builtin import PIPELINE
from vlcp.pipeline.dhcp import PRIO_DHCP

from .conftest import Cloud
from .converged import installed_flows
from .failures import observe
from .modules import applied
from .tenants import SERVERS, plug_tenants

pytestmark = [pytest.mark.root, pytest.mark.slow, needs_ovs_lab, needs_dhcp_clients]

PAIRS = (("a1", "a2"), ("b1", "b2"))
"""hv0 -> hv1, over VXLAN (tenant a) and over VLAN (tenant b)."""
FAST = 0.02
"""Seconds between pings: 50 a second."""
DHCP_TABLE = PIPELINE["dhcp"].id
PORT_SECURITY_TABLE = PIPELINE["port_security"].id
GATEWAY = "10.0.0.254"
QUIET = 4.0
"""Seconds a client that must get nothing is given: dhclient and udhcpc (as the lab runs
them) ask every 1-3 s, so several requests go unanswered."""

OPTIONS = {
    "a": {
        "gateway": GATEWAY,
        "dns_nameservers": ["198.51.100.53"],
        "domain_name": "tenant-a.example",
        "ntp_servers": ["198.51.100.123"],
        "host_routes": [["198.51.100.0/24", "10.0.0.253"]],
        "lease_time": 3600,
    },
    "b": {
        "gateway": GATEWAY,
        "dns_nameservers": ["203.0.113.53"],
        "domain_name": "tenant-b.example",
        "ntp_servers": ["203.0.113.123"],
        "host_routes": [["203.0.113.0/24", "10.0.0.252"]],
        "lease_time": 7200,
        "mtu": 1400,
    },
}
MTU = {"a": 1450, "b": 1400}
"""A's the VXLAN default (the 1500-byte underlay minus 50), B's its explicit `mtu`."""
MOVED = "10.0.0.12"
"""b2's new address."""
NEW_DNS = {"a": "198.51.100.54", "b": "203.0.113.54"}


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """The embedded store only: DHCP answers from each controller's view, and the stores'
    own behaviour is proven by every other e2e file (this one keeps under ~90 s)."""
    return f"sqlite://{tmp_path}/{unique_name('s')}.db"


@pytest.fixture
async def cluster(cloud_factory) -> tuple[Cloud, dict[str, Host]]:
    """`SERVERS` with both tenants plugged (port n on the n-th server), every path warm, and
    each tenant's subnet created with its DHCP options through the API (so every server's
    view holds them once its ports are up)."""
    cloud = await cloud_factory(SERVERS)
    hosts = await plug_tenants(cloud, SERVERS, subnets=OPTIONS)
    await applied(cloud)
    return cloud, hosts


def is_dhcp(packet: Packet, port: int) -> bool:
    """A DHCP message to UDP `port` (67: a request, 68: a reply), at any depth (VXLAN's
    inner frame, a VLAN tag)."""
    return packet.haslayer(BOOTP) and packet[BOOTP].underlayer.dport == port


class Underlay:
    """Captures on hv1's end of both underlay links (hv0 - hv1 - hv2): everything that
    crosses between servers, over VXLAN and over the VLAN trunk."""

    def __init__(self, cloud: Cloud) -> None:
        first, second = cloud.links  # (hv0, hv1), (hv1, hv2)
        self.captures = [first.b.capture(first.port), second.a.capture(second.port)]

    async def wait_requests(self, chaddr: str, vxlan: bool) -> None:
        """A request with client MAC `chaddr` crosses every link (flooded to hv1 and hv2),
        encapsulated in VXLAN or carried tagged on the trunk."""
        raw = bytes.fromhex(chaddr.replace(":", ""))

        def request(p: Packet) -> bool:
            return is_dhcp(p, 67) and p[BOOTP].chaddr[:6] == raw and p.haslayer(VXLAN) == vxlan

        for capture in self.captures:
            await asyncio.to_thread(capture.wait_for, request, timeout=10)

    def stop(self) -> list[Packet]:
        """Every DHCP reply seen crossing."""
        return [p for c in self.captures for p in c.stop() if is_dhcp(p, 68)]


async def acquire(client: DhcpClient) -> DhcpResult:
    return await asyncio.to_thread(client.acquire, 20)


def assert_tenants_lease(result: DhcpResult, tenant: str, address: str, dns: str) -> None:
    """The lease is `tenant`'s, for `address`, with DNS server `dns`, and it is applied."""
    options, lease, applied = OPTIONS[tenant], result.lease, result.applied
    (route,) = options["host_routes"]
    assert lease.address == IPv4Address(address)
    assert lease.network == IPv4Network("10.0.0.0/24")
    assert lease.routers == (IPv4Address(GATEWAY),)
    assert lease.dns == (IPv4Address(dns),)
    assert lease.domain == options["domain_name"]
    assert lease.mtu == MTU[tenant]
    assert lease.lease_time == options["lease_time"]
    assert lease.classless_routes == (
        Route(IPv4Network(route[0]), IPv4Address(route[1])),
        Route(IPv4Network("0.0.0.0/0"), IPv4Address(GATEWAY)),
    )
    assert lease.ms_classless_routes == lease.classless_routes  # both clients ask for 249
    assert lease.ntp == tuple(map(IPv4Address, options["ntp_servers"]))
    assert lease.hostname == f"host-{address.replace('.', '-')}"
    assert lease.server_id == IPv4Address(GATEWAY)
    # ... and applied in the client's namespace
    assert applied.addresses == (IPv4Interface(f"{address}/24"),)
    assert applied.mtu == MTU[tenant]
    assert any(r.startswith(f"default via {GATEWAY} ") for r in applied.routes), applied.routes
    assert any(r.startswith(f"{route[0]} via {route[1]} ") for r in applied.routes), applied.routes
    assert applied.resolv_conf == f"search {options['domain_name']}\nnameserver {dns}\n"


async def test_real_clients_get_and_apply_their_own_tenants_lease_and_renew_it(
    cluster, tmp_path: Path
) -> None:
    cloud, hosts = cluster
    # a9: on hv0, in tenant A's network, without an address (no `subnet`: with one, the
    # model would allocate it an address)
    body = {"id": "a9", "logicalnetwork": "net-a", "mac_address": "02:00:00:00:00:09"}
    await cloud.api.create("logical-ports", body)
    a9 = cloud.host("hv0", "10.0.0.9/24", mac=body["mac_address"], port="a9")
    await cloud.api.wait_port_up("a9", timeout=30)

    with contextlib.ExitStack() as stack:  # the clients stop however the test ends
        underlay = Underlay(cloud)
        clients = {  # one client kind per server; the same MAC and address in both tenants
            "a2": stack.enter_context(Dhclient(hosts["a2"].netns)),
            "b2": stack.enter_context(Dhclient(hosts["b2"].netns)),
            "a3": stack.enter_context(Udhcpc(hosts["a3"].netns)),
            "b3": stack.enter_context(Udhcpc(hosts["b3"].netns)),
        }
        nothing = stack.enter_context(Dhclient(a9.netns))
        try:
            results = dict(
                zip(clients, await asyncio.gather(*map(acquire, clients.values())), strict=True)
            )
            for port, result in results.items():
                tenant = port[0]
                assert_tenants_lease(
                    result, tenant, hosts[port].ip, OPTIONS[tenant]["dns_nameservers"][0]
                )
            # the leased address works: hv0 reaches it across each network
            for port in results:
                ok = await asyncio.to_thread(
                    hosts[f"{port[0]}1"].ping_ok, hosts[port].ip, deadline=10
                )
                assert ok, port

            # no address, no answer: a9's DISCOVERs cross to hv1 and hv2, and nothing comes back
            no_lease = asyncio.create_task(asyncio.to_thread(nothing.expect_no_lease, QUIET))
            await underlay.wait_requests(a9.mac, vxlan=True)
            await no_lease
        finally:
            replies = underlay.stop()
        assert replies == [], "a DHCP reply crossed the underlay: a server answered a remote port"

        # a renewal after the options changed carries each tenant's new DNS server
        for tenant in "ab":
            update = {"dns_nameservers": [NEW_DNS[tenant]]}
            await asyncio.to_thread(cloud.api.client.update, "subnets", f"sub-{tenant}", update)
        # udhcpc (a3, b3) renews by unicast to the server identifier, the gateway: the
        # gateway module answers its ARP on the switch, no neighbour entry is added here.

        async def renew(client: DhcpClient, address: str, dns: str) -> DhcpResult:
            """Renew until the lease has `address` and `dns`: each server's view gets the
            change a moment after the API wrote it (no stale answer is taken for good)."""
            last: list[DhcpResult] = []

            async def fresh() -> bool:
                last[:] = [await asyncio.to_thread(client.renew, 20)]
                lease = last[0].lease
                return lease.address == IPv4Address(address) and lease.dns == (IPv4Address(dns),)

            await eventually(fresh, 20, what=f"{client!r}: a renewal with {address}, {dns}")
            return last[0]

        renewed = await asyncio.gather(
            *(renew(c, hosts[p].ip, NEW_DNS[p[0]]) for p, c in clients.items())
        )
        for port, result in zip(clients, renewed, strict=True):
            assert_tenants_lease(result, port[0], hosts[port].ip, NEW_DNS[port[0]])
        for port in ("a3", "b3"):  # udhcpc's unicast renewal itself was answered
            log = clients[port].log.read_text()
            assert answered_unicast_renewal(log), log

        # b2's address changed through the API: dhclient's INIT-REBOOT asks for the old
        # one, is NAKed, and starts over with a DISCOVER that brings the new one
        await asyncio.to_thread(
            cloud.api.client.update, "logical-ports", "b2", {"ip_address": MOVED}
        )
        moved = await renew(clients["b2"], MOVED, NEW_DNS["b"])
        assert_tenants_lease(moved, "b", MOVED, NEW_DNS["b"])
        assert "DHCPNAK from 10.0.0.254" in clients["b2"].log.read_text()


def answered_unicast_renewal(log: str) -> bool:
    """Whether udhcpc's log shows a renewal sent by unicast to the server (the gateway,
    whose ARP the switch answers) answered before udhcpc fell back to a broadcast. One
    such answer proves the path; a later renewal may still time out (udhcpc waits only a
    few seconds) on a loaded machine and be broadcast, which is udhcpc's own recovery."""
    return any(
        "sending renew to server" in sent and "lease of" in reply
        for sent, reply in pairwise(log.splitlines())
    )


def dhcp_flows(flows: dict[int, tuple[int, int]]) -> set[int]:
    """The cookies of the dhcp module's flows: its table's controller flow, and its
    entries (requests to it, the guard) in `port_security`."""
    return {
        cookie
        for cookie, (table, priority) in flows.items()
        if (table == DHCP_TABLE and priority > 0)
        or (table == PORT_SECURITY_TABLE and priority == PRIO_DHCP)
    }


async def flows_of(cloud: Cloud, servers: Iterable[str]) -> dict[str, dict[int, tuple[int, int]]]:
    return {s: await installed_flows(cloud.servers[s]) for s in servers}


async def test_unloading_dhcp_stops_leases_changes_nothing_else_and_no_remote_answers(
    cluster, tmp_path: Path
) -> None:
    cloud, hosts = cluster
    # new clients with an address, in both tenants: a4, b4 on hv0 and a5, b5 on hv2
    for tenant in "ab":
        for n, server in ((4, "hv0"), (5, "hv2")):
            port, mac, ip = f"{tenant}{n}", f"02:00:00:00:00:{n:02x}", f"10.0.0.{n}"
            body = {"logicalnetwork": f"net-{tenant}", "subnet": f"sub-{tenant}"}
            body |= {"id": port, "mac_address": mac, "ip_address": ip}
            await cloud.api.create("logical-ports", body)
            hosts[port] = cloud.host(server, f"{ip}/24", mac=mac, port=port)
    for port in ("a4", "b4", "a5", "b5"):
        await cloud.api.wait_port_up(port, timeout=30)

    def clients(*ports: str) -> list[DhcpClient]:
        return [Udhcpc(hosts[port].netns) for port in ports]

    async def no_leases(*ports: str) -> None:
        waiting = clients(*ports)
        try:
            await asyncio.gather(*(asyncio.to_thread(c.expect_no_lease, QUIET) for c in waiting))
        finally:
            for client in waiting:
                client.close()

    async with observe(cloud, hosts, PAIRS, SERVERS, tmp_path, interval=FAST) as seen:
        before = await flows_of(cloud, SERVERS)
        dhcps = {s: dhcp_flows(before[s]) for s in SERVERS}
        assert all(dhcps.values()), dhcps
        without = {s: {c: f for c, f in before[s].items() if c not in dhcps[s]} for s in SERVERS}

        # hv0 alone: its ports' requests are flooded to hv1 and hv2, which never answer
        await cloud.api.change_modules("unload", ["dhcp"], server="hv0")
        await applied(cloud, lambda r: ("dhcp" in r["loaded"]) == (r["server"] != "hv0"))
        assert await flows_of(cloud, SERVERS) == {**before, "hv0": without["hv0"]}
        underlay = Underlay(cloud)
        try:
            crossed = [
                underlay.wait_requests(hosts["a4"].mac, vxlan=True),
                underlay.wait_requests(hosts["b4"].mac, vxlan=False),
            ]
            await asyncio.gather(no_leases("a4", "b4"), *crossed)
        finally:
            replies = underlay.stop()
        assert replies == [], "a server answered a DHCP request that came over the underlay"

        # every server: leases stop everywhere, exactly the module's flows gone
        await cloud.api.change_modules("unload", ["dhcp"])
        await applied(cloud, lambda r: "dhcp" not in r["loaded"])
        assert await flows_of(cloud, SERVERS) == without
        await no_leases("a5", "b5")

        # loaded back: the very same flows, and leases again
        await cloud.api.change_modules("load", ["dhcp"])
        await applied(cloud, lambda r: "dhcp" in r["loaded"])
        assert await flows_of(cloud, SERVERS) == before
        ports = ("a4", "b4", "a5", "b5")
        waiting = clients(*ports)
        try:
            leases = await asyncio.gather(*map(acquire, waiting))
        finally:
            for client in waiting:
                client.close()
        for port, result in zip(ports, leases, strict=True):
            tenant = port[0]
            dns = OPTIONS[tenant]["dns_nameservers"][0]
            assert_tenants_lease(result, tenant, hosts[port].ip, dns)
    assert seen.lost(PAIRS) == []
    assert seen.ended_early == []
    for s in SERVERS:  # the monitors saw only the module's flows go and come back
        events = seen.watchers[s].events()
        assert {e.event for e in events} <= {"ADDED", "DELETED"}, [str(e) for e in events]
        gone = sorted(e.cookie for e in events if e.event == "DELETED")
        back = sorted(e.cookie for e in events if e.event == "ADDED")
        assert gone == back == sorted(dhcps[s]), s


FLOOD_RATE, FLOOD_SECONDS, FLOOD_AT_MOST = 3000, 8.0, 60.0
METER_STATS = re.compile(r"meter:(\d+) .*packet_in_count:(\d+).*\n\s*0: packet_count:(\d+)")
"""`ovs-ofctl meter-stats`: a meter, the packets it saw, and those its drop band dropped."""


def hostile_frames(mac: str) -> list[bytes]:
    """What a broken or hostile VM sends to UDP 67: valid DISCOVERs, truncated ones, BOOTP
    without the DHCP cookie, and a DISCOVER with a few hundred options."""
    head = Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
    bootp = BOOTP(chaddr=bytes.fromhex(mac.replace(":", "")), xid=0x5EED)
    discover = bytes(
        head / UDP(sport=68, dport=67) / bootp / DHCP(options=[("message-type", "discover"), "end"])
    )
    many = [("message-type", "discover"), *[(224, b"x" * 2)] * 300, "end"]
    return [
        discover,
        bytes(head / UDP(sport=68, dport=67) / bytes(bootp)[:60]),  # BOOTP cut short
        bytes(head / UDP(sport=68, dport=67) / bootp / (b"\0" * 64)),  # no magic cookie
        bytes(head / UDP(sport=68, dport=67) / bootp / DHCP(options=many)),
    ]


async def test_a_flooding_port_is_cut_down_on_the_switch_and_costs_no_one_else_a_lease(
    cluster, tmp_path: Path
) -> None:
    cloud, hosts = cluster
    server = cloud.servers["hv1"]
    controller_pid = server.controller.pid
    attacker = hosts["a2"]
    ofport = await asyncio.to_thread(server.hv.ofport, attacker.port_name)
    stop = tmp_path / "stop-flooding"
    sending = asyncio.create_task(
        asyncio.to_thread(
            flood,
            attacker.netns,
            hostile_frames(attacker.mac),
            rate=FLOOD_RATE,
            least=FLOOD_SECONDS,
            seconds=FLOOD_AT_MOST,
            stop=stop,
            workdir=tmp_path,
        )
    )
    try:
        with Dhclient(hosts["b2"].netns) as neighbour:  # same server, during the flood
            lease = await acquire(neighbour)
        assert not sending.done(), "the lease came only after the flood"
        assert_tenants_lease(lease, "b", hosts["b2"].ip, OPTIONS["b"]["dns_nameservers"][0])
    finally:
        stop.touch()
        flooded = await sending
    sent = flooded.sent
    assert sent >= FLOOD_RATE * flooded.seconds * 0.9

    # the port's meter let through its packet-in budget, and dropped the rest on the switch
    stats = await asyncio.to_thread(server.hv.ofctl, "meter-stats", BRIDGE, f"meter={ofport}")
    (meter, seen, dropped) = map(int, METER_STATS.search(stats).groups())  # type: ignore[union-attr]
    assert meter == ofport
    assert seen >= sent // 2, stats  # most met it (a loaded switch may miss some on receive)
    assert dropped >= seen * 0.9, stats

    # nothing stopped the controller, and a2 itself is answered once it behaves
    server.controller.assert_running()
    assert server.controller.pid == controller_pid
    with Dhclient(attacker.netns) as recovered:
        lease = await acquire(recovered)
    assert_tenants_lease(lease, "a", attacker.ip, OPTIONS["a"]["dns_nameservers"][0])
    log = server.controller.log.read_text()
    malformed = [line for line in log.splitlines() if "malformed packet-in" in line]
    assert 1 <= len(malformed) <= 2, malformed  # once a minute at most, whatever was sent
