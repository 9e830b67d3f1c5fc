"""A real OpenStack Neutron API server with vlcp's ML2 mechanism driver, as
../shared/lab/10_neutron.sh found it runs here.

Neutron (29, from PyPI) lives in its own venv, built and reused by scripts/neutron-venv.sh.
Each server is private: its configuration, sqlite database, state and lock dirs in one
directory, a free loopback port, no authentication, the in-process `fake://` message
transport (no agents: vlcp's controllers are the agents). Recent Neutron has no
`neutron-server` script: gunicorn serves `neutron.wsgi.api:application` through a
3-line module that resets `sys.argv` (Neutron parses it at import). `neutron-db-manage
upgrade` cannot ALTER sqlite's constraints, so the tables are made from the models and
the schema then stamped as current. The server is stopped by its PID.

`openstack` runs OpenStack's own CLI (python-openstackclient, in the same venv) against
the server as a user would, without Keystone: `OS_AUTH_TYPE=none` with `OS_ENDPOINT` set
to the server's URL (keystoneauth's `none` plugin sends no token; Neutron's noauth takes
the request as an admin's).
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.lab.services.process import ManagedProcess, _scrubbed_env
from vlcp.lab.naming import free_tcp_ports

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".neutron-venv"
SETUP = REPO / "scripts" / "neutron-venv.sh"
WSGI = 'import sys\nsys.argv = ["neutron-api"]\nfrom neutron.wsgi.api import application  # noqa\n'
CREATE_TABLES = """import sys
from sqlalchemy import create_engine
from neutron.db.migration.models import head
head.get_metadata().create_all(create_engine(sys.argv[1]))
"""


def build_venv() -> Path:
    """Neutron's venv, built on first use (about a minute) and reused after (instant)."""
    subprocess.run([str(SETUP), str(VENV)], check=True, timeout=900)
    return VENV


class NeutronError(Exception):
    """Neutron answered an error: its status and its `NeutronError` message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class NeutronServer:
    """neutron-server (gunicorn) in `directory`, with ML2 drivers `logger` and `vlcp`."""

    def __init__(self, venv: Path, directory: Path, vlcp_url: str, **vlcp_options: str) -> None:
        self.venv = venv
        self.dir = directory
        self.port = free_tcp_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "neutron.log"
        for sub in ("etc", "state", "lock"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        options = {"api_url": vlcp_url, "write_attempts": "2", **vlcp_options}
        (directory / "etc" / "neutron.conf").write_text(self._config(options))
        (directory / "napi.py").write_text(WSGI)
        self._cli_env = _scrubbed_env(("OS_",)) | {"OS_AUTH_TYPE": "none", "OS_ENDPOINT": self.url}
        env = _scrubbed_env(("OS_",)) | {
            "OS_NEUTRON_CONFIG_DIR": str(directory / "etc"),
            "OS_NEUTRON_CONFIG_FILES": "neutron.conf",
        }
        argv = [str(venv / "bin" / "gunicorn"), "--no-control-socket", "-w", "1"]
        argv += ["--threads", "4", "-b", f"127.0.0.1:{self.port}", "napi:application"]
        self._process = ManagedProcess(argv, cwd=directory, output=self.log, env=env)

    def _config(self, vlcp_options: dict[str, str]) -> str:
        d = self.dir
        vlcp = "\n".join(f"{name} = {value}" for name, value in vlcp_options.items())
        return f"""[DEFAULT]
core_plugin = ml2
service_plugins = router
auth_strategy = noauth
api_paste_config = {self.venv}/etc/neutron/api-paste.ini
transport_url = fake://
state_path = {d}/state
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
[database]
connection = sqlite:///{d}/neutron.db
[oslo_concurrency]
lock_path = {d}/lock
[ml2]
type_drivers = flat,vlan,vxlan
tenant_network_types = vxlan
mechanism_drivers = logger,vlcp
extension_drivers = port_security
[ml2_type_vxlan]
vni_ranges = 5000:5999
[ml2_type_flat]
flat_networks = *
[ml2_type_vlan]
network_vlan_ranges = physnet1:100:199
[ml2_vlcp]
{vlcp}
"""

    def start(self) -> None:
        """Create the database and start serving (`wait_ready` says when it answers)."""
        python = str(self.venv / "bin" / "python")
        database = f"sqlite:///{self.dir}/neutron.db"
        subprocess.run([python, "-c", CREATE_TABLES, database], check=True, timeout=120)
        manage = [str(self.venv / "bin" / "neutron-db-manage"), "--config-file"]
        manage += [str(self.dir / "etc" / "neutron.conf"), "stamp", "heads"]
        subprocess.run(manage, check=True, capture_output=True, timeout=120)
        self._process.start()

    def stop(self) -> None:
        self._process.stop()

    def ready(self) -> bool:
        """Whether the API answers (False until gunicorn's worker loaded Neutron)."""
        if not self._process.running:
            raise RuntimeError(f"neutron-server exited: {self.log_tail()}")
        try:
            self.request("GET", "networks")
        except (OSError, NeutronError):
            return False
        return True

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self._process.read_output().splitlines()[-lines:])

    # -- the `openstack` CLI -------------------------------------------------------------

    def openstack(self, *args: str) -> str:
        """`openstack *args` as a user runs it; its output. Neutron's refusal raises
        `NeutronError` (status 0: the CLI prints the status only in its message)."""
        command = [str(self.venv / "bin" / "openstack"), *args]
        done = subprocess.run(
            command, capture_output=True, text=True, env=self._cli_env, timeout=120
        )
        if done.returncode != 0:
            raise NeutronError(0, f"{' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def cli_create(self, kind: str, *args: str) -> dict[str, Any]:
        """`openstack <kind> create *args`; the new resource as the REST API shows it (the
        CLI renames fields: `binding_vif_type` for `binding:vif_type`)."""
        created = json.loads(self.openstack(kind, "create", "-f", "json", "-c", "id", *args))
        return self.show(kind, created["id"])

    # -- REST v2.0 -----------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/v2.0/{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                payload = answer.read()
        except urllib.error.HTTPError as error:
            text = error.read().decode(errors="replace")
            try:
                message = json.loads(text)["NeutronError"]["message"]
            except (ValueError, KeyError, TypeError):
                message = text
            raise NeutronError(error.code, message) from None
        return json.loads(payload) if payload else None

    def create(self, kind: str, **fields: Any) -> dict[str, Any]:
        """POST a `kind` (network, subnet, port...) and answer it as Neutron stored it."""
        return self.request("POST", f"{kind}s", {kind: fields})[kind]

    def update(self, kind: str, id: str, **fields: Any) -> dict[str, Any]:
        return self.request("PUT", f"{kind}s/{id}", {kind: fields})[kind]

    def show(self, kind: str, id: str) -> dict[str, Any]:
        return self.request("GET", f"{kind}s/{id}")[kind]

    def delete(self, kind: str, id: str) -> None:
        self.request("DELETE", f"{kind}s/{id}")
