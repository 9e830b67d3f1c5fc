"""A private ovsdb-server for any schema (hardware_vtep, ...) and an independent DB reader.

:class:`OvsdbServer` runs in the root namespace (it needs no network namespace: it only
listens on a unix socket in its private directory and, optionally, on 127.0.0.1), with
its database files created by ``ovsdb-tool`` from the installed schemas. It is stopped by
the PID it wrote, like every lab daemon.

:func:`dump_rows` reads tables with ``ovsdb-client dump``: an implementation independent of
ours, which tests use as the oracle for what the database really holds.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from vlcp.lab.lifecycle import StartStop
from vlcp.lab.naming import free_tcp_ports, private_dir
from vlcp.lab.netns import ProcessRef, register_dir, release_dir, run, stop_process
from vlcp.lab.ovs.daemon import (
    VSWITCH_SCHEMA,
    RundirOwner,
    ovs_env,
    register_daemon,
    start_daemon,
)

VTEP_SCHEMA = Path("/usr/share/openvswitch/vtep.ovsschema")

__all__ = [
    "VSWITCH_SCHEMA",
    "VTEP_SCHEMA",
    "OvsdbServer",
    "dump_rows",
    "ovsdb_tool_transact",
    "ovsdb_tools_missing",
]


def ovsdb_tools_missing() -> list[str]:
    """The OVSDB tools the lab server needs that are not installed."""
    tools = ("ovsdb-tool", "ovsdb-server", "ovsdb-client", "vtep-ctl")
    return [tool for tool in tools if shutil.which(tool) is None]


class OvsdbServer(StartStop, RundirOwner):
    """ovsdb-server serving one database file per schema, on unix:db.sock (+ TCP)."""

    def __init__(self, schemas: Sequence[Path], *, tcp: bool = True) -> None:
        self.schemas = list(schemas)
        self.tcp = tcp
        self.port: int | None = None
        self._dir: Path | None = None
        self._ref: ProcessRef | None = None

    def __repr__(self) -> str:
        return f"OvsdbServer({[s.stem for s in self.schemas]}, dir={self._dir})"

    @property
    def unix_target(self) -> str:
        return self.db_target

    @property
    def tcp_target(self) -> str:
        if self.port is None:
            raise RuntimeError("started without TCP")
        return f"tcp:127.0.0.1:{self.port}"

    def db_file(self, schema: Path) -> Path:
        return self.dir / f"{schema.stem}.db"

    def start(self) -> Self:
        """Create the databases (first start only) and run the server."""
        if self._dir is None:
            self._dir = register_dir(private_dir("db"))
            for schema in self.schemas:
                run("ovsdb-tool", "create", str(self.db_file(schema)), str(schema))
            if self.tcp:
                (self.port,) = free_tcp_ports(1)
        self._ref = register_daemon(self.dir, "ovsdb-server")
        start_daemon(
            self.dir,
            "ovsdb-server",
            *(str(self.db_file(schema)) for schema in self.schemas),
            f"--remote=punix:{self.db_sock}",
            *([f"--remote=ptcp:{self.port}:127.0.0.1"] if self.tcp else []),
        )
        return self

    def kill(self) -> None:
        """Stop the server by its PID (the database files stay)."""
        if self._ref is not None:
            stop_process(self._ref)
            self._ref = None

    def stop(self, *, remove_dir: bool = True) -> None:
        """Stop the server and remove its directory."""
        self.kill()
        if self._dir is not None:
            release_dir(self._dir, remove=remove_dir)

    def vtep_ctl(self, *args: str) -> str:
        """vtep-ctl against this server (never the system database)."""
        env = ovs_env(self.dir)
        return run("vtep-ctl", f"--db={self.unix_target}", "--timeout=10", *args, env=env).stdout


def ovsdb_tool_transact(db_file: Path, ops: Sequence[Mapping[str, Any]], db: str) -> Any:
    """Run a transaction directly on a database file (its server must be stopped)."""
    proc = run("ovsdb-tool", "transact", str(db_file), json.dumps([db, *ops]))
    result = json.loads(proc.stdout)
    errors = [r for r in result if isinstance(r, dict) and "error" in r]
    if errors:
        raise RuntimeError(f"ovsdb-tool transact failed: {errors}")
    return result


def dump_rows(target: str, db: str, tables: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """``{table: {uuid: {column: raw OVSDB JSON}}}`` as ``ovsdb-client dump`` reports them."""
    out: dict[str, Any] = {}
    for table, columns in tables.items():
        proc = run(
            "ovsdb-client",
            "dump",
            "--format=json",
            "--timeout=10",
            target,
            db,
            table,
            "_uuid",
            *columns,
        )
        data = json.loads(proc.stdout)
        headings = data["headings"]
        rows = {}
        for values in data["data"]:
            row = dict(zip(headings, values, strict=True))
            rows[uuid.UUID(row.pop("_uuid")[1])] = row
        out[table] = rows
    return out
