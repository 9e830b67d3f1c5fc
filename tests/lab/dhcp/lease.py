"""What a DHCP client saw and what it applied, read from the lab client scripts' records.

The client scripts (``dhclient.sh``, ``udhcpc.sh``) write their whole environment to one
file per call (an *event*); the two clients name the same option differently, so each
client class turns an event's environment into the one :class:`Lease` shape here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

from vlcp.lab.netns import run


@dataclass(frozen=True)
class Event:
    """One call of the client script: its reason, when it finished, its environment."""

    seq: int
    reason: str
    at: float
    """time.time() when the script had applied the event (its own clock reading)."""
    env: dict[str, str]


@dataclass(frozen=True)
class Route:
    """A classless static route as the server sent it (next hop 0.0.0.0: on the link)."""

    destination: IPv4Network
    nexthop: IPv4Address

    def __str__(self) -> str:
        return f"{self.destination} via {self.nexthop}"


@dataclass(frozen=True)
class Lease:
    """The options of one lease as the client decoded them (None: the server sent none)."""

    reason: str
    at: float
    address: IPv4Address
    network: IPv4Network
    routers: tuple[IPv4Address, ...] = ()
    dns: tuple[IPv4Address, ...] = ()
    domain: str | None = None
    mtu: int | None = None
    hostname: str | None = None
    classless_routes: tuple[Route, ...] = ()
    """Option 121."""
    ms_classless_routes: tuple[Route, ...] = ()
    """Option 249, Microsoft's copy of 121."""
    ntp: tuple[IPv4Address, ...] = ()
    lease_time: int | None = None
    server_id: IPv4Address | None = None
    extra: dict[int, bytes] = field(default_factory=dict)
    """Options asked for with ``extra_options``, as raw bytes."""


@dataclass(frozen=True)
class Applied:
    """What the namespace looks like after the client script ran: the proof of applying."""

    addresses: tuple[IPv4Interface, ...]
    routes: tuple[str, ...]
    """``ip -4 route`` lines of the namespace, e.g. ``default via 10.0.0.1 dev eth0 ...``."""
    mtu: int
    resolv_conf: str | None
    """The private resolv.conf the script wrote (None: none written)."""

    @classmethod
    def read(cls, netns: str, iface: str, resolv_conf: Path) -> Applied:
        """Read with ``ip`` in the namespace, and the private resolv.conf."""
        # not `ip -4`: it lists no link at all when the link has no IPv4 address
        (link,) = json.loads(run("ip", "-j", "addr", "show", "dev", iface, netns=netns).stdout)
        ifaddrs = tuple(
            IPv4Interface(f"{a['local']}/{a['prefixlen']}")
            for a in link.get("addr_info", [])
            if a.get("family") == "inet"
        )
        routes = run("ip", "-4", "route", "show", netns=netns).stdout.splitlines()
        text = resolv_conf.read_text() if resolv_conf.exists() else None
        return cls(ifaddrs, tuple(r.strip() for r in routes), int(link["mtu"]), text)


def addresses(text: str | None) -> tuple[IPv4Address, ...]:
    """Space-separated addresses (both clients' way of listing them)."""
    return tuple(IPv4Address(word) for word in (text or "").split())


def optional_int(text: str | None) -> int | None:
    return int(text) if text else None


def read_events(directory: Path) -> list[Event]:
    """The events written so far, oldest first (a file appears whole: written, then moved)."""
    events = []
    for path in sorted(directory.glob("*.env")):
        seq, reason = path.stem.split("-", 1)
        env = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        events.append(Event(int(seq), reason, float(env.get("lab_time", "0")), env))
    return events
