"""A private Open vSwitch "hypervisor": its own ovsdb-server and ovs-vswitchd in a namespace.

Userspace ``netdev`` datapath, ``--disable-system``; sockets, pidfiles and logs all live in a
private directory (``OVS_RUNDIR``). Nothing touches the system OVS, and two hypervisors never
share a namespace (two netdev vswitchds in one namespace fight over the ``ovs-netdev`` tap).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Self

from vlcp.lab.naming import private_dir, unique_name
from vlcp.lab.netns import (
    ProcessRef,
    add_address,
    create_netns,
    delete_netns,
    link_exists,
    register_dir,
    release_dir,
    run,
    stop_process,
    wait_until,
)
from vlcp.lab.ovs.capture import PcapCapture
from vlcp.lab.ovs.daemon import (
    VSWITCH_SCHEMA,
    RundirOwner,
    ovs_env,
    register_daemon,
    start_daemon,
)
from vlcp.lab.ovs.namespace import NamespaceObject, close_quietly

SCHEMA = VSWITCH_SCHEMA
OF_PROTOCOLS = "OpenFlow13,OpenFlow14,OpenFlow15"
VSCTL_TIMEOUT = 10
"""Seconds ovs-vsctl may wait for the DB and for vswitchd to apply a change."""


class Hypervisor(NamespaceObject, RundirOwner):
    """One private OVS instance in its own network namespace.

    ``name`` is only a label (it ends up in ``external_ids:hostname``); the namespace and the
    directory get run-unique names so parallel runs never collide.
    """

    def __init__(self, name: str = "hv") -> None:
        super().__init__()
        self.name = name
        self.netns = unique_name("hv")
        self._dir: Path | None = None
        self._daemons: dict[str, ProcessRef] = {}
        self._bridge_addresses: dict[str, list[str]] = {}
        self.vtep_cidr: str | None = None

    def __repr__(self) -> str:
        return f"Hypervisor({self.name!r}, netns={self.netns!r}, dir={self._dir})"

    # ------------------------------------------------------------ paths

    @property
    def running(self) -> bool:
        """Whether our ovsdb-server is (supposed to be) up, i.e. vsctl can work."""
        return "ovsdb-server" in self._daemons

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
        # Only the interface that holds an address answers ARP for it. Otherwise the kernel
        # also answers on the veths the bridges use (trunks, underlay links), and OVS's
        # tunnel ARP learns a MAC that leads nowhere: VXLAN breaks as soon as a trunk exists.
        for scope in ("all", "default"):
            run("sysctl", "-qw", f"net.ipv4.conf.{scope}.arp_ignore=1", netns=self.netns)
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
        self._stop_captures(errors)
        for daemon in ("ovs-vswitchd", "ovsdb-server"):
            if daemon in self._daemons:
                close_quietly(lambda d=daemon: self._stop_daemon(d), daemon, errors)
        close_quietly(lambda: delete_netns(self.netns), f"netns {self.netns}", errors)
        if self._dir is not None:
            release_dir(self._dir, remove=remove_dir)
        if errors:
            raise RuntimeError(f"{self!r} stop: " + "; ".join(errors))

    def restart_vswitchd(self) -> None:
        """Stop and start ovs-vswitchd (the DB stays), as an upgrade would.

        OpenFlow flows are lost (they live in vswitchd), bridge configuration is not.
        """
        self._stop_daemon("ovs-vswitchd")
        self.start_vswitchd()

    def kill_vswitchd(self) -> None:
        """SIGKILL ovs-vswitchd by its PID, as a crash would: its flows and datapath go,
        the DB and ovsdb-server stay. :meth:`start_vswitchd` brings it back."""
        self._stop_daemon("ovs-vswitchd", crash=True)

    def kill(self) -> None:
        """SIGKILL both OVS daemons by PID, as a server that lost power looks to its peers.

        The namespace and its interfaces stay until :meth:`stop`.
        """
        for daemon in ("ovs-vswitchd", "ovsdb-server"):
            self._stop_daemon(daemon, crash=True)

    def start_vswitchd(self) -> None:
        """Start ovs-vswitchd on the existing DB, after a stop or a kill.

        Addresses put on bridge taps (the VTEP IP) are put back, because the taps are
        recreated and the tunnel code needs that kernel route.
        """
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
        self._stop_daemon("ovsdb-server")
        if while_stopped is not None:
            while_stopped()
        self._start_ovsdb_server()

    def _ovs_env(self) -> dict[str, str]:
        """Point every OVS default path at the private dir, never at /var/run/openvswitch."""
        return ovs_env(self.dir)

    def _start_daemon(self, binary: str, *args: str) -> None:
        """Start a ``--detach`` OVS daemon in our namespace, registered by its pidfile first."""
        self._daemons[binary] = register_daemon(self.dir, binary)
        start_daemon(self.dir, binary, *args, netns=self.netns, env=self._ovs_env())

    def _stop_daemon(self, binary: str, *, crash: bool = False) -> None:
        """Stop one of our daemons by its PID (and forget it) if it was started."""
        ref = self._daemons.pop(binary, None)
        if ref is not None:
            stop_process(ref, crash=crash)

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

    # ------------------------------------------------------------ bridges and flows

    def plug_internal(self, bridge: str, name: str, iface_id: str) -> None:
        """An internal port carrying logical port `iface_id`: an endpoint without a host,
        enough for binding and port status (benchmarks, property tests)."""
        self.plug_internal_many(bridge, [(name, iface_id)])

    def plug_internal_many(
        self, bridge: str, ports: Iterable[tuple[str, str]], timeout: int = VSCTL_TIMEOUT
    ) -> None:
        """`plug_internal` for many (port name, iface-id) pairs in ONE ovs-vsctl call (one
        OVSDB transaction); `timeout` covers vswitchd adding them all."""
        args: list[str] = []
        for name, iface_id in ports:
            args += ["--", "add-port", bridge, name]
            args += ["--", "set", "interface", name, "type=internal"]
            args.append(f"external_ids:iface-id={iface_id}")
        if args:
            self.vsctl(*args[1:], timeout=timeout)

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

    def capture(self, iface: str, bpf: str = "") -> PcapCapture:
        """tcpdump on an interface of the hypervisor namespace (e.g. the underlay port)."""
        return self._start_capture(self.dir, iface, bpf)

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
