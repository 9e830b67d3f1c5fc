"""Real DHCP clients (ISC dhclient, busybox udhcpc) run inside a lab host's network namespace.

Each client gets a private directory (run-prefixed, removed on stop) holding its lease file,
pid file, configuration, log, the events its script recorded and the resolv.conf the
script wrote. Safety: both clients run with our own script (``-sf`` / ``-s``), never the
distribution's, which would write the machine's /etc/resolv.conf (``ip netns exec`` runs
in the machine's mount namespace: /etc is shared). Our scripts write only below the
private directory, and change addresses, routes and the MTU with ``ip`` inside the
namespace. The client process is started and stopped by its PID (registered with the lab,
so an interrupted test cannot leak it).

Waiting is on the recorded events (a bounded poll of the events directory); the event's
time comes from the script itself, so a lease's timing does not depend on the poll.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from tests.lab.dhcp.lease import (
    Applied,
    Event,
    Lease,
    Route,
    addresses,
    optional_int,
    read_events,
)
from vlcp.lab.naming import private_dir
from vlcp.lab.netns import (
    ProcessRef,
    netns_prefix,
    register_dir,
    register_process,
    release_dir,
    run,
    stop_process,
    wait_until,
)
from vlcp.lab.processes import read_tail, wait_or_kill

SCRIPTS = Path(__file__).parent
POLL = 0.02
"""Seconds between looks at the events directory."""


def dhcp_clients_missing() -> list[str]:
    """The client programs not installed (isc-dhcp-client's dhclient, busybox)."""
    return [tool for tool in ("dhclient", "busybox") if shutil.which(tool) is None]


class NoLease(AssertionError):
    """No lease within the time given; the message carries the events seen and the log."""


@dataclass(frozen=True)
class DhcpResult:
    """A lease as the client saw it, and what its script applied in the namespace."""

    lease: Lease
    applied: Applied


class DhcpClient(ABC):
    """One DHCP client process on ``iface`` of namespace ``netns``.

    ``extra_options``: option codes to request besides the standard set (mask, router,
    DNS, domain, host name, MTU 26, NTP, classless routes 121 and 249); their values
    arrive in :attr:`Lease.extra` as bytes.
    """

    program: ClassVar[str]
    bound_reasons: ClassVar[frozenset[str]]
    """Script reasons that mean "a lease is applied"."""
    released_reason: ClassVar[str]
    shortest_lease: ClassVar[int]
    """The shortest lease time (s) the client takes as given: renewal tests use it."""

    def __init__(
        self, netns: str, *, iface: str = "eth0", extra_options: Sequence[int] = ()
    ) -> None:
        self.netns = netns
        self.iface = iface
        self.extra_options = tuple(extra_options)
        self.dir = register_dir(private_dir(self.program))
        (self.dir / "events").mkdir()
        self.log = self.dir / "client.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._ref: ProcessRef | None = None
        self._prepared = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.netns!r}, {self.iface!r}, dir={self.dir})"

    # ------------------------------------------------------------ what a client does

    @abstractmethod
    def argv(self) -> list[str]:
        """The client's command line (run inside the namespace)."""

    @abstractmethod
    def parse(self, event: Event) -> Lease:
        """The lease an event of this client's script carries."""

    def prepare(self) -> Self:
        """Remove the interface's IPv4 addresses (a lab host is made with one): from then
        on only the client's script puts addresses there. The first :meth:`start` does it
        if not done; call it first to start many clients as close together as possible."""
        run("ip", "-4", "addr", "flush", "dev", self.iface, netns=self.netns)
        self._prepared = True
        return self

    def start(self) -> Self:
        """Spawn the client (it starts asking at once); returns without waiting."""
        if self._proc is not None:
            raise RuntimeError(f"{self!r} already runs")
        if not self._prepared:
            self.prepare()
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [*netns_prefix(self.netns), *self.argv()],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={"LAB_DHCP_DIR": str(self.dir), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            )
        # our private directory is in the command line: the guard against a reused PID
        self._ref = register_process(ProcessRef(str(self.dir), pid=self._proc.pid))
        return self

    def stop(self) -> None:
        """Stop the client process (SIGTERM, then SIGKILL) if it runs; keeps its lease."""
        proc, ref, self._proc, self._ref = self._proc, self._ref, None, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            wait_or_kill(proc, 5, 5)
        if ref is not None:
            stop_process(ref)  # forgets it: it has exited by now

    def close(self, *, keep_dir: bool = False) -> None:
        """Stop the process and remove the private directory (keep it to read the logs)."""
        self.stop()
        release_dir(self.dir, remove=not keep_dir)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Keeps the private directory when the block failed, and says where."""
        self.close(keep_dir=exc_type is not None)
        if exc_type is not None:
            print(f"DHCP client files kept in: {self.dir}", file=sys.stderr)

    def send_signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to our own client process (through its Popen: never a reused PID)."""
        if self._proc is None or self._proc.poll() is not None:
            raise RuntimeError(f"{self!r} is not running:\n{self.log_tail()}")
        self._proc.send_signal(sig)

    # ------------------------------------------------------------ leases

    def events(self) -> list[Event]:
        return read_events(self.dir / "events")

    def lease(self, after: int = -1) -> Lease | None:
        """The newest lease applied in an event numbered above ``after`` (None: none yet)."""
        bound = [e for e in self.events() if e.seq > after and e.reason in self.bound_reasons]
        return self.parse(bound[-1]) if bound else None

    def applied(self) -> Applied:
        return Applied.read(self.netns, self.iface, self.dir / "resolv.conf")

    def wait_lease(self, timeout: float, *, after: int = -1) -> Lease:
        """A lease applied after event ``after`` (the newest when seen); :class:`NoLease`
        at the timeout, with the client's events and log."""
        try:
            return wait_until(
                lambda: self._alive() and self.lease(after),
                timeout=timeout,
                interval=POLL,
                message="lease",
            )
        except TimeoutError:
            raise NoLease(f"no lease within {timeout:g} s\n{self.report()}") from None

    def next_lease(self, timeout: float) -> Lease:
        """The next lease applied from now on, without asking: the client's own renewal
        at T1 (or rebinding at T2), for tests with a short lease time."""
        return self.wait_lease(timeout, after=self._last_seq())

    def acquire(self, timeout: float = 10.0) -> DhcpResult:
        """Start the client and return its first lease and what it applied."""
        self.start()
        lease = self.wait_lease(timeout)
        return DhcpResult(lease, self.applied())

    def expect_no_lease(self, within: float) -> None:
        """Start the client (if needed) and fail if any lease comes within ``within`` s."""
        if self._proc is None:
            self.start()
        try:
            lease = self.wait_lease(within)
        except NoLease:
            return
        raise AssertionError(f"{self!r} got a lease it must not get: {lease}")

    @abstractmethod
    def renew(self, timeout: float = 10.0) -> DhcpResult:
        """Ask the server again for the current lease; the answer and what was applied."""

    @abstractmethod
    def release(self, timeout: float = 10.0) -> None:
        """Give the lease back (DHCPRELEASE); returns once the script removed the address.
        The client is stopped afterwards."""

    def _last_seq(self) -> int:
        events = self.events()
        return events[-1].seq if events else -1

    def _wait_event(self, reason: str, after: int, timeout: float) -> Event:
        def found() -> Event | None:
            return next((e for e in self.events() if e.seq > after and e.reason == reason), None)

        try:
            return wait_until(found, timeout=timeout, interval=POLL, message=reason)
        except TimeoutError:
            raise AssertionError(f"no {reason} within {timeout:g} s\n{self.report()}") from None

    def _alive(self) -> bool:
        """True while the client runs; raises with its log once it has exited."""
        if self._proc is None or self._proc.poll() is not None:
            raise RuntimeError(f"{self!r} is not running\n{self.report()}")
        return True

    def log_tail(self, lines: int = 30) -> str:
        return read_tail(self.log, lines) if self.log.exists() else "(no log)"

    def report(self) -> str:
        """The events and the log: what a failed wait needs to say."""
        seen = ", ".join(e.reason for e in self.events()) or "none"
        return f"{self!r}: script events: {seen}\nclient log:\n{self.log_tail()}"


class Dhclient(DhcpClient):
    """ISC dhclient in the foreground (``-d``), with private conf, lease and pid files.

    dhclient has no signal for "renew now": :meth:`renew` stops it without releasing and
    starts it again on the same lease file, so it asks for the same address at once
    (INIT-REBOOT: a broadcast REQUEST, the script's reason REBOOT).
    """

    program = "dhclient"
    bound_reasons = frozenset({"BOUND", "RENEW", "REBIND", "REBOOT"})
    released_reason = "RELEASE"
    shortest_lease = 4

    def __init__(
        self, netns: str, *, iface: str = "eth0", extra_options: Sequence[int] = ()
    ) -> None:
        super().__init__(netns, iface=iface, extra_options=extra_options)
        (self.dir / "dhclient.conf").write_text(self.config())

    def config(self) -> str:
        """Option 121 and 249 and the extra codes declared, every option requested; the
        first retry after 1 s and never more than 1-3 s apart (defaults: 10 and up to 15)."""
        extras = [f"lab-opt-{code}" for code in self.extra_options]
        declared = [
            "option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;",
            "option ms-classless-static-routes code 249 = array of unsigned integer 8;",
            *(
                f"option lab-opt-{c} code {c} = array of unsigned integer 8;"
                for c in self.extra_options
            ),
        ]
        requested = [
            "subnet-mask",
            "broadcast-address",
            "routers",
            "domain-name",
            "domain-name-servers",
            "host-name",
            "interface-mtu",
            "ntp-servers",
            "rfc3442-classless-static-routes",
            "ms-classless-static-routes",
            *extras,
        ]
        return "\n".join(
            [
                *declared,
                f"request {', '.join(requested)};",
                "initial-interval 1;",
                "backoff-cutoff 2;",
                "timeout 3600;",
                "",
            ]
        )

    def _files(self) -> list[str]:
        return [
            "-cf",
            str(self.dir / "dhclient.conf"),
            "-lf",
            str(self.dir / "dhclient.leases"),
            "-pf",
            str(self.dir / "dhclient.pid"),
            "-sf",
            str(SCRIPTS / "dhclient.sh"),
            "-e",
            f"LAB_DHCP_DIR={self.dir}",
        ]

    def argv(self) -> list[str]:
        return ["dhclient", "-d", "-v", *self._files(), self.iface]

    def parse(self, event: Event) -> Lease:
        env = event.env
        address = IPv4Address(env["new_ip_address"])
        return Lease(
            reason=event.reason,
            at=event.at,
            address=address,
            network=IPv4Network(f"{address}/{env['new_subnet_mask']}", strict=False),
            routers=addresses(env.get("new_routers")),
            dns=addresses(env.get("new_domain_name_servers")),
            domain=env.get("new_domain_name"),
            mtu=optional_int(env.get("new_interface_mtu")),
            hostname=env.get("new_host_name"),
            classless_routes=rfc3442_routes(env.get("new_rfc3442_classless_static_routes")),
            ms_classless_routes=rfc3442_routes(env.get("new_ms_classless_static_routes")),
            ntp=addresses(env.get("new_ntp_servers")),
            lease_time=optional_int(env.get("new_dhcp_lease_time")),
            server_id=IPv4Address(env["new_dhcp_server_identifier"])
            if env.get("new_dhcp_server_identifier")
            else None,
            extra={
                code: bytes(byte_list(value))
                for code in self.extra_options
                if (value := env.get(f"new_lab_opt_{code}"))
            },
        )

    def renew(self, timeout: float = 10.0) -> DhcpResult:
        mark = self._last_seq()
        self.stop()
        self.start()
        return DhcpResult(self.wait_lease(timeout, after=mark), self.applied())

    def release(self, timeout: float = 10.0) -> None:
        """Stop the running client, then ``dhclient -r`` once on the same lease file (the
        pid file removed first, so it has no process to kill)."""
        mark = self._last_seq()
        self.stop()
        (self.dir / "dhclient.pid").unlink(missing_ok=True)
        run(
            "dhclient",
            "-r",
            "-v",
            *self._files(),
            self.iface,
            netns=self.netns,
            timeout=timeout,
            env={"LAB_DHCP_DIR": str(self.dir)},
        )
        self._wait_event(self.released_reason, mark, timeout)


def byte_list(text: str | None) -> list[int]:
    """dhclient's rendering of an array of uint8: decimal bytes, space (or comma) separated."""
    return [int(b) for b in (text or "").replace(",", " ").split()]


def rfc3442_routes(text: str | None) -> tuple[Route, ...]:
    """Option 121/249 from dhclient: the option's bytes (RFC 3442's encoding)."""
    data = byte_list(text)
    routes = []
    while data:
        length = data[0]
        significant = (length + 7) // 8
        octets = data[1 : 1 + significant] + [0] * (4 - significant)
        nexthop = data[1 + significant : 5 + significant]
        routes.append(
            Route(
                IPv4Network(f"{'.'.join(map(str, octets))}/{length}"),
                IPv4Address(".".join(map(str, nexthop))),
            )
        )
        data = data[5 + significant :]
    return tuple(routes)


class Udhcpc(DhcpClient):
    """busybox udhcpc in the foreground (``-f``): SIGUSR1 renews (a REQUEST for the lease
    it holds), SIGUSR2 releases. Retries every second (``-t 3 -T 1 -A 1``) while no server
    answers."""

    program = "udhcpc"
    bound_reasons = frozenset({"bound", "renew"})
    released_reason = "deconfig"
    shortest_lease = 16
    """busybox raises anything shorter to 16 s (renewing at 8 s)."""

    def argv(self) -> list[str]:
        options = ["mtu", "staticroutes", "msstaticroutes", "ntpsrv", *map(str, self.extra_options)]
        return [
            "busybox",
            "udhcpc",
            "-f",
            "-i",
            self.iface,
            "-s",
            str(SCRIPTS / "udhcpc.sh"),
            "-p",
            str(self.dir / "udhcpc.pid"),
            "-t",
            "3",
            "-T",
            "1",
            "-A",
            "1",
            *(arg for option in options for arg in ("-O", option)),
        ]

    def parse(self, event: Event) -> Lease:
        env = event.env
        address = IPv4Address(env["ip"])
        return Lease(
            reason=event.reason,
            at=event.at,
            address=address,
            network=IPv4Network(f"{address}/{env['mask']}", strict=False),
            routers=addresses(env.get("router")),
            dns=addresses(env.get("dns")),
            domain=env.get("domain"),
            mtu=optional_int(env.get("mtu")),
            hostname=env.get("hostname"),
            classless_routes=pair_routes(env.get("staticroutes")),
            ms_classless_routes=pair_routes(env.get("msstaticroutes")),
            ntp=addresses(env.get("ntpsrv")),
            lease_time=optional_int(env.get("lease")),
            server_id=IPv4Address(env["serverid"]) if env.get("serverid") else None,
            extra={
                code: bytes.fromhex(value)
                for code in self.extra_options
                if (value := env.get(f"opt{code}"))
            },
        )

    def renew(self, timeout: float = 10.0) -> DhcpResult:
        mark = self._last_seq()
        self.send_signal(signal.SIGUSR1)
        return DhcpResult(self.wait_lease(timeout, after=mark), self.applied())

    def release(self, timeout: float = 10.0) -> None:
        mark = self._last_seq()
        self.send_signal(signal.SIGUSR2)
        self._wait_event(self.released_reason, mark, timeout)
        self.stop()


def pair_routes(text: str | None) -> tuple[Route, ...]:
    """udhcpc's rendering of option 121/249: ``destination/len nexthop`` pairs."""
    words = (text or "").split()
    return tuple(
        Route(IPv4Network(dest), IPv4Address(hop))
        for dest, hop in zip(words[::2], words[1::2], strict=True)
    )
