"""The `vlcp` command as a user runs it: `run` announces the server; bad input is refused."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.lab.naming import unique_name
from tests.lab.ovs import missing_tools

VLCP = [sys.executable, "-m", "vlcp.cli"]


def vlcp(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VLCP, *args], capture_output=True, text=True, timeout=30, env=env)


def servers(url: str) -> list[dict]:
    out = vlcp("--store", url, "store", "ls", "servers/")
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_run_announces_the_server_and_withdraws_on_sigterm(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/state.db"
    env = {**os.environ, "VLCP_NODE_NAME": "hv-test", "VLCP_API__LISTEN": free_listen()}
    proc = subprocess.Popen(
        [*VLCP, "--store", url, "run"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: [s["key"] for s in servers(url)] == ["servers/hv-test"])
        assert servers(url)[0]["value"]["pid"] == proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, proc.stderr.read()
    assert servers(url) == []


@pytest.mark.slow
def test_run_rides_out_a_store_outage_longer_than_its_session(zookeeper, tmp_path: Path) -> None:
    """Issue 9, defect 1: `vlcp run` exited once its session looked lost to it. It must
    stay up through any outage and announce itself again when the store is back."""
    url = f"zookeeper://{zookeeper.hosts}/{unique_name('cli')}?timeout=1&session_timeout=2"
    env = {
        **os.environ,
        "VLCP_NODE_NAME": "hv-zk",
        "VLCP_STORE__SESSION_TTL": "2",
        "VLCP_API__LISTEN": free_listen(),
    }
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen([*VLCP, "--store", url, "run"], env=env, stderr=log, text=True)
    try:
        wait_for(lambda: [s["key"] for s in servers(url)] == ["servers/hv-zk"])
        zookeeper.kill()
        time.sleep(3 * 2 + 1)  # the outage under test: 3x the session timeout
        assert proc.poll() is None, (tmp_path / "run.log").read_text()
        zookeeper.start()
        wait_for(lambda: [s["key"] for s in servers(url)] == ["servers/hv-zk"], timeout=60)
        assert proc.poll() is None, (tmp_path / "run.log").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        log.close()
    assert code == 0, (tmp_path / "run.log").read_text()


@pytest.mark.slow
def test_run_started_while_the_store_is_down_waits_for_it(zookeeper, tmp_path: Path) -> None:
    url = f"zookeeper://{zookeeper.hosts}/{unique_name('cli')}?timeout=1&session_timeout=2"
    env = {**os.environ, "VLCP_NODE_NAME": "hv-late", "VLCP_API__LISTEN": free_listen()}
    log_path = tmp_path / "run.log"
    zookeeper.kill()
    with log_path.open("w") as log:
        proc = subprocess.Popen([*VLCP, "--store", url, "run"], env=env, stderr=log, text=True)
    try:
        wait_for(lambda: "waiting for the store" in log_path.read_text())
        assert proc.poll() is None, log_path.read_text()
        zookeeper.start()
        wait_for(lambda: [s["key"] for s in servers(url)] == ["servers/hv-late"], timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, log_path.read_text()


def free_listen() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def health(listen: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://{listen}/v1/health", timeout=2) as response:
            return json.loads(response.read())
    except OSError:
        return None


def test_run_serves_the_api_without_the_agent_and_stops_on_sigterm(tmp_path: Path) -> None:
    listen = free_listen()
    env = {**os.environ, "VLCP_API__LISTEN": listen, "VLCP_AGENT__ENABLED": "false"}
    url = f"sqlite://{tmp_path}/state.db"
    proc = subprocess.Popen(
        [*VLCP, "--store", url, "run"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: health(listen) is not None or proc.poll() is not None)
        assert health(listen) == {"status": "ok", "store": "sqlite"}
        assert servers(url)[0]["value"]["serves"] == ["store", "api"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, proc.stderr.read()
    assert health(listen) is None


def test_run_on_a_taken_api_port_is_refused_clearly(tmp_path: Path) -> None:
    """uvicorn exits (SystemExit) when it cannot listen; raised in a task, that stopped the
    event loop and `vlcp run` died with a traceback instead of this message."""
    url = f"sqlite://{tmp_path}/state.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        env = {**os.environ, "VLCP_API__LISTEN": listen, "VLCP_AGENT__ENABLED": "false"}
        out = vlcp("--store", url, "run", env=env)
    assert out.returncode == 1, out.stderr
    assert f"could not serve the API on {listen}" in out.stderr
    assert "Traceback" not in out.stderr
    assert servers(url) == []


def test_configuration_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "vlcp.toml"
    config.write_text(f'node_name = "from-file"\n[store]\nurl = "sqlite://{tmp_path}/a.db"\n')
    env = {**os.environ, "VLCP_STORE__URL": f"sqlite://{tmp_path}/b.db"}
    out = vlcp("--config", str(config), "store", "ls", env=env)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "b.db").exists() and not (tmp_path / "a.db").exists()


def test_bad_configuration_is_refused_clearly(tmp_path: Path) -> None:
    config = tmp_path / "vlcp.toml"
    config.write_text("[store]\nsession_ttl = -1\n")
    out = vlcp("--config", str(config), "store", "ls")
    assert out.returncode != 0 and "session_ttl" in out.stderr
    missing = vlcp("--config", str(tmp_path / "nope.toml"), "store", "ls")
    assert missing.returncode != 0 and "does not exist" in missing.stderr


def test_unknown_store_scheme_is_refused_clearly() -> None:
    out = vlcp("--store", "mysql://x/y", "store", "ls")
    assert out.returncode == 1 and "scheme must be one of" in out.stderr


def test_run_with_nothing_to_run_is_refused_clearly(tmp_path: Path) -> None:
    env = {**os.environ, "VLCP_API__ENABLED": "false", "VLCP_AGENT__ENABLED": "false"}
    out = vlcp("--store", f"sqlite://{tmp_path}/s.db", "run", env=env)
    assert out.returncode == 1 and "nothing to run" in out.stderr


def test_a_vtep_interface_without_an_address_is_refused_clearly(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VLCP_AGENT__ENABLED": "true",
        "VLCP_AGENT__VTEP": "iface:nosuchif0",
        "VLCP_API__LISTEN": free_listen(),
    }
    out = vlcp("--store", f"sqlite://{tmp_path}/s.db", "run", env=env)
    assert out.returncode == 1 and "agent.vtep" in out.stderr and "nosuchif0" in out.stderr
    env["VLCP_AGENT__VTEP"] = "10.0.0"
    out = vlcp("--store", f"sqlite://{tmp_path}/s.db", "run", env=env)
    assert out.returncode != 0 and "vtep" in out.stderr


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0 or bool(missing_tools()), reason="needs root and OVS")
def test_run_as_a_controller_only_reads_its_vtep_from_an_interface(
    tmp_path: Path, hypervisor
) -> None:
    """`[api] enabled = false`: no API; `vtep = "iface:lo"`: the address of lo, announced."""
    listen = free_listen()
    env = {
        **os.environ,
        "VLCP_NODE_NAME": "hv-ctl",
        "VLCP_API__ENABLED": "false",
        "VLCP_API__LISTEN": listen,
        "VLCP_AGENT__ENABLED": "true",
        "VLCP_AGENT__OVSDB": hypervisor.db_target,
        "VLCP_AGENT__OVS_RUNDIR": str(hypervisor.dir),
        "VLCP_AGENT__DATAPATH_TYPE": "netdev",
        "VLCP_AGENT__SYSTEM_ID": "hv-ctl",
        "VLCP_AGENT__VTEP": "iface:lo",
    }
    url = f"sqlite://{tmp_path}/state.db"
    proc = subprocess.Popen(
        [*VLCP, "--store", url, "run"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:

        def chassis() -> list[dict]:
            out = vlcp("--store", url, "store", "ls", "chassis/")
            return [json.loads(line) for line in out.stdout.splitlines()]

        wait_for(lambda: bool(servers(url) and chassis()) or proc.poll() is not None)
        assert servers(url)[0]["value"]["serves"] == ["store", "agent"]
        assert chassis()[0]["value"]["vtep"] == "127.0.0.1"
        assert health(listen) is None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, proc.stderr.read()


def test_a_bad_openflow_listen_address_is_refused_clearly(tmp_path: Path) -> None:
    env = {**os.environ, "VLCP_AGENT__OPENFLOW_LISTEN": "6653"}
    out = vlcp("--store", f"sqlite://{tmp_path}/s.db", "store", "ls", env=env)
    assert out.returncode != 0 and "openflow_listen" in out.stderr
