"""The view's values and the local network numbers."""

from __future__ import annotations

import random

import pytest

from vlcp.pipeline import AddressPair, LocalPort, Network, RemotePort, View, network_numbers
from vlcp.pipeline.view import Members

M = "02:00:00:00:00:01"


def test_network_numbers_are_a_function_of_the_set() -> None:
    ids = [f"net-{i}" for i in range(2000)]
    numbers = network_numbers(ids)
    shuffled = ids[:]
    random.Random(7).shuffle(shuffled)
    assert network_numbers(shuffled) == numbers
    assert network_numbers(ids + ids[:10]) == numbers
    assert len(set(numbers.values())) == len(ids)
    assert all(1 <= n < 1 << 24 for n in numbers.values())
    # A network keeps its number when others come and go (barring a hash collision).
    assert network_numbers(ids[:5])["net-3"] == numbers["net-3"]


def test_collisions_probe_to_the_next_free_number_never_zero() -> None:
    numbers = network_numbers(["a", "b", "c"], bits=2)
    assert sorted(numbers.values()) == [1, 2, 3]
    assert network_numbers(["c", "a", "b"], bits=2) == numbers
    with pytest.raises(ValueError, match="do not fit"):
        network_numbers(["a", "b", "c", "d"], bits=2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("n", "vlan", 1, None), "tag None"),
        (("n", "vlan", 1, 4095), "tag 4095"),
        (("n", "vxlan", 1, 1 << 24), "not in"),
        (("n", "native", 1, 5), "has no tag"),
        (("n", "gre", 1), "unknown type"),
        (("n", "local", 0), "local number"),
    ],
)
def test_bad_networks(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Network(*args)  # type: ignore[arg-type]


def test_ports_are_normalised_and_checked() -> None:
    port = LocalPort("p", "n", 3, "02:AB:00:00:00:01", "fd00:0::1")
    assert (port.mac, port.ip) == ("02:ab:00:00:00:01", "fd00::1")
    with pytest.raises(ValueError, match="MAC"):
        LocalPort("p", "n", 3, "02:ab:00:00:00")
    with pytest.raises(ValueError, match="port number"):
        LocalPort("p", "n", 0, "02:ab:00:00:00:01")
    with pytest.raises(ValueError):
        RemotePort("r", "n", "02:ab:00:00:00:01", "not-an-ip")


def test_allowed_address_pairs_are_normalised_and_checked() -> None:
    pairs = [AddressPair("10.0.0.9", "00:00:5E:00:01:01"), AddressPair("FD00:1::/64", M)]
    port = LocalPort("p", "n", 3, M, "10.0.0.1", pairs)  # type: ignore[arg-type]
    assert port.allowed == (
        AddressPair("10.0.0.9/32", "00:00:5e:00:01:01"),
        AddressPair("fd00:1::/64", M),
    )
    assert port.sources == (AddressPair("10.0.0.1/32", M), *port.allowed)
    assert port.macs == [M, "00:00:5e:00:01:01"]
    assert LocalPort("p", "n", 3, M, None, pairs[:1]).sources is None  # no address: open
    with pytest.raises(ValueError, match="host bits"):
        AddressPair("10.0.0.9/24", M)
    with pytest.raises(ValueError, match="MAC"):
        AddressPair("10.0.0.9", "nope")
    with pytest.raises(TypeError, match="AddressPair"):
        LocalPort("p", "n", 3, M, None, ("10.0.0.9",))  # type: ignore[arg-type]


def test_the_view_indexes_ports_by_network_and_local_shadows_remote() -> None:
    view = View(
        networks={"n": Network("n", "vxlan", 1, 10)},
        ports={"p": LocalPort("p", "n", 1, "02:00:00:00:00:01")},
        remotes={
            "p": RemotePort("p", "n", "02:00:00:00:00:01", "192.0.2.9"),
            "r": RemotePort("r", "n", "02:00:00:00:00:02", "192.0.2.10"),
            "s": RemotePort("s", "n", "02:00:00:00:00:03", "192.0.2.9"),
        },
    )
    assert view.members == {"n": Members(frozenset({"p"}), frozenset({"p", "r", "s"}))}
    assert [r.id for r in view.remotes_of("n")] == ["r", "s"]
    assert view.remote("p") is None
    assert view.peer_vteps("n") == ["192.0.2.9", "192.0.2.10"]  # numeric order
    with pytest.raises(ValueError, match="filed under"):
        View(ports={"q": LocalPort("p", "n", 1, "02:00:00:00:00:01")})
