"""Real podman, with its CNI backend, for one lab server, and the busybox image it runs.

Each `Podman` keeps everything private to the test: storage and run roots, the CNI config
directory, and a plugin directory holding `vlcp-cni` (a wrapper that runs this checkout's
`vlcp.integrations.cni`, the way a packaged console script would). Its network configs name
the server's private OVS (OVSDB socket, bridge, network namespace), so a container started
through it is plugged into that server as a workload on a real hypervisor would be.
How podman runs here (runc, cgroupfs, explicit ulimits) is shared/lab/09_containers.sh's.
`close` removes containers (which runs the plugin's DEL), images and the directories, also
after a failed test; nothing outside its root is left.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import vlcp
from vlcp.lab.ovs import Hypervisor
from vlcp.lab.servers import BRIDGE

IMAGE = "localhost/vlcp-busybox:latest"
APPLETS = ("sh", "ip", "ping", "sleep", "cat")
BUSYBOX = Path("/bin/busybox")
TIMEOUT = 60.0
"""Seconds one podman command may take (a `run` includes the plugin's ADD)."""
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RUN_OPTIONS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")
"""The sandbox forbids raising these limits: podman must be told what to set."""


def podman_missing() -> list[str]:
    """What the container tests need and is not installed (see install-debian-packages)."""
    return [t for t in ("podman", "/usr/sbin/runc", "nsenter") if shutil.which(t) is None]


def busybox_rootfs() -> bytes:
    """A tar of a root file system holding only static busybox and its applets."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
    return buffer.getvalue()


def remove_root(root: Path) -> None:
    """Remove a runtime's private root: what it still mounts there first (a runtime
    killed half-way leaves its shm and netns mounts behind)."""
    for line in reversed(Path("/proc/mounts").read_text().splitlines()):
        fields = line.split()
        if len(fields) > 1 and Path(fields[1]).is_relative_to(root):
            subprocess.run(["umount", "-l", fields[1]], check=False)
    shutil.rmtree(root, ignore_errors=True)


class Podman:
    """podman for one lab server `hv`, with vlcp's API at `api`."""

    def __init__(self, root: Path, hv: Hypervisor, api: str) -> None:
        self.root = root
        self.hv = hv
        self.api = api
        self.net_d = root / "net.d"
        self.plugins = root / "cni"
        for directory in (self.net_d, self.plugins):
            directory.mkdir(parents=True, exist_ok=True)
        wrapper = self.plugins / "vlcp-cni"
        checkout = Path(vlcp.__file__).resolve().parents[1]
        # exported: a prefix assignment before `exec` does not reach the plugin in dash
        wrapper.write_text(
            f"#!/bin/sh\nexport PYTHONPATH={checkout}\n"
            f"exec {sys.executable} -m vlcp.integrations.cni\n"
        )
        wrapper.chmod(0o755)
        (root / "containers.conf").write_text(
            "[network]\n"
            'network_backend = "cni"\n'
            f'cni_plugin_dirs = ["{self.plugins}"]\n'
            f'network_config_dir = "{self.net_d}"\n'
            "[engine]\n"
            'events_logger = "file"\n'
            f'events_logfile_path = "{root}/events.log"\n'
        )
        self.imported = False

    def __call__(self, *args: str, check: bool = True, stdin: bytes | None = None) -> str:
        """One podman command on our roots; its stdout and stderr together."""
        argv = [
            "podman",
            "--root", f"{self.root}/storage",
            "--runroot", f"{self.root}/run",
            "--tmpdir", f"{self.root}/tmp",
            "--storage-driver", "vfs",
            "--runtime", "/usr/sbin/runc",
            "--cgroup-manager", "cgroupfs",
            *args,
        ]  # fmt: skip
        env = {"PATH": PATH, "CONTAINERS_CONF": f"{self.root}/containers.conf"}
        done = subprocess.run(argv, input=stdin, capture_output=True, timeout=TIMEOUT, env=env)
        output = (done.stdout + done.stderr).decode(errors="replace")
        if check and done.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} exited {done.returncode}: {output}")
        return output

    def network(self, name: str, **options: Any) -> None:
        """A CNI network `name` of the vlcp plugin on this server's OVS; `options` are
        the plugin's (`network`, ...), given as they are, bad ones included."""
        plugin = {
            "type": "vlcp-cni",
            "api": self.api,
            "bridge": BRIDGE,
            "ovsdb": self.hv.db_target,
            "ovs_netns": self.hv.netns,
            **options,
        }
        conflist = {"cniVersion": "1.0.0", "name": name, "plugins": [plugin]}
        (self.net_d / f"{name}.conflist").write_text(json.dumps(conflist))

    def start(self, name: str, network: str, *, check: bool = True) -> str:
        """Run a container `name` on `network` in the background: its id, or (not
        `check`) podman's output when it fails."""
        if not self.imported:
            self("import", "-", IMAGE, stdin=busybox_rootfs())
            self.imported = True
        output = self(
            "run", "-d", "--name", name, "--network", network, *RUN_OPTIONS,
            IMAGE, "sleep", "600", check=check,
        )  # fmt: skip
        return output.strip().splitlines()[-1] if output.strip() else ""

    def exec(self, name: str, *command: str, check: bool = True) -> str:
        return self("exec", name, *command, check=check)

    def sandbox(self, name: str) -> str:
        """The path of the container's network namespace (CNI_NETNS)."""
        return self("inspect", "--format", "{{.NetworkSettings.SandboxKey}}", name).strip()

    def close(self) -> None:
        """Remove every container (the plugin's DEL runs) and image, then the roots."""
        try:
            self("rm", "-a", "-f", "-t", "0", check=False)
            self("rmi", "-a", "-f", check=False)
        finally:
            remove_root(self.root)
