"""Port announcements are durable and conditional: only decisions withdraw them.

Issue 9, defect 2: announcements were keys of the controller's liveness session, so a
restarted (or store-less) controller had its ports withdrawn on every other server.
"""

from __future__ import annotations

import pytest

from vlcp.agent.announcer import Announcer, Location
from vlcp.layout import chassis_key, netports_key, port_status
from vlcp.model import Model
from vlcp.model.errors import Conflict
from vlcp.model.servers import forget_server
from vlcp.store import Store

from .invariants import check


def _entry(host: str) -> dict:
    return {"host": host, "vtep": "192.0.2.1", "mac": "02:00:00:00:00:01", "ip": None}


async def _reports(store: Store) -> dict:
    located = (await store.read_prefix("netports/")).values
    statuses = (await store.read_prefix("lport-status/")).values
    return {**located, **statuses}


@pytest.fixture
async def ports(net: Model) -> Model:
    for port in ("a", "b"):
        await net.create("logical-ports", {"id": port, "logicalnetwork": "n1"})
    return net


async def test_a_deleted_port_is_never_announced_again(ports: Model, store: Store) -> None:
    await ports.delete("logical-ports", "a")
    await Announcer(store, "hv1").announce({"a": Location("n1", _entry("hv1"))}, since=1.0)
    assert await _reports(store) == {}


async def test_withdrawal_leaves_a_port_another_server_took_over(
    ports: Model, store: Store
) -> None:
    hv1, hv2 = Announcer(store, "hv1"), Announcer(store, "hv2")
    await hv1.announce({"a": Location("n1", _entry("hv1")), "b": Location("n1", _entry("hv1"))}, 1)
    await hv2.announce({"a": Location("n1", _entry("hv2"))}, 2)  # a migrated to hv2
    await hv1.withdraw({"a": "n1", "b": "n1"}, 3)  # hv1 lets go of both
    assert await _reports(store) == {
        netports_key("n1", "a"): _entry("hv2"),
        port_status("a"): {"state": "up", "host": "hv2", "since": 2},
        port_status("b"): {"state": "down", "host": "hv1", "since": 3},
    }
    check((await store.read_prefix("")).values)


async def test_deleting_a_port_removes_its_announcement_even_if_its_server_is_down(
    ports: Model, store: Store
) -> None:
    await Announcer(store, "hv1").announce({"a": Location("n1", _entry("hv1"))}, 1)
    await ports.delete("logical-ports", "a")
    assert await _reports(store) == {}


async def test_forgetting_a_server_withdraws_only_its_own_ports(ports: Model, store: Store) -> None:
    await Announcer(store, "hv1").announce({"a": Location("n1", _entry("hv1"))}, 1)
    await Announcer(store, "hv2").announce({"b": Location("n1", _entry("hv2"))}, 1)
    assert await forget_server(store, "hv1") == 2
    assert await _reports(store) == {
        netports_key("n1", "b"): _entry("hv2"),
        port_status("b"): {"state": "up", "host": "hv2", "since": 1},
    }
    assert await forget_server(store, "hv1") == 0  # idempotent


async def test_a_running_server_is_forgotten_only_by_force(ports: Model, store: Store) -> None:
    await Announcer(store, "hv1").announce({"a": Location("n1", _entry("hv1"))}, 1)
    session = await store.open_session(ttl=5)
    await session.put(chassis_key("hv1"), {"node": "hv1"})
    with pytest.raises(Conflict, match=r"hv1.*running"):
        await forget_server(store, "hv1")
    assert len(await _reports(store)) == 2  # nothing was withdrawn
    assert await forget_server(store, "hv1", force=True) == 2
    await session.close()
