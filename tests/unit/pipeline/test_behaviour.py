"""What the L2 pipeline does to packets, traced through the flows of one server.

The view (`scenario.py`) has tenants that reuse the same MACs and addresses; every test
sends one frame and looks at every copy that leaves the switch.
"""

from __future__ import annotations

from typing import Any

import pytest

from vlcp.pipeline import Network, PutNetwork, apply

from .scenario import (
    BROADCAST,
    FLOWS,
    M1,
    M2,
    M3,
    M5,
    MULTICAST,
    NETWORKS,
    PHYS_NATIVE,
    PHYS_VLAN,
    PORT,
    PORTS,
    TUNNEL,
    UNKNOWN,
    VIEW,
    VTEP2,
    VTEP3,
    VTEP4,
    all_flows,
    arp_request,
    frame,
)
from .sim import Output, trace

Copy = int | tuple[Any, ...]


def send(port_id: str, packet: dict[str, Any]) -> list[Output]:
    return trace(FLOWS, PORT[port_id].ofport, packet)


def from_tunnel(vni: int, packet: dict[str, Any], src: str = VTEP2) -> list[Output]:
    return trace(FLOWS, TUNNEL, {**packet, "tunnel_id": vni, "tun_ipv4_src": src})


def from_wire(ofport: int, packet: dict[str, Any], vlan: int | None = None) -> list[Output]:
    return trace(FLOWS, ofport, {**packet, "vlan_vid": 0 if vlan is None else 0x1000 | vlan})


def copies(outputs: list[Output]) -> list[Copy]:
    """Each copy as: a VIF's ofport, ("tunnel", vtep, vni), or ("wire", ofport, vlan|None)."""
    result: list[Copy] = []
    for o in outputs:
        if o.port == TUNNEL:
            result.append(("tunnel", o["tun_ipv4_dst"], o["tunnel_id"]))
        elif o.port in (PHYS_VLAN, PHYS_NATIVE):
            vid = o["vlan_vid"] or 0
            result.append(("wire", o.port, vid & 0xFFF if vid else None))
        else:
            assert not o["vlan_vid"], "a VIF receives untagged frames"
            result.append(o.port)
    return result


def assert_inside(network_id: str, outputs: list[Output]) -> None:
    """Every copy stays in the network: its VIFs, its VNI to its peers, or its VLAN."""
    net = NETWORKS[network_id]
    for c in copies(outputs):
        if isinstance(c, int):
            assert any(p.ofport == c and p.network == network_id for p in PORTS), c
        elif c[0] == "tunnel":
            assert net.type == "vxlan" and c[2] == net.tag, c
            assert c[1] in VIEW.peer_vteps(network_id), c
        else:
            expected = ("wire", PHYS_VLAN, net.tag) if net.type == "vlan" else None
            if net.type == "native":
                expected = ("wire", PHYS_NATIVE, None)
            assert c == expected, c


def test_broadcast_floods_the_network_once_per_peer_vtep() -> None:
    out = copies(send("a1", frame(M1, BROADCAST)))
    assert sorted(out, key=str) == sorted(
        [2, ("tunnel", VTEP2, 5001), ("tunnel", VTEP4, 5001)], key=str
    )
    assert copies(send("b1", frame(M1, BROADCAST))) == [4, ("tunnel", VTEP3, 5002)]


@pytest.mark.parametrize("dst", [BROADCAST, MULTICAST, UNKNOWN])
@pytest.mark.parametrize("port", [p.id for p in PORTS])
def test_flooding_never_leaves_the_senders_network(port: str, dst: str) -> None:
    out = send(port, frame(PORT[port].mac, dst))
    assert_inside(PORT[port].network, out)
    others = [p.ofport for p in PORTS if p.network == PORT[port].network and p.id != port]
    assert sorted(c for c in copies(out) if isinstance(c, int)) == sorted(others)


def test_vlan_and_native_floods_go_out_tagged_and_untagged() -> None:
    assert copies(send("va1", frame(M1, BROADCAST))) == [9, ("wire", PHYS_VLAN, 100)]
    assert copies(send("vb1", frame(M1, BROADCAST))) == [("wire", PHYS_VLAN, 101)]
    assert copies(send("f1", frame(M1, UNKNOWN))) == [("wire", PHYS_NATIVE, None)]


def test_a_local_network_never_leaves_the_server() -> None:
    assert copies(send("l1", frame(M1, BROADCAST))) == [10]
    assert copies(send("l1", frame(M1, M3))) == [10]  # the remote "l3" is unreachable


def test_split_horizon_from_the_underlay_reaches_only_local_ports() -> None:
    assert copies(from_tunnel(5001, frame(M3, BROADCAST))) == [1, 2]
    assert copies(from_tunnel(5002, frame(M3, UNKNOWN), VTEP3)) == [3, 4]
    assert copies(from_wire(PHYS_VLAN, frame(M3, BROADCAST), vlan=100)) == [5, 9]
    assert copies(from_wire(PHYS_VLAN, frame(M3, BROADCAST), vlan=101)) == [6]
    assert copies(from_wire(PHYS_NATIVE, frame(M3, BROADCAST))) == [7]


def test_frames_of_no_network_are_dropped() -> None:
    assert from_tunnel(7777, frame(M3, BROADCAST)) == []
    assert from_wire(PHYS_VLAN, frame(M3, BROADCAST)) == []  # untagged on a VLAN trunk
    assert from_wire(PHYS_VLAN, frame(M3, BROADCAST), vlan=102) == []
    assert from_wire(PHYS_NATIVE, frame(M3, BROADCAST), vlan=100) == []
    assert trace(FLOWS, 55, frame(M3, BROADCAST)) == []  # an unbound port


def test_only_servers_with_ports_in_a_network_may_tunnel_into_it() -> None:
    """5001's peers are VTEP2 and VTEP4; VTEP3 is a peer of 5002 only, and 198.51.100.7
    is any other host on the underlay: they cannot inject into 5001."""
    assert copies(from_tunnel(5001, frame(M3, BROADCAST), VTEP4)) == [1, 2]
    assert from_tunnel(5001, frame(M3, BROADCAST), VTEP3) == []
    assert from_tunnel(5001, frame(M3, M1), "198.51.100.7") == []


def test_known_destinations_go_only_where_they_are() -> None:
    assert copies(send("a1", frame(M1, M2))) == [2]
    assert copies(send("b1", frame(M1, M2))) == [4]
    assert copies(send("a1", frame(M1, M3))) == [("tunnel", VTEP2, 5001)]
    assert copies(send("b1", frame(M1, M3))) == [("tunnel", VTEP3, 5002)]
    assert copies(send("va1", frame(M1, M3))) == [("wire", PHYS_VLAN, 100)]
    assert copies(send("vb1", frame(M1, M3))) == [("wire", PHYS_VLAN, 101)]
    assert copies(from_tunnel(5002, frame(M3, M1), VTEP3)) == [3]
    assert copies(from_wire(PHYS_VLAN, frame(M3, M1), vlan=100)) == [5]


def test_a_frame_from_the_underlay_to_a_remote_mac_is_not_sent_back_or_flooded() -> None:
    assert from_tunnel(5001, frame(M5, M3)) == []
    assert from_wire(PHYS_VLAN, frame(M5, M3), vlan=100) == []


@pytest.mark.parametrize("dst", ["01:80:c2:00:00:00", "01:80:c2:00:00:0e", "01:80:c2:00:00:03"])
def test_link_local_control_frames_are_dropped_from_everywhere(dst: str) -> None:
    assert send("a1", frame(M1, dst)) == []
    assert send("va1", frame(M1, dst)) == []
    assert from_tunnel(5001, frame(M3, dst)) == []
    assert from_wire(PHYS_VLAN, frame(M3, dst), vlan=100) == []


@pytest.mark.parametrize("src", [BROADCAST, MULTICAST, "03:00:00:00:00:01"])
def test_frames_with_a_group_source_address_are_dropped(src: str) -> None:
    assert from_tunnel(5001, frame(src, BROADCAST)) == []
    assert from_wire(PHYS_VLAN, frame(src, M1), vlan=100) == []
    assert from_wire(PHYS_NATIVE, frame(src, BROADCAST)) == []


def test_a_vif_may_send_only_untagged_frames_with_its_own_mac() -> None:
    assert send("a1", frame(M2, BROADCAST)) == []
    assert send("a1", frame(M3, M2)) == []
    assert send("f1", frame(M1, BROADCAST, vlan_vid=0x1000 | 100)) == []
    assert send("a1", frame(M1, M2)) != []


def arp_reply_of(out: list[Output]) -> dict[str, Any]:
    (reply,) = out
    return {k: reply[k] for k in ("eth_src", "eth_dst", "arp_op", "arp_sha", "arp_spa")} | {
        "arp_tha": reply["arp_tha"],
        "arp_tpa": reply["arp_tpa"],
        "port": reply.port,
    }


@pytest.mark.parametrize(
    ("port", "target", "mac"),
    [
        ("a1", "10.0.0.3", M3),  # a remote port
        ("a1", "10.0.0.2", M2),  # a local port
        ("b1", "10.0.0.2", M2),
        ("va1", "10.0.0.3", M3),
        ("f1", "10.0.0.1", None),  # its own address: not answered
    ],
)
def test_arp_for_a_known_address_is_answered_by_the_switch(
    port: str, target: str, mac: str | None
) -> None:
    me = PORT[port]
    out = send(port, arp_request(me.mac, str(me.ip), target))
    if mac is None:
        assert all(c != me.ofport for c in copies(out))
        return
    assert arp_reply_of(out) == {
        "eth_src": mac,
        "eth_dst": me.mac,
        "arp_op": 2,
        "arp_sha": mac,
        "arp_spa": target,
        "arp_tha": me.mac,
        "arp_tpa": me.ip,
        "port": me.ofport,
    }


def test_arp_is_answered_only_with_the_senders_network() -> None:
    # 10.0.0.5 exists only in tenant A: B's request is flooded in B, unanswered.
    out = send("b1", arp_request(M1, "10.0.0.1", "10.0.0.5"))
    assert copies(out) == [4, ("tunnel", VTEP3, 5002)]
    # An unknown address is flooded, inside the network only.
    out = send("a1", arp_request(M1, "10.0.0.1", "10.0.0.99"))
    assert_inside("tenant-a", out)
    assert len(out) == 3
    # The local network does not answer for a remote port it cannot reach.
    assert copies(send("l1", arp_request(M1, "10.0.0.1", "10.0.0.3"))) == [10]


def test_own_address_probes_are_forwarded_not_answered() -> None:
    out = send("a1", arp_request(M1, "0.0.0.0", "10.0.0.1"))
    assert sorted(copies(out), key=str) == sorted(
        [2, ("tunnel", VTEP2, 5001), ("tunnel", VTEP4, 5001)], key=str
    )


def test_arp_from_the_underlay_is_forwarded_to_the_owner_not_answered() -> None:
    out = from_tunnel(5001, arp_request(M3, "10.0.0.3", "10.0.0.1"))
    assert copies(out) == [1, 2]
    assert all(o["arp_op"] == 1 for o in out)
    out = from_wire(PHYS_VLAN, arp_request(M3, "10.0.0.3", "10.0.0.1"), vlan=100)
    assert copies(out) == [5, 9]


def test_two_networks_with_one_vni_get_no_tunnel_traffic_at_all() -> None:
    """Overlapping VNI ranges of two physical networks: on the wire the two networks
    cannot be told apart, so neither is tunnelled (dropped, not leaked)."""
    a = NETWORKS["tenant-a"]
    clash = Network("tenant-b", "vxlan", NETWORKS["tenant-b"].number, a.tag)
    view, touched = apply(VIEW, PutNetwork(clash))
    assert ("network", "tenant-a") in touched and ("remote", "a3") in touched
    assert view.vni_conflicts() == {5001: frozenset({"tenant-a", "tenant-b"})}
    flows = all_flows(view)
    for port, other in (("a1", 2), ("b1", 4)):
        for dst in (BROADCAST, M3):  # M3, remote, is now unknown: flooded locally
            assert copies(trace(flows, PORT[port].ofport, frame(M1, dst))) == [other]
    assert trace(flows, TUNNEL, {**frame(M3, BROADCAST), "tunnel_id": 5001}) == []
    assert copies(trace(flows, 1, frame(M1, M2))) == [2]  # local traffic still flows
