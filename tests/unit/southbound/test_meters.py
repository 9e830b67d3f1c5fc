"""`MeterKeeper`: a bridge's meters kept equal to the wanted set, never before it is
complete, incrementally, and never at the cost of a flow. A fake switch that decodes
the meter-mods it is sent back into its table (the real one is driven end to end in
tests/e2e/test_dhcp_flood.py)."""

from __future__ import annotations

import struct

import pytest

from vlcp.southbound.meters import MeterKeeper
from vlcp.southbound.openflow.codec import codec_for
from vlcp.southbound.openflow.messages import Meter, MeterSupport
from vlcp.southbound.openflow.operations import FlowModsRejected
from vlcp.southbound.openflow.server import ConnectionClosed

USERSPACE = MeterSupport(262144, True)
OFPMC = {0: "add", 1: "modify", 2: "delete"}


class FakeSwitch:
    """Holds meters; applies the meter-mods it is sent, as a switch would."""

    def __init__(self, held: list[Meter] = (), support: MeterSupport = USERSPACE) -> None:
        self.codec = codec_for(4)
        self.held = {m.meter_id: m for m in held}
        self.support = support
        self.reads = 0
        self.sent: list[tuple[str, int]] = []
        self.fail: BaseException | None = None

    async def meter_support(self) -> MeterSupport:
        return self.support

    async def meters(self) -> list[Meter]:
        self.reads += 1
        return list(self.held.values())

    async def send_meter_mods(self, mods: list[bytes]) -> None:
        if self.fail is not None:
            raise self.fail
        for mod in mods:
            command, _flags, meter_id = struct.unpack_from("!HHI", mod, 8)
            self.sent.append((OFPMC[command], meter_id))
            if OFPMC[command] == "delete":
                del self.held[meter_id]
            else:
                rate, burst = struct.unpack_from("!II", mod, 20)
                assert (OFPMC[command] == "add") == (meter_id not in self.held)
                self.held[meter_id] = Meter(meter_id, rate, burst)


def meter(port: int, rate: int = 5) -> Meter:
    return Meter(port, rate, 20)


async def test_nothing_is_read_or_changed_before_the_wanted_set_is_complete() -> None:
    switch = FakeSwitch([meter(9)])
    keeper = MeterKeeper()
    keeper.set_meter("p1", meter(1))
    await keeper.attach(switch)
    assert switch.reads == 0 and switch.sent == []
    keeper.complete()
    await keeper.sync()
    assert switch.held == {1: meter(1)}  # meter 9, wanted by no port, goes only now
    assert sorted(switch.sent) == [("add", 1), ("delete", 9)]


async def test_changes_are_incremental_and_what_is_right_is_left_alone() -> None:
    switch = FakeSwitch([meter(1), meter(2, rate=99)])
    keeper = MeterKeeper()
    keeper.replace({"p1": meter(1), "p2": meter(2), "p3": meter(3)})
    keeper.complete()
    await keeper.attach(switch)
    assert sorted(switch.sent) == [("add", 3), ("modify", 2)]
    switch.sent.clear()
    keeper.set_meter("p3", None)
    keeper.set_meter("p4", meter(4))
    await keeper.sync()
    assert sorted(switch.sent) == [("add", 4), ("delete", 3)]
    assert switch.reads == 1  # the table is read once per connection


async def test_two_owners_of_one_id_keep_it_until_both_let_go() -> None:
    """An ofport handed from a port that went to one that came, in any order."""
    switch = FakeSwitch()
    keeper = MeterKeeper()
    keeper.complete()
    await keeper.attach(switch)
    keeper.set_meter("new", meter(5))
    keeper.set_meter("old", meter(5))
    keeper.set_meter("old", None)
    await keeper.sync()
    assert switch.held == {5: meter(5)}
    keeper.set_meter("new", None)
    await keeper.sync()
    assert switch.held == {}


async def test_a_switch_without_meters_is_left_alone() -> None:
    switch = FakeSwitch(support=MeterSupport(0, False))
    keeper = MeterKeeper()
    keeper.set_meter("p1", meter(1))
    keeper.complete()
    await keeper.attach(switch)
    assert switch.reads == 0 and switch.sent == []


async def test_ids_past_the_switchs_maximum_are_not_asked_for() -> None:
    switch = FakeSwitch(support=MeterSupport(4, True))
    keeper = MeterKeeper()
    keeper.replace({"p3": meter(3), "p7": meter(7)})
    keeper.complete()
    await keeper.attach(switch)
    assert switch.held == {3: meter(3)}


@pytest.mark.parametrize(
    "failure", [FlowModsRejected([(0, ValueError("refused"))]), ConnectionClosed("gone")]
)
async def test_a_failed_update_is_retried_from_a_fresh_read(failure: BaseException) -> None:
    switch = FakeSwitch()
    keeper = MeterKeeper()
    keeper.set_meter("p1", meter(1))
    keeper.complete()
    switch.fail = failure
    await keeper.attach(switch)  # never raises: flows do not wait on meters
    assert switch.held == {}
    switch.fail = None
    if isinstance(failure, ConnectionClosed):
        await keeper.attach(switch)  # the switch comes back
    keeper.set_meter("p2", meter(2))
    await keeper.sync()
    assert switch.held == {1: meter(1), 2: meter(2)}
    assert switch.reads == 2
