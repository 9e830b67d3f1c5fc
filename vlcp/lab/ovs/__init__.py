"""Private Open vSwitch "hypervisors", namespace "VMs" and underlay links (demo and tests).

The layout is the one ``shared/lab/feasibility.md`` proved on this kind of machine:

* A :class:`Hypervisor` is a network namespace with its own ovsdb-server and ovs-vswitchd
  (userspace ``netdev`` datapath, ``--disable-system``) whose sockets, pidfiles and logs all
  live in a private directory (``OVS_RUNDIR``). Nothing touches the system OVS, and two
  hypervisors never share a namespace (two netdev vswitchds in one namespace fight over the
  ``ovs-netdev`` tap).
* A :class:`Host` is a namespace whose ``eth0`` is one end of a veth pair; the other end is an
  OVS port in the hypervisor namespace. veth ports survive a vswitchd restart, unlike internal
  ports moved into a namespace.
* :func:`connect_underlay` joins two hypervisors with a veth on each side's ``br-phy`` and puts
  the VTEP address (192.0.2.x, only inside our namespaces) on br-phy's tap, which is what the
  native tunnel code routes through.

All traffic stays inside namespaces this package creates.

The package, one purpose a module: :mod:`~vlcp.lab.ovs.tools` (required binaries),
:mod:`~vlcp.lab.ovs.daemon` (detached OVS daemons in a private rundir),
:mod:`~vlcp.lab.ovs.capture` (tcpdump into a pcap), :mod:`~vlcp.lab.ovs.namespace` (what hypervisors
and hosts share), :mod:`~vlcp.lab.ovs.hypervisor`, :mod:`~vlcp.lab.ovs.host`,
:mod:`~vlcp.lab.ovs.underlay` and :mod:`~vlcp.lab.ovs.lab` (:class:`OvsLab`). Import the
public names from here.
"""

from __future__ import annotations

from vlcp.lab.ovs.capture import PcapCapture
from vlcp.lab.ovs.host import Host, PingResult, parse_ping
from vlcp.lab.ovs.hypervisor import OF_PROTOCOLS, SCHEMA, VSCTL_TIMEOUT, Hypervisor
from vlcp.lab.ovs.lab import OvsLab
from vlcp.lab.ovs.tools import REQUIRED_TOOLS, missing_tools
from vlcp.lab.ovs.underlay import UNDERLAY_BRIDGE, UnderlayLink, connect_underlay

__all__ = [
    "OF_PROTOCOLS",
    "REQUIRED_TOOLS",
    "SCHEMA",
    "UNDERLAY_BRIDGE",
    "VSCTL_TIMEOUT",
    "Host",
    "Hypervisor",
    "OvsLab",
    "PcapCapture",
    "PingResult",
    "UnderlayLink",
    "connect_underlay",
    "missing_tools",
    "parse_ping",
]
