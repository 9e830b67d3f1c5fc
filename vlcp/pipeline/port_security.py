"""Module `port_security`, tables `port_security` and `nd_guard`: a VIF sends only from
its port's addresses.

Ingress let a VIF's frame in only with one of its port's MACs; here the network-layer
source is checked, before the ARP responder (and the L3 to come) acts on it, so that a
spoofed source is never answered, learned or routed. From a port with an address:

- IPv4 from its address, or from an allowed address pair's address or network in a frame
  from that pair's MAC; ARP whose sender (`arp_spa`, `arp_sha`) is such a pair;
- ARP probes (RFC 5227: sender address 0.0.0.0) with one of those MACs as sender;
- DHCP from a client that has no address yet: 0.0.0.0:68 -> 255.255.255.255:67;
- IPv6 from its IPv6 address or pairs, from any link-local address (fe80::/10: never
  routed, and hosts pick their own), and ICMPv6 from :: (duplicate address detection, MLD
  reports); a neighbour advertisement only for a target the port may send from, or a
  link-local one (`nd_guard`), since that is what neighbours learn from it;
- any other protocol: the table's miss (non-IP traffic has no address to check).

Any other IPv4, ARP or IPv6 frame from a VIF is dropped.

A port without an address may send from any address, with its MACs still checked: vlcp
does not know which addresses it uses (static addressing on a network without subnets,
or an appliance that forwards other hosts' packets), and refusing all IP would make such
ports useless. Giving the port an address is what turns the checks on; docs/pipeline.md
says what that leaves open.
"""

from __future__ import annotations

import ipaddress

from vlcp.layout import LPORT
from vlcp.southbound.openflow.flow import Flow, MatchValue

from .module import Context, Module
from .tables import BoundTable, Table
from .view import AddressPair, IPNetwork, LocalPort, View

ETH_IPV4, ETH_ARP, ETH_IPV6 = 0x0800, 0x0806, 0x86DD
IPPROTO_UDP, IPPROTO_ICMPV6 = 17, 58
DHCP_CLIENT, DHCP_SERVER = 68, 67
ND_NEIGHBOR_ADVERT = 136
LINK_LOCAL_V6 = ipaddress.IPv6Network("fe80::/10")
UNSPECIFIED_V4, UNSPECIFIED_V6 = "0.0.0.0", "::"

PRIO_DROP = 10
PRIO_ALLOW = 30
PRIO_OPEN = 40
"""Above every allow: an open port's traffic skips the checks, `nd_guard`'s included."""

_NA = {"eth_type": ETH_IPV6, "ip_proto": IPPROTO_ICMPV6, "icmpv6_type": ND_NEIGHBOR_ADVERT}
NEXT = "arp_responder"
"""Where checked frames go on (and the misses: other protocols carry no address)."""

PORT_SECURITY = Table(
    "port_security",
    after=("ingress",),
    matches={
        "in_port",
        "eth_src",
        "eth_type",
        "ip_proto",
        "ipv4_src",
        "ipv4_dst",
        "udp_src",
        "udp_dst",
        "arp_sha",
        "arp_spa",
        "ipv6_src",
    },
    miss=NEXT,
    doc="from a VIF, IPv4, ARP and IPv6 only from the port's addresses (and allowed "
    "address pairs); other protocols pass.",
)
ND_GUARD = Table(
    "nd_guard",
    after=("port_security",),
    matches={"in_port", "eth_type", "ip_proto", "icmpv6_type", "ipv6_nd_target"},
    miss=NEXT,
    doc="from a VIF, IPv6 neighbour advertisements only for the port's addresses (or "
    "link-local ones).",
)


def prefix_match(network: IPNetwork) -> MatchValue | None:
    """A match on `network`: exact for one address, masked, or nothing for /0."""
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    if network.prefixlen == 0:
        return None
    return (str(network.network_address), str(network.netmask))


def _within(match: dict[str, MatchValue], field: str, network: IPNetwork) -> dict:
    value = prefix_match(network)
    return match if value is None else {**match, field: value}


def _allow(table: BoundTable, match: dict[str, MatchValue], goto: BoundTable) -> Flow:
    return table.flow(PRIO_ALLOW, match, goto=goto)


def base_flows(ctx: Context) -> frozenset[Flow]:
    """Drop IPv4, ARP and IPv6 unless allowed; what every port may send anyway."""
    checks, guard, arp = ctx[PORT_SECURITY.name], ctx[ND_GUARD.name], ctx[NEXT]
    drops = [checks.flow(PRIO_DROP, {"eth_type": t}) for t in (ETH_IPV4, ETH_ARP, ETH_IPV6)]
    dhcp = {
        "eth_type": ETH_IPV4,
        "ip_proto": IPPROTO_UDP,
        "ipv4_src": UNSPECIFIED_V4,
        "ipv4_dst": "255.255.255.255",
        "udp_src": DHCP_CLIENT,
        "udp_dst": DHCP_SERVER,
    }
    link_local = _within({"eth_type": ETH_IPV6}, "ipv6_src", LINK_LOCAL_V6)
    unspecified = {"eth_type": ETH_IPV6, "ip_proto": IPPROTO_ICMPV6, "ipv6_src": UNSPECIFIED_V6}
    return frozenset(
        {
            *drops,
            _allow(checks, dhcp, arp),
            _allow(checks, link_local, guard),
            _allow(checks, unspecified, guard),
            guard.flow(PRIO_DROP, _NA),
            _allow(guard, _within(_NA, "ipv6_nd_target", LINK_LOCAL_V6), arp),
        }
    )


def port_flows(ctx: Context, view: View, port_id: str) -> frozenset[Flow]:
    """A local port's sources: open without an address, else its address and pairs."""
    port = view.ports.get(port_id)
    if port is None or port.network not in view.networks:
        return frozenset()
    checks, arp = ctx[PORT_SECURITY.name], ctx[NEXT]
    sources = port.sources
    if sources is None:
        return frozenset({checks.flow(PRIO_OPEN, {"in_port": port.ofport}, goto=arp)})
    flows: set[Flow] = set()
    for pair in sources:
        flows |= _source_flows(ctx, port, pair)
    for mac in {p.mac for p in sources if p.network.version == 4}:
        probe = {"in_port": port.ofport, "eth_type": ETH_ARP, "arp_sha": mac}
        flows.add(_allow(checks, {**probe, "arp_spa": UNSPECIFIED_V4}, arp))
    return frozenset(flows)


def _source_flows(ctx: Context, port: LocalPort, pair: AddressPair) -> set[Flow]:
    """IPv4 and ARP, or IPv6 and neighbour advertisements, from one pair."""
    checks, guard, next_table = ctx[PORT_SECURITY.name], ctx[ND_GUARD.name], ctx[NEXT]
    network = pair.network
    here = {"in_port": port.ofport}
    if network.version == 4:
        ip = _within({**here, "eth_src": pair.mac, "eth_type": ETH_IPV4}, "ipv4_src", network)
        arp = _within({**here, "eth_type": ETH_ARP, "arp_sha": pair.mac}, "arp_spa", network)
        return {_allow(checks, ip, next_table), _allow(checks, arp, next_table)}
    ip = _within({**here, "eth_src": pair.mac, "eth_type": ETH_IPV6}, "ipv6_src", network)
    advert = _within({**here, **_NA}, "ipv6_nd_target", network)
    return {_allow(checks, ip, guard), _allow(guard, advert, next_table)}


MODULE = Module(
    "port_security",
    doc="Anti-spoofing: a VIF sends IPv4, ARP and IPv6 only from its port's addresses and "
    "allowed address pairs, and advertises only those as IPv6 neighbours.",
    depends=("ingress",),
    tables=(PORT_SECURITY, ND_GUARD),
    base=base_flows,
    port=port_flows,
    watches=(LPORT,),
)
