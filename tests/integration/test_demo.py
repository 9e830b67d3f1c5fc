"""`vlcp demo --check` as a user runs it: every expectation holds, and nothing is left behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.marks import needs_ovs_lab
from tests.lab.netns import list_netns, pids_matching

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    needs_ovs_lab,
]


def test_demo_check_holds_and_cleans_up() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vlcp.cli", "demo", "--check"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    prefix = re.search(r"run prefix (\w+)", out)
    assert prefix, out
    run_prefix = prefix[1]
    assert re.search(r"^API: http://127\.0\.0\.1:\d+", out, re.M), out
    works = re.findall(r"^works .* replied +OK$", out, re.M)
    fails = re.findall(r"^fails .* only in tenant [AB] +no reply +OK$", out, re.M)
    assert len(works) >= 4 and len(fails) >= 2, out
    routed = re.findall(r"^works .* 10\.0\.1\.5 [ab]5 \(hv1\) +replied +OK$", out, re.M)
    assert len(routed) == 2, out  # each tenant's router, from hv0 across to hv1
    # the way out from both servers (through hv0, the forwarding server) and back in
    out_and_back = re.findall(r"^works +a[15] .* 198\.51\.100\.1 outside +replied +OK$", out, re.M)
    assert len(out_and_back) == 2, out
    assert re.search(r"^works +dc .* 10\.0\.1\.5 a5 \(hv1\) via A +replied +OK$", out, re.M), out
    assert re.search(r"^fails +b1 .* 198\.51\.100\.1 outside, back via A +no reply +OK$", out, re.M)
    assert "UNEXPECTED" not in out
    assert "demo check: all" in out and "expectations held" in out
    assert out.rstrip().endswith("cleaned up")
    # Nothing of this run survives: namespaces, daemons (they ran from its dirs), dirs.
    assert [ns for ns in list_netns() if ns.startswith(run_prefix)] == []
    assert pids_matching(f"/tmp/{run_prefix}-") == []
    assert list(Path("/tmp").glob(f"{run_prefix}-*")) == []
