"""The example third-party module `macdrop` (examples/vlcp-macdrop): its place in the
pipeline, its flows traced through the simulator, its settings, its LLDP handler, and
that it is as pure as a built-in module."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import ValidationError
from scapy.layers.l2 import Ether

from tests.examples import EXAMPLES, import_example
from tests.lab import frames
from vlcp.pipeline import BUILTIN, Catalog, ModuleSet, Received, View
from vlcp.pipeline.fields import NETWORK
from vlcp.pipeline.ingress import PRIO_DROP_LINK_LOCAL, PRIO_DROP_SOURCE
from vlcp.southbound.openflow.flow import Flow

from .scenario import BROADCAST, M1, M2, M3, NUMBERS, PORT, TUNNEL, VIEW, VTEP2, frame
from .sim import CONTROLLER, trace

macdrop: ModuleType = import_example("vlcp-macdrop", "vlcp_macdrop")
lldp: ModuleType = import_example("vlcp-macdrop", "vlcp_macdrop.lldp")
CATALOG = Catalog([*BUILTIN, macdrop.MODULE])
LLDP_DST = macdrop.LLDP_DST


def loaded(*macs: str, names: tuple[str, ...] | None = None) -> ModuleSet:
    names = names if names is not None else tuple(m.name for m in CATALOG)
    return ModuleSet(CATALOG, names, settings={"macdrop": macdrop.Settings(macs=list(macs))})


def flows_of(modules: ModuleSet, view: View = VIEW) -> frozenset[Flow]:
    return frozenset().union(*modules.compile_all(view).values())


def lldp_frame(src: str) -> bytes:
    return bytes(frames.lldp(src))


# ------------------------------------------------------------------ place in the pipeline


def test_its_table_is_on_every_path_into_the_arp_responder() -> None:
    pipeline = CATALOG.pipeline
    table = pipeline["macdrop"]
    assert table.id == pipeline["nd_guard"].id + 1 == pipeline["arp_responder"].id - 1
    for source in ("ingress", "port_security", "nd_guard"):
        assert pipeline.route(pipeline[source], pipeline["arp_responder"]) is table
    assert table.miss_flow().goto == pipeline["arp_responder"].id
    for name in ("ingress", "port_security", "nd_guard"):  # before it: ids unchanged
        assert pipeline[name].id == BUILTIN.pipeline[name].id


def test_unloading_it_removes_its_flows_only_and_lets_frames_through() -> None:
    on, off = loaded(M2), loaded(M2).unload("macdrop")
    assert flows_of(off) < flows_of(on)
    assert trace(flows_of(off), PORT["a2"].ofport, frame(M2, BROADCAST))  # passes now
    gone = flows_of(on) - flows_of(off)
    ingress = {f for f in gone if f.table == CATALOG.pipeline["ingress"].id}
    assert len(ingress) == len(VIEW.ports)  # one LLDP pass per local port, nothing else
    assert {f.table for f in gone} == {0, CATALOG.pipeline["macdrop"].id}


# ------------------------------------------------------------------ behaviour


def test_frames_from_a_listed_mac_are_dropped_from_vifs_and_from_the_underlay() -> None:
    flows = flows_of(loaded(M2, M3))
    assert trace(flows, PORT["a2"].ofport, frame(M2, BROADCAST)) == []
    from_tunnel = {**frame(M3, BROADCAST), "tunnel_id": 5001, "tun_ipv4_src": VTEP2}
    assert trace(flows, TUNNEL, from_tunnel) == []
    others = trace(flows, PORT["a1"].ofport, frame(M1, BROADCAST))
    assert PORT["a2"].ofport in {o.port for o in others}


def test_without_macs_it_drops_nothing() -> None:
    table = CATALOG.pipeline["macdrop"].id
    with_it, without = loaded(), loaded().unload("macdrop")
    assert not [f for f in flows_of(with_it) if f.table == table and "eth_src" in f.match_dict]
    packet, port = frame(M2, BROADCAST), PORT["a2"].ofport
    assert trace(flows_of(with_it), port, packet) == trace(flows_of(without), port, packet)


def test_lldp_from_a_vif_goes_to_the_controller_with_its_network_and_nowhere_else() -> None:
    flows = flows_of(loaded())
    lldp_packet = frame(M1, LLDP_DST, eth_type=lldp.ETH_TYPE_LLDP)
    (out,) = trace(flows, PORT["a1"].ofport, lldp_packet)
    assert out.port == CONTROLLER
    assert NETWORK.extract(out[NETWORK.reg]) == NUMBERS["tenant-a"]
    assert out.packet["reg5"] & 0b11 == 1  # IN_KIND LOCAL
    other = frame(M1, LLDP_DST)  # not LLDP, to the same address: never bridged
    assert trace(flows, PORT["a1"].ofport, other) == []
    tunnel = {**lldp_packet, "tunnel_id": 5001, "tun_ipv4_src": VTEP2, "eth_src": M3}
    assert trace(flows, TUNNEL, tunnel) == []  # from the underlay: ingress drops it


def test_lldp_from_a_listed_mac_is_dropped_not_reported() -> None:
    flows = flows_of(loaded(M1))
    assert trace(flows, PORT["a1"].ofport, frame(M1, LLDP_DST, eth_type=0x88CC)) == []


def test_its_ingress_flow_sits_between_the_two_ingress_drops() -> None:
    assert PRIO_DROP_LINK_LOCAL < macdrop.PRIO_LLDP_INGRESS < PRIO_DROP_SOURCE


# ------------------------------------------------------------------ settings


def test_settings_take_one_spelling_of_each_mac_and_refuse_anything_else() -> None:
    settings = macdrop.Settings(macs=["02:00:00:00:00:AA", "02:00:00:00:00:aa", M1])
    assert settings.macs == [M1, "02:00:00:00:00:aa"]
    with pytest.raises(ValidationError):
        macdrop.Settings(macs=["02:00:00:00:00"])
    assert macdrop.Settings().macs == []


# ------------------------------------------------------------------ the handler


def test_the_handler_counts_per_port_and_answers_nothing() -> None:
    context = loaded().context("macdrop")
    before = macdrop.SEEN[PORT["a1"].ofport]
    received = Received(PORT["a1"].ofport, NUMBERS["tenant-a"], lldp_frame(M1))
    assert macdrop.count_lldp(context, VIEW, received) == ()
    assert macdrop.SEEN[PORT["a1"].ofport] == before + 1


def test_lldp_senders_are_parsed_tagged_or_not() -> None:
    sender = lldp.parse_sender(lldp_frame(M1))
    assert sender == lldp.Sender(M1, "eth0")
    raw = lldp_frame(M1)
    tagged = raw[:12] + bytes.fromhex("81000005") + raw[12:]
    assert lldp.parse_sender(tagged) == sender


@pytest.mark.parametrize(
    "data",
    [
        b"\x01" * 13,  # no EtherType
        bytes(Ether(src=M1, dst=LLDP_DST, type=0x88B5)) + b"\x00" * 10,  # not LLDP
        lldp_frame(M1)[:20],  # a TLV cut short
        bytes(Ether(src=M1, dst=LLDP_DST, type=0x88CC)) + b"\x06\x02\x00\x78",  # TTL first
        bytes(Ether(src=M1, dst=LLDP_DST, type=0x88CC)) + b"\x02\x00\x04\x00",  # no subtype
    ],
    ids=["short", "other", "cut", "order", "empty id"],
)
def test_malformed_lldp_raises(data: bytes) -> None:
    with pytest.raises(ValueError):
        lldp.parse_sender(data)


# ------------------------------------------------------------------ purity


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_it_imports_nothing_the_pure_pipeline_may_not() -> None:
    """The pure-pipeline contract of pyproject.toml, applied to the example's code (which
    import-linter does not see): no I/O, no clock; of vlcp, only what a module needs."""
    pyproject = tomllib.loads((EXAMPLES.parent / "pyproject.toml").read_text())
    (contract,) = [
        c for c in pyproject["tool"]["importlinter"]["contracts"] if c["id"] == "pure-pipeline"
    ]
    forbidden = {m for m in contract["forbidden_modules"] if not m.startswith("vlcp.")}
    allowed_vlcp = ("vlcp.pipeline", "vlcp.layout", "vlcp.southbound.openflow.flow")
    imported = set().union(*map(_imports, (EXAMPLES / "vlcp-macdrop").rglob("*.py")))
    assert imported, "the example's code was not found"
    assert not {m for m in imported if m.split(".")[0] in forbidden}
    assert not {m for m in imported if m.startswith("vlcp") and not m.startswith(allowed_vlcp)}
