"""Private Open vSwitch "hypervisors", namespace "VMs" and underlay links for e2e tests.

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

All traffic stays inside namespaces this module creates.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from tests.lab.naming import private_dir, unique_name
from tests.lab.netns import (
    DEFAULT_TIMEOUT,
    CommandError,
    ProcessRef,
    add_address,
    create_netns,
    create_veth,
    delete_netns,
    link_exists,
    netns_prefix,
    register_dir,
    register_process,
    release_dir,
    run,
    stop_process,
    wait_until,
)

if TYPE_CHECKING:
    from scapy.packet import Packet

log = logging.getLogger(__name__)

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
OF_PROTOCOLS = "OpenFlow13,OpenFlow14,OpenFlow15"
UNDERLAY_BRIDGE = "br-phy"
VSCTL_TIMEOUT = 10
"""Seconds ovs-vsctl may wait for the DB and for vswitchd to apply a change."""

REQUIRED_TOOLS = (
    "ovsdb-tool",
    "ovsdb-server",
    "ovs-vswitchd",
    "ovs-vsctl",
    "ovs-ofctl",
    "ovs-appctl",
    "ip",
    "ethtool",
    "ping",
    "tcpdump",
)


def missing_tools() -> list[str]:
    """Binaries the lab needs that are not on PATH (lets fixtures skip with a clear reason)."""
    return [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]


def _close_quietly(closer: Callable[[], object], what: str, errors: list[str]) -> None:
    """Run one cleanup step; record its failure so the remaining steps still run."""
    try:
        closer()
    except Exception as exc:
        log.warning("cleanup of %s failed: %s", what, exc)
        errors.append(f"{what}: {exc}")


# ================================================================ Hypervisor


class Hypervisor:
    """One private OVS instance in its own network namespace.

    ``name`` is only a label (it ends up in ``external_ids:hostname``); the namespace and the
    directory get run-unique names so parallel runs never collide.
    """

    def __init__(self, name: str = "hv") -> None:
        self.name = name
        self.netns = unique_name("hv")
        self._dir: Path | None = None
        self._daemons: dict[str, ProcessRef] = {}
        self._bridge_addresses: dict[str, list[str]] = {}
        self._captures: list[Capture] = []
        self.vtep_cidr: str | None = None

    def __repr__(self) -> str:
        return f"Hypervisor({self.name!r}, netns={self.netns!r}, dir={self._dir})"

    # ------------------------------------------------------------ paths

    @property
    def dir(self) -> Path:
        """The private OVS_RUNDIR: db, sockets, pidfiles, logs, controller symlinks."""
        if self._dir is None:
            raise RuntimeError(f"{self!r} has not been started")
        return self._dir

    @property
    def started(self) -> bool:
        """Whether start() got as far as creating the private directory."""
        return self._dir is not None

    @property
    def running(self) -> bool:
        """Whether our ovsdb-server is (supposed to be) up, i.e. vsctl can work."""
        return "ovsdb-server" in self._daemons

    @property
    def db_sock(self) -> Path:
        """The ovsdb-server unix socket (reachable from any namespace: it is a file)."""
        return self.dir / "db.sock"

    @property
    def db_target(self) -> str:
        """The OVSDB connection string for db_sock, as a controller would be given it."""
        return f"unix:{self.db_sock}"

    @property
    def vtep_ip(self) -> str | None:
        """The underlay (tunnel endpoint) address without prefix, once an underlay exists."""
        return self.vtep_cidr.split("/")[0] if self.vtep_cidr else None

    def mgmt_target(self, bridge: str) -> str:
        """The OpenFlow management socket vswitchd opens per bridge in its rundir."""
        return f"unix:{self.dir / bridge}.mgmt"

    # ------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Create the namespace and directory, then start ovsdb-server and ovs-vswitchd."""
        create_netns(self.netns)
        self._dir = register_dir(private_dir("hv"))
        run("ovsdb-tool", "create", str(self.dir / "conf.db"), str(SCHEMA))
        self._start_ovsdb_server()
        self.vsctl("--no-wait", "init")
        self._start_vswitchd()
        return self

    def stop(self, *, remove_dir: bool = True) -> None:
        """Stop both daemons by their PIDs, delete the namespace, optionally the directory.

        The namespace goes after the daemons so that no process keeps it alive anonymously;
        its veth ends and datapath taps vanish with it. Each step runs even if one fails.
        """
        errors: list[str] = []
        for capture in self._captures:
            _close_quietly(capture.stop, f"capture {capture.path}", errors)
        self._captures.clear()
        for daemon in ("ovs-vswitchd", "ovsdb-server"):
            ref = self._daemons.pop(daemon, None)
            if ref is not None:
                _close_quietly(lambda ref=ref: stop_process(ref), daemon, errors)
        _close_quietly(lambda: delete_netns(self.netns), f"netns {self.netns}", errors)
        if self._dir is not None:
            release_dir(self._dir, remove=remove_dir)
        if errors:
            raise RuntimeError(f"{self!r} stop: " + "; ".join(errors))

    def restart_vswitchd(self) -> None:
        """Stop and start ovs-vswitchd (the DB stays), as an upgrade or crash would.

        OpenFlow flows are lost (they live in vswitchd), bridge configuration is not.
        Addresses put on bridge taps (the VTEP IP) are put back, because the taps are
        recreated and the tunnel code needs that kernel route.
        """
        ref = self._daemons.pop("ovs-vswitchd", None)
        if ref is not None:
            stop_process(ref)
        self._start_vswitchd()
        for bridge, cidrs in self._bridge_addresses.items():
            wait_until(lambda b=bridge: link_exists(self.netns, b), message=f"tap {bridge}")
            for cidr in cidrs:
                add_address(self.netns, bridge, cidr)

    def restart_ovsdb(self, while_stopped: Callable[[], object] | None = None) -> None:
        """Stop ovsdb-server by PID and start it again on the same socket and database file.

        Clients (vswitchd, controllers) see their connection drop and must reconnect.
        ``while_stopped`` runs in between, e.g. ``ovsdb-tool transact`` on ``conf.db`` to
        change the database while no client can watch.
        """
        ref = self._daemons.pop("ovsdb-server", None)
        if ref is not None:
            stop_process(ref)
        if while_stopped is not None:
            while_stopped()
        self._start_ovsdb_server()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _ovs_env(self) -> dict[str, str]:
        """Point every OVS default path at the private dir, never at /var/run/openvswitch."""
        return {
            "OVS_RUNDIR": str(self.dir),
            "OVS_LOGDIR": str(self.dir),
            "OVS_DBDIR": str(self.dir),
        }

    def _start_daemon(self, binary: str, *args: str) -> None:
        """Start a ``--detach`` OVS daemon in our namespace, registered by its pidfile.

        Registration comes first so that even an interrupt during the start cannot leak
        the daemon. Output goes to a file, not a pipe: a detached child inheriting a pipe
        would keep ``communicate()`` waiting until the timeout.
        """
        ref = ProcessRef(marker=str(self.dir), pidfile=self.dir / f"{binary}.pid")
        self._daemons[binary] = register_process(ref)
        common = (
            f"--pidfile={self.dir / binary}.pid",
            f"--unixctl={self.dir / binary}.ctl",
            f"--log-file={self.dir / binary}.log",
            "--detach",
            "--no-chdir",
            "-vconsole:off",
        )
        argv = [*netns_prefix(self.netns), binary, *args, *common]
        out = self.dir / f"{binary}.out"
        with out.open("w") as fh:
            proc = subprocess.run(
                argv,
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=DEFAULT_TIMEOUT,
                env={**os.environ, **self._ovs_env()},
                check=False,
            )
        if proc.returncode != 0:
            raise CommandError(argv, proc.returncode, "", out.read_text() + self._log_tail(binary))
        if ref.current_pid() is None:
            raise RuntimeError(f"{binary} started but wrote no pidfile" + self._log_tail(binary))

    def _start_ovsdb_server(self) -> None:
        """ovsdb-server on a unix socket only; manager_options lets tests add remotes."""
        self._start_daemon(
            "ovsdb-server",
            str(self.dir / "conf.db"),
            f"--remote=punix:{self.db_sock}",
            "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
        )

    def _start_vswitchd(self) -> None:
        """ovs-vswitchd, then a DB write that waits until it has applied the config."""
        self._start_daemon("ovs-vswitchd", self.db_target, "--disable-system")
        # Without --no-wait, ovs-vsctl returns only once vswitchd has caught up (cur_cfg).
        self.vsctl("set", "Open_vSwitch", ".", f"external_ids:hostname={self.name}")

    def _log_tail(self, binary: str, lines: int = 20) -> str:
        """The end of a daemon log, for error messages."""
        path = self.dir / f"{binary}.log"
        if not path.exists():
            return ""
        return "\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # ------------------------------------------------------------ OVS commands

    def vsctl(self, *args: str, timeout: int = VSCTL_TIMEOUT) -> str:
        """ovs-vsctl against our DB (never the default one); returns stripped stdout."""
        proc = run(
            "ovs-vsctl",
            f"--db={self.db_target}",
            f"--timeout={timeout}",
            *args,
            timeout=timeout + 5,
            env=self._ovs_env(),
        )
        return proc.stdout.strip()

    def ofctl(self, cmd: str, bridge: str, *args: str, input: str | None = None) -> str:
        """ovs-ofctl -O OpenFlow13 on a bridge's management socket; returns stdout."""
        return run(
            "ovs-ofctl",
            "-O",
            "OpenFlow13",
            cmd,
            self.mgmt_target(bridge),
            *args,
            input=input,
            env=self._ovs_env(),
        ).stdout

    def appctl(self, *args: str, target: str = "ovs-vswitchd") -> str:
        """ovs-appctl against one of our daemons' control sockets; returns stdout."""
        return run(
            "ovs-appctl", "-t", f"{self.dir / target}.ctl", *args, env=self._ovs_env()
        ).stdout

    def exec(
        self,
        *cmd: str,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the hypervisor namespace."""
        return run(*cmd, netns=self.netns, check=check, timeout=timeout, input=input)

    # ------------------------------------------------------------ bridges and flows

    def add_bridge(
        self,
        name: str,
        fail_mode: str | None = None,
        controller: str | None = None,
    ) -> str:
        """A netdev bridge speaking OpenFlow 1.3-1.5, optionally secure and/or controlled.

        ``max_backoff=1000`` makes vswitchd retry a missing controller every second instead
        of up to every 8 s, which keeps controller tests fast.
        """
        args = ["add-br", name, "--", "set", "bridge", name, "datapath_type=netdev"]
        args.append(f"protocols={OF_PROTOCOLS}")
        if fail_mode:
            args.append(f"fail_mode={fail_mode}")
        if controller:
            args += ["--", "set-controller", name, controller]
            args += ["--", "set", "controller", name, "max_backoff=1000"]
        self.vsctl(*args)
        return name

    def add_tunnel_port(
        self,
        bridge: str,
        name: str,
        kind: str = "vxlan",
        *,
        ofport: int | None = None,
        **options: str,
    ) -> str:
        """A tunnel port; ``options`` become ``options:KEY=VALUE`` (e.g. remote_ip="flow")."""
        args = ["add-port", bridge, name, "--", "set", "interface", name, f"type={kind}"]
        if ofport is not None:
            args.append(f"ofport_request={ofport}")
        args += [f"options:{key}={value}" for key, value in options.items()]
        self.vsctl(*args)
        return name

    def ofport(self, interface: str) -> int:
        """The OpenFlow port number OVS assigned to an interface."""
        return int(self.vsctl("get", "interface", interface, "ofport"))

    def add_flows(self, bridge: str, flows: Iterable[str]) -> None:
        """Install flows in one ovs-ofctl call (what a controller's FLOW_MODs would do)."""
        self.ofctl("add-flows", bridge, "-", input="\n".join(flows) + "\n")

    def del_flows(self, bridge: str, *match: str) -> None:
        """Delete flows (all of them without a match)."""
        self.ofctl("del-flows", bridge, *match)

    def dump_flows(
        self, bridge: str, *, table: int | None = None, stats: bool = False
    ) -> list[str]:
        """The bridge's flows as strings, one per flow, header lines dropped."""
        args = [] if stats else ["--no-stats"]
        if table is not None:
            args.append(f"table={table}")
        out = self.ofctl("dump-flows", bridge, *args)
        return [line.strip() for line in out.splitlines() if line.startswith(" ")]

    def set_bridge_address(self, bridge: str, cidr: str) -> None:
        """Put an address on a bridge's tap in our namespace; remembered across restarts."""
        add_address(self.netns, bridge, cidr)
        self._bridge_addresses.setdefault(bridge, []).append(cidr)

    def capture(self, iface: str, bpf: str = "") -> Capture:
        """tcpdump on an interface of the hypervisor namespace (e.g. the underlay port)."""
        path = self.dir / f"{iface}-{len(self._captures)}.pcap"
        capture = Capture(self.netns, path, iface=iface, bpf=bpf)
        self._captures.append(capture)
        return capture.start()

    def controller_target(self, socket_path: str | Path, link_name: str | None = None) -> str:
        """Expose a controller's unix socket to vswitchd and return the target to set.

        OVS refuses ``unix:`` controller targets outside its rundir ("possibility for remote
        exploit"), so a symlink inside the private dir points at the real socket; one
        listener can then serve every hypervisor.
        """
        socket_path = Path(socket_path)
        link = self.dir / (link_name or f"ctl-{socket_path.name}")
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(socket_path)
        return f"unix:{link}"


# ================================================================ Underlay


@dataclass(frozen=True)
class UnderlayLink:
    """A veth between two hypervisors' br-phy bridges (same port name on both sides)."""

    a: Hypervisor
    b: Hypervisor
    port: str


_vtep_hosts = itertools.count(1)


def _ensure_vtep(hv: Hypervisor, cidr: str | None, bridge: str) -> None:
    """Give a hypervisor its underlay bridge and VTEP address once."""
    hv.vsctl("--may-exist", "add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev")
    if hv.vtep_cidr is None:
        hv.vtep_cidr = cidr or f"192.0.2.{next(_vtep_hosts)}/24"
        hv.set_bridge_address(bridge, hv.vtep_cidr)
    elif cidr and cidr != hv.vtep_cidr:
        raise ValueError(f"{hv!r} already has VTEP {hv.vtep_cidr}, not {cidr}")


def connect_underlay(
    a: Hypervisor,
    b: Hypervisor,
    *,
    ip_a: str | None = None,
    ip_b: str | None = None,
    bridge: str = UNDERLAY_BRIDGE,
    mtu: int = 1600,
) -> UnderlayLink:
    """Join two hypervisors by a "physical" veth on their ``br-phy`` (NORMAL forwarding).

    The VTEP address goes on br-phy's tap inside the hypervisor namespace: OVS's native
    tunnels route and ARP through that kernel interface (without it ``ovs/route/add``
    fails). MTU 1600 leaves room for VXLAN/Geneve headers on 1500-byte inner frames.
    Addresses default to 192.0.2.N/24. Do not build loops: br-phy runs no STP.
    """
    port = unique_name("link")
    create_veth(port, a.netns, port, b.netns, mtu=mtu)
    for hv, cidr in ((a, ip_a), (b, ip_b)):
        _ensure_vtep(hv, cidr, bridge)
        hv.vsctl("add-port", bridge, port)
    return UnderlayLink(a, b, port)


# ================================================================ Host


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


_SEND_SCRIPT = """
import socket, sys
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((sys.argv[1], 0))
for line in sys.stdin:
    if line.strip():
        sock.send(bytes.fromhex(line))
"""
"""Sends hex-encoded frames from stdin on a raw socket (runs inside the host namespace)."""


class Host:
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
        self.hypervisor = hypervisor
        self.bridge = bridge
        self.cidr = ip if "/" in ip else f"{ip}/24"
        self.name = name
        self.netns = unique_name("vm")
        self.port_name = port_name or self.netns
        self._mac = mac
        self._ofport = ofport
        self._iface_id = iface_id
        self._captures: list[Capture] = []
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
        for capture in self._captures:
            _close_quietly(capture.stop, f"capture {capture.path}", errors)
        self._captures.clear()
        if self.hypervisor.running:
            _close_quietly(
                lambda: self.hypervisor.vsctl("--if-exists", "del-port", self.port_name),
                f"port {self.port_name}",
                errors,
            )
        _close_quietly(lambda: delete_netns(self.netns), f"netns {self.netns}", errors)
        if self._cap_dir is not None:
            release_dir(self._cap_dir, remove=remove_dir)
        if errors:
            raise RuntimeError(f"{self!r} stop: " + "; ".join(errors))

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------ traffic

    def exec(
        self,
        *cmd: str,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the host namespace."""
        return run(*cmd, netns=self.netns, check=check, timeout=timeout, input=input)

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
        without a fixed sleep: ``ping -c 1 -w D`` keeps sending until one reply or D seconds.
        """
        proc = self.exec(
            "ping",
            "-n",
            "-c",
            "1",
            "-i",
            str(interval),
            "-w",
            str(int(deadline + 0.999)),
            ip,
            check=False,
            timeout=deadline + 10,
        )
        return proc.returncode == 0

    def add_neighbor(self, ip: str, mac: str) -> None:
        """A permanent ARP entry, so IP packets leave even where ARP cannot get through."""
        self.exec("ip", "neigh", "replace", ip, "lladdr", mac, "dev", "eth0", "nud", "permanent")

    def send(self, *packets: Packet | bytes, iface: str = "eth0") -> None:
        """Send crafted frames (scapy packets or raw bytes) out of ``iface``, unchanged.

        A short-lived python in our namespace writes them to an AF_PACKET socket: nothing
        switches namespaces inside the test process, and the frames are built by scapy
        here, so what the test crafted is exactly what goes on the wire.
        """
        frames = "\n".join(bytes(packet).hex() for packet in packets) + "\n"
        self.exec(sys.executable, "-I", "-c", _SEND_SCRIPT, iface, input=frames)

    def capture(self, bpf: str = "", *, iface: str = "eth0") -> Capture:
        """Start tcpdump on ``iface`` (optional BPF filter); returns once it is listening."""
        if self._cap_dir is None:
            self._cap_dir = register_dir(private_dir("cap"))
        capture = Capture(
            self.netns, self._cap_dir / f"{iface}-{len(self._captures)}.pcap", iface=iface, bpf=bpf
        )
        self._captures.append(capture)
        return capture.start()


# ================================================================ Capture


class Capture:
    """A tcpdump writing a pcap inside a namespace, decoded with scapy when read.

    ``--immediate-mode`` and ``-U`` make each packet reach the file at once, so a test can
    poll for the packet it expects instead of sleeping. ``-Z root`` stops Debian's tcpdump
    from dropping to the ``tcpdump`` user, which could not write into our 0700 directory.
    """

    def __init__(self, netns: str, path: Path, *, iface: str = "eth0", bpf: str = "") -> None:
        self.netns = netns
        self.path = path
        self.iface = iface
        self.bpf = bpf
        self._proc: subprocess.Popen[bytes] | None = None
        self._ref: ProcessRef | None = None
        self._stderr = path.with_suffix(".stderr")

    def start(self, timeout: float = 5.0) -> Self:
        """Launch tcpdump and wait until it reports "listening on" (it is then capturing)."""
        argv = [
            *netns_prefix(self.netns),
            "tcpdump",
            "-i",
            self.iface,
            "-n",
            "-U",
            "--immediate-mode",
            "-Z",
            "root",
            "-w",
            str(self.path),
        ]
        if self.bpf:
            argv.append(self.bpf)
        with self._stderr.open("wb") as err:
            self._proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        self._ref = register_process(ProcessRef(marker=str(self.path), pid=self._proc.pid))
        wait_until(self._listening, timeout=timeout, message=f"tcpdump on {self.iface}")
        return self

    def _listening(self) -> bool:
        """Whether tcpdump said it is listening; raises if it died instead."""
        assert self._proc is not None
        text = self._stderr.read_text(errors="replace")
        if "listening on" in text:
            return True
        if self._proc.poll() is not None:
            raise CommandError(self._proc.args, self._proc.returncode, "", text)  # type: ignore[arg-type]
        return False

    def packets(self) -> list[Packet]:
        """The packets captured so far (the last one may be missing while tcpdump writes)."""
        from scapy.error import Scapy_Exception
        from scapy.utils import rdpcap

        if not self.path.exists() or self.path.stat().st_size == 0:
            return []
        try:
            return list(rdpcap(str(self.path)))
        except (Scapy_Exception, EOFError):  # header not flushed yet
            return []

    def wait_for(
        self,
        predicate: Callable[[Packet], bool],
        *,
        count: int = 1,
        timeout: float = 5.0,
    ) -> list[Packet]:
        """Poll the capture until ``count`` packets match ``predicate``; returns them."""

        def matches() -> list[Packet]:
            found = [p for p in self.packets() if predicate(p)]
            return found if len(found) >= count else []

        return wait_until(
            matches,
            timeout=timeout,
            interval=0.05,
            message=f"{count} matching packet(s) on {self.netns}/{self.iface}",
        )

    def stop(self) -> list[Packet]:
        """Stop tcpdump (SIGTERM flushes and closes the file) and return every packet."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        if self._ref is not None:
            stop_process(self._ref)  # only forgets it by now: it has exited
        return self.packets()

    def __enter__(self) -> Self:
        return self if self._proc else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# ================================================================ OvsLab


class OvsLab:
    """Owns the hypervisors and hosts of one test and removes them in reverse order.

    Objects are recorded before they start, so a half-started one is cleaned up too.
    The pytest fixtures are thin wrappers around this; tests may also use it directly.
    """

    def __init__(self) -> None:
        self._objects: list[Hypervisor | Host] = []

    def hypervisor(self, name: str = "hv") -> Hypervisor:
        """A started Hypervisor."""
        hv = Hypervisor(name)
        self._objects.append(hv)
        return hv.start()

    def host(
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
    ) -> Host:
        """A started Host on ``hypervisor``'s ``bridge`` (arguments as for :class:`Host`)."""
        host = Host(
            hypervisor,
            bridge,
            ip,
            mac=mac,
            port_name=port_name,
            ofport=ofport,
            iface_id=iface_id,
            name=name,
        )
        self._objects.append(host)
        return host.start()

    @property
    def objects(self) -> Sequence[Hypervisor | Host]:
        """Everything created so far, oldest first."""
        return tuple(self._objects)

    def close(self, *, keep_dirs: bool = False) -> None:
        """Stop everything (newest first); raise once at the end if anything failed."""
        errors: list[str] = []
        while self._objects:
            obj = self._objects.pop()
            _close_quietly(lambda o=obj: o.stop(remove_dir=not keep_dirs), repr(obj), errors)
        if errors:
            raise RuntimeError("lab teardown: " + "; ".join(errors))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.close()
        except RuntimeError:
            if exc_type is None:
                raise
            log.exception("lab teardown failed while handling %s", exc_type.__name__)
