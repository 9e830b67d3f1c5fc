"""The ICMP errors handler, sans-I/O: a packet-in and a view in, the error frame out,
read back with scapy. Time exceeded and net unreachable come from the sender's own
gateway, quote the offending datagram, and go back out of its port; what must not be
answered is not; malformed frames raise BadPacket, and nothing else ever escapes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, UDP, IPerror, UDPerror
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from vlcp.pipeline import BadPacket, PacketOut, Received, icmp_errors
from vlcp.pipeline.icmp_errors.responder import respond
from vlcp.pipeline.icmp_errors.wire import MAX_ERROR_DATAGRAM
from vlcp.pipeline.module import Context

from .scenario import M1
from .test_l3_module import A1, ALL_NETWORKS, B1, GW0, MAC_A0, MAC_A1, MAC_B0, ROUTED

A_NET, B_NET = ALL_NETWORKS["tenant-a"].number, ALL_NETWORKS["tenant-b"].number


def probe(
    dst: str = "10.0.1.4", ttl: int = 1, gateway: str = MAC_A0, src: str = "10.0.0.1", **ip: object
) -> Ether:
    """A traceroute-like UDP probe from a1 (10.0.0.1) to its gateway MAC."""
    return (
        Ether(src=M1, dst=gateway)
        / IP(src=src, dst=dst, ttl=ttl, id=0x4242, **ip)
        / UDP(sport=40000, dport=33434)
        / Raw(b"traceroute probe payload")
    )


def handle(frame: bytes | Ether, in_port: int = A1, network: int | None = A_NET) -> list:
    received = Received(in_port, network, bytes(frame))
    return list(icmp_errors.answer(Context(None), ROUTED, received))


def error_for(frame: Ether, **kw: object) -> Ether:
    (out,) = handle(frame, **kw)
    assert isinstance(out, PacketOut)
    return Ether(out.data)


def test_ttl_expiry_is_answered_time_exceeded_from_the_senders_gateway() -> None:
    sent = probe()
    reply = error_for(sent)
    assert (reply[Ether].src, reply[Ether].dst) == (MAC_A0, M1)
    assert (reply[IP].src, reply[IP].dst, reply[IP].proto) == (GW0, "10.0.0.1", 1)
    assert (reply[ICMP].type, reply[ICMP].code) == (11, 0)
    # the quote is the datagram as it arrived: traceroute matches its probe by it
    assert (reply[IPerror].id, reply[IPerror].ttl, reply[UDPerror].dport) == (0x4242, 1, 33434)
    assert bytes(reply[IPerror]) == bytes(sent[IP])


def test_a_destination_in_none_of_the_routers_subnets_is_net_unreachable() -> None:
    for nowhere in ("10.0.2.1", "192.0.2.1"):
        reply = error_for(probe(nowhere, ttl=64))
        assert (reply[ICMP].type, reply[ICMP].code, reply[IP].src) == (3, 0, GW0)
        assert reply[IPerror].dst == nowhere


def test_the_error_comes_from_the_interface_the_packet_entered_by() -> None:
    """a21 (10.0.1.4) is behind the router's other interface: its errors come from
    10.0.1.254 and that interface's MAC."""
    a21 = ROUTED.ports["a21"]
    sent = Ether(src=a21.mac, dst=MAC_A1) / IP(src=a21.ip, dst="10.0.0.1", ttl=1) / UDP(dport=33434)
    reply = error_for(sent, in_port=a21.ofport, network=ALL_NETWORKS["tenant-a2"].number)
    assert (reply[Ether].src, reply[IP].src, reply[IP].dst) == (MAC_A1, "10.0.1.254", a21.ip)


def test_checksums_lengths_and_precedence_are_right() -> None:
    reply = error_for(probe())
    raw = bytes(reply)
    rebuilt = Ether(raw)
    del rebuilt[IP].chksum, rebuilt[ICMP].chksum
    assert bytes(Ether(bytes(rebuilt))) == raw
    assert reply[IP].len == len(raw) - 14
    assert (reply[IP].tos, reply[IP].flags, reply[IP].ttl) == (0xC0, 0, 64)


def test_a_long_datagram_is_quoted_within_576_bytes() -> None:
    reply = error_for(probe(ttl=1) / Raw(bytes(1400)))
    assert reply[IP].len == MAX_ERROR_DATAGRAM
    short = error_for(probe(ttl=1))
    assert len(bytes(short[IPerror])) == len(bytes(probe()[IP]))


def test_ethernet_padding_is_not_quoted() -> None:
    padded = bytes(probe()) + bytes(20)
    (out,) = handle(padded)
    assert bytes(Ether(out.data)[IPerror]) == bytes(probe()[IP])


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (probe() / b"", "time exceeded"),
        (
            Ether(src=M1, dst=MAC_A0) / IP(src="10.0.0.1", dst="10.0.2.1") / ICMP(type=3),
            "an ICMP error itself",
        ),
        (
            Ether(src=M1, dst=MAC_A0) / IP(src="10.0.0.1", dst="10.0.2.1", ttl=1) / ICMP(type=11),
            "an ICMP error itself",
        ),
        (probe(frag=100), "a fragment after the first"),
        (probe(ttl=64, src="0.0.0.0"), "not from one unicast host"),
        (probe(ttl=64, src="224.0.0.1"), "not from one unicast host"),
        (probe(ttl=64, src="255.255.255.255"), "not from one unicast host"),
        (probe("239.1.2.3", ttl=64), "not to one unicast host"),
        (probe("255.255.255.255"), "not to one unicast host"),
        (probe("10.0.1.99", ttl=64), "no port holds the destination"),
        (probe("10.0.1.254", ttl=64), "port unreachable"),
        (probe("10.0.1.254", ttl=1), "port unreachable"),
        (
            Ether(src=M1, dst=MAC_A0) / IP(src="10.0.0.1", dst="10.0.1.254") / ICMP(type=13),
            "to the router, neither echo nor UDP",
        ),
        (
            Ether(src=M1, dst=MAC_A0) / IP(src="10.0.0.1", dst="10.0.1.254", flags="MF") / ICMP(),
            "a fragmented or truncated echo request to the router",
        ),
        (probe(gateway="02:00:00:00:00:99"), "not to a router interface of its network"),
        (probe(gateway=MAC_B0), "not to a router interface of its network"),
    ],
)
def test_what_is_answered_and_what_is_not(frame: Ether, reason: str) -> None:
    result = respond(ROUTED, Received(A1, A_NET, bytes(frame)))
    assert result.reason == reason
    assert (result.reply is not None) == (reason in ("time exceeded", "port unreachable"))


def test_the_routers_other_address_answers_echo_and_ends_a_traceroute() -> None:
    """10.0.1.254 is the router's address on the other subnet: delivered to the router
    whatever the TTL, from that address, through a1's gateway MAC."""
    echo = ICMP(type=8, id=0x77, seq=3) / Raw(b"ping data")
    ping = Ether(src=M1, dst=MAC_A0) / IP(src="10.0.0.1", dst="10.0.1.254", ttl=1) / echo
    reply = error_for(ping)
    assert (reply[Ether].src, reply[IP].src, reply[IP].dst) == (MAC_A0, "10.0.1.254", "10.0.0.1")
    assert (reply[ICMP].type, reply[ICMP].id, reply[ICMP].seq) == (0, 0x77, 3)
    assert bytes(reply[ICMP].payload) == b"ping data"
    rebuilt = Ether(bytes(reply))
    del rebuilt[ICMP].chksum
    assert bytes(Ether(bytes(rebuilt))) == bytes(reply)
    unreachable = error_for(probe("10.0.1.254", ttl=2))
    assert (unreachable[ICMP].type, unreachable[ICMP].code) == (3, 3)
    assert unreachable[IP].src == "10.0.1.254"


def test_an_echo_request_is_not_an_error_and_is_answered() -> None:
    ping = Ether(src=M1, dst=MAC_A0) / IP(src="10.0.0.1", dst="10.0.1.4", ttl=1) / ICMP(type=8)
    assert error_for(ping)[ICMP].type == 11


def test_the_other_tenant_gets_its_own_gateways_answer_and_never_ours() -> None:
    """b1 has a1's MAC and address; B's router is on another network number."""
    reply = error_for(probe(gateway=MAC_B0), in_port=B1, network=B_NET)
    assert reply[Ether].src == MAC_B0
    assert handle(probe(), in_port=B1, network=B_NET) == []  # A's gateway MAC, in B
    assert handle(probe(), in_port=A1, network=B_NET) == []  # a port not in that network
    assert handle(probe(), in_port=99) == []  # no such local port


def test_every_outcome_is_counted() -> None:
    before = icmp_errors.OUTCOMES["net unreachable"]  # through the module: tests reload it
    handle(probe("10.0.2.1", ttl=64))
    assert icmp_errors.OUTCOMES["net unreachable"] == before + 1


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "truncated"),
        (bytes(probe())[:30], "truncated"),
        (bytes(Ether(src=M1, dst=MAC_A0, type=0x0806) / Raw(bytes(28))), "not IPv4"),
        (bytes(probe(version=6)), "bad IPv4 header"),
        (bytes(probe(ihl=4)), "bad IPv4 header"),
        (bytes(probe(len=1000)), "truncated"),
        (bytes(probe(chksum=0x1234)), "checksum"),
    ],
)
def test_malformed_frames_raise_bad_packet(data: bytes, why: str) -> None:
    with pytest.raises(BadPacket, match=why):
        handle(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.integers(0, 80))
def test_arbitrary_bytes_never_raise_anything_but_bad_packet(tail: bytes, cut: int) -> None:
    """Random bytes after a good Ethernet and IPv4 start, and random truncations."""
    head = bytes(probe())[: 14 + cut]
    for data in (tail, head, head + tail):
        with contextlib.suppress(BadPacket):
            handle(data)
