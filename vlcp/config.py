"""One typed settings tree: defaults, then a TOML file, then `VLCP_*` environment variables.

Environment variables override the file so that one file can serve many servers, with
the per-server differences (for example the store URL in a test) given in the environment.
Nested settings use a double underscore: `VLCP_STORE__URL=zookeeper://...`.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = Path("/etc/vlcp/vlcp.toml")
DEFAULT_STORE_URL = "sqlite:///var/lib/vlcp/state.db"


class StoreSettings(BaseModel):
    """Where the central store is."""

    model_config = ConfigDict(extra="forbid")

    url: str = DEFAULT_STORE_URL
    session_ttl: float = Field(10.0, gt=0, description="seconds before a dead server's keys vanish")


class ApiSettings(BaseModel):
    """The web API: where `vlcp api` listens, and where the client verbs find it."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        True, description="`vlcp run` serves the API (false: only the controller here)"
    )
    listen: str = Field("127.0.0.1:8081", description="HOST:PORT; loopback unless opened up")
    url: str = Field("http://127.0.0.1:8081", description="the API the client verbs call")
    token: str | None = Field(None, description="bearer token, required by the API when set")


class AgentSettings(BaseModel):
    """The controller of the local Open vSwitch that `vlcp run` runs when enabled."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="run the controller for the local OVS")
    ovsdb: str = Field("unix:/var/run/openvswitch/db.sock", description="OVSDB endpoint")
    ovs_rundir: str = Field(
        "/var/run/openvswitch", description="where vswitchd opens <bridge>.mgmt"
    )
    openflow_listen: str | None = Field(
        None,
        description=(
            'where vswitchd reaches vlcp: "tcp:HOST:PORT" or "unix:PATH", set as the'
            " bridge's controller; unset: vlcp dials <ovs_rundir>/<bridge>.mgmt instead"
        ),
        pattern=r"^(tcp:.+:\d+|unix:/.+)$",
    )
    bridge: str = Field("br-int", description="the integration bridge (created if missing)")
    datapath_type: str = Field("", description='"" (kernel) or "netdev" (userspace)')
    vtep: str | None = Field(
        None,
        description="this server's tunnel endpoint: an IPv4 address, or iface:NAME for "
        "the IPv4 address of interface NAME, read when vlcp starts",
        pattern=r"^(\d{1,3}(\.\d{1,3}){3}|iface:[^\s/]{1,15})$",
    )
    system_id: str | None = Field(
        None, description="default: OVSDB's external_ids:system-id, else node_name"
    )
    forwarding: bool = Field(
        True,
        description="may be elected forwarding server of the external networks on the "
        "physical networks this server has a port of (docs/operations.md)",
    )


class VtepSettings(BaseModel):
    """The hardware VTEP controller that `vlcp vtep` runs for one switch
    (docs/hardware-vtep.md)."""

    model_config = ConfigDict(extra="forbid")

    manager: str | None = Field(
        None,
        description='the switch\'s hardware_vtep OVSDB: "tcp:HOST:PORT", "ssl:..." or "unix:PATH"',
        pattern=r"^(tcp:.+:\d+|unix:/.+)$",
    )
    switch: str | None = Field(
        None,
        description="the Physical_Switch name to control",
        pattern=r"^[A-Za-z0-9_.:@+=~-]{1,64}$",
    )


class Settings(BaseSettings):
    """Everything a vlcp process is configured with."""

    model_config = SettingsConfigDict(env_prefix="VLCP_", env_nested_delimiter="__", extra="forbid")

    node_name: str = Field(default_factory=socket.gethostname)
    store: StoreSettings = StoreSettings()
    api: ApiSettings = ApiSettings()
    agent: AgentSettings = AgentSettings()
    vtep: VtepSettings = VtepSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = Path(os.environ.get("VLCP_CONFIG", DEFAULT_CONFIG_FILE))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, config_file))


def load_settings(config_file: Path | None = None, **overrides: object) -> Settings:
    """Settings from `config_file` (or $VLCP_CONFIG, or /etc/vlcp/vlcp.toml if it exists)."""
    if config_file is not None:
        if not config_file.is_file():
            raise FileNotFoundError(f"configuration file {config_file} does not exist")
        os.environ["VLCP_CONFIG"] = str(config_file)
    return Settings(**overrides)  # type: ignore[arg-type]


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
