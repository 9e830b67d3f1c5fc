"""Real DHCP clients for lab hosts: ISC dhclient and busybox udhcpc (see ``clients``).

``clients`` runs them in a namespace with private files and scripts, ``lease`` reads what
they saw and applied; ``dhclient.sh``, ``udhcpc.sh`` and the ``apply.sh`` they share are
the client scripts.
"""

from __future__ import annotations

from tests.lab.dhcp.clients import (
    Dhclient,
    DhcpClient,
    DhcpResult,
    NoLease,
    Udhcpc,
    dhcp_clients_missing,
)
from tests.lab.dhcp.lease import Applied, Event, Lease, Route

CLIENTS: dict[str, type[DhcpClient]] = {"dhclient": Dhclient, "udhcpc": Udhcpc}
"""The client classes by program name (tests and the benchmark run both)."""

__all__ = [
    "CLIENTS",
    "Applied",
    "Dhclient",
    "DhcpClient",
    "DhcpResult",
    "Event",
    "Lease",
    "NoLease",
    "Route",
    "Udhcpc",
    "dhcp_clients_missing",
]
