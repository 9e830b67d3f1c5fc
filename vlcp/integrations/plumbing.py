"""The data path of one workload interface: a veth pair, one end in the workload's network
namespace, the other an OVS port carrying `external_ids:iface-id`, which is all the local
controller needs to bind the logical port.

Done with `ip`, `nsenter` and `ovs-vsctl`, the commands an operator would use to look at
or repair the result, so a failure reads as the command that failed and its stderr.

`ovs_netns` is the network namespace of the OVS the bridge belongs to: unset (the usual
case) means the plugin's own; the lab runs each server's OVS in a namespace of its own, and a
port must be in vswitchd's namespace to be opened.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .endpoint import Endpoint

TIMEOUT = 15.0
"""Seconds one command may take: a hung OVSDB must fail the call, not hang the runtime."""


class PlumbingError(Exception):
    """A command failed; the message is the command and its stderr."""


def run(argv: Sequence[str], *, input: str | None = None, check: bool = True) -> str:
    """Run `argv`; its stdout, or `PlumbingError` with its stderr when it fails."""
    try:
        done = subprocess.run(
            list(argv), input=input, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PlumbingError(f"{' '.join(argv)}: {exc}") from None
    if check and done.returncode != 0:
        raise PlumbingError(f"{' '.join(argv)}: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def in_netns(netns: str | None) -> list[str]:
    """The argv prefix that runs a command in `netns`, a path (`/proc/1/ns/net`, what CNI
    hands over) or a name under /run/netns; nothing for the current namespace."""
    if netns is None:
        return []
    return ["nsenter", f"--net={netns if '/' in netns else '/run/netns/' + netns}"]


def host_ifname(key: str) -> str:
    """The host-side interface name of the workload interface `key`: stable, so a delete
    finds it without any state kept, and short enough for Linux (15 bytes)."""
    return "vl" + hashlib.sha256(key.encode()).hexdigest()[:11]


def configure_commands(ifname: str, endpoint: Endpoint) -> list[str]:
    """`ip -batch` lines that give the interface its address and routes and bring it up:
    the gateway as default route, then the subnet's host routes."""
    lines = [f"link set {ifname} up"]
    if endpoint.address is not None:
        lines.append(f"address add {endpoint.address.with_prefixlen} dev {ifname}")
    if endpoint.gateway is not None:
        lines.append(f"route add default via {endpoint.gateway} dev {ifname}")
    lines += [f"route add {dst} via {hop} dev {ifname}" for dst, hop in endpoint.routes]
    return lines


@dataclass(frozen=True)
class Switch:
    """The local OVS: its OVSDB, the integration bridge, and the namespace of its ports."""

    bridge: str = "br-int"
    ovsdb: str = "unix:/var/run/openvswitch/db.sock"
    ovs_netns: str | None = None

    def vsctl(self, *args: str) -> str:
        return run(["ovs-vsctl", f"--db={self.ovsdb}", f"--timeout={int(TIMEOUT)}", *args])

    def create_veth(self, host: str, peer: str, endpoint: Endpoint, peer_netns: str | None) -> None:
        """The pair `host` (in the OVS's namespace) and `peer` (in `peer_netns`, None:
        the caller's) with the port's MAC on `peer` and the network's MTU on both."""
        mtu = str(endpoint.mtu)
        argv = ["ip", "link", "add", "name", host, "mtu", mtu]
        if self.ovs_netns is not None:
            argv += ["netns", self.ovs_netns]
        argv += ["type", "veth", "peer", "name", peer, "address", endpoint.mac, "mtu", mtu]
        if peer_netns is not None:
            argv += ["netns", peer_netns]
        run(argv)
        run([*in_netns(self.ovs_netns), "ip", "link", "set", host, "up"])

    def attach(self, host: str, peer: str, endpoint: Endpoint, peer_netns: str | None) -> None:
        """The pair of `endpoint`'s interface, `host` plugged as its port; first removing
        whatever an interrupted attempt left under the same name."""
        self.unplug(host)
        self.create_veth(host, peer, endpoint, peer_netns)
        self.plug(host, endpoint.port, endpoint.mac)

    def plug(self, host: str, port: str, mac: str) -> None:
        """Add `host` to the bridge as logical port `port` (`external_ids:iface-id`)."""
        self.vsctl(
            "--may-exist", "add-port", self.bridge, host,
            "--", "set", "Interface", host,
            f"external_ids:iface-id={port}",
            f"external_ids:attached-mac={mac}",
            "external_ids:iface-status=active",
        )  # fmt: skip

    def unplug(self, host: str) -> None:
        """Remove `host` from the bridge and delete the pair; either already gone is fine."""
        self.vsctl("--if-exists", "del-port", self.bridge, host)
        if self.link(host, self.ovs_netns) is not None:
            run([*in_netns(self.ovs_netns), "ip", "link", "del", host], check=False)

    def iface_id(self, host: str) -> str | None:
        """The logical port `host` is plugged as on the bridge, None if it is not there."""
        if host not in self.vsctl("list-ports", self.bridge).split():
            return None
        value = self.vsctl("--if-exists", "get", "Interface", host, "external_ids:iface-id")
        return value.strip().strip('"') or None

    @staticmethod
    def link(ifname: str, netns: str | None) -> dict[str, Any] | None:
        """`ip -j address show` of `ifname` in `netns`, None if there is no such link."""
        out = run([*in_netns(netns), "ip", "-j", "address", "show", "dev", ifname], check=False)
        found = json.loads(out) if out.strip() else []
        return found[0] if found else None
