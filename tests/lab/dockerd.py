"""A private `dockerd` for one lab server, and `vlcp docker-plugin` beside it.

The daemon runs as shared/lab/09_containers.sh found it works here: private data and exec
roots and socket, no iptables, no default bridge, vfs storage, cgroupfs, explicit ulimits.
Docker looks for plugins only in fixed directories (/run/docker/plugins,
/etc/docker/plugins); to keep ours private, dockerd runs in a mount namespace of its own in
which a directory of the test is bound over /etc/docker, holding `plugins/vlcp.spec` that
points at this server's plugin socket. Both stop by PID; `close` removes containers and
networks first (their DELs and releases run through the plugin), then the roots.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.lab.podman import PATH, busybox_rootfs, remove_root
from tests.lab.services.process import ManagedProcess
from tests.lab.vlcp_processes import VlcpProcess
from vlcp.lab.netns import wait_until
from vlcp.lab.ovs import Hypervisor
from vlcp.lab.servers import BRIDGE

IMAGE = "vlcp-busybox:latest"
TIMEOUT = 60.0
"""Seconds one docker command may take (a `run` includes the plugin's join)."""
DAEMON = (
    "--iptables=false", "--ip-masq=false", "--bridge=none", "--storage-driver=vfs",
    "--exec-opt", "native.cgroupdriver=cgroupfs",
    "--default-ulimit", "nofile=1024:1024", "--default-ulimit", "nproc=1024:1024",
)  # fmt: skip


def docker_missing() -> list[str]:
    return [tool for tool in ("dockerd", "docker", "unshare") if shutil.which(tool) is None]


class DockerPlugin(VlcpProcess):
    """`vlcp docker-plugin` for `hv`'s OVS, creating networks on `physical_network`."""

    def __init__(self, directory: Path, hv: Hypervisor, api: str, physical_network: str) -> None:
        self.socket = directory / "vlcp.sock"
        command = [
            "docker-plugin", "--socket", str(self.socket), "--api", api,
            "--bridge", BRIDGE, "--ovsdb", hv.db_target, "--ovs-netns", hv.netns,
            "--physical-network", physical_network,
        ]  # fmt: skip
        super().__init__(f"docker-plugin-{hv.name}", directory, {}, command)

    def ready(self) -> None:
        wait_until(
            lambda: self.socket.is_socket() or not self.running,
            timeout=TIMEOUT,
            message=f"{self.name} socket",
        )
        if not self.running:
            raise AssertionError(f"{self.name} exited: {self.log_tail()}")


class Dockerd:
    """dockerd for one lab server, its plugins in `root/etc/plugins`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.etc = root / "etc"
        (self.etc / "plugins").mkdir(parents=True)
        self.socket = root / "docker.sock"
        self.log = root / "dockerd.log"
        argv = [
            "unshare", "--mount", "--propagation", "private", "--",
            "sh", "-c", 'mount --bind "$0" /etc/docker && exec dockerd "$@"', str(self.etc),
            "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
            "-H", f"unix://{self.socket}", "--pidfile", str(root / "docker.pid"), *DAEMON,
        ]  # fmt: skip
        self.process = ManagedProcess(argv, cwd=root, output=self.log, env={"PATH": PATH})
        self.imported = False
        self.plugin: DockerPlugin | None = None

    def start(self, plugin: DockerPlugin) -> None:
        """Start with `plugin` as `vlcp`; return once dockerd answers."""
        self.plugin = plugin
        (self.etc / "plugins" / "vlcp.spec").write_text(f"unix://{plugin.socket}\n")
        self.process.start()
        wait_until(
            lambda: not self.process.running or self("version", check=False).returncode == 0,
            timeout=TIMEOUT,
            message="dockerd",
        )
        if not self.process.running:
            raise AssertionError(f"dockerd exited: {self.process.read_output()[-3000:]}")

    def __call__(
        self, *args: str, check: bool = True, stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {"PATH": PATH, "DOCKER_HOST": f"unix://{self.socket}", "HOME": str(self.root)}
        done = subprocess.run(
            ["docker", *args], input=stdin, capture_output=True, timeout=TIMEOUT, env=env
        )
        result = subprocess.CompletedProcess(
            done.args, done.returncode, done.stdout.decode(errors="replace"),
            done.stderr.decode(errors="replace"),
        )  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)} exited {done.returncode}: {result.stderr}"
            )
        return result

    def start_container(self, name: str, network: str, *options: str) -> str:
        """A busybox container `name` on `network` (`options`: more of `docker run`'s), in
        the background: its id."""
        if not self.imported:
            self("import", "-", IMAGE, stdin=busybox_rootfs())
            self.imported = True
        argv = ["run", "-d", "--name", name, "--network", network, *options, IMAGE, "sleep", "600"]
        return self(*argv).stdout.strip()

    def exec(self, name: str, *command: str, check: bool = True) -> str:
        return self("exec", name, *command, check=check).stdout

    def close(self) -> None:
        """Containers, networks (through the plugin), the daemon by PID, then the roots."""
        try:
            if self.process.running:
                ids = self("ps", "-aq", check=False).stdout.split()
                if ids:
                    self("rm", "-f", *ids, check=False)
                self("network", "prune", "-f", check=False)
        finally:
            self.process.stop()
            remove_root(self.root)
