"""What the failure tests watch: pings between hosts on different servers and every
deletion on the switches, while something fails; and what "recovered" means.

The failing server is hv2, the end of the underlay chain (hv0 - hv1 - hv2), so its loss cuts
no path between the others. Pings run 20 a second, so "0 lost" holds at every moment of a
failure, not only in the end state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.lab.continuous_ping import INTERVAL as PING_INTERVAL
from tests.lab.continuous_ping import ContinuousPing, PingReport
from tests.lab.flow_watch import FlowEvent, FlowWatcher
from tests.lab.ovs import Host

from .conftest import BRIDGE, Cloud, Server
from .converged import check_invariants, installed_cookies, wait_like_fresh_controllers

SESSION_TTL = 2.0
DOWN = 2.5 * SESSION_TTL
"""How long a failed controller stays down: past the moment its session is reaped."""
FAILED = "hv2"
OTHERS = ("hv0", "hv1")
ACROSS = (("a3", "a1"), ("b3", "b2"))
"""Pings between the failing server's hosts and the others' (VXLAN, VLAN)."""
AMONG_OTHERS = (("a1", "a2"), ("b1", "b2"))
"""Pings that never touch the failing server."""


@pytest.fixture
def session_ttl() -> float:
    """Short, so that outages "longer than the session" stay short too."""
    return SESSION_TTL


@dataclass
class Observation:
    """What the pings and the flow monitors saw over one failure."""

    watchers: dict[str, FlowWatcher]
    pings: dict[str, PingReport] = field(default_factory=dict)
    ended_early: list[str] = field(default_factory=list)
    """Switches whose monitor stopped before the end (so it did not see everything)."""
    marks: dict[str, int] = field(default_factory=dict)

    def lost(self, pairs: Iterable[tuple[str, str]]) -> list[str]:
        """The reports of `pairs` that lost anything."""
        return [str(self.pings[label(p)]) for p in pairs if self.pings[label(p)].lost]

    def mark(self) -> None:
        """A change is made from now on: it may delete flows that are no longer wanted."""
        self.marks = {s: len(w.events()) for s, w in self.watchers.items()}

    def unexpected_deletions(self, holds: dict[str, set[int]]) -> dict[str, list[FlowEvent]]:
        """Deletions before the mark, and after it those of a flow the switch holds again
        in the end (`holds`: its cookies): a flush, even a brief one, shows up here."""
        found = {}
        for server, watcher in self.watchers.items():
            events = watcher.events()
            mark = self.marks.get(server, len(events))
            bad = [e for e in events[:mark] if e.event == "DELETED"]
            bad += [e for e in events[mark:] if e.event == "DELETED" and e.cookie in holds[server]]
            if bad:
                found[server] = bad
        return found


def assert_undisturbed(
    seen: Observation, pairs: Iterable[tuple[str, str]], holds: dict[str, set[int]]
) -> None:
    """No ping of `pairs` lost, every monitor ran throughout, no flow deleted that the
    switches hold again in the end (`holds`, see `Observation.unexpected_deletions`)."""
    assert seen.lost(pairs) == []
    assert seen.ended_early == []
    assert seen.unexpected_deletions(holds) == {}


def label(pair: tuple[str, str]) -> str:
    return f"{pair[0]}-{pair[1]}"


@asynccontextmanager
async def observe(
    cloud: Cloud,
    hosts: dict[str, Host],
    pairs: Iterable[tuple[str, str]],
    switches: Iterable[str],
    directory: Path,
    *,
    interval: float = PING_INTERVAL,
) -> AsyncIterator[Observation]:
    """Continuous pings over `pairs` (one every `interval` seconds) and flow monitors on
    `switches` for the block's span."""
    watchers: dict[str, FlowWatcher] = {}
    observation = Observation(watchers)
    pings: dict[str, ContinuousPing] = {}
    try:
        for server in switches:
            watchers[server] = FlowWatcher(
                cloud.servers[server].hv, BRIDGE, directory, label=server
            )
            watchers[server].start()
        for pair in pairs:
            src, dst = (hosts[name] for name in pair)
            works = await asyncio.to_thread(src.ping_ok, dst.ip, deadline=10)
            assert works, f"{label(pair)} does not work to begin with"
            pings[label(pair)] = ContinuousPing(
                src, dst.ip, directory, label=label(pair), interval=interval
            )
            pings[label(pair)].start()
        yield observation
    finally:
        observation.ended_early = [s for s, w in watchers.items() if not w.running]
        for ping in pings.values():  # all stop sending at once, then each drains
            ping.terminate()
        for watcher in watchers.values():
            watcher.stop()
        for name, ping in pings.items():
            observation.pings[name] = await asyncio.to_thread(ping.stop)


async def holdings(cloud: Cloud, servers: Iterable[str]) -> dict[str, set[int]]:
    """The cookies each of `servers`' switches holds now."""
    return {s: await installed_cookies(cloud.servers[s]) for s in servers}


async def serves_a_new_port(cloud: Cloud, server: str, hosts: dict[str, Host], n: int = 4) -> Host:
    """Port a<n> (10.0.0.<n>), created now on `server`, comes up and answers a1 (hv0)."""
    port, mac, ip = f"a{n}", f"02:00:00:00:00:{n:02x}", f"10.0.0.{n}"
    body = {"id": port, "logicalnetwork": "net-a", "subnet": "sub-a", "mac_address": mac}
    await cloud.api.create("logical-ports", {**body, "ip_address": ip})
    host = cloud.host(server, f"{ip}/24", mac=mac, port=port)
    await cloud.api.wait_port_up(port)
    assert await asyncio.to_thread(hosts["a1"].ping_ok, ip, deadline=10), f"a1 -> {port}"
    return host


async def recovered(cloud: Cloud, servers: Iterable[Server]) -> None:
    """Guarantee 5: nothing half-done in the store, every switch as a fresh start makes it."""
    await wait_like_fresh_controllers(cloud.store, list(servers))
    await check_invariants(cloud.store)
