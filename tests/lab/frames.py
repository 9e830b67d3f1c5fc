"""Frames the tests send that take more than one scapy line to build."""

from __future__ import annotations

from scapy.contrib.lldp import (
    LLDPDUChassisID,
    LLDPDUEndOfLLDPDU,
    LLDPDUPortID,
    LLDPDUTimeToLive,
)
from scapy.layers.l2 import Ether
from scapy.packet import Packet

LLDP_DST = "01:80:c2:00:00:0e"
"""The nearest-bridge group address LLDP is sent to (link-local: bridges never forward it)."""


def lldp(src: str) -> Packet:
    """An LLDP frame from `src`, which is also its chassis id; its port is "eth0"."""
    return (
        Ether(src=src, dst=LLDP_DST)
        / LLDPDUChassisID(subtype=4, id=src)
        / LLDPDUPortID(subtype=7, id=b"eth0")
        / LLDPDUTimeToLive(ttl=120)
        / LLDPDUEndOfLLDPDU()
    )
