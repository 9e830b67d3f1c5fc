"""The DHCPv4 responder: every message type, every option and where it comes from, the
NAK cases, and frames it must refuse without raising."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from os_ken.lib.packet import dhcp as osken_dhcp
from os_ken.lib.packet import packet as osken_packet
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from vlcp.pipeline import DhcpFields, DhcpOption, LocalPort, Network, Subnet, View
from vlcp.pipeline.dhcp.responder import Answer, respond
from vlcp.pipeline.dhcp.settings import Settings
from vlcp.pipeline.module import Received
from vlcp.pipeline.view import INFINITE_LEASE

MAC, IP4 = "02:00:00:00:00:01", "10.0.0.5"
GATEWAY = "10.0.0.1"
SETTINGS = Settings()
NETWORK = Network("n", "vxlan", 7, 5001, dhcp=DhcpFields(dns_nameservers=("192.0.2.1",)))
SUBNET = Subnet("s", "n", "10.0.0.0/24", GATEWAY, host_routes=(("198.51.100.0/24", "10.0.0.254"),))
PORT = LocalPort("p", "n", 3, MAC, IP4, subnet="s")
VIEW = View(networks={"n": NETWORK}, ports={"p": PORT}, subnets={"s": SUBNET})
OFFER, ACK, NAK = 2, 5, 6


def frame(
    kind: str | int,
    *options: Any,
    mac: str = MAC,
    chaddr: str | None = None,
    ciaddr: str = "0.0.0.0",
    src: str = "0.0.0.0",
    giaddr: str = "0.0.0.0",
    xid: int = 0x1234,
) -> bytes:
    hw = bytes.fromhex((chaddr or mac).replace(":", "")) + bytes(10)
    return bytes(
        Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")
        / IP(src=src, dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(chaddr=hw, xid=xid, ciaddr=ciaddr, giaddr=giaddr)
        / DHCP(options=[("message-type", kind), *options, "end"])
    )


def ask(
    data: bytes, view: View = VIEW, in_port: int = 3, network: int | None = 7, **kw: Any
) -> Answer:
    return respond(view, Settings(**kw), Received(in_port, network, data))


def answered(data: bytes, view: View = VIEW, **kw: Any) -> Ether:
    answer = ask(data, view, **kw)
    assert answer.reply is not None, answer.reason
    return Ether(answer.reply)


def opts(reply: Ether) -> dict[str, Any]:
    return {
        o[0]: o[1] if len(o) == 2 else list(o[1:])
        for o in reply[DHCP].options
        if isinstance(o, tuple)
    }


def with_(view: View = VIEW, **changes: Any) -> View:
    """The view with its network, subnet or port changed (`network=`, `subnet=`, `port=`:
    dicts of fields)."""
    net = dataclasses.replace(view.networks["n"], **changes.get("network", {}))
    sub = dataclasses.replace(view.subnets["s"], **changes.get("subnet", {}))
    port = dataclasses.replace(view.ports["p"], **changes.get("port", {}))
    return View(networks={"n": net}, ports={"p": port}, subnets={"s": sub})


# ------------------------------------------------------------------ message types


def test_discover_is_offered_the_ports_address_out_of_its_port_only() -> None:
    answer = ask(frame("discover"))
    assert answer.reason == "offer"
    reply = Ether(answer.reply)
    assert (reply.src, reply.dst) == (SETTINGS.server_mac, MAC)
    assert (reply[IP].src, reply[IP].dst) == (GATEWAY, "255.255.255.255")
    assert (reply[UDP].sport, reply[UDP].dport) == (67, 68)
    assert reply[BOOTP].op == 2 and reply[BOOTP].xid == 0x1234
    assert reply[BOOTP].yiaddr == IP4 and reply[BOOTP].ciaddr == "0.0.0.0"
    assert opts(reply)["message-type"] == OFFER
    assert opts(reply)["server_id"] == GATEWAY


def test_checksums_and_lengths_are_right() -> None:
    reply = answered(frame("discover"))
    raw = bytes(reply)
    rebuilt = Ether(raw)
    del rebuilt[IP].chksum, rebuilt[UDP].chksum, rebuilt[IP].len, rebuilt[UDP].len
    assert bytes(Ether(bytes(rebuilt))) == raw
    assert len(raw[14 + 28 :]) >= 300  # BOOTP's minimum for old relays and clients


def test_os_ken_reads_the_reply_as_we_meant_it() -> None:
    raw = ask(frame("discover")).reply
    assert raw is not None
    parsed = osken_packet.Packet(raw).get_protocol(osken_dhcp.dhcp)
    assert parsed.yiaddr == IP4 and parsed.chaddr == MAC
    codes = {o.tag: o.value for o in parsed.options.option_list}
    assert codes[53] == bytes([OFFER]) and codes[1] == ipaddress.IPv4Address("255.255.255.0").packed


def test_request_for_the_ports_address_is_acked() -> None:
    selecting = ("requested_addr", IP4), ("server_id", GATEWAY)
    answer = ask(frame("request", *selecting))
    assert answer.reason == "ack"
    reply = Ether(answer.reply)
    assert opts(reply)["message-type"] == ACK and reply[BOOTP].yiaddr == IP4
    assert reply[IP].dst == "255.255.255.255"
    assert ask(frame("request", ("requested_addr", IP4))).reason == "ack"  # INIT-REBOOT


def test_a_renewal_is_acked_by_unicast_to_its_address() -> None:
    reply = answered(frame("request", ciaddr=IP4, src=IP4))
    assert opts(reply)["message-type"] == ACK
    assert reply[IP].dst == IP4 and reply[BOOTP].ciaddr == IP4 and reply[BOOTP].yiaddr == IP4


@pytest.mark.parametrize(
    ("options", "ciaddr", "why"),
    [
        ([("requested_addr", "10.0.0.6")], "0.0.0.0", "requested address is not the port's"),
        ([("requested_addr", IP4), ("server_id", "10.0.0.2")], "0.0.0.0", "another server"),
        ([], "10.0.0.6", "requested address is not the port's"),  # renewing another address
        ([], "0.0.0.0", "no address requested"),
    ],
)
def test_a_request_for_anything_else_is_naked(options: list, ciaddr: str, why: str) -> None:
    answer = ask(frame("request", *options, ciaddr=ciaddr))
    assert answer.reason.startswith("nak") and why in answer.reason
    reply = Ether(answer.reply)
    got = opts(reply)
    assert got["message-type"] == NAK and got["server_id"] == GATEWAY
    assert reply[BOOTP].yiaddr == "0.0.0.0" and reply[IP].dst == "255.255.255.255"
    assert "lease_time" not in got and "subnet_mask" not in got


def test_inform_is_acked_without_a_lease() -> None:
    reply = answered(frame("inform", ciaddr=IP4, src=IP4))
    got = opts(reply)
    assert got["message-type"] == ACK and got["name_server"] == "192.0.2.1"
    assert not {"lease_time", "renewal_time", "rebinding_time"} & got.keys()
    assert reply[BOOTP].yiaddr == "0.0.0.0" and reply[IP].dst == IP4
    assert ask(frame("inform", ciaddr="10.0.0.6")).reply is None


@pytest.mark.parametrize(("kind", "reason"), [("release", "release"), ("decline", "decline")])
def test_release_and_decline_get_no_reply(kind: str, reason: str) -> None:
    answer = ask(frame(kind, ("server_id", GATEWAY), ciaddr=IP4))
    assert answer.reply is None and answer.reason.startswith(reason)


# ------------------------------------------------------------------ options


def test_every_option_of_a_full_offer() -> None:
    view = with_(
        network={
            "dhcp": DhcpFields(
                dns_nameservers=("192.0.2.1", "192.0.2.2"), ntp_servers=("192.0.2.123",)
            )
        },
        subnet={"dhcp": DhcpFields(domain_name="tenant.example", lease_time=3600)},
        port={"hostname": "web-1"},
    )
    got = opts(answered(frame("discover"), view))
    assert got["subnet_mask"] == "255.255.255.0"
    assert got["broadcast_address"] == "10.0.0.255"
    assert got["router"] == GATEWAY
    assert got["name_server"] == ["192.0.2.1", "192.0.2.2"]
    assert got["domain"] == b"tenant.example"
    assert got["NTP_server"] == "192.0.2.123"
    assert (got["lease_time"], got["renewal_time"], got["rebinding_time"]) == (3600, 1800, 3150)
    assert got["interface-mtu"] == 1450
    assert got["hostname"] == b"web-1"
    assert got["classless_static_routes"] == ["198.51.100.0/24:10.0.0.254", "0.0.0.0/0:10.0.0.1"]
    assert 249 not in got  # only for a client that asks


def test_the_requested_options_come_first_in_the_clients_order() -> None:
    wanted = [121, 249, 6, 3, 1]
    reply = answered(frame("discover", ("param_req_list", wanted)))
    codes = [o[0] for o in reply[DHCP].options if isinstance(o, tuple)]
    assert codes[:5] == [
        "message-type",
        "server_id",
        "lease_time",
        "renewal_time",
        "rebinding_time",
    ]
    assert codes[5:10] == ["classless_static_routes", 249, "name_server", "router", "subnet_mask"]
    assert opts(reply)[249] == bytes([24, 198, 51, 100, 10, 0, 0, 254, 0, 10, 0, 0, 1])


def test_a_subnet_without_gateway_has_no_router_and_another_server_id() -> None:
    view = with_(subnet={"gateway": None})
    got = opts(answered(frame("discover"), view))
    assert "router" not in got
    assert got["server_id"] == SETTINGS.server_address
    assert got["classless_static_routes"] == ["198.51.100.0/24:10.0.0.254"]  # no default
    bare = with_(subnet={"gateway": None, "host_routes": ()})
    assert "classless_static_routes" not in opts(answered(frame("discover"), bare))


def test_a_host_route_to_the_default_replaces_the_gateways() -> None:
    view = with_(subnet={"host_routes": (("0.0.0.0/0", "10.0.0.254"), ("fd00::/64", "fd00::1"))})
    got = opts(answered(frame("discover"), view))
    assert got["classless_static_routes"] == ["0.0.0.0/0:10.0.0.254"]


def test_subnet_settings_win_over_the_networks_and_unset_ones_fall_through() -> None:
    network = DhcpFields(dns_nameservers=("192.0.2.1",), domain_name="net.example", lease_time=100)
    subnet = DhcpFields(dns_nameservers=("192.0.2.9",), domain_name=None)
    got = opts(
        answered(frame("discover"), with_(network={"dhcp": network}, subnet={"dhcp": subnet}))
    )
    assert got["name_server"] == "192.0.2.9" and got["domain"] == b"net.example"
    assert got["lease_time"] == 100
    silenced = with_(network={"dhcp": network}, subnet={"dhcp": DhcpFields(dns_nameservers=())})
    assert "name_server" not in opts(answered(frame("discover"), silenced))


def test_lease_time_defaults_and_infinity() -> None:
    assert opts(answered(frame("discover"), lease_time=600))["lease_time"] == 600
    infinite = with_(subnet={"dhcp": DhcpFields(lease_time=INFINITE_LEASE)})
    got = opts(answered(frame("discover"), infinite))
    assert got["lease_time"] == INFINITE_LEASE
    assert "renewal_time" not in got and "rebinding_time" not in got
    assert DhcpFields(lease_time="infinite").lease_time == INFINITE_LEASE  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "network_mtu", "subnet_mtu", "underlay", "expected"),
    [
        ("vxlan", None, None, 1500, 1450),
        ("vxlan", None, None, 9000, 8950),
        ("vlan", None, None, 1500, 1500),
        ("vxlan", 1400, None, 1500, 1400),
        ("vxlan", 1400, 1300, 1500, 1300),
    ],
)
def test_the_mtu_is_explicit_or_what_the_underlay_carries(
    kind: str, network_mtu: int | None, subnet_mtu: int | None, underlay: int, expected: int
) -> None:
    tag = 100 if kind == "vlan" else 5001
    view = with_(
        network={"type": kind, "tag": tag, "dhcp": DhcpFields(mtu=network_mtu)},
        subnet={"dhcp": DhcpFields(mtu=subnet_mtu)},
    )
    assert (
        opts(answered(frame("discover"), view, underlay_mtu=underlay))["interface-mtu"] == expected
    )


def test_the_default_host_name_is_made_of_the_address() -> None:
    assert opts(answered(frame("discover")))["hostname"] == b"host-10-0-0-5"


def test_the_reply_fits_what_the_client_takes() -> None:
    routes = tuple((f"172.16.{i}.0/24", "10.0.0.254") for i in range(60))  # 480 bytes of 121
    view = with_(subnet={"host_routes": routes})
    small = answered(frame("discover"), view)
    assert len(small[IP]) <= 576 and "classless_static_routes" not in opts(small)
    assert opts(small)["subnet_mask"] == "255.255.255.0"
    big = bytes(answered(frame("discover", ("max_dhcp_size", 1500)), view))
    assert bytes([121, 255]) in big and bytes([121, 230]) in big  # 485 bytes: split (RFC 3396)


def test_two_tenants_with_the_same_mac_and_address_get_their_own_options() -> None:
    blue = Network("blue", "vxlan", 1, 100, dhcp=DhcpFields(dns_nameservers=("192.0.2.1",)))
    red = Network("red", "vxlan", 2, 200, dhcp=DhcpFields(dns_nameservers=("198.51.100.1",)))
    view = View(
        networks={"blue": blue, "red": red},
        ports={
            "b": LocalPort("b", "blue", 1, MAC, IP4, subnet="sb"),
            "r": LocalPort("r", "red", 2, MAC, IP4, subnet="sr"),
        },
        subnets={
            "sb": Subnet("sb", "blue", "10.0.0.0/24", GATEWAY),
            "sr": Subnet("sr", "red", "10.0.0.0/24", GATEWAY, (("203.0.113.0/24", "10.0.0.9"),)),
        },
    )
    from_blue = opts(Ether(ask(frame("discover"), view, in_port=1, network=1).reply))
    from_red = opts(Ether(ask(frame("discover"), view, in_port=2, network=2).reply))
    assert from_blue["name_server"] == "192.0.2.1"
    assert from_red["name_server"] == "198.51.100.1"
    assert from_blue["classless_static_routes"] == ["0.0.0.0/0:10.0.0.1"]
    assert from_red["classless_static_routes"] == ["203.0.113.0/24:10.0.0.9", "0.0.0.0/0:10.0.0.1"]
    assert (
        ask(frame("discover"), view, in_port=1, network=2).reason == "not from the port's network"
    )


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("data", "in_port", "view", "reason"),
    [
        (frame("discover"), 100, VIEW, "not from a local port"),  # e.g. the tunnel
        (frame("discover", chaddr="02:00:00:00:00:09"), 3, VIEW, "not the port's MAC"),
        (frame("discover", giaddr="10.0.0.7"), 3, VIEW, "relayed"),
        (frame("discover"), 3, with_(port={"ip": None}), "without an IPv4 address"),
        (frame("discover"), 3, with_(port={"ip": "10.1.0.5"}), "without an IPv4 address"),
        (frame("discover"), 3, with_(port={"subnet": None}), "without an IPv4 address"),
        (frame("discover"), 3, with_(port={"ip": "fd00::5"}), "without an IPv4 address"),
        (frame("offer"), 3, VIEW, "unexpected message type 2"),
        (frame(99), 3, VIEW, "unexpected message type 99"),
    ],
)
def test_refused(data: bytes, in_port: int, view: View, reason: str) -> None:
    answer = ask(data, view, in_port=in_port)
    assert answer.reply is None and reason in answer.reason


def test_malformed_frames_are_refused_with_a_reason() -> None:
    good = frame("discover")
    hw = bytes.fromhex(MAC.replace(":", "")) + bytes(10)
    udp = Ether(src=MAC) / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67)
    no_cookie = bytes(udp / BOOTP(chaddr=hw, options=bytes(64)))
    no_end = bytes(udp / BOOTP(chaddr=hw, options=b"\x63\x82\x53\x63\x35\x01\x01"))
    overrun = bytes(udp / BOOTP(chaddr=hw, options=b"\x63\x82\x53\x63\x35\x05\x01"))
    cases = {
        "truncated": good[:100],
        "oversized": good + bytes(1600),
        "not IPv4": good[:12] + b"\x86\xdd" + good[14:],
        "not from a DHCP client to a server": good[:34] + b"\x00\x44\x00\x44" + good[38:],
        "BOOTP, not DHCP": no_cookie,
        "truncated option": overrun,
        "IPv4 fragment": good[:20] + b"\x20\x00" + good[22:],
    }
    for reason, data in cases.items():
        answer = ask(data)
        assert answer.reply is None and reason in answer.reason, (reason, answer)
        assert answer.malformed, reason  # to log, unlike a well-formed request not answered
    assert not ask(frame("offer")).malformed
    assert ask(no_end).reason == "offer"  # an unterminated options field is read to its end
    assert "no DHCP message type" in ask(good.replace(b"\x35\x01\x01", b"\x00\x00\x00")).reason


def test_options_overloaded_into_file_and_sname_are_read() -> None:
    hw = bytes.fromhex(MAC.replace(":", "")) + bytes(10)
    file = b"\x35\x01\x01\xff"  # message type DISCOVER, in the file field
    data = bytes(
        Ether(src=MAC)
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(chaddr=hw, file=file)
        / DHCP(options=[(52, b"\x01"), "end"])
    )
    assert ask(data).reason == "offer"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=700))
def test_random_bytes_never_raise(data: bytes) -> None:
    assert ask(data).reply is None


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_damaged_requests_never_raise(data: st.DataObject) -> None:
    good = bytearray(frame("request", ("requested_addr", IP4), ("param_req_list", [1, 3, 6, 121])))
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(good) - 1))
        good[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(good)))
    answer = ask(bytes(good[:cut]))
    assert isinstance(answer.reason, str)


def test_extra_options_port_over_subnet_over_network_and_over_vlcps_own() -> None:
    def extra(**values: Any) -> tuple[DhcpOption, ...]:
        return tuple(DhcpOption.of(code.removeprefix("o"), v) for code, v in values.items())

    view = with_(
        network={
            "dhcp": DhcpFields(extra=extra(o66="net.example", o150=["10.0.0.9"], o224="0a0b"))
        },
        subnet={"dhcp": DhcpFields(extra=extra(o66="subnet.example", o6=["192.0.2.99"]))},
        port={"dhcp_extra": extra(o66="port.example", o54="10.0.0.77", o26=70000)},
    )
    got = opts(answered(frame("discover"), view))
    assert got["tftp_server_name"] == b"port.example"  # port > subnet > network
    assert got["tftp_server_address"] == "10.0.0.9"
    assert got[224] == b"\x0a\x0b"  # an unknown code: hex
    assert got["name_server"] == "192.0.2.99"  # over the network's DNS
    assert got["server_id"] == GATEWAY  # reserved: never an extra's
    assert got["interface-mtu"] == 1450  # a bad value (stored before checks) left out alone
