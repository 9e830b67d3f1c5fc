"""Allowed address pairs of logical ports: checked strictly, stored canonically, updatable."""

from __future__ import annotations

import pytest

from vlcp.model import Invalid, Model
from vlcp.model.checks import MAX_ADDRESS_PAIRS

PAIRS = "allowed_address_pairs"


def port(*pairs: object, **fields: object) -> dict:
    return {"id": "p", "logicalnetwork": "n1", "subnet": "s1", PAIRS: list(pairs), **fields}


REFUSED = [
    ([{"ip_address": "10.0.0.0/33"}], f"{PAIRS}[0].ip_address", "is not a network in CIDR"),
    ([{"ip_address": "10.0.0.5/24"}], f"{PAIRS}[0].ip_address", "has host bits set"),
    ([{"ip_address": "10.0.0.256"}], f"{PAIRS}[0].ip_address", "is not an IP address"),
    ([{"ip_address": "fe80::1%eth0"}], f"{PAIRS}[0].ip_address", "has a scope"),
    ([{"ip_address": "224.0.0.18"}], f"{PAIRS}[0].ip_address", "is multicast"),
    ([{"ip_address": "ff02::/16"}], f"{PAIRS}[0].ip_address", "is multicast"),
    ([{"ip_address": "127.0.0.0/8"}], f"{PAIRS}[0].ip_address", "is loopback"),
    ([{"ip_address": "0.0.0.0"}], f"{PAIRS}[0].ip_address", "is not a source address"),
    ([{"ip_address": "255.255.255.255"}], f"{PAIRS}[0].ip_address", "is not a source address"),
    ([{"ip_address": "::"}], f"{PAIRS}[0].ip_address", "is not a source address"),
    (
        [
            {"ip_address": "10.0.0.9"},
            {"ip_address": "10.0.0.9", "mac_address": "02:00:00:00:00:09"},
            {"ip_address": "10.0.0.9/32"},
        ],
        f"{PAIRS}[2]",
        f"{PAIRS}[2]: repeats {PAIRS}[0]",
    ),
    (
        [{"ip_address": "10.0.0.9", "mac_address": "02:00:00:00:00"}],
        f"{PAIRS}[0].mac_address",
        "is not a MAC address",
    ),
    (
        [{"ip_address": "10.0.0.9", "mac_address": "01:00:5e:00:00:12"}],
        f"{PAIRS}[0].mac_address",
        "is a multicast address",
    ),
    ([{"mac_address": "02:00:00:00:00:09"}], f"{PAIRS}[0].ip_address", "is required"),
    ([{"ip_address": "10.0.0.9", "vlan": 5}], f"{PAIRS}[0].vlan", "unknown field"),
    ([{"ip_address": 167772169}], f"{PAIRS}[0].ip_address", "should be a valid string"),
    (["10.0.0.9"], f"{PAIRS}[0]", "should be a valid dictionary"),
    (
        [{"ip_address": f"10.1.0.{i}"} for i in range(MAX_ADDRESS_PAIRS + 1)],
        PAIRS,
        f"{PAIRS}: {MAX_ADDRESS_PAIRS + 1} pairs, at most {MAX_ADDRESS_PAIRS} are allowed",
    ),
]


@pytest.mark.parametrize(("pairs", "field", "message"), REFUSED)
async def test_bad_pairs_are_refused_with_the_field_and_nothing_is_written(
    net: Model, pairs: list, field: str, message: str
) -> None:
    before = (await net.store.read_prefix("")).values
    with pytest.raises(Invalid) as info:
        await net.create("logical-ports", port(*pairs))
    assert (info.value.field, info.value.status) == (field, 422), str(info.value)
    assert message in info.value.message
    assert (await net.store.read_prefix("")).values == before
    await net.create("logical-ports", port())
    with pytest.raises(Invalid) as info:
        await net.update("logical-ports", "p", {PAIRS: pairs})
    assert info.value.field == field
    assert (await net.get("logical-ports", "p"))[PAIRS] == []


async def test_pairs_are_stored_canonically_and_reserve_nothing(net: Model) -> None:
    given = [
        {"ip_address": "10.0.0.9/32"},
        {"ip_address": "10.8.0.0/16", "mac_address": "02-00-5E-00-01-01"},
        {"ip_address": "2001:DB8:0:0::1"},
        {"ip_address": "0.0.0.0/0", "mac_address": None},
    ]
    created = await net.create("logical-ports", port(*given))
    expected = [
        {"ip_address": "10.0.0.9"},
        {"ip_address": "10.8.0.0/16", "mac_address": "02:00:5e:00:01:01"},
        {"ip_address": "2001:db8::1"},
        {"ip_address": "0.0.0.0/0"},
    ]
    assert created[PAIRS] == expected
    assert (await net.get("logical-ports", "p"))[PAIRS] == expected
    # The same pair (a VRRP address and its MAC) on a second port: nothing is held.
    other = {**port(expected[1]), "id": "q"}
    assert (await net.create("logical-ports", other))[PAIRS] == [expected[1]]


async def test_pairs_are_updated_alone_and_cleared(net: Model) -> None:
    created = await net.create("logical-ports", port(hostname="web"))
    assert created[PAIRS] == []
    updated = await net.update("logical-ports", "p", {PAIRS: [{"ip_address": "10.0.0.200"}]})
    assert updated[PAIRS] == [{"ip_address": "10.0.0.200"}]
    assert {k: v for k, v in updated.items() if k != PAIRS} == {
        k: v for k, v in created.items() if k != PAIRS
    }
    other = await net.update("logical-ports", "p", {"hostname": "db"})
    assert other[PAIRS] == [{"ip_address": "10.0.0.200"}]
    assert (await net.update("logical-ports", "p", {PAIRS: None}))[PAIRS] is None
    absent = await net.create("logical-ports", {"id": "r", "logicalnetwork": "n1"})
    assert absent[PAIRS] is None
