"""The dhcp module on a real ovs-vswitchd: a host's DISCOVER and REQUEST answered.

One server, its agent in this process (every built-in module loaded, the default), a
VXLAN network with a subnet (gateway, DNS, domain, a host route) and two hosts: A has an
address in the subnet, B has none. A client built with scapy in A's namespace:

- DISCOVER -> OFFER with A's address and the options (mask, router, DNS, domain, MTU of
  the underlay minus 50, host name, classless routes with the default route), sent to A
  only: B sees neither the DISCOVER nor the OFFER;
- REQUEST for its address -> ACK; for another address -> NAK;
- B's DISCOVER gets no answer (it is forwarded as before, to A);
- a renewal after the subnet's DNS changed carries the new server, and a second tenant
  with A's MAC and address gets its own network's;
- with the module unloaded (the wanted set without it), A's DISCOVER is forwarded to B
  and not answered; loaded again, answered again;
- a third host C flooding the controller with DISCOVERs and malformed requests is held
  to its port's rate, and A gets its lease during the flood.

Real clients (ISC dhclient, busybox udhcpc; `tests/lab/dhcp`): the lease each parsed,
what its script applied (`ip addr`, `ip route`, the MTU, a private resolv.conf), and its
own renewal (unicast to the gateway at T1: the gateway module answers its ARP) carrying
a DNS server changed meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from tests.lab.dhcp import CLIENTS, Route
from tests.lab.fixtures_ovs import HostFactory, HypervisorFactory
from tests.lab.marks import needs_dhcp_clients, needs_ovs_lab
from tests.lab.ovs import Host, Hypervisor
from tests.lab.waiting import eventually, settled
from vlcp.agent.agent import Agent
from vlcp.agent.modules import discover
from vlcp.agent.packet_in import Counters
from vlcp.lab.servers import BRIDGE, agent_config
from vlcp.model.service import Model
from vlcp.pipeline import BUILTIN
from vlcp.pipeline.gateway import gateway_mac
from vlcp.store import Store, open_store

from .running import running
from .wanted import want

pytestmark = [pytest.mark.root, needs_ovs_lab]

A_MAC, A_IP = "02:00:00:00:0d:01", "10.0.0.10"
B_MAC = "02:00:00:00:0d:02"
C_MAC, C_IP = "02:00:00:00:0d:03", "10.0.0.12"
GATEWAY, DNS, DOMAIN = "10.0.0.1", "198.51.100.53", "tenant.example"
ROUTE = ["198.51.100.0/24", "10.0.0.254"]
NEW_DNS = "198.51.100.54"
OFFER, ACK, NAK = 2, 5, 6


@dataclass
class Lab:
    hv: Hypervisor
    agent: Agent
    store: Store
    model: Model
    a: Host
    b: Host
    c: Host


@pytest.fixture
async def lab(
    hypervisor_factory: HypervisorFactory, host_factory: HostFactory, tmp_path: Path
) -> AsyncIterator[Lab]:
    store = await open_store(f"sqlite://{tmp_path}/store.db")
    model = Model(store)
    await model.create("physical-networks", {"id": "vx", "type": "vxlan", "vnirange": [[10, 20]]})
    await model.create("logical-networks", {"id": "net", "physicalnetwork": "vx"})
    subnet = {
        "id": "sub",
        "logicalnetwork": "net",
        "cidr": "10.0.0.0/24",
        "gateway": GATEWAY,
        "dns_nameservers": [DNS],
        "domain_name": DOMAIN,
        "host_routes": [ROUTE],
    }
    await model.create("subnets", subnet)
    await model.create(
        "logical-ports",
        {"id": "A", "logicalnetwork": "net", "mac_address": A_MAC, "ip_address": A_IP},
    )
    await model.create("logical-ports", {"id": "B", "logicalnetwork": "net", "mac_address": B_MAC})
    await model.create(
        "logical-ports",
        {"id": "C", "logicalnetwork": "net", "mac_address": C_MAC, "ip_address": C_IP},
    )
    hv = hypervisor_factory("hv0")
    agent = Agent(store, agent_config(hv, "hv0"), discover(found=[]))
    async with running(agent, hv, store):
        a = host_factory(hv, BRIDGE, f"{A_IP}/24", mac=A_MAC, iface_id="A", name="A")
        b = host_factory(hv, BRIDGE, "10.0.0.99/24", mac=B_MAC, iface_id="B", name="B")
        c = host_factory(hv, BRIDGE, f"{C_IP}/24", mac=C_MAC, iface_id="C", name="C")
        for name in "ABC":
            await model.wait_port_up(name, timeout=30)
        yield Lab(hv, agent, store, model, a, b, c)


def dhcp(mac: str, xid: int, kind: str, *options: tuple[str, object]) -> Packet:
    chaddr = bytes.fromhex(mac.replace(":", "")) + bytes(10)
    return (
        Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(chaddr=chaddr, xid=xid, flags=0x8000)
        / DHCP(options=[("message-type", kind), *options, "end"])
    )


def options(packet: Packet) -> dict[str, object]:
    return {
        o[0]: o[1] if len(o) == 2 else o[1:] for o in packet[DHCP].options if isinstance(o, tuple)
    }


def reply_to(xid: int) -> Callable[[Packet], bool]:
    return lambda p: BOOTP in p and p[BOOTP].op == 2 and p[BOOTP].xid == xid


async def exchange(host: Host, request: Packet, *, timeout: float = 10) -> Packet | None:
    """Send a client frame from `host`; the server's reply to it, or None."""
    capture = host.capture("udp port 68")
    await asyncio.to_thread(host.send, request)
    try:
        (reply,) = await asyncio.to_thread(
            capture.wait_for, reply_to(request[BOOTP].xid), timeout=timeout
        )
    except TimeoutError:
        return None
    finally:
        capture.stop()
    return reply


async def answer(host: Host, request: Packet) -> Packet:
    reply = await exchange(host, request)
    assert reply is not None, f"no reply to {request.summary()}"
    return reply


async def test_a_host_gets_its_lease_and_a_host_without_an_address_nothing(lab: Lab) -> None:
    xid = int.from_bytes(os.urandom(4), "big")
    wanted = [1, 3, 6, 15, 26, 12, 121, 51]
    capture_b = lab.b.capture("udp port 67 or udp port 68")
    offer = await answer(lab.a, dhcp(A_MAC, xid, "discover", ("param_req_list", wanted)))
    assert offer[Ether].dst == A_MAC
    assert offer[BOOTP].yiaddr == A_IP
    got = options(offer)
    assert got["message-type"] == OFFER
    assert got["server_id"] == GATEWAY
    assert got["subnet_mask"] == "255.255.255.0"
    assert got["router"] == GATEWAY
    assert got["name_server"] == DNS
    assert got["domain"] == DOMAIN.encode()
    assert got["interface-mtu"] == 1450  # the 1500-byte underlay minus VXLAN's 50
    assert got["hostname"] == b"host-10-0-0-10"
    assert got["classless_static_routes"] == ["198.51.100.0/24:10.0.0.254", "0.0.0.0/0:10.0.0.1"]
    assert offer[UDP].chksum == UDP(bytes(offer[UDP]))[UDP].chksum

    request = ("requested_addr", A_IP), ("server_id", GATEWAY)
    ack = await answer(lab.a, dhcp(A_MAC, xid + 1, "request", *request))
    assert options(ack)["message-type"] == ACK and ack[BOOTP].yiaddr == A_IP
    nak = await answer(lab.a, dhcp(A_MAC, xid + 2, "request", ("requested_addr", "10.0.0.11")))
    assert options(nak)["message-type"] == NAK

    seen_by_b = [p for p in capture_b.stop() if BOOTP in p and p[BOOTP].xid in (xid, xid + 1)]
    assert not seen_by_b, "A's DHCP was flooded to B"

    unanswered = int.from_bytes(os.urandom(4), "big")
    capture_a = lab.a.capture("udp port 67")
    assert await exchange(lab.b, dhcp(B_MAC, unanswered, "discover"), timeout=3) is None
    forwarded = capture_a.stop()  # B has no address: its DHCP goes on as before
    assert [p for p in forwarded if BOOTP in p and p[BOOTP].xid == unanswered]


async def test_a_renewal_carries_a_changed_option_and_each_tenant_gets_its_own(
    lab: Lab, host_factory: HostFactory
) -> None:
    await lab.model.update("subnets", "sub", {"dns_nameservers": [NEW_DNS]})
    renew = dhcp(A_MAC, 0, "request")
    renew[IP].src, renew[BOOTP].ciaddr = A_IP, A_IP

    async def renewed_with_the_new_server() -> bool:
        renew[BOOTP].xid = int.from_bytes(os.urandom(4), "big")
        ack = await answer(lab.a, renew)
        return options(ack)["name_server"] == NEW_DNS

    await eventually(renewed_with_the_new_server, 10, what="the new DNS server in a renewal")

    # Another tenant, same MAC and address, on the same server: its own network's options.
    await lab.model.create("logical-networks", {"id": "net2", "physicalnetwork": "vx"})
    other = {"id": "sub2", "logicalnetwork": "net2", "cidr": "10.0.0.0/24", "gateway": GATEWAY}
    await lab.model.create("subnets", {**other, "dns_nameservers": ["203.0.113.53"]})
    port = {"id": "D", "logicalnetwork": "net2", "mac_address": A_MAC, "ip_address": A_IP}
    await lab.model.create("logical-ports", port)
    d = host_factory(lab.hv, BRIDGE, f"{A_IP}/24", mac=A_MAC, iface_id="D", name="D")
    await lab.model.wait_port_up("D", timeout=30)
    xid = int.from_bytes(os.urandom(4), "big")
    theirs = options(await answer(d, dhcp(A_MAC, xid, "discover")))
    ours = options(await answer(lab.a, dhcp(A_MAC, xid + 1, "discover")))
    assert (theirs["name_server"], ours["name_server"]) == ("203.0.113.53", NEW_DNS)


async def test_unloaded_it_answers_nothing_and_dhcp_is_forwarded_as_before(lab: Lab) -> None:
    every = sorted(m.name for m in BUILTIN)
    await want(lab.store, [m for m in every if m != "dhcp"], server="hv0")

    async def forwarded() -> bool:
        xid = int.from_bytes(os.urandom(4), "big")
        capture = lab.b.capture("udp port 67")
        unanswered = await exchange(lab.a, dhcp(A_MAC, xid, "discover"), timeout=1) is None
        await asyncio.sleep(0.2)
        seen = any(BOOTP in p and p[BOOTP].xid == xid for p in capture.stop())
        return unanswered and seen

    await eventually(forwarded, 30, what="A's DISCOVER forwarded to B, unanswered")
    await want(lab.store, every, server="hv0")

    async def answered() -> bool:
        xid = int.from_bytes(os.urandom(4), "big")
        return await exchange(lab.a, dhcp(A_MAC, xid, "discover"), timeout=1) is not None

    await eventually(answered, 30, what="A's DISCOVER answered again")


async def test_a_flooding_port_is_held_to_its_rate_and_others_get_their_leases(lab: Lab) -> None:
    """The switch's meter of the port lets through its packet-in budget only (burst, then
    rate); malformed ones among them are counted as such, the others' leases go on."""
    before = lab.agent.packet_ins.counters.get("dhcp", Counters())
    udp = Ether(src=C_MAC, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
    malformed = udp / UDP(sport=68, dport=67) / Raw(b"\x01" * 60)  # a BOOTP cut short
    flood = [malformed] * 10 + [dhcp(C_MAC, n, "discover") for n in range(1000)]
    started = time.monotonic()
    sending = asyncio.create_task(asyncio.to_thread(lab.c.send, *flood))
    await asyncio.sleep(0.2)
    xid = int.from_bytes(os.urandom(4), "big")
    offer = await answer(lab.a, dhcp(A_MAC, xid, "discover"))
    assert offer[BOOTP].yiaddr == A_IP
    await sending
    await settled(lambda: lab.agent.packet_ins.counters["dhcp"].received, what="packet-ins")
    elapsed = time.monotonic() - started
    counted = lab.agent.packet_ins.counters["dhcp"]
    budget = lab.agent.modules.current.packet_in_budget()
    assert budget is not None
    rate, burst = budget
    flooded = counted.received - before.received - 1  # A's is one
    assert 10 <= flooded <= burst + rate * elapsed + 1, (counted, elapsed)
    assert counted.malformed - before.malformed == 10  # first in: within the burst
    assert counted.errors == before.errors


@needs_dhcp_clients
@pytest.mark.parametrize("program", sorted(CLIENTS))
async def test_a_real_client_gets_applies_and_renews_its_lease(lab: Lab, program: str) -> None:
    kind = CLIENTS[program]
    await lab.model.update("subnets", "sub", {"lease_time": kind.shortest_lease})
    with kind(lab.a.netns) as client:
        result = await asyncio.to_thread(client.acquire, 20)
        lease, applied = result.lease, result.applied
        assert lease.address == IPv4Address(A_IP)
        assert lease.network == IPv4Network("10.0.0.0/24")
        assert lease.routers == (IPv4Address(GATEWAY),)
        assert lease.dns == (IPv4Address(DNS),)
        assert (lease.domain, lease.mtu, lease.hostname) == (DOMAIN, 1450, "host-10-0-0-10")
        assert lease.classless_routes == (
            Route(IPv4Network(ROUTE[0]), IPv4Address(ROUTE[1])),
            Route(IPv4Network("0.0.0.0/0"), IPv4Address(GATEWAY)),
        )
        assert lease.ms_classless_routes == lease.classless_routes  # both asked for
        assert IPv4Interface(f"{A_IP}/24") in applied.addresses and applied.mtu == 1450
        assert any(r.startswith(f"default via {GATEWAY}") for r in applied.routes)
        assert f"nameserver {DNS}" in (applied.resolv_conf or "")

        # The client's own renewal (T1) goes by unicast to the server identifier, the
        # gateway, whose ARP the gateway module answers on the switch. It carries a DNS
        # server changed meanwhile.
        capture = lab.a.capture("udp port 67")
        await lab.model.update("subnets", "sub", {"dns_nameservers": [NEW_DNS]})
        renewed = await asyncio.to_thread(client.next_lease, 3 * kind.shortest_lease)
        assert renewed.dns == (IPv4Address(NEW_DNS),) and renewed.address == lease.address
        sent = [p for p in capture.stop() if BOOTP in p and p[BOOTP].op == 1]
        unicast = [p for p in sent if p[IP].dst == GATEWAY]
        assert unicast, [p.summary() for p in sent]
        assert unicast[0][Ether].dst == gateway_mac("sub") and unicast[0][IP].src == A_IP
        await asyncio.to_thread(client.release)
