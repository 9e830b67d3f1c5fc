"""One typed settings tree: defaults, then a TOML file, then `VLCP_*` environment variables.

Environment variables override the file so that one file can serve many servers, with
the per-server differences (for example the store URL in a test) given in the environment.
Nested settings use a double underscore: `VLCP_STORE__URL=zookeeper://...`.

The classes are `vlcp.typed` ones, not pydantic-settings: every agent process reads this,
and pydantic would be most of its memory (issue 16, docs/architecture.md).
"""

from __future__ import annotations

import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .typed import Invalid, Typed, fields_of, from_text, setting, validate

DEFAULT_CONFIG_FILE = Path("/etc/vlcp/vlcp.toml")
DEFAULT_STORE_URL = "sqlite:///var/lib/vlcp/state.db"
ENV_PREFIX = "VLCP_"


@dataclass(frozen=True)
class StoreSettings(Typed):
    """Where the central store is."""

    url: str = DEFAULT_STORE_URL
    session_ttl: float = setting(
        10.0, gt=0, description="seconds before a dead server's keys vanish"
    )


@dataclass(frozen=True)
class ApiSettings(Typed):
    """The web API: where `vlcp api` listens, and where the client verbs find it."""

    enabled: bool = setting(
        True, description="`vlcp run` serves the API (false: only the controller here)"
    )
    listen: str = setting("127.0.0.1:8081", description="HOST:PORT; loopback unless opened up")
    url: str = setting("http://127.0.0.1:8081", description="the API the client verbs call")
    token: str | None = setting(None, description="bearer token, required by the API when set")


@dataclass(frozen=True)
class AgentSettings(Typed):
    """The controller of the local Open vSwitch that `vlcp run` runs when enabled."""

    enabled: bool = setting(False, description="run the controller for the local OVS")
    ovsdb: str = setting("unix:/var/run/openvswitch/db.sock", description="OVSDB endpoint")
    ovs_rundir: str = setting(
        "/var/run/openvswitch", description="where vswitchd opens <bridge>.mgmt"
    )
    openflow_listen: str | None = setting(
        None,
        description=(
            'where vswitchd reaches vlcp: "tcp:HOST:PORT" or "unix:PATH", set as the'
            " bridge's controller; unset: vlcp dials <ovs_rundir>/<bridge>.mgmt instead"
        ),
        pattern=r"^(tcp:.+:\d+|unix:/.+)$",
    )
    bridge: str = setting("br-int", description="the integration bridge (created if missing)")
    datapath_type: str = setting("", description='"" (kernel) or "netdev" (userspace)')
    vtep: str | None = setting(
        None,
        description="this server's tunnel endpoint: an IPv4 address, or iface:NAME for "
        "the IPv4 address of interface NAME, read when vlcp starts",
        pattern=r"^(\d{1,3}(\.\d{1,3}){3}|iface:[^\s/]{1,15})$",
    )
    system_id: str | None = setting(
        None, description="default: OVSDB's external_ids:system-id, else node_name"
    )
    forwarding: bool = setting(
        True,
        description="may be elected forwarding server of the external networks on the "
        "physical networks this server has a port of (docs/operations.md)",
    )


@dataclass(frozen=True)
class VtepSettings(Typed):
    """The hardware VTEP controller that `vlcp vtep` runs for one switch
    (docs/hardware-vtep.md)."""

    manager: str | None = setting(
        None,
        description='the switch\'s hardware_vtep OVSDB: "tcp:HOST:PORT", "ssl:..." or "unix:PATH"',
        pattern=r"^(tcp:.+:\d+|unix:/.+)$",
    )
    switch: str | None = setting(
        None,
        description="the Physical_Switch name to control",
        pattern=r"^[A-Za-z0-9_.:@+=~-]{1,64}$",
    )


@dataclass(frozen=True)
class Settings(Typed):
    """Everything a vlcp process is configured with."""

    node_name: str = setting(default_factory=socket.gethostname)
    store: StoreSettings = StoreSettings()
    api: ApiSettings = ApiSettings()
    agent: AgentSettings = AgentSettings()
    vtep: VtepSettings = VtepSettings()


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from `config_file` (or $VLCP_CONFIG, or /etc/vlcp/vlcp.toml if it exists),
    then the `VLCP_*` environment, then `overrides` (nested as the file is); raises
    ValueError (`Invalid`, or the file's TOML error) naming what is wrong."""
    if config_file is not None:
        if not config_file.is_file():
            raise FileNotFoundError(f"configuration file {config_file} does not exist")
        os.environ["VLCP_CONFIG"] = str(config_file)
    path = Path(os.environ.get("VLCP_CONFIG", DEFAULT_CONFIG_FILE))
    data: dict[str, Any] = {}
    if path.is_file():
        with path.open("rb") as file:
            data = tomllib.load(file)
    for layer in (_environment(os.environ), overrides):
        data = _merged(data, layer)
    return validate(Settings, data)


def _environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings the environment gives: `VLCP_NAME`, `VLCP_SECTION__NAME` (any case)."""
    given = {k.upper(): v for k, v in environ.items() if k.upper().startswith(ENV_PREFIX)}
    found: dict[str, Any] = {}
    problems = []
    for name, kind in fields_of(Settings).items():
        variables = {(name,): kind}
        if isinstance(kind, type) and issubclass(kind, Typed):
            variables |= {(name, sub): k for sub, k in fields_of(kind).items()}
        for path, sub_kind in variables.items():
            variable = ENV_PREFIX + "__".join(path).upper()
            if variable not in given:
                continue
            try:
                value = from_text(sub_kind, given[variable])
            except Invalid as exc:
                problems += [((variable, *loc), msg) for loc, msg in exc.problems]
                continue
            found = _merged(
                found, {path[0]: value} if len(path) == 1 else {path[0]: {path[1]: value}}
            )
    if problems:
        raise Invalid(problems)
    return found


def _merged(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    """`layer` over `base`, tables merged key by key (a file's [store] keeps the keys an
    environment variable does not set)."""
    merged = dict(base)
    for key, value in layer.items():
        below = merged.get(key)
        if isinstance(value, dict) and isinstance(below, dict):
            merged[key] = _merged(below, value)
        else:
            merged[key] = value
    return merged


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` or `[IPv6]:PORT` -> (host, port).

    Here, beside the `listen` settings it reads, so that `vlcp demo` can check its
    `--listen` without importing the `vlcp` command that imports the demo.
    """
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT (for example 127.0.0.1:8081)")
    return host, int(port)
