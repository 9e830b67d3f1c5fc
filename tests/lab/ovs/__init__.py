"""The OVS lab of :mod:`vlcp.lab.ovs`, with captures decoded by scapy.

Hypervisors, hosts, underlay links and :class:`OvsLab` are the product's
(:mod:`vlcp.lab.ovs`, which ``vlcp demo`` uses too); this package re-exports them and makes
every ``capture()`` return the scapy-decoding :class:`~tests.lab.ovs.capture.Capture`.
"""

from __future__ import annotations

from tests.lab.ovs.capture import Capture
from vlcp.lab.ovs import (
    OF_PROTOCOLS,
    REQUIRED_TOOLS,
    SCHEMA,
    UNDERLAY_BRIDGE,
    VSCTL_TIMEOUT,
    Host,
    Hypervisor,
    OvsLab,
    PingResult,
    UnderlayLink,
    connect_underlay,
    missing_tools,
    parse_ping,
)
from vlcp.lab.ovs.namespace import NamespaceObject

NamespaceObject.capture_class = Capture

__all__ = [
    "OF_PROTOCOLS",
    "REQUIRED_TOOLS",
    "SCHEMA",
    "UNDERLAY_BRIDGE",
    "VSCTL_TIMEOUT",
    "Capture",
    "Host",
    "Hypervisor",
    "OvsLab",
    "PingResult",
    "UnderlayLink",
    "connect_underlay",
    "missing_tools",
    "parse_ping",
]
