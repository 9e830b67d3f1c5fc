"""A namespace "VM" whose ``eth0`` is one end of a veth pair plugged into a hypervisor bridge.

The other end is an OVS port in the hypervisor namespace; veth ports survive a vswitchd
restart, unlike internal ports moved into a namespace.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from vlcp.lab.naming import private_dir, unique_name
from vlcp.lab.netns import (
    add_address,
    create_netns,
    create_veth,
    delete_netns,
    register_dir,
    release_dir,
)
from vlcp.lab.ovs.capture import PcapCapture
from vlcp.lab.ovs.hypervisor import Hypervisor
from vlcp.lab.ovs.namespace import NamespaceObject, close_quietly


@dataclass(frozen=True)
class PingResult:
    """What ping reported; ``received`` counts distinct replies."""

    sent: int
    received: int
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        """At least one reply and no errors."""
        return self.received > 0 and self.returncode == 0


_PING_STATS = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")


def parse_ping(output: str, returncode: int) -> PingResult:
    """Parse iputils ping's summary line."""
    match = _PING_STATS.search(output)
    if match is None:
        raise ValueError(f"no ping statistics in output: {output!r}")
    return PingResult(int(match[1]), int(match[2]), returncode, output)


class Host(NamespaceObject):
    """A "VM": a namespace whose eth0 is a veth plugged into a hypervisor's bridge."""

    def __init__(
        self,
        hypervisor: Hypervisor,
        bridge: str,
        ip: str,
        *,
        mac: str | None = None,
        port_name: str | None = None,
        ofport: int | None = None,
        iface_id: str | None = None,
        name: str = "host",
    ) -> None:
        super().__init__()
        self.hypervisor = hypervisor
        self.bridge = bridge
        self.cidr = ip if "/" in ip else f"{ip}/24"
        self.name = name
        self.netns = unique_name("vm")
        self.port_name = port_name or self.netns
        self._mac = mac
        self._ofport = ofport
        self._iface_id = iface_id
        self._cap_dir: Path | None = None

    def __repr__(self) -> str:
        return f"Host({self.name!r}, netns={self.netns!r}, ip={self.cidr}, port={self.port_name})"

    @property
    def ip(self) -> str:
        """The address without prefix."""
        return self.cidr.split("/")[0]

    @property
    def mac(self) -> str:
        """eth0's MAC (read from the kernel unless it was given)."""
        if self._mac is None:
            info = json.loads(self.exec("ip", "-j", "link", "show", "dev", "eth0").stdout)
            self._mac = str(info[0]["address"])
        return self._mac

    @property
    def capture_dir(self) -> Path | None:
        """Where this host's pcaps go (created by the first capture)."""
        return self._cap_dir

    @property
    def ofport(self) -> int:
        """The OpenFlow port number of our port on the hypervisor bridge."""
        return self.hypervisor.ofport(self.port_name)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Create namespace and veth, configure eth0, and plug the other end into OVS.

        ``tx off`` is required: the userspace datapath forwards veth frames with
        checksums still left to "hardware", so TCP/UDP would arrive corrupt (ICMP survives).
        """
        create_netns(self.netns)
        create_veth(self.port_name, self.hypervisor.netns, "eth0", self.netns)
        if self._mac:
            self.exec("ip", "link", "set", "eth0", "address", self._mac)
        self.exec("ethtool", "-K", "eth0", "tx", "off")
        add_address(self.netns, "eth0", self.cidr)
        self.hypervisor.vsctl(*self._add_port_args())
        return self

    def _add_port_args(self) -> list[str]:
        """ovs-vsctl arguments that add our port with its optional ofport and iface-id."""
        args = ["add-port", self.bridge, self.port_name]
        settings = []
        if self._ofport is not None:
            settings.append(f"ofport_request={self._ofport}")
        if self._iface_id is not None:
            settings.append(f"external_ids:iface-id={self._iface_id}")
        if settings:
            args += ["--", "set", "interface", self.port_name, *settings]
        return args

    def stop(self, *, remove_dir: bool = True) -> None:
        """Stop captures, unplug the OVS port if OVS still runs, delete the namespace."""
        errors: list[str] = []
        self._stop_captures(errors)
        if self.hypervisor.running:
            close_quietly(
                lambda: self.hypervisor.vsctl("--if-exists", "del-port", self.port_name),
                f"port {self.port_name}",
                errors,
            )
        close_quietly(lambda: delete_netns(self.netns), f"netns {self.netns}", errors)
        if self._cap_dir is not None:
            release_dir(self._cap_dir, remove=remove_dir)
        if errors:
            raise RuntimeError(f"{self!r} stop: " + "; ".join(errors))

    # ------------------------------------------------------------ traffic

    def ping(
        self,
        ip: str,
        *,
        count: int = 3,
        interval: float = 0.2,
        timeout: float = 1.0,
    ) -> PingResult:
        """Send ``count`` echo requests and report sent/received (no exception on loss)."""
        proc = self.exec(
            "ping",
            "-n",
            "-c",
            str(count),
            "-i",
            str(interval),
            "-W",
            str(timeout),
            ip,
            check=False,
            timeout=count * interval + timeout + 10,
        )
        return parse_ping(proc.stdout + proc.stderr, proc.returncode)

    def ping_ok(self, ip: str, *, deadline: float = 5.0, interval: float = 0.2) -> bool:
        """True as soon as one reply arrives, retrying every ``interval`` up to ``deadline``.

        Tolerates the first-packet loss of ARP and of OVS's tunnel neighbour resolution
        without a fixed sleep. ``ping -c 1 -w D`` keeps sending until one reply, but gives
        up early on "Destination Host Unreachable" (a failed ARP), so it runs again until
        the deadline.
        """
        end = time.monotonic() + deadline
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return False
            proc = self.exec(
                "ping",
                "-n",
                "-c",
                "1",
                "-i",
                str(interval),
                "-w",
                str(max(1, round(left))),
                ip,
                check=False,
                timeout=left + 10,
            )
            if proc.returncode == 0:
                return True

    def add_neighbor(self, ip: str, mac: str) -> None:
        """A permanent ARP entry, so IP packets leave even where ARP cannot get through."""
        self.exec("ip", "neigh", "replace", ip, "lladdr", mac, "dev", "eth0", "nud", "permanent")

    def capture(self, bpf: str = "", *, iface: str = "eth0") -> PcapCapture:
        """Start tcpdump on ``iface`` (optional BPF filter); returns once it is listening."""
        if self._cap_dir is None:
            self._cap_dir = register_dir(private_dir("cap"))
        return self._start_capture(self._cap_dir, iface, bpf)
