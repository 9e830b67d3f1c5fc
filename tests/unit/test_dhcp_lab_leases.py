"""The DHCP lab's reading of what a client saw (tests/lab/dhcp), without a client or root.

Each client names and renders options its own way (dhclient: ``new_*`` variables and
option bytes as decimals; udhcpc: short names, routes as pairs, unknown options as hex):
both must come out as the same :class:`Lease`, or an end-to-end test would compare the
fixture's misreading instead of the server's answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from tests.lab.dhcp import Dhclient, DhcpClient, Event, Lease, Route, Udhcpc
from tests.lab.dhcp.clients import pair_routes, rfc3442_routes
from tests.lab.dhcp.lease import read_events

ROUTES = (
    Route(IPv4Network("10.1.0.0/24"), IPv4Address("10.0.0.254")),
    Route(IPv4Network("0.0.0.0/0"), IPv4Address("10.0.0.1")),
    Route(IPv4Network("192.168.0.0/17"), IPv4Address("0.0.0.0")),
)
EXPECTED = Lease(
    reason="",
    at=12.5,
    address=IPv4Address("10.0.0.10"),
    network=IPv4Network("10.0.0.0/24"),
    routers=(IPv4Address("10.0.0.1"),),
    dns=(IPv4Address("10.0.0.53"), IPv4Address("10.0.0.54")),
    domain="lab.example",
    mtu=1400,
    hostname="vm-one",
    classless_routes=ROUTES,
    ms_classless_routes=ROUTES[:1],
    ntp=(IPv4Address("10.0.0.123"),),
    lease_time=3600,
    server_id=IPv4Address("10.0.0.1"),
    extra={150: bytes([10, 0, 0, 69])},
)
DHCLIENT_ENV = {
    "new_ip_address": "10.0.0.10",
    "new_subnet_mask": "255.255.255.0",
    "new_routers": "10.0.0.1",
    "new_domain_name_servers": "10.0.0.53 10.0.0.54",
    "new_domain_name": "lab.example",
    "new_interface_mtu": "1400",
    "new_host_name": "vm-one",
    "new_rfc3442_classless_static_routes": "24 10 1 0 10 0 0 254 0 10 0 0 1 17 192 168 0 0 0 0 0",
    "new_ms_classless_static_routes": "24 10 1 0 10 0 0 254",
    "new_ntp_servers": "10.0.0.123",
    "new_dhcp_lease_time": "3600",
    "new_dhcp_server_identifier": "10.0.0.1",
    "new_lab_opt_150": "10 0 0 69",
}
UDHCPC_ENV = {
    "ip": "10.0.0.10",
    "mask": "24",
    "router": "10.0.0.1",
    "dns": "10.0.0.53 10.0.0.54",
    "domain": "lab.example",
    "mtu": "1400",
    "hostname": "vm-one",
    "staticroutes": "10.1.0.0/24 10.0.0.254 0.0.0.0/0 10.0.0.1 192.168.0.0/17 0.0.0.0",
    "msstaticroutes": "10.1.0.0/24 10.0.0.254",
    "ntpsrv": "10.0.0.123",
    "lease": "3600",
    "serverid": "10.0.0.1",
    "opt150": "0a000045",
}


@pytest.fixture(params=[(Dhclient, "BOUND", DHCLIENT_ENV), (Udhcpc, "bound", UDHCPC_ENV)])
def client_and_event(request: pytest.FixtureRequest) -> Iterator[tuple[DhcpClient, Event]]:
    """A client object (never started: no namespace needed) and an event of its script."""
    kind, reason, env = request.param
    client = kind("no-such-netns", extra_options=[150])
    try:
        yield client, Event(0, reason, 12.5, env)
    finally:
        client.close()


def test_both_clients_read_every_option_the_same(
    client_and_event: tuple[DhcpClient, Event],
) -> None:
    client, event = client_and_event
    assert client.parse(event) == Lease(**{**EXPECTED.__dict__, "reason": event.reason})


def test_rfc3442_bytes_and_udhcpc_pairs_are_the_same_routes() -> None:
    assert rfc3442_routes("24,10,1,0,10,0,0,254, 0,10,0,0,1 17 192 168 0 0 0 0 0") == ROUTES
    assert pair_routes(UDHCPC_ENV["staticroutes"]) == ROUTES
    assert rfc3442_routes(None) == pair_routes(None) == ()


def test_events_are_read_in_order_and_half_written_ones_are_not(tmp_path: Path) -> None:
    (tmp_path / "0001-BOUND.env").write_text("reason=BOUND\nnew_mtu=a=b\nlab_time=2.5\n")
    (tmp_path / "0000-PREINIT.env").write_text("reason=PREINIT\nlab_time=1.0\n")
    (tmp_path / ".0002-RENEW").write_text("reason=RENEW\n")  # the script still writing

    events = read_events(tmp_path)

    assert [(e.seq, e.reason, e.at) for e in events] == [(0, "PREINIT", 1.0), (1, "BOUND", 2.5)]
    assert events[1].env["new_mtu"] == "a=b"


def test_dhclient_requests_the_classless_routes_mtu_and_extra_options() -> None:
    client = Dhclient("no-such-netns", extra_options=[150])
    try:
        config = (client.dir / "dhclient.conf").read_text()
    finally:
        client.close()
    assert "option rfc3442-classless-static-routes code 121 " in config
    assert "option ms-classless-static-routes code 249 " in config
    assert "option lab-opt-150 code 150 " in config
    request = next(line for line in config.splitlines() if line.startswith("request "))
    for name in ("interface-mtu", "rfc3442-classless-static-routes", "lab-opt-150"):
        assert name in request


def test_udhcpc_requests_the_classless_routes_mtu_and_extra_options() -> None:
    client = Udhcpc("no-such-netns", extra_options=[150])
    try:
        argv = client.argv()
    finally:
        client.close()
    requested = {argv[i + 1] for i, arg in enumerate(argv) if arg == "-O"}
    assert {"mtu", "staticroutes", "msstaticroutes", "150"} <= requested
