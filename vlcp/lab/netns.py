"""Command, namespace, veth and process helpers for the root-only test lab.

Everything here shells out to ``ip``/``ethtool`` rather than talking netlink directly: the
commands are the same ones the lab recipes in ``shared/lab`` were proven with, and a failing
command raises with its stderr, which is what one wants to read when a topology does not
come up.

Every namespace and process the lab creates is recorded in a module-wide registry, so that a
test which dies half-way (assertion, Ctrl-C, pytest-timeout) still leaves nothing behind: the
fixtures clean up their own objects, and an ``atexit`` hook removes whatever is still
registered when the interpreter exits. Processes are only ever stopped by the PID we recorded,
never by name.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from vlcp.lab.polling import poll

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 15.0
"""Seconds any single helper command may take; generous because the box has 2 vCPUs."""

T = TypeVar("T")


class CommandError(RuntimeError):
    """A lab command failed or timed out; the message carries its stderr so logs explain why."""

    def __init__(self, cmd: Sequence[str], returncode: int | None, stdout: str, stderr: str):
        self.cmd = list(cmd)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        status = "timed out" if returncode is None else f"exited {returncode}"
        detail = (stderr or stdout).strip()
        super().__init__(f"{' '.join(self.cmd)!s} {status}: {detail}")


def netns_prefix(netns: str | None) -> list[str]:
    """The argv prefix that runs a command inside ``netns`` (nothing for the root namespace)."""
    return ["ip", "netns", "exec", netns] if netns else []


def run(
    *cmd: str,
    netns: str | None = None,
    input: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    check: bool = True,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command (optionally inside a namespace) with a hard timeout.

    Raises :class:`CommandError` with stderr on a non-zero exit (when ``check``) and always on
    a timeout, so a hung OVS call fails the test instead of hanging it.
    """
    argv = [*netns_prefix(netns), *cmd]
    full_env = {**os.environ, **env} if env else None
    try:
        proc = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandError(argv, None, _text(exc.stdout), _text(exc.stderr)) from exc
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stdout, proc.stderr)
    return proc


def _text(data: str | bytes | None) -> str:
    """Decode the partial output a TimeoutExpired carries (bytes even in text mode)."""
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float = 5.0,
    interval: float = 0.02,
    ignore: tuple[type[Exception], ...] = (),
    message: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns something truthy; bounded, unlike a bare sleep.

    Exceptions listed in ``ignore`` count as "not yet" (the predicate may probe something
    that is still coming up); the last one is chained to the TimeoutError to show what was
    seen. Anything else propagates at once, so a dead process fails fast.
    """
    return poll(
        predicate,
        timeout=timeout,
        interval=interval,
        done=bool,
        timeout_error=lambda _last: TimeoutError(f"{message} not reached within {timeout:.1f}s"),
        ignore=ignore,
    )


# ---------------------------------------------------------------- process helpers


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie.

    Detached OVS daemons are re-parented to PID 1, which on this VM does not reap children,
    so a killed daemon may linger as a zombie: it holds no sockets or namespaces any more.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def pid_cmdline(pid: int) -> str:
    """The command line of ``pid`` with spaces for NULs ("" if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def kill_pid(pid: int, marker: str, *, timeout: float = 5.0, crash: bool = False) -> None:
    """Stop one process we started: SIGTERM, bounded wait, then SIGKILL.

    ``crash``: SIGKILL at once, as a crash looks to its peers (nothing gets to clean up).
    ``marker`` must appear in the process's command line; this guards against killing an
    unrelated process that reused the PID after ours exited.
    """
    if not pid_alive(pid) or marker not in pid_cmdline(pid):
        return
    steps = ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0))
    for sig, wait in steps[1:] if crash else steps:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        try:
            wait_until(lambda: not pid_alive(pid), timeout=wait, message=f"exit of pid {pid}")
            return
        except TimeoutError:
            log.warning("pid %d (%s) ignored %s", pid, marker, sig.name)
    raise TimeoutError(f"pid {pid} ({marker}) survived SIGKILL")


def read_pidfile(path: Path) -> int | None:
    """The PID an OVS daemon wrote with ``--pidfile`` (None if it has not written one)."""
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


@dataclass(frozen=True)
class ProcessRef:
    """A process we started, known by PID or by the pidfile a daemon writes.

    Daemons are registered by pidfile *before* they start, so an interrupt between their
    fork and our reading of the pidfile cannot leak them; ``marker`` (a string in their
    command line, normally our private path) guards against a reused PID.
    """

    marker: str
    pid: int | None = None
    pidfile: Path | None = None

    def current_pid(self) -> int | None:
        """The PID now: the given one, or whatever the pidfile says."""
        if self.pid is not None:
            return self.pid
        return read_pidfile(self.pidfile) if self.pidfile else None


# ---------------------------------------------------------------- registry


@dataclass
class _Registry:
    """What the lab created and has not removed yet; cleaned at exit as a last resort."""

    namespaces: list[str] = field(default_factory=list)
    processes: list[ProcessRef] = field(default_factory=list)
    dirs: list[Path] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, item: object) -> None:
        with self.lock:
            getattr(self, kind).append(item)

    def drop(self, kind: str, item: object) -> None:
        with self.lock, contextlib.suppress(ValueError):
            getattr(self, kind).remove(item)

    def snapshot(self) -> tuple[list[str], list[ProcessRef], list[Path]]:
        with self.lock:
            return list(self.namespaces), list(self.processes), list(self.dirs)

    def live_pids(self) -> set[int]:
        """PIDs of registered processes that are still running."""
        pids = {ref.current_pid() for ref in self.snapshot()[1]}
        return {pid for pid in pids if pid is not None and pid_alive(pid)}


REGISTRY = _Registry()


def register_process(ref: ProcessRef) -> ProcessRef:
    """Record a process we start so the exit hook can stop it by PID."""
    REGISTRY.add("processes", ref)
    return ref


def stop_process(ref: ProcessRef, *, timeout: float = 5.0, crash: bool = False) -> None:
    """Stop a registered process by its PID (SIGKILL at once if ``crash``) and forget it."""
    try:
        pid = ref.current_pid()
        if pid is not None:
            kill_pid(pid, ref.marker, timeout=timeout, crash=crash)
    finally:
        REGISTRY.drop("processes", ref)


def register_dir(path: Path) -> Path:
    """Record a private directory so an interrupted run does not leave it in /tmp."""
    REGISTRY.add("dirs", path)
    return path


def release_dir(path: Path, *, remove: bool) -> None:
    """Remove a private directory, or keep it on purpose (logs of a failed test)."""
    if remove:
        shutil.rmtree(path, ignore_errors=True)
    REGISTRY.drop("dirs", path)


def cleanup_all() -> list[str]:
    """Stop every registered process, delete every registered namespace and directory.

    Processes go first: a namespace with a live process in it would outlive ``ip netns del``
    as an anonymous namespace. Returns the errors instead of raising, because it runs from
    ``atexit`` where one failure must not stop the rest.
    """
    namespaces, processes, dirs = REGISTRY.snapshot()
    errors: list[str] = []
    for ref in reversed(processes):
        try:
            stop_process(ref)
        except Exception as exc:
            errors.append(f"{ref}: {exc}")
    for name in reversed(namespaces):
        try:
            delete_netns(name)
        except Exception as exc:
            errors.append(f"netns {name}: {exc}")
    for path in reversed(dirs):
        release_dir(path, remove=True)
    return errors


def _atexit_cleanup() -> None:
    """Last-resort cleanup (Ctrl-C, crash in a fixture, interpreter exit)."""
    for error in cleanup_all():
        log.warning("lab cleanup at exit: %s", error)


atexit.register(_atexit_cleanup)


# ---------------------------------------------------------------- namespaces and links


def list_netns() -> list[str]:
    """Names from ``ip netns list`` (the "(id: N)" suffix stripped)."""
    out = run("ip", "netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def create_netns(name: str) -> str:
    """Create a namespace with loopback up and IPv6 off.

    IPv6 is off so that router solicitations and MLD reports do not show up in captures
    and make "nothing arrived" assertions lie.
    """
    run("ip", "netns", "add", name)
    REGISTRY.add("namespaces", name)
    for key in ("all", "default"):
        run("sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1", netns=name)
    run("ip", "link", "set", "lo", "up", netns=name)
    return name


def delete_netns(name: str) -> None:
    """Delete a namespace if it still exists (its veth ends and taps go with it)."""
    if name in list_netns():
        run("ip", "netns", "del", name)
    REGISTRY.drop("namespaces", name)


def create_veth(name_a: str, netns_a: str, name_b: str, netns_b: str, *, mtu: int = 0) -> None:
    """A veth pair created directly in two namespaces, both ends up.

    Creating the ends in place (rather than in the root namespace and moving them) means a
    name clash with the host's own interfaces cannot happen.
    """
    run(
        "ip",
        "link",
        "add",
        name_a,
        "netns",
        netns_a,
        "type",
        "veth",
        "peer",
        "name",
        name_b,
        "netns",
        netns_b,
    )
    for name, netns in ((name_a, netns_a), (name_b, netns_b)):
        if mtu:
            run("ip", "link", "set", name, "mtu", str(mtu), netns=netns)
        run("ip", "link", "set", name, "up", netns=netns)


def add_address(netns: str, dev: str, cidr: str) -> None:
    """Put an address on an interface and bring it up (idempotent for the address)."""
    run("ip", "addr", "replace", cidr, "dev", dev, netns=netns)
    run("ip", "link", "set", dev, "up", netns=netns)


def link_exists(netns: str, dev: str) -> bool:
    """Whether ``dev`` exists in ``netns``."""
    return run("ip", "link", "show", "dev", dev, netns=netns, check=False).returncode == 0


def netns_inode(name: str) -> int:
    """The inode identifying a named namespace; lets tests find processes still inside it."""
    return os.stat(f"/run/netns/{name}").st_ino


def pids_in_netns(inodes: Iterable[int]) -> list[int]:
    """Live PIDs whose network namespace is one of ``inodes``."""
    wanted = {f"net:[{ino}]" for ino in inodes}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ns = os.readlink(entry / "ns" / "net")
        except OSError:
            continue
        if ns in wanted and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def pids_matching(fragment: str) -> list[int]:
    """Live PIDs (other than ours) whose command line contains ``fragment``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        if fragment in pid_cmdline(pid) and pid_alive(pid):
            found.append(pid)
    return found
