"""`[agent] vtep`: an address as given, or an interface's IPv4 address."""

from __future__ import annotations

import pytest

from vlcp.agent.vtep import resolve_vtep


def test_an_address_is_taken_as_given() -> None:
    assert resolve_vtep("192.0.2.1") == "192.0.2.1"
    assert resolve_vtep(None) is None


def test_an_interface_gives_its_ipv4_address() -> None:
    assert resolve_vtep("iface:lo") == "127.0.0.1"


def test_an_interface_without_an_address_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="nosuchif0"):
        resolve_vtep("iface:nosuchif0")
