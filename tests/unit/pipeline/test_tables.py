"""Tables by name: computed ids, and flows that do not fit their table fail here."""

from __future__ import annotations

import pytest

from vlcp.pipeline import PIPELINE, Pipeline, PipelineError, Table
from vlcp.pipeline.fields import IN_KIND, NETWORK, RegField
from vlcp.southbound.openflow.codec import codec_for
from vlcp.southbound.openflow.flow import output
from vlcp.southbound.openflow.wire import OFP13

INGRESS, PORT_SECURITY, ND_GUARD, ARP_RESPONDER, L2_FORWARD = (
    PIPELINE[name]
    for name in ("ingress", "port_security", "nd_guard", "arp_responder", "l2_forward")
)


def test_the_l2_pipeline_ids() -> None:
    assert [(t.id, t.name) for t in PIPELINE] == [
        (0, "ingress"),
        (1, "port_security"),
        (2, "nd_guard"),
        (3, "arp_responder"),
        (4, "l2_forward"),
        (5, "dhcp"),
        (6, "gateway"),
        (7, "l3"),
        (8, "icmp_errors"),
        (9, "neighbours"),
    ]
    assert PIPELINE.name_of(4) == "l2_forward" and PIPELINE.name_of(77) == "77"


def test_every_declared_match_field_is_an_openflow_field() -> None:
    known = codec_for(OFP13).match_fields
    for table in PIPELINE:
        for key in table.decl.matches:
            assert (key.reg if isinstance(key, RegField) else key) in known, (table.name, key)


def test_ids_follow_dependencies_not_declaration_order() -> None:
    p = Pipeline(
        [
            Table("c", after=("b",)),
            Table("b", after=("a",)),
            Table("a"),
            Table("d", after=("a",)),
        ]
    )
    assert [t.name for t in p] == ["a", "b", "c", "d"]


def test_ties_keep_declaration_order_so_an_appended_table_renumbers_nothing() -> None:
    base = [Table("in"), Table("x", after=("in",)), Table("y", after=("in",))]
    before = {t.name: t.id for t in Pipeline(base)}
    after = {t.name: t.id for t in Pipeline([*base, Table("z", after=("x",))])}
    assert before == {"in": 0, "x": 1, "y": 2}
    assert after == {**before, "z": 3}
    assert {t.name: t.id for t in Pipeline(base, first_id=10)} == {"in": 10, "x": 11, "y": 12}


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ([Table("a", after=("b",)), Table("b", after=("a",))], "cycle"),
        ([Table("a", after=("nope",))], "undeclared"),
        ([Table("a"), Table("a")], "twice"),
        ([Table("a", miss="b"), Table("b")], "not a successor"),
    ],
)
def test_bad_declarations_are_refused(tables: list[Table], message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        Pipeline(tables)


def test_a_flow_may_only_match_declared_fields() -> None:
    with pytest.raises(PipelineError, match="eth_src is not declared"):
        ARP_RESPONDER.flow(100, {"eth_src": "02:00:00:00:00:01"})
    with pytest.raises(PipelineError, match="NETWORK is not declared"):
        INGRESS.flow(100, {NETWORK: 1})
    with pytest.raises(PipelineError, match="reg4 is not declared"):  # a raw register
        L2_FORWARD.flow(100, {"reg4": 1})
    with pytest.raises(ValueError, match="does not fit"):
        L2_FORWARD.flow(100, {IN_KIND: 4})


def test_a_flow_may_only_go_to_a_declared_successor() -> None:
    assert INGRESS.flow(1, {"in_port": 1}, goto=ARP_RESPONDER).goto == ARP_RESPONDER.id
    with pytest.raises(PipelineError, match="not a declared successor"):
        INGRESS.flow(1, {"in_port": 1}, goto=L2_FORWARD)
    with pytest.raises(PipelineError, match="not a declared successor"):
        L2_FORWARD.flow(1, {}, goto=INGRESS)
    other = Pipeline([Table("ingress"), Table("l2_forward", after=("ingress",))])
    with pytest.raises(PipelineError, match="not a declared successor"):
        INGRESS.flow(1, {}, goto=other["l2_forward"])


def test_register_fields_of_one_register_share_the_match_with_masks() -> None:
    low = RegField("LOW", "reg7", 0, 4)
    high = RegField("HIGH", "reg7", 4, 4)
    p = Pipeline([Table("t", matches={low, high, NETWORK})])
    flow = p["t"].flow(1, {low: 3, high: 5, NETWORK: 9}, [output(1)])
    assert flow.match_dict == {"reg7": (0x53, 0xFF), NETWORK.reg: 9}


def test_misses() -> None:
    assert {(f.table, f.priority, f.goto) for f in PIPELINE.miss_flows()} == {
        (0, 0, None),  # ingress: drop
        (1, 0, 3),  # port_security: other protocols on to arp_responder
        (2, 0, 3),  # nd_guard: all but neighbour advertisements on
        (3, 0, 4),
        (4, 0, None),
        (5, 0, None),  # dhcp: only its ports' requests come in, to the controller
        (6, 0, None),  # gateway: only what is for a gateway comes in
        (7, 0, None),  # l3: what no port of the router holds
        (8, 0, None),  # icmp_errors: only its ports' unroutable packets, to the controller
        (9, 0, None),  # neighbours: only the next hops' ARP replies go on, to the controller
    }


@pytest.mark.parametrize(
    ("table", "match", "message"),
    [
        (PORT_SECURITY, {"ipv4_src": "10.0.0.1"}, "ipv4_src needs eth_type in \\[2048\\]"),
        (PORT_SECURITY, {"eth_type": 0x0806, "ipv4_src": "10.0.0.1"}, "ipv4_src needs eth_type"),
        (PORT_SECURITY, {"eth_type": 0x0800, "udp_src": 68}, "udp_src needs ip_proto"),
        (ARP_RESPONDER, {"arp_tpa": "10.0.0.1"}, "arp_tpa needs eth_type"),
        (ND_GUARD, {"eth_type": 0x86DD, "ip_proto": 58, "ipv6_nd_target": "::1"}, "icmpv6_type"),
        (ND_GUARD, {"eth_type": 0x0800, "ip_proto": 58, "icmpv6_type": 136}, "needs IPv6"),
    ],
)
def test_a_flow_must_match_its_fields_prerequisites(table, match, message) -> None:
    """A switch refuses a match on ipv4_src without eth_type=0x0800 (OFPBMC_BAD_PREREQ)."""
    with pytest.raises(PipelineError, match=message):
        table.flow(30, match)
