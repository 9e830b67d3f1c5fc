"""The binaries the OVS lab needs, so fixtures can skip with a clear reason where one is missing."""

from __future__ import annotations

import shutil

REQUIRED_TOOLS = (
    "ovsdb-tool",
    "ovsdb-server",
    "ovs-vswitchd",
    "ovs-vsctl",
    "ovs-ofctl",
    "ovs-appctl",
    "ip",
    "ethtool",
    "ping",
    "tcpdump",
)


def missing_tools() -> list[str]:
    """Binaries the lab needs that are not on PATH (lets fixtures skip with a clear reason)."""
    return [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
