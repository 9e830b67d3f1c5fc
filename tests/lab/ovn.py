"""A private OVN next to the lab's hypervisors: the peer vlcp is measured and tested against.

The recipe of ``shared/lab/05_ovn.sh``: NB and SB ovsdb-servers on unix sockets in private
directories, ``ovn-northd``, and one ``ovn-controller`` per lab :class:`Hypervisor`
(in its namespace, ``ovn-bridge-datapath-type=netdev``, Geneve between servers). Every
process is registered with the lab and stopped by PID. Used by the benchmarks
(bench/portup.py, bench/dhcp.py) and by the tests that prove lab fixtures against OVN.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Collection, Mapping
from pathlib import Path

from tests.lab.ovsdb import OvsdbServer
from vlcp.lab.netns import (
    CommandError,
    ProcessRef,
    register_process,
    run,
    stop_process,
    wait_until,
)
from vlcp.lab.ovs import Hypervisor
from vlcp.lab.ovs.daemon import register_daemon, start_daemon
from vlcp.lab.processes import wait_or_kill
from vlcp.lab.servers import BRIDGE

NB_SCHEMA = Path("/usr/share/ovn/ovn-nb.ovsschema")
SB_SCHEMA = Path("/usr/share/ovn/ovn-sb.ovsschema")
OVN_TOOLS = ("ovn-northd", "ovn-controller", "ovn-nbctl", "ovn-sbctl", "ovsdb-client")


def ovn_tools_missing() -> list[str]:
    """The OVN tools not installed (the lab also needs the OVS ones)."""
    return [tool for tool in OVN_TOOLS if shutil.which(tool) is None]


class UpWatcher:
    """NB Logical_Switch_Port rows whose `up` is true, from `ovsdb-client monitor`."""

    def __init__(self, nb: OvsdbServer) -> None:
        self.up: set[str] = set()
        self.first_up: dict[str, float] = {}
        """perf_counter() when a port was first seen up."""
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            [
                "ovsdb-client",
                "monitor",
                nb.db_target,
                "OVN_Northbound",
                "Logical_Switch_Port",
                "name,up",
                "--format=json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.ref = register_process(ProcessRef(str(nb.dir), pid=self.proc.pid))
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                update = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                for _row, action, name, up in update.get("data", []):
                    if action in ("initial", "insert", "new") and isinstance(name, str):
                        (self.up.add if up is True else self.up.discard)(name)
                        if up is True:
                            self.first_up.setdefault(name, time.perf_counter())
                self.cond.notify_all()

    def wait(self, name: str, timeout: float) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: name in self.up, timeout):
                raise TimeoutError(f"OVN port {name} not up after {timeout:g} s")

    def wait_all(self, names: Collection[str], timeout: float) -> dict[str, float]:
        """`first_up` of `names` once all were up, or at the timeout those that were."""
        wanted = set(names)
        with self.cond:
            self.cond.wait_for(lambda: wanted <= self.first_up.keys(), timeout)
            return {name: self.first_up[name] for name in wanted if name in self.first_up}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            wait_or_kill(self.proc, 5, 5)
        stop_process(self.ref)


class OvnLab:
    """OVN's central part and a chassis on each hypervisor given, with a port-up watcher."""

    def __init__(self, hvs: list[Hypervisor]) -> None:
        self.hvs = hvs
        self.nb = OvsdbServer([NB_SCHEMA], tcp=False)
        self.sb = OvsdbServer([SB_SCHEMA], tcp=False)
        self.northd: ProcessRef | None = None
        self.controllers: list[ProcessRef] = []
        self.watcher: UpWatcher | None = None

    def nbctl(self, *args: str) -> str:
        return run("ovn-nbctl", f"--db={self.nb.db_target}", "--timeout=30", *args).stdout

    def sbctl(self, *args: str) -> str:
        return run("ovn-sbctl", f"--db={self.sb.db_target}", "--timeout=30", *args).stdout

    def create_dhcp_options(self, cidr: str, options: Mapping[str, str]) -> str:
        """A DHCP_Options row for `cidr` with `options` (ovn-nb(5): string values in double
        quotes, lists in braces); returns its UUID for `lsp-set-dhcpv4-options`."""
        uuid = self.nbctl("create", "DHCP_Options", f"cidr={cidr}").strip()
        self.set_dhcp_options(uuid, options)
        return uuid

    def set_dhcp_options(self, uuid: str, options: Mapping[str, str]) -> None:
        """Replace the options of row `uuid`; returns once every chassis has the new flows.

        A malformed value is not refused here: ovn-controller rejects the flow of every
        port using the row (a warning in its log) and no port gets an answer."""
        pairs = [f"{key}={value}" for key, value in options.items()]
        self.nbctl("dhcp-options-set-options", uuid, *pairs)
        self.nbctl("--wait=hv", "sync")

    def _start_controller(self, k: int, hv: Hypervisor) -> None:
        """ovn-controller in the server's namespace; it has no --unixctl option (its socket
        is $OVN_RUNDIR/ovn-controller.PID.ctl), hence not `start_daemon`."""
        hv.vsctl(
            "set",
            "Open_vSwitch",
            ".",
            f"external_ids:system-id=chassis-{k}",
            f"external_ids:ovn-remote={self.sb.db_target}",
            "external_ids:ovn-encap-type=geneve",
            f"external_ids:ovn-encap-ip={hv.vtep_ip or '127.0.0.1'}",
            f"external_ids:ovn-bridge={BRIDGE}",
            "external_ids:ovn-bridge-datapath-type=netdev",
        )
        pidfile = hv.dir / "ovn-controller.pid"
        self.controllers.append(register_process(ProcessRef(str(hv.dir), pidfile=pidfile)))
        argv = [
            "ip",
            "netns",
            "exec",
            hv.netns,
            "ovn-controller",
            hv.db_target,
            f"--pidfile={pidfile}",
            f"--log-file={hv.dir}/ovn-controller.log",
            "--detach",
            "--no-chdir",
            "-vconsole:off",
        ]
        env = {**os.environ, "OVS_RUNDIR": str(hv.dir), "OVN_RUNDIR": str(hv.dir)}
        with (hv.dir / "ovn-controller.out").open("w") as out:
            done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=15)
        if done.returncode != 0:
            raise CommandError(
                argv, done.returncode, "", (hv.dir / "ovn-controller.out").read_text()
            )

    def _chassis_ready(self, k: int, hv: Hypervisor) -> bool:
        found = self.sbctl("--bare", "--columns=name", "find", "Chassis", f"name=chassis-{k}")
        return bool(found.strip()) and BRIDGE in hv.vsctl("list-br").split()

    def start(self) -> None:
        """Central part, then a chassis per hypervisor; returns once each has registered and
        created its br-int."""
        self.nb.start()
        self.sb.start()
        self.northd = register_daemon(self.nb.dir, "ovn-northd")
        start_daemon(
            self.nb.dir,
            "ovn-northd",
            f"--ovnnb-db={self.nb.db_target}",
            f"--ovnsb-db={self.sb.db_target}",
        )
        self.nbctl("--wait=sb", "sync")
        for k, hv in enumerate(self.hvs):
            self._start_controller(k, hv)
        for k, hv in enumerate(self.hvs):
            wait_until(
                lambda k=k, hv=hv: self._chassis_ready(k, hv),
                timeout=30,
                interval=0.05,
                message=f"OVN chassis-{k}",
            )
        self.watcher = UpWatcher(self.nb)

    def controller_pids(self) -> list[int]:
        pids = [ref.current_pid() for ref in self.controllers]
        if None in pids:
            raise RuntimeError("an ovn-controller wrote no pidfile")
        return pids  # type: ignore[return-value]

    def northd_pid(self) -> int | None:
        return self.northd.current_pid() if self.northd else None

    def stop(self) -> None:
        """Everything started, newest first; each step runs even if another failed."""
        if self.watcher is not None:
            self.watcher.stop()
        for ref in [*self.controllers, *([self.northd] if self.northd else [])]:
            with contextlib.suppress(Exception):
                stop_process(ref)
        for server in (self.nb, self.sb):
            with contextlib.suppress(Exception):
                server.stop()
