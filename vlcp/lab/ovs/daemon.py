"""Detached OVS daemons (ovsdb-server, ovs-vswitchd) in a private rundir, known by pidfile.

Shared by :class:`~vlcp.lab.ovs.hypervisor.Hypervisor` and
:class:`~vlcp.lab.ovsdb.OvsdbServer`: every socket, pidfile and log of a daemon lives in the
caller's private directory, never in /var/run/openvswitch, and the daemon is stopped by the
PID it wrote (:func:`vlcp.lab.netns.stop_process`), like every lab process.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from vlcp.lab.netns import (
    DEFAULT_TIMEOUT,
    CommandError,
    ProcessRef,
    netns_prefix,
    read_pidfile,
    register_process,
)
from vlcp.lab.processes import read_tail

VSWITCH_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")


class RundirOwner:
    """Base of an object whose OVS daemons live in a private rundir it makes on start()."""

    _dir: Path | None = None

    @property
    def dir(self) -> Path:
        """The private OVS_RUNDIR: db, sockets, pidfiles, logs (and controller symlinks)."""
        if self._dir is None:
            raise RuntimeError(f"{self!r} has not been started")
        return self._dir

    @property
    def started(self) -> bool:
        """Whether start() got as far as creating the private directory."""
        return self._dir is not None

    @property
    def db_sock(self) -> Path:
        """The ovsdb-server unix socket (reachable from any namespace: it is a file)."""
        return self.dir / "db.sock"

    @property
    def db_target(self) -> str:
        """The OVSDB connection string for db_sock, as a controller would be given it."""
        return f"unix:{self.db_sock}"


def ovs_env(rundir: Path) -> dict[str, str]:
    """Point every OVS default path at the private dir, never at /var/run/openvswitch."""
    return {
        "OVS_RUNDIR": str(rundir),
        "OVS_LOGDIR": str(rundir),
        "OVS_DBDIR": str(rundir),
    }


def register_daemon(rundir: Path, binary: str) -> ProcessRef:
    """Register the daemon by the pidfile it will write, *before* :func:`start_daemon`.

    Registration comes first so that even an interrupt during the start cannot leak the
    daemon; the caller keeps the ref to stop it by PID later.
    """
    return register_process(ProcessRef(marker=str(rundir), pidfile=rundir / f"{binary}.pid"))


def start_daemon(
    rundir: Path,
    binary: str,
    *args: str,
    netns: str | None = None,
    env: Mapping[str, str] | None = None,
    unixctl: bool = True,
) -> None:
    """Start ``binary --detach`` (optionally in ``netns``) with its files in ``rundir``.

    ``unixctl=False`` for the Python daemons (``ovs-vtep``), which take no ``--unixctl``
    and open their control socket in ``OVS_RUNDIR`` by themselves.

    Output goes to ``<binary>.out``, not a pipe: a detached child inheriting a pipe would keep
    ``communicate()`` waiting until the timeout. Raises :class:`CommandError` with that output
    and the log tail if the daemon fails or writes no pidfile.
    """
    pidfile = rundir / f"{binary}.pid"
    common = (
        f"--pidfile={pidfile}",
        *([f"--unixctl={rundir / binary}.ctl"] if unixctl else []),
        f"--log-file={rundir / binary}.log",
        "--detach",
        "--no-chdir",
        "-vconsole:off",
    )
    argv = [*netns_prefix(netns), binary, *args, *common]
    out = rundir / f"{binary}.out"
    with out.open("w") as fh:
        proc = subprocess.run(
            argv,
            stdout=fh,
            stderr=subprocess.STDOUT,
            timeout=DEFAULT_TIMEOUT,
            env={**os.environ, **env} if env else None,
            check=False,
        )
    if proc.returncode != 0:
        raise CommandError(argv, proc.returncode, "", out.read_text() + log_tail(rundir, binary))
    if read_pidfile(pidfile) is None:
        detail = f"{binary} started but wrote no pidfile\n{out.read_text()}"
        raise CommandError(argv, proc.returncode, "", detail + log_tail(rundir, binary))


def log_tail(rundir: Path, binary: str, lines: int = 20) -> str:
    """The end of a daemon's log, on a new line, for error messages ("" if it has none)."""
    path = rundir / f"{binary}.log"
    if not path.exists():
        return ""
    return "\n" + read_tail(path, lines)
