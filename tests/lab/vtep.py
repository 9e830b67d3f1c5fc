"""An emulated hardware VTEP switch (openvswitch-vtep's `ovs-vtep`) and bare-metal hosts.

The switch is a private OVS like a lab hypervisor, whose one ovsdb-server serves both the
Open_vSwitch database (for the emulator's own bridges) and the `hardware_vtep` database
(what a VTEP controller drives, as it would a real switch's). `ovs-vtep` runs by PID with
`OVS_RUNDIR` pointed at the private directory, so its `ovs-vsctl`/`vtep-ctl` calls reach
this instance only; it polls both databases about once a second. Give it a tunnel IP on
the lab underlay (`connect_underlay`) before `start_emulator`.

A bare-metal host reaches one of the switch's ports through an access bridge that tags its
frames with its VLAN (`BareMetal`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import pytest

from vlcp.lab.naming import unique_name
from vlcp.lab.netns import (
    CommandError,
    ProcessRef,
    create_veth,
    link_exists,
    run,
    stop_process,
)
from vlcp.lab.ovs.daemon import register_daemon, start_daemon
from vlcp.lab.ovs.host import Host
from vlcp.lab.ovs.hypervisor import Hypervisor
from vlcp.lab.ovs.lab import OvsLab

VTEP_SCHEMA = Path("/usr/share/openvswitch/vtep.ovsschema")
EMULATOR_DIR = "/usr/share/openvswitch/scripts"
EMULATOR = "ovs-vtep"


class VtepSwitch(Hypervisor):
    """A hardware VTEP switch: `name` is its Physical_Switch and its emulator's bridge."""

    def __init__(self, name: str = "ps0") -> None:
        super().__init__(name)
        self.netns = unique_name("vtep")
        self._emulator: ProcessRef | None = None

    def __repr__(self) -> str:
        return f"VtepSwitch({self.name!r}, netns={self.netns!r}, dir={self._dir})"

    @property
    def manager(self) -> str:
        """The `hardware_vtep` OVSDB target a VTEP controller connects to."""
        return self.db_target

    def _start_ovsdb_server(self) -> None:
        """One ovsdb-server for both databases, as the emulator expects (and as a switch
        serves `hardware_vtep` to its manager)."""
        vtep_db = self.dir / "vtep.db"
        if not vtep_db.exists():
            run("ovsdb-tool", "create", str(vtep_db), str(VTEP_SCHEMA))
        self._start_daemon(
            "ovsdb-server",
            str(self.dir / "conf.db"),
            str(vtep_db),
            f"--remote=punix:{self.db_sock}",
            "--remote=db:hardware_vtep,Global,managers",
        )

    def start_emulator(self) -> Self:
        """The switch's bridge, its Physical_Switch with the underlay address as its tunnel
        IP, then `ovs-vtep` (by PID) for it."""
        if self.vtep_ip is None:
            raise ValueError(f"{self!r} has no underlay address: connect_underlay first")
        self.vsctl("add-br", self.name, "--", "set", "bridge", self.name, "datapath_type=netdev")
        self.vtep_ctl("add-ps", self.name)
        self.vtep_ctl("set", "Physical_Switch", self.name, f"tunnel_ips={self.vtep_ip}")
        self._emulator = register_daemon(self.dir, EMULATOR)
        env = {**self._ovs_env(), "PATH": f"{EMULATOR_DIR}:{os.environ.get('PATH', '')}"}
        start_daemon(self.dir, EMULATOR, self.name, netns=self.netns, env=env, unixctl=False)
        return self

    def stop(self, *, remove_dir: bool = True) -> None:
        """The emulator first (it would recreate what the daemons lose), then the rest."""
        ref, self._emulator = self._emulator, None
        if ref is not None:
            stop_process(ref)
        super().stop(remove_dir=remove_dir)

    def vtep_ctl(self, *args: str) -> str:
        """vtep-ctl against our `hardware_vtep` database; stripped stdout."""
        cmd = ("vtep-ctl", f"--db={self.db_target}", "--timeout=10", *args)
        return run(*cmd, env=self._ovs_env()).stdout.strip()

    def shows(self, text: str, *args: str) -> bool:
        """Whether vtep-ctl's answer to `args` holds `text`; False while vtep-ctl fails (a
        port the emulator has not reported yet is "no port named ...")."""
        try:
            return text in self.vtep_ctl(*args)
        except CommandError:
            return False


class BareMetal(Host):
    """A server behind the switch, on VLAN `vlan` (0: untagged) of the switch's port `port`.

    The lab's kernel has no 802.1Q interfaces, so the host sits on an access port of a
    small access bridge whose trunk is cabled (a veth) to the switch's port, the way a
    server hangs off an access switch: the switch's port receives its frames tagged.
    """

    def __init__(self, switch: VtepSwitch, ip: str, *, vlan: int, mac: str, port: str) -> None:
        super().__init__(switch, f"acc-{port}", ip, mac=mac, name=f"bm-{port}")
        self.switch = switch
        self.switch_port = port
        self.vlan = vlan

    def start(self) -> Self:
        """The access bridge and its trunk into the switch's port (the first host on that
        port makes them), then the host on it."""
        ps = self.switch
        if not link_exists(ps.netns, self.switch_port):
            netdev = ("--", "set", "bridge", self.bridge, "datapath_type=netdev")
            ps.vsctl("add-br", self.bridge, *netdev)
            trunk = f"{self.switch_port}-t"
            create_veth(self.switch_port, ps.netns, trunk, ps.netns)
            ps.vsctl("add-port", ps.name, self.switch_port)
            ps.vsctl("add-port", self.bridge, trunk)
        super().start()
        if self.vlan:
            ps.vsctl("set", "port", self.port_name, f"tag={self.vlan}")
        return self


class VtepLab:
    """Makes switches and bare-metal hosts owned by the test's `OvsLab` (removed with it)."""

    def __init__(self, lab: OvsLab) -> None:
        self.lab = lab
        self._hosts: list[BareMetal] = []

    def hosts_of(self, switch: VtepSwitch) -> list[BareMetal]:
        """The bare-metal hosts made behind `switch`, oldest first."""
        return [host for host in self._hosts if host.switch is switch]

    def switch(self, name: str = "ps0") -> VtepSwitch:
        return self.lab.adopt(VtepSwitch(name))

    def bare_metal(
        self, switch: VtepSwitch, ip: str, *, vlan: int, mac: str, port: str
    ) -> BareMetal:
        host = BareMetal(switch, ip, vlan=vlan, mac=mac, port=port)
        self._hosts.append(host)
        return self.lab.adopt(host)


@pytest.fixture
def vtep_lab(ovs_lab: OvsLab) -> Iterator[VtepLab]:
    """Emulated hardware VTEP switches and bare-metal hosts, torn down with the OVS lab."""
    yield VtepLab(ovs_lab)
