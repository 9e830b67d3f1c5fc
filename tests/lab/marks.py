"""Markers shared by the tests that need the OVS lab (and OVN, and DHCP clients)."""

from __future__ import annotations

import os

import pytest

from tests.lab.dhcp import dhcp_clients_missing
from tests.lab.ovn import ovn_tools_missing
from vlcp.lab.ovs import missing_tools

needs_ovs_lab = pytest.mark.skipif(
    os.geteuid() != 0 or bool(missing_tools()), reason="needs root and the OVS tools"
)
"""Network namespaces and private OVS daemons need root and the OVS binaries."""

needs_ovn_lab = pytest.mark.skipif(
    os.geteuid() != 0 or bool(missing_tools() + ovn_tools_missing()),
    reason="needs root, the OVS and the OVN tools",
)
"""OVN beside the OVS lab (tests/lab/ovn.py): its daemons run privately, as root."""

needs_dhcp_clients = pytest.mark.skipif(
    bool(dhcp_clients_missing()), reason="needs dhclient and busybox (udhcpc)"
)
"""Real DHCP clients (tests/lab/dhcp): scripts/install-debian-packages.sh installs them."""
