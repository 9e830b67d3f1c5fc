"""Module `gateway`, table `gateway`: each subnet's gateway address answers ARP and ping
on the switch, from the local ports of its network.

A workload's first packet off its subnet is an ARP request for the gateway, and the DHCP
server identifier is the gateway address (a client renews by unicast to it at T1): both
need the gateway to exist on the wire. No VM holds it, so the switch plays it, with flows
only (no controller round trip), on every server with a port in the subnet's network.

The gateway MAC (`gateway_mac`) is derived from the subnet id: locally administered,
unicast, and the same on every server, so a VM that migrates keeps a valid neighbour
entry for its gateway. The `mac` setting replaces it by one fixed MAC for every subnet.

Flows, all owned by the subnet's network (docs/pipeline.md, "Gateway"):

- in `arp_responder` (after anti-spoofing: a spoofed source never reaches them), from a
  local port of the network (IN_KIND LOCAL): an ARP request for a gateway address, and
  any frame to a gateway MAC, go to `gateway`. They sit below the responder's own answers
  (`PRIO_STEER` < `arp.PRIO_ANSWER`): if a port of the network holds the gateway address
  (a tenant's own router), its answer wins as before, and its traffic (to its own MAC)
  never comes here;
- in `gateway`, per network and gateway address: the ARP reply "gateway is at the gateway
  MAC", built in the switch (`arp.reply_actions`), and the ICMP echo reply (Ethernet and
  IP addresses swapped, type 0, TTL reset; the switch fixes the IP and ICMP checksums),
  both out of the in_port. IPv4 to the gateway MAC of a subnet on a router goes on to
  routing (module `l3`'s entries in this table); anything else is dropped (the miss).

The table is declared after `l2_forward` (as well as `arp_responder`, its one entrance)
only to come after every other table: no table id moves (dhcp keeps 5, this is 6).

Frames from the tunnel or a physical port are not answered: the server of the asking
port answers it. Two subnets of one network with one gateway address: the lowest subnet
id's MAC answers (one flow per match). Only IPv4 gateways: IPv6 has no ARP.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from vlcp.layout import LOGNET, LPORT, SUBNET
from vlcp.southbound.openflow.flow import Action, Flow, output
from vlcp.typed import Typed, setting, unicast_mac

from .arp import ARP_REQUEST, ARP_RESPONDER, ETH_TYPE_ARP, PRIO_ANSWER, reply_actions
from .fields import IN_KIND, NETWORK, InKind
from .module import Context, Module
from .tables import Table
from .view import Subnet, View, ipv4

ETH_TYPE_IPV4 = 0x0800
IPPROTO_ICMP = 1
ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST = 0, 8
REPLY_TTL = 64

PRIO_STEER = PRIO_ANSWER - 10
"""In `arp_responder`: below the answers for port addresses (a port holding the gateway
address wins), above its miss."""
PRIO_REPLY = 100

GATEWAY = Table(
    "gateway",
    after=("arp_responder", "l2_forward"),
    matches={
        NETWORK,
        "eth_dst",
        "eth_type",
        "arp_op",
        "arp_tpa",
        "ipv4_dst",
        "ip_proto",
        "icmpv4_type",
        "icmpv4_code",
    },
    doc="ARP requests and ICMP echo requests for subnet gateways, answered.",
)


@dataclass(frozen=True)
class Settings(Typed):
    """`vlcp module configure gateway --settings JSON`."""

    mac: str | None = setting(None, check=unicast_mac)
    """One fixed gateway MAC for every subnet, instead of the one derived from the subnet
    id. Every controller must be given the same (settings are per controller)."""


def gateway_mac(subnet_id: str) -> str:
    """The gateway MAC of a subnet: a hash of its id, locally administered and unicast
    (first octet xxxxxx10), so the same on every server."""
    digest = bytearray(
        hashlib.blake2b(b"vlcp-gateway:" + subnet_id.encode(), digest_size=6).digest()
    )
    digest[0] = (digest[0] & 0xFC) | 0x02
    return ":".join(f"{b:02x}" for b in digest)


def mac_of(ctx: Context, subnet: Subnet) -> str:
    """The MAC the gateway of `subnet` answers with (the setting, else derived)."""
    fixed: str | None = getattr(ctx.settings, "mac", None)  # the class may be a reloaded one
    return fixed or gateway_mac(subnet.id)


def gateways(view: View, network_id: str) -> dict[str, Subnet]:
    """The IPv4 gateway addresses of a network's subnets, each with the subnet that
    answers for it (the lowest id when several name one address)."""
    found: dict[str, Subnet] = {}
    for subnet_id in sorted(view.subnet_ids.get(network_id, ())):
        subnet = view.subnets[subnet_id]
        address = ipv4(subnet.gateway)
        if subnet.network == network_id and address is not None:
            found.setdefault(address, subnet)
    return found


def _set(field: str, value: object) -> Action:
    return Action.make("set_field", field=field, value=value)


def _move(src: str, dst: str) -> Action:
    return Action.make("nx_reg_move", src=src, dst=dst)


def echo_reply_actions(mac: str, ip: str) -> tuple[Action, ...]:
    """Turn an echo request to `ip` at `mac` into its reply, back out of the in_port.

    The requester's addresses are moved into the destination fields before the sources
    are overwritten. The echo's identifier, sequence and data stay; setting the type and
    TTL makes the switch update the ICMP and IP checksums."""
    return (
        _move("eth_src", "eth_dst"),
        _set("eth_src", mac),
        _move("ipv4_src", "ipv4_dst"),
        _set("ipv4_src", ip),
        _set("nw_ttl", REPLY_TTL),
        _set("icmpv4_type", ICMP_ECHO_REPLY),
        output("in_port"),
    )


def network_flows(ctx: Context, view: View, network_id: str) -> frozenset[Flow]:
    """Steering in `arp_responder` and the answers in `gateway`, per gateway address of
    the network, if this server has a local port in it."""
    network = view.networks.get(network_id)
    members = view.members.get(network_id)
    if network is None or members is None or not members.ports:
        return frozenset()
    steer, table = ctx[ARP_RESPONDER.name], ctx[GATEWAY.name]
    local = {NETWORK: network.number, IN_KIND: InKind.LOCAL}
    flows: set[Flow] = set()
    for address, subnet in gateways(view, network_id).items():
        mac = mac_of(ctx, subnet)
        arp = {"eth_type": ETH_TYPE_ARP, "arp_op": ARP_REQUEST, "arp_tpa": address}
        echo = {
            "eth_dst": mac,
            "eth_type": ETH_TYPE_IPV4,
            "ipv4_dst": address,
            "ip_proto": IPPROTO_ICMP,
            "icmpv4_type": ICMP_ECHO_REQUEST,
            "icmpv4_code": 0,
        }
        flows |= {
            steer.flow(PRIO_STEER, {**local, **arp}, goto=table),
            steer.flow(PRIO_STEER, {**local, "eth_dst": mac}, goto=table),
            table.flow(PRIO_REPLY, {NETWORK: network.number, **arp}, reply_actions(mac, address)),
            table.flow(
                PRIO_REPLY, {NETWORK: network.number, **echo}, echo_reply_actions(mac, address)
            ),
        }
    return frozenset(flows)


MODULE = Module(
    "gateway",
    doc="Answers ARP and ICMP echo for every subnet's gateway address on the switch, "
    "from the local ports of its network, with a MAC derived from the subnet id.",
    depends=("ingress",),
    tables=(GATEWAY,),
    network=network_flows,
    watches=(LPORT, LOGNET, SUBNET),
    settings=Settings,
)
