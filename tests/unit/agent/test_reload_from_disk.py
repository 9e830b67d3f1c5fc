"""A third-party module installed in a temp dir: discovered, loaded, changed on disk and
reloaded, without a controller restart.

The package is what pip would leave: a Python file and a `<name>.dist-info/` whose
`entry_points.txt` registers the module under `vlcp.modules`. Its flows go through
`push_isolated` into a `Reconciler`, as the agent sends them: a reload replaces exactly
the module's flows that changed, and a syntax error on disk keeps the old version.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vlcp.agent.agent import push_isolated
from vlcp.agent.binding import OvsPort
from vlcp.agent.modules import ModuleManager, discover
from vlcp.agent.view_builder import Identity, build_view
from vlcp.layout import modules_key
from vlcp.southbound.openflow.flow import Flow
from vlcp.southbound.reconciler import Reconciler

PACKAGE = "vlcp_tmp_dropper"
DIST = "vlcp-tmp-dropper"
ME = Identity("hv1", "br-int", "192.0.2.1")
STORE: dict[str, Any] = {
    "physnet/vl": {"type": "vlan"},
    "lognet/n0": {"physicalnetwork": "vl", "vlanid": 10},
    "lport/p0": {"logicalnetwork": "n0", "mac_address": "02:00:00:00:00:01"},
}
PORTS = {"i0": OvsPort("i0", 1, "p0", None, bound_at=1.0)}
CODE = '''
"""A third-party module: drops one source MAC in a table of its own."""
from vlcp.pipeline import Module, Table

TABLE = Table(
    "dropper",
    after=("ingress",),
    before=("port_security",),
    matches={{"eth_src"}},
    miss="port_security",
)


def base(ctx):
    return frozenset({{ctx["dropper"].flow({priority}, {{"eth_src": "{mac}"}})}})


MODULE = Module("dropper", doc="drops {mac}", depends=("ingress",), tables=(TABLE,), base=base)
'''


def write_code(root: Path, priority: int, mac: str) -> None:
    (root / f"{PACKAGE}.py").write_text(CODE.format(priority=priority, mac=mac))


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The package installed in `tmp_path`, on sys.path; gone from sys.modules after."""
    write_code(tmp_path, 100, "02:00:00:00:00:99")
    info = tmp_path / f"{PACKAGE}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DIST}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[vlcp.modules]\ndropper = {PACKAGE}:MODULE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # edits within one second count
    yield tmp_path
    sys.modules.pop(PACKAGE, None)


def flows_of(reconciler: Reconciler) -> set[Flow]:
    return set(reconciler.desired().values())


def what(flow: Flow) -> tuple[int, int, dict[str, Any]]:
    return flow.table, flow.priority, dict(flow.match)


def test_a_module_changed_on_disk_is_reloaded_and_only_its_changed_flows_replaced(
    installed: Path,
) -> None:
    discovery = discover()
    assert "dropper" in discovery.catalog
    assert "dropper" not in discovery.default  # known, not loaded by default
    manager = ModuleManager(discovery, ME.system_id)
    store: dict[str, Any] = {}
    manager.update(store.get)
    assert manager.status()["known"]["dropper"] == {
        "doc": "drops 02:00:00:00:00:99",
        "depends": ["ingress"],
        "tables": ["dropper"],
        "source": f"{DIST}:{PACKAGE}:MODULE",
        "settings": None,
    }
    assert "dropper" not in manager.current.loaded
    view = build_view(STORE, PORTS, ME)
    reconciler = Reconciler()
    push_isolated(reconciler, view, None, manager)
    without = flows_of(reconciler)
    table = discovery.catalog.pipeline["dropper"].id

    everything = sorted(discovery.default | {"dropper"})
    store[modules_key(ME.system_id)] = {"modules": everything, "reload": {}}
    assert manager.update(store.get)
    push_isolated(reconciler, view, None, manager)
    v1 = flows_of(reconciler)
    (drop,) = v1 - without
    assert what(drop) == (table, 100, {"eth_src": "02:00:00:00:00:99"})
    assert without <= v1

    write_code(installed, 120, "02:00:00:00:00:98")  # the operator edits the code
    store[modules_key(ME.system_id)] = {"modules": everything, "reload": {"dropper": 1}}
    assert manager.update(store.get)
    push_isolated(reconciler, view, None, manager)
    v2 = flows_of(reconciler)
    (new,) = v2 - v1
    assert what(new) == (table, 120, {"eth_src": "02:00:00:00:00:98"})
    assert v1 - v2 == {drop}  # nothing else changed, not even a cookie
    assert manager.status()["known"]["dropper"]["doc"] == "drops 02:00:00:00:00:98"
    assert manager.errors() == {}

    (installed / f"{PACKAGE}.py").write_text("def broken(:\n")
    store[modules_key(ME.system_id)] = {"modules": everything, "reload": {"dropper": 2}}
    assert not manager.update(store.get)  # the old version keeps running
    push_isolated(reconciler, view, None, manager)
    assert flows_of(reconciler) == v2
    assert "SyntaxError" in manager.errors()["dropper"]
    assert manager.status()["generations"] == {"dropper": 2}
