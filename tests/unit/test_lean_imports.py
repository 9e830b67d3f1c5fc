"""What an agent process loads: not the API stack, not the rest of os-ken (issue 16: every
agent paid 38 MiB for os-ken's packet library, oslo.config and pbr before its first port).

Checked in a fresh interpreter: this test process has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys

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


def test_an_agent_process_loads_neither_the_api_nor_the_rest_of_os_ken() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(probe.stdout))
    assert "os_ken.ofproto.ofproto_v1_3_parser" in loaded  # the probe did use os-ken
    assert [m for m in NOT_IN_AN_AGENT if m in loaded] == []
