"""What an agent process loads: not the API stack, not the rest of os-ken (issue 16: every
agent paid 38 MiB for os-ken's packet library, oslo.config and pbr before its first port),
and, for `vlcp run` without the API, not pydantic either (another 23 MiB).

Checked in a fresh interpreter: this test process has imported everything already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys
import vlcp.serve
from vlcp.southbound.openflow.codec import codec_for
from vlcp.southbound.openflow.flow import output
codec = codec_for(4)
codec.packet_out(bytes(60), [output(1)])
codec.parse(codec.echo_request(b"x"))
print(json.dumps(sorted(sys.modules)))
"""

NOT_IN_AN_AGENT = (
    "fastapi",
    "starlette",
    "uvicorn",
    "oslo_config",
    "pbr",
    "os_ken.lib.packet.ethernet",
    "os_ken.ofproto.ofproto_v1_0_parser",
)


def loaded_by(probe: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules a fresh interpreter has loaded after running `probe`."""
    ran = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )
    return set(json.loads(ran.stdout))


def test_an_agent_process_loads_neither_the_api_nor_the_rest_of_os_ken() -> None:
    loaded = loaded_by(PROBE)
    assert "os_ken.ofproto.ofproto_v1_3_parser" in loaded  # the probe did use os-ken
    assert [m for m in NOT_IN_AN_AGENT if m in loaded] == []


RUN_PROBE = """
import json, sys
from vlcp.cli import main
from vlcp.config import load_settings
settings = load_settings()
assert settings.agent.enabled and not settings.api.enabled
with main.make_context("vlcp", ["run"]) as ctx:
    assert main.resolve_command(ctx, ["run"])[0] == "run"
import vlcp.agent.agent, vlcp.serve, vlcp.tasks  # what `vlcp run` starts, API off
from vlcp.pipeline import BUILTIN
from vlcp.typed import json_schema, validate
schemas = {m.name: json_schema(m.settings) for m in BUILTIN if m.settings}
assert validate(BUILTIN["dhcp"].settings, {"underlay_mtu": 9000}).underlay_mtu == 9000
print(json.dumps(sorted(sys.modules)))
"""

NOT_IN_VLCP_RUN = (*NOT_IN_AN_AGENT, "pydantic", "pydantic_core", "pydantic_settings")
NOR_THE_MODEL = ("vlcp.api", "vlcp.model", "vlcp.model.service")


def test_vlcp_run_without_the_api_loads_no_pydantic_and_no_model(tmp_path: Path) -> None:
    config = tmp_path / "vlcp.toml"
    config.write_text("[api]\nenabled = false\n[agent]\nenabled = true\n")
    loaded = loaded_by(RUN_PROBE, {**os.environ, "VLCP_CONFIG": str(config)})
    assert "vlcp.agent.agent" in loaded and "vlcp.pipeline.dhcp.settings" in loaded
    assert [m for m in (*NOT_IN_VLCP_RUN, *NOR_THE_MODEL) if m in loaded] == []


def test_the_client_verbs_are_still_there_when_asked_for() -> None:
    """They are added on first look-up (named from the model): `--help` lists them."""
    out = subprocess.run(
        [sys.executable, "-m", "vlcp.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "logical-port" in out and "module" in out and "run" in out
