"""Proof of the DHCP client fixtures (tests/lab/dhcp) against a DHCP server that exists today:
OVN's native DHCP, run privately beside a lab hypervisor (tests/lab/ovn.py).

Both real clients (ISC dhclient and busybox udhcpc) must see every option OVN sends and
apply it in their namespace (address, routes, MTU, the private resolv.conf), pick up a
changed option at a renew, give the address back at a release, and report "no lease" for
a port OVN does not serve. vlcp's own DHCP tests can then trust these fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from tests.lab.dhcp import CLIENTS, DhcpClient, Route
from tests.lab.marks import needs_dhcp_clients, needs_ovn_lab
from tests.lab.ovn import OvnLab
from tests.lab.ovs import Host, OvsLab
from vlcp.lab.servers import BRIDGE

pytestmark = [pytest.mark.root, needs_ovn_lab, needs_dhcp_clients]

CIDR = "10.0.0.0/24"
ROUTES = "{10.1.0.0/24,10.0.0.254, 0.0.0.0/0,10.0.0.1}"
OPTIONS = {
    "server_id": "10.0.0.1",
    "server_mac": "02:00:00:00:00:fe",
    "lease_time": "3600",
    "router": "10.0.0.1",
    "dns_server": "{10.0.0.53, 10.0.0.54}",
    "domain_name": '"lab.example"',
    "mtu": "1400",
    "ntp_server": "10.0.0.123",
    "classless_static_route": ROUTES,
    "ms_classless_static_route": ROUTES,
    "tftp_server_address": "10.0.0.69",
}
"""OVN's DHCP_Options for the switch (ovn-nb(5)); option 150 (tftp_server_address) is the
"extra" option, one neither client knows by name."""
TIMEOUT = 15.0


class OvnSwitch:
    """One OVN logical switch with DHCP options on one lab hypervisor."""

    def __init__(self, lab: OvsLab) -> None:
        self.lab = lab
        self.hv = lab.hypervisor("hv0")
        self.ovn = OvnLab([self.hv])
        self.dhcp = ""

    def start(self) -> None:
        self.ovn.start()
        self.ovn.nbctl("ls-add", "sw0")
        self.dhcp = self.ovn.create_dhcp_options(CIDR, OPTIONS)

    def port(self, name: str, index: int, *, dhcp: bool = True, hostname: str = "") -> Host:
        """A logical port with address 10.0.0.<index> (served by DHCP unless not `dhcp`),
        bound to a lab host; returns once OVN reports it up."""
        mac, ip = f"02:00:00:00:00:{index:02x}", f"10.0.0.{index}"
        args = ["lsp-add", "sw0", name, "--", "lsp-set-addresses", name, f"{mac} {ip}"]
        if dhcp:
            args += ["--", "lsp-set-dhcpv4-options", name, self.dhcp]
        if hostname:
            # a string option unquoted makes ovn-controller reject the port's whole DHCP
            # flow (a warning in its log, and no answer)
            args += ["--", "lsp-set-options", name, f'hostname="{hostname}"']
        self.ovn.nbctl(*args)
        host = self.lab.host(self.hv, BRIDGE, "192.0.2.99/32", mac=mac, iface_id=name)
        assert self.ovn.watcher is not None
        self.ovn.watcher.wait(name, TIMEOUT)
        return host


@pytest.fixture
def switch(ovs_lab: OvsLab) -> Iterator[OvnSwitch]:
    sw = OvnSwitch(ovs_lab)
    try:
        sw.start()
        yield sw
    finally:
        sw.ovn.stop()


@pytest.fixture(params=sorted(CLIENTS))
def client_class(request: pytest.FixtureRequest) -> type[DhcpClient]:
    return CLIENTS[request.param]


def test_every_option_is_seen_and_applied(
    switch: OvnSwitch, client_class: type[DhcpClient]
) -> None:
    host = switch.port("p1", 10, hostname="vm-one")
    with client_class(host.netns, extra_options=[150]) as client:
        result = client.acquire(TIMEOUT)
    lease, applied = result.lease, result.applied

    routes = (
        Route(IPv4Network("10.1.0.0/24"), IPv4Address("10.0.0.254")),
        Route(IPv4Network("0.0.0.0/0"), IPv4Address("10.0.0.1")),
    )
    assert lease.address == IPv4Address("10.0.0.10")
    assert lease.network == IPv4Network(CIDR)
    assert lease.routers == (IPv4Address("10.0.0.1"),)
    assert lease.dns == (IPv4Address("10.0.0.53"), IPv4Address("10.0.0.54"))
    assert lease.domain == "lab.example"
    assert lease.mtu == 1400
    assert lease.hostname == "vm-one"
    assert lease.ntp == (IPv4Address("10.0.0.123"),)
    assert lease.lease_time == 3600
    assert lease.server_id == IPv4Address("10.0.0.1")
    assert lease.classless_routes == routes
    assert lease.ms_classless_routes == routes
    assert lease.extra == {150: bytes([10, 0, 0, 69])}

    assert applied.addresses == (IPv4Interface("10.0.0.10/24"),)
    assert applied.mtu == 1400
    # RFC 3442: with classless routes, the router option is ignored; 0/0 comes from 121
    assert "default via 10.0.0.1 dev eth0 proto static onlink" in applied.routes
    assert "10.1.0.0/24 via 10.0.0.254 dev eth0 proto static onlink" in applied.routes
    assert applied.resolv_conf == "search lab.example\nnameserver 10.0.0.53\nnameserver 10.0.0.54\n"


def test_a_renew_carries_a_changed_option_and_a_release_removes_the_lease(
    switch: OvnSwitch, client_class: type[DhcpClient]
) -> None:
    host = switch.port("p1", 10)
    with client_class(host.netns) as client:
        first = client.acquire(TIMEOUT).lease
        switch.ovn.set_dhcp_options(
            switch.dhcp, {**OPTIONS, "mtu": "1300", "dns_server": "10.0.0.99"}
        )
        result = client.renew(TIMEOUT)
        renewed, applied = result.lease, result.applied

        assert renewed.at > first.at
        assert (renewed.address, renewed.mtu, renewed.dns) == (
            IPv4Address("10.0.0.10"),
            1300,
            (IPv4Address("10.0.0.99"),),
        )
        assert applied.mtu == 1300
        assert applied.resolv_conf == "search lab.example\nnameserver 10.0.0.99\n"

        client.release(TIMEOUT)
        released = client.applied()
        assert released.addresses == ()
        assert released.resolv_conf is None
        assert not [route for route in released.routes if "proto static" in route]


def test_a_port_without_dhcp_options_gets_no_lease(
    switch: OvnSwitch, client_class: type[DhcpClient]
) -> None:
    host = switch.port("p1", 10, dhcp=False)
    with client_class(host.netns) as client:
        client.expect_no_lease(within=3)
        assert client.applied().addresses == ()


def test_expecting_no_lease_fails_when_a_lease_comes(
    switch: OvnSwitch, client_class: type[DhcpClient]
) -> None:
    """The negative fixture must not pass by itself: on a served port it fails."""
    host = switch.port("p1", 10)
    with client_class(host.netns) as client, pytest.raises(AssertionError, match="got a lease"):
        client.expect_no_lease(within=TIMEOUT)


def test_a_short_lease_is_renewed_by_the_client_itself(
    switch: OvnSwitch, client_class: type[DhcpClient]
) -> None:
    """At T1 the client renews by itself, unicast to the server identifier. OVN answers
    ARP for no DHCP server address (only for router ports): without the neighbour entry the
    unicast RENEW never leaves, and the lease survives only by a broadcast REBIND at T2."""
    lease_time = client_class.shortest_lease
    switch.ovn.set_dhcp_options(switch.dhcp, {**OPTIONS, "lease_time": str(lease_time)})
    host = switch.port("p1", 10)
    with client_class(host.netns) as client:
        first = client.acquire(TIMEOUT).lease
        # only now: removing an interface's last IPv4 address (the client does, before
        # it asks) flushes all its neighbour entries, permanent ones too
        host.add_neighbor(OPTIONS["server_id"], OPTIONS["server_mac"])
        again = client.next_lease(lease_time)
    assert first.lease_time == lease_time
    assert (again.reason.lower(), again.address) == ("renew", first.address)
    assert first.at + lease_time / 2 - 1 < again.at < first.at + lease_time
