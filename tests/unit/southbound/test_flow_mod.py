"""Flow-mods assembled from cached pieces are byte for byte what os-ken encodes.

`flow_mod.assemble` (and its native field and action encoders) replaces os-ken on the
hot path; os-ken stays the reference: every pipeline flow, random values of every native
field and action, in OpenFlow 1.3 and 1.4, must give identical bytes.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.integration.southbound.test_openflow_switch import NICIRA_FLOWS
from tests.unit.pipeline.test_incremental import views
from vlcp.pipeline.compile import compile_all
from vlcp.pipeline.view import View
from vlcp.southbound.openflow.codec import ACTIONS, codec_for
from vlcp.southbound.openflow.flow import Action, Flow, dec_ttl
from vlcp.southbound.openflow.flow_mod import NATIVE_FIELDS, assemble, native_oxm
from vlcp.southbound.openflow.wire import OFP13, OFP14

VERSIONS = [OFP13, OFP14]


def os_ken_bytes(version: int, flow: Flow, op: str) -> bytes:
    return codec_for(version)._encode_with_os_ken(flow, op)


@settings(max_examples=150, deadline=None)
@given(views, st.sampled_from(VERSIONS))
def test_every_pipeline_flow_assembles_to_os_kens_bytes(view: View, version: int) -> None:
    codec = codec_for(version)
    for owned in compile_all(view).values():
        for flow in owned:
            if dict(flow.match).keys() & AFTER_BASIC:
                continue  # os-ken's order is wrong there (the test below)
            for op in ("add", "delete"):
                assert assemble(codec, flow, op) == os_ken_bytes(version, flow, op)


AFTER_BASIC = {"ip_frag", "nw_ttl"}
"""The names os-ken knows of `flow_mod.AFTER_BASIC_FIELDS`."""


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(AFTER_BASIC))
def test_nicira_fields_with_ip_prerequisites_come_after_eth_type(name: str, version: int) -> None:
    """OVS refuses nw_ttl before eth_type (OFPBMC_BAD_PREREQ), where os-ken puts it: the
    same fields, with eth_type first (the integration test installs one on OVS)."""
    codec = codec_for(version)
    flow = Flow(table=7, priority=110, match=(("eth_type", 0x0800), (name, 1), ("reg6", 3)))
    ours, os_kens = assemble(codec, flow, "add"), os_ken_bytes(version, flow, "add")
    assert ours is not None and len(ours) == len(os_kens) and ours != os_kens
    eth_type, field, reg = (codec.oxm(n, v) for n, v in flow.match)
    assert ours.index(reg) < ours.index(eth_type) < ours.index(field)
    assert sorted(codec.parse(ours).match.items()) == sorted(codec.parse(os_kens).match.items())


def field_values(name: str) -> st.SearchStrategy:
    _, _, size, kind = NATIVE_FIELDS[name]
    if kind == "int":
        one = st.integers(0, (1 << (8 * size)) - 1)
    elif kind == "mac":
        one = st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))
    else:
        one = st.ip_addresses(v=4).map(str)
    return st.one_of(one, st.tuples(one, one))


native_matches = st.sampled_from(sorted(NATIVE_FIELDS)).flatmap(
    lambda name: st.tuples(st.just(name), field_values(name))
)


@settings(max_examples=400, deadline=None)
@given(st.lists(native_matches, max_size=4, unique_by=lambda kv: kv[0]), st.sampled_from(VERSIONS))
def test_native_fields_encode_as_os_ken_does(match: list, version: int) -> None:
    if any(name == "in_port" and isinstance(value, tuple) for name, value in match):
        match = [(n, v) for n, v in match if n != "in_port"]  # OpenFlow has no masked in_port
    flow = Flow(table=1, priority=7, match=tuple(match), goto=2)
    assert assemble(codec_for(version), flow, "add") == os_ken_bytes(version, flow, "add")


actions = st.one_of(
    st.integers(1, 0xFFFFFEFF).map(lambda port: Action.make("output", port=port)),
    native_matches.filter(lambda kv: not isinstance(kv[1], tuple) and kv[0] != "in_port").map(
        lambda kv: Action.make("set_field", field=kv[0], value=kv[1])
    ),
    st.just(Action.make("pop_vlan")),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(actions, max_size=6), st.sampled_from(VERSIONS))
def test_native_actions_encode_as_os_ken_does(acts: list[Action], version: int) -> None:
    flow = Flow(table=0, priority=1, match=(("in_port", 3),), actions=tuple(acts))
    assert assemble(codec_for(version), flow, "add") == os_ken_bytes(version, flow, "add")


def test_values_os_ken_would_judge_are_left_to_it() -> None:
    assert native_oxm("eth_dst", "not-a-mac") is None
    assert native_oxm("reg4", -1) is None
    assert native_oxm("reg4", 1 << 40) is None
    assert native_oxm("udp_dst", 53) is None  # not a native field
    with pytest.raises(ValueError, match="eth_dst"):
        codec_for(OFP14).add_flow(Flow(table=0, priority=1, match=(("eth_dst", "zz"),)))


def test_a_flow_with_an_experimenter_field_falls_back_to_os_ken() -> None:
    codec = codec_for(OFP13)
    experimenter = [
        name
        for name in sorted(codec.match_fields)
        if name not in NATIVE_FIELDS and _is_experimenter(codec, name)
    ]
    assert experimenter, "os-ken knows experimenter OXM fields (e.g. tcp_flags on 1.3)"
    flow = Flow(table=0, priority=1, match=((experimenter[0], 1), ("in_port", 1)))
    assert assemble(codec, flow, "add") is None
    assert codec.add_flow(flow) == os_ken_bytes(OFP13, flow, "add")


def _is_experimenter(codec, name: str) -> bool:
    try:
        return codec.oxm(name, 1)[:2] == b"\xff\xff"
    except ValueError:
        return False


EVERY_KIND = list(
    dict.fromkeys(
        [
            *(action for flow in NICIRA_FLOWS for action in flow.actions),
            Action.make("output", port="in_port", max_len=128),
            Action.make("set_field", field="eth_dst", value="02:00:00:00:00:09"),
            Action.make("set_field", field="metadata", value=7),
            Action.make("push_vlan", ethertype=0x8100),
            Action.make("pop_vlan"),
            Action.make("group", group_id=12),
            Action.make("drop"),
            Action.make("nx_nat", flags=1, ipv4_min="10.0.0.1", ipv4_max="10.0.0.9"),
            dec_ttl(),
            dec_ttl(1, 2),
        ]
    )
)
"""One of every action kind: the Nicira-heavy flows the real-OVS tests install, and more."""


def test_every_action_kind_is_covered() -> None:
    assert {a.kind for a in EVERY_KIND} == set(ACTIONS)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("action", EVERY_KIND, ids=lambda a: a.kind)
def test_every_action_kind_assembles_to_os_kens_bytes(action: Action, version: int) -> None:
    """Each action's cached bytes fit any position (learn leaves its padding to the next
    write; the cache adds it), alone and between others."""
    for actions in ((action,), (Action.make("pop_vlan"), action, Action.make("output", port=1))):
        flow = Flow(table=0, priority=1, match=(("in_port", 1),), actions=actions)
        assert assemble(codec_for(version), flow, "add") == os_ken_bytes(version, flow, "add")


def test_cookies_stay_what_earlier_releases_installed() -> None:
    """A cookie is a hash of the flow's text; a change to how actions print would make a
    restarted controller replace every flow once. Pinned from the first release."""
    flow = Flow.make(
        0,
        100,
        {"in_port": 1, "eth_dst": ("01:00:00:00:00:00", "01:00:00:00:00:00")},
        [
            Action.make("output", port=2),
            Action.make(
                "nx_learn", table=9, specs=[{"type": "match", "src": "eth_src", "dst": "eth_dst"}]
            ),
        ],
        goto=5,
    )
    assert flow.cookie == 0xA5AAD81C63C9EF88
