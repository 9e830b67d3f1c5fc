"""The settings of a vlcp process (`vlcp.config`) and the small typed layer under them and
the built-in modules' settings (`vlcp.typed`): defaults, then the TOML file, then
`VLCP_*` variables, then overrides; every refusal names the setting."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from pydantic import BaseModel

from vlcp.config import Settings, load_settings
from vlcp.pipeline.dhcp.settings import Settings as DhcpSettings
from vlcp.pipeline.gateway import Settings as GatewaySettings
from vlcp.typed import Invalid, dump, json_schema, validate


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty configuration file, and an environment without VLCP_* variables."""
    for name in [n for n in os.environ if n.upper().startswith("VLCP_")]:
        monkeypatch.delenv(name)
    path = tmp_path / "vlcp.toml"
    path.write_text("")
    monkeypatch.setenv("VLCP_CONFIG", str(path))
    return path


def test_defaults_then_file_then_environment_then_overrides(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().store.session_ttl == 10.0 and load_settings().agent.forwarding
    config.write_text('node_name = "a"\n[store]\nurl = "sqlite:///f.db"\nsession_ttl = 3\n')
    monkeypatch.setenv("VLCP_STORE__URL", "sqlite:///e.db")
    monkeypatch.setenv("vlcp_agent__enabled", "yes")
    settings = load_settings(config, api={"enabled": False})
    assert settings.node_name == "a" and settings.store.session_ttl == 3.0  # the file's
    assert settings.store.url == "sqlite:///e.db"  # the environment over the file
    assert settings.agent.enabled and not settings.api.enabled
    monkeypatch.setenv("VLCP_STORE", '{"url": "sqlite:///j.db"}')  # a whole table, as JSON
    monkeypatch.delenv("VLCP_STORE__URL")
    assert load_settings(config).store == dataclasses.replace(settings.store, url="sqlite:///j.db")


@pytest.mark.parametrize(
    ("toml", "env", "where"),
    [
        ("[store]\nsession_ttl = -1\n", {}, "store.session_ttl: should be greater than 0"),
        ("[store]\nurl = 5\n", {}, "store.url: should be a string"),
        ("[stor]\nurl = 'x'\n", {}, "stor: unknown setting"),
        ("[agent]\nvtep = 'eth0'\n", {}, "agent.vtep: 'eth0' should match the pattern"),
        ("", {"VLCP_AGENT__ENABLED": "maybe"}, "VLCP_AGENT__ENABLED: 'maybe' is not a boolean"),
        ("", {"VLCP_STORE__SESSION_TTL": "soon"}, "'soon' is not a number"),
    ],
)
def test_a_bad_setting_is_refused_by_its_name(
    config: Path, monkeypatch: pytest.MonkeyPatch, toml: str, env: dict[str, str], where: str
) -> None:
    config.write_text(toml)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(Invalid, match=where.replace("(", r"\(")):
        load_settings(config)


def test_a_missing_file_given_explicitly_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_module_settings_are_checked_when_made_and_give_their_schema() -> None:
    assert validate(GatewaySettings, {"mac": "02:00:5E:00:00:01"}).mac == "02:00:5e:00:00:01"
    with pytest.raises(Invalid) as refused:
        validate(DhcpSettings, {"underlay_mtu": 10, "server_address": "x", "nope": 1})
    assert str(refused.value) == "nope: unknown setting"
    with pytest.raises(Invalid) as refused:
        validate(DhcpSettings, {"underlay_mtu": 10, "server_address": "x"})
    assert [loc for loc, _ in refused.value.problems] == [("underlay_mtu",), ("server_address",)]
    assert hash(DhcpSettings()) == hash(DhcpSettings())  # offers are remembered per value
    schema = json_schema(DhcpSettings)
    assert schema["additionalProperties"] is False
    assert schema["properties"]["underlay_mtu"] == {
        "type": "integer",
        "minimum": 118,
        "maximum": 65535,
        "default": 1500,
    }
    assert json_schema(Settings)["properties"]["api"]["default"]["listen"] == "127.0.0.1:8081"
    assert json_schema(GatewaySettings)["properties"]["mac"]["anyOf"][1] == {"type": "null"}


def test_a_third_party_pydantic_model_is_taken_as_it_was() -> None:
    class Theirs(BaseModel):
        macs: list[str] = []

    assert validate(Theirs, {"macs": ["a"]}) == Theirs(macs=["a"])
    assert dump(Theirs(macs=["a"])) == {"macs": ["a"]}
    assert json_schema(Theirs) == Theirs.model_json_schema()
    with pytest.raises(Invalid, match="macs: Input should be a valid list"):
        validate(Theirs, {"macs": 5})
