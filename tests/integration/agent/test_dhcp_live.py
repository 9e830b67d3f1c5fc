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

With ISC `dhclient` on the machine, also a real client's lease: what it parsed (its
script's environment), what the script applied (`ip addr`, `ip route`, the MTU), and its
unicast renewal carrying a DNS server changed meanwhile; the same lease with busybox
`udhcpc` where it is installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from tests.lab.fixtures_ovs import HostFactory, HypervisorFactory
from tests.lab.marks import needs_ovs_lab
from tests.lab.ovs import Host, Hypervisor
from tests.lab.waiting import eventually
from vlcp.agent.agent import Agent
from vlcp.agent.modules import discover
from vlcp.agent.packet_in import Counters
from vlcp.lab.servers import BRIDGE, agent_config, wait_for_bridge
from vlcp.layout import modules_key
from vlcp.model.service import Model
from vlcp.pipeline import BUILTIN
from vlcp.pipeline import dhcp as dhcp_module
from vlcp.pipeline.dhcp.settings import Settings
from vlcp.store import Store, Transaction, open_store
from vlcp.tasks import stop_tasks

pytestmark = [pytest.mark.root, needs_ovs_lab]

A_MAC, A_IP = "02:00:00:00:0d:01", "10.0.0.10"
B_MAC = "02:00:00:00:0d:02"
C_MAC, C_IP = "02:00:00:00:0d:03", "10.0.0.12"
GATEWAY, DNS, DOMAIN = "10.0.0.1", "198.51.100.53", "tenant.example"
ROUTE = ["198.51.100.0/24", "10.0.0.254"]
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

    async def want(self, modules: list[str]) -> None:
        """This server's wanted module set, as the API writes it."""

        async def write(txn: Transaction) -> None:
            txn.put(modules_key("hv0"), {"modules": modules, "reload": {}})

        await self.store.transact(write)


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
    task = asyncio.create_task(agent.run())
    try:
        await wait_for_bridge(hv, task)
        a = host_factory(hv, BRIDGE, f"{A_IP}/24", mac=A_MAC, iface_id="A", name="A")
        b = host_factory(hv, BRIDGE, "10.0.0.99/24", mac=B_MAC, iface_id="B", name="B")
        c = host_factory(hv, BRIDGE, f"{C_IP}/24", mac=C_MAC, iface_id="C", name="C")
        for name in "ABC":
            await model.wait_port_up(name, timeout=30)
        yield Lab(hv, agent, store, model, a, b, c)
    finally:
        await stop_tasks([task])
        with contextlib.suppress(Exception):
            await store.close()


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
    await lab.model.update("subnets", "sub", {"dns_nameservers": ["198.51.100.54"]})
    renew = dhcp(A_MAC, 0, "request")
    renew[IP].src, renew[BOOTP].ciaddr = A_IP, A_IP

    async def renewed_with_the_new_server() -> bool:
        renew[BOOTP].xid = int.from_bytes(os.urandom(4), "big")
        ack = await answer(lab.a, renew)
        return options(ack)["name_server"] == "198.51.100.54"

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
    assert (theirs["name_server"], ours["name_server"]) == ("203.0.113.53", "198.51.100.54")


async def test_unloaded_it_answers_nothing_and_dhcp_is_forwarded_as_before(lab: Lab) -> None:
    every = sorted(m.name for m in BUILTIN)
    await lab.want([m for m in every if m != "dhcp"])

    async def forwarded() -> bool:
        xid = int.from_bytes(os.urandom(4), "big")
        capture = lab.b.capture("udp port 67")
        unanswered = await exchange(lab.a, dhcp(A_MAC, xid, "discover"), timeout=1) is None
        await asyncio.sleep(0.2)
        seen = any(BOOTP in p and p[BOOTP].xid == xid for p in capture.stop())
        return unanswered and seen

    await eventually(forwarded, 30, what="A's DISCOVER forwarded to B, unanswered")
    await lab.want(every)

    async def answered() -> bool:
        xid = int.from_bytes(os.urandom(4), "big")
        return await exchange(lab.a, dhcp(A_MAC, xid, "discover"), timeout=1) is not None

    await eventually(answered, 30, what="A's DISCOVER answered again")


async def test_a_flooding_port_is_held_to_its_rate_and_others_get_their_leases(lab: Lab) -> None:
    before = lab.agent.packet_ins.counters.get("dhcp", Counters())
    refused_before = dhcp_module.OUTCOMES["truncated"]
    udp = Ether(src=C_MAC, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
    malformed = udp / UDP(sport=68, dport=67) / Raw(b"\x01" * 60)  # a BOOTP cut short
    flood = [malformed] * 10 + [dhcp(C_MAC, n, "discover") for n in range(1000)]
    sending = asyncio.create_task(asyncio.to_thread(lab.c.send, *flood))
    await asyncio.sleep(0.2)
    xid = int.from_bytes(os.urandom(4), "big")
    offer = await answer(lab.a, dhcp(A_MAC, xid, "discover"))
    assert offer[BOOTP].yiaddr == A_IP
    await sending
    last = -1

    async def settled() -> bool:  # the switch may drop some packet-ins: wait for a lull
        nonlocal last
        received, last = last, lab.agent.packet_ins.counters["dhcp"].received
        await asyncio.sleep(0.5)
        return received == last

    await eventually(settled, 20, what="the flood's packet-ins to end")
    counted = lab.agent.packet_ins.counters["dhcp"]
    declared = dhcp_module.MODULE.packet_ins[0]
    flooded = counted.received - before.received - 1  # A's is one
    handled = counted.handled - before.handled - 1
    assert flooded > 100, counted  # many reached the controller (the switch drops some) ...
    assert handled <= declared.burst + 30 * declared.rate, counted  # ... few the responder
    assert counted.limited - before.limited == flooded - handled
    assert counted.errors == before.errors
    assert dhcp_module.OUTCOMES["truncated"] - refused_before == 10  # first in: within the burst


DHCLIENT_CONF = """
option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
request subnet-mask, broadcast-address, routers, domain-name-servers, domain-name,
        host-name, interface-mtu, rfc3442-classless-static-routes;
timeout 20;
retry 1;
"""
DHCLIENT_SCRIPT = """#!/bin/sh
# Applies a lease in the namespace (never /etc/resolv.conf: /etc is the host's) and
# keeps the client's environment for the test.
env > "$0.env.$reason"
case "$reason" in BOUND|RENEW|REBIND|REBOOT)
  ip addr flush dev "$interface"
  ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
  [ -n "$new_interface_mtu" ] && ip link set "$interface" mtu "$new_interface_mtu"
  for router in $new_routers; do ip route replace default via "$router" dev "$interface"; done
  ;;
esac
exit 0
"""


@pytest.mark.skipif(shutil.which("dhclient") is None, reason="isc-dhcp-client is not installed")
async def test_dhclient_gets_and_applies_the_lease(lab: Lab, tmp_path: Path) -> None:
    conf, script = tmp_path / "dhclient.conf", tmp_path / "script"
    conf.write_text(DHCLIENT_CONF)
    script.write_text(DHCLIENT_SCRIPT)
    script.chmod(0o755)
    a = lab.a
    await asyncio.to_thread(a.exec, "ip", "addr", "flush", "dev", "eth0")
    files = ["-cf", str(conf), "-sf", str(script)]
    files += ["-lf", str(tmp_path / "leases"), "-pf", str(tmp_path / "pid")]
    await lab.model.update("subnets", "sub", {"lease_time": 6})  # T1 3 s, T2 5.25 s
    try:
        await asyncio.to_thread(a.exec, "dhclient", "-1", "-4", *files, "eth0", timeout=40)
        await _check_dhclient_lease(a, tmp_path / "script.env.BOUND")
        # A renewal goes by unicast to the server identifier, the gateway, whose MAC the
        # gateway responder (still to come) will answer for; a static neighbour stands in.
        await asyncio.to_thread(a.add_neighbor, GATEWAY, Settings().server_mac)
        await lab.model.update("subnets", "sub", {"dns_nameservers": ["198.51.100.54"]})

        async def renewed_with_the_new_server() -> bool:
            env = tmp_path / "script.env.RENEW"
            return env.exists() and "new_domain_name_servers=198.51.100.54" in env.read_text()

        await eventually(renewed_with_the_new_server, 20, what="a renewal with the new DNS")
        assert not (tmp_path / "script.env.EXPIRE").exists()
    finally:  # release the lease and stop the client, which went to the background
        await asyncio.to_thread(a.exec, "dhclient", "-r", *files, "eth0", check=False, timeout=20)


async def _check_dhclient_lease(a: Host, env_file: Path) -> None:
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    assert env["new_ip_address"] == A_IP and env["new_subnet_mask"] == "255.255.255.0"
    assert env["new_routers"] == GATEWAY and env["new_domain_name_servers"] == DNS
    assert env["new_domain_name"] == DOMAIN and env["new_interface_mtu"] == "1450"
    assert env["new_dhcp_lease_time"] == "6"
    assert env["new_host_name"] == "host-10-0-0-10"
    routes = "24 198 51 100 10 0 0 254 0 10 0 0 1"
    assert env["new_rfc3442_classless_static_routes"] == routes
    shown = (await asyncio.to_thread(a.exec, "ip", "-4", "addr", "show", "dev", "eth0")).stdout
    assert f"{A_IP}/24" in shown and "mtu 1450" in shown
    routes_shown = (await asyncio.to_thread(a.exec, "ip", "-4", "route")).stdout
    assert f"default via {GATEWAY}" in routes_shown


UDHCPC_SCRIPT = """#!/bin/sh
# As DHCLIENT_SCRIPT, for busybox udhcpc (the event is $1, the lease in its variables).
env > "$0.env.$1"
case "$1" in bound|renew)
  ip addr flush dev "$interface"
  ip addr add "$ip/$subnet" dev "$interface"
  [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
  for r in $router; do ip route replace default via "$r" dev "$interface"; done
  ;;
esac
exit 0
"""


@pytest.mark.skipif(shutil.which("udhcpc") is None, reason="busybox udhcpc is not installed")
async def test_udhcpc_gets_and_applies_the_lease(lab: Lab, tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    a = lab.a
    await asyncio.to_thread(a.exec, "ip", "addr", "flush", "dev", "eth0")
    command = ["udhcpc", "-q", "-n", "-f", "-i", "eth0", "-t", "5", "-O", "mtu", "-s", str(script)]
    await asyncio.to_thread(a.exec, *command, timeout=40)
    shown = (await asyncio.to_thread(a.exec, "ip", "-4", "addr", "show", "dev", "eth0")).stdout
    assert f"{A_IP}/24" in shown and "mtu 1450" in shown
    routes = (await asyncio.to_thread(a.exec, "ip", "-4", "route")).stdout
    assert f"default via {GATEWAY}" in routes
