"""Markers shared by the tests that need the OVS lab."""

from __future__ import annotations

import os

import pytest

from vlcp.lab.ovs import missing_tools

needs_ovs_lab = pytest.mark.skipif(
    os.geteuid() != 0 or bool(missing_tools()), reason="needs root and the OVS tools"
)
"""Network namespaces and private OVS daemons need root and the OVS binaries."""
