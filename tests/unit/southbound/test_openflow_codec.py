"""The OpenFlow codec: every encoder checked by parsing its bytes back with os-ken.

A round trip through os-ken's own parser proves the bytes are well-formed OpenFlow; the
real-switch checks (does OVS accept and mean the same thing?) are in the integration tests.
"""

from __future__ import annotations

import inspect
import re
import struct
import subprocess
import sys

import pytest

from vlcp.southbound.openflow import codec, messages, wire
from vlcp.southbound.openflow.codec import codec_for
from vlcp.southbound.openflow.flow import (
    Action,
    Flow,
    controller,
    dec_ttl,
    output,
    pop_vlan,
    push_vlan,
    resubmit,
    set_field,
)
from vlcp.southbound.openflow.messages import Bucket, FlowMod, InstalledFlow
from vlcp.southbound.openflow.wire import OFP13, OFP14, MalformedMessage

VERSIONS = [OFP13, OFP14]
OFPFC_ADD, OFPFC_DELETE_STRICT = 0, 4
OFPIT_GOTO_TABLE, OFPIT_APPLY_ACTIONS = 1, 4


@pytest.fixture(params=VERSIONS, ids=["of13", "of14"])
def c(request: pytest.FixtureRequest) -> codec.Codec:
    return codec_for(request.param)


def roundtrip(c: codec.Codec, data: bytes) -> codec.Message:
    """Parse bytes we produced, checking the header is self-consistent first."""
    header = wire.parse_header(data)
    assert (header.version, header.length) == (c.version, len(data))
    return c.parse(data)


def applied(msg: codec.Message) -> list[object]:
    """The actions of a parsed flow-mod's apply-actions instruction."""
    (inst,) = [i for i in msg.instructions if i.type == OFPIT_APPLY_ACTIONS]
    return list(inst.actions)


def only_action(c: codec.Codec, action: Action) -> object:
    (parsed,) = applied(roundtrip(c, c.add_flow(Flow.make(0, 1, {}, [action]))))
    return parsed


# ---------------------------------------------------------------- flow-mods


def test_add_flow_carries_cookie_table_priority_match_actions_and_goto(c: codec.Codec) -> None:
    flow = Flow.make(
        3,
        120,
        {"in_port": 7, "eth_dst": ("aa:bb:cc:00:00:00", "ff:ff:ff:00:00:00")},
        [output(2)],
        goto=9,
        idle_timeout=30,
        hard_timeout=60,
    )
    msg = roundtrip(c, c.add_flow(flow))
    assert (msg.command, msg.cookie, msg.table_id, msg.priority) == (
        OFPFC_ADD,
        flow.cookie,
        3,
        120,
    )
    assert (msg.idle_timeout, msg.hard_timeout) == (30, 60)
    assert dict(msg.match._fields2) == flow.match_dict
    assert [i.type for i in msg.instructions] == [OFPIT_APPLY_ACTIONS, OFPIT_GOTO_TABLE]
    assert msg.instructions[1].table_id == 9
    assert [(a.port, a.max_len) for a in applied(msg)] == [(2, 0)]


def test_flow_without_actions_is_a_drop_and_has_no_apply_instruction(c: codec.Codec) -> None:
    for actions in ([], [Action.make("drop")]):
        msg = roundtrip(c, c.add_flow(Flow.make(0, 5, {"in_port": 1}, actions)))
        assert msg.instructions == []


NICIRA_AND_STANDARD_MATCH = {
    **{f"reg{i}": i * 1000 + 1 for i in range(16)},
    "tunnel_id": 0x1234,
    "tun_ipv4_dst": "192.0.2.7",
    "ct_state": (0x21, 0x21),
    "ct_zone": 9,
    "conj_id": 77,
    "metadata": (0xAB00, 0xFF00),
    "in_port": 3,
    "eth_type": 0x0800,
    "ipv4_src": ("10.0.0.0", "255.255.255.0"),
    "vlan_vid": 0x1000 | 100,
}


def test_match_fields_round_trip(c: codec.Codec) -> None:
    flow = Flow.make(0, 1, NICIRA_AND_STANDARD_MATCH, [])
    msg = roundtrip(c, c.add_flow(flow))
    assert dict(msg.match._fields2) == NICIRA_AND_STANDARD_MATCH


def test_strict_delete_of_a_flow_is_limited_to_its_cookie(c: codec.Codec) -> None:
    flow = Flow.make(4, 33, {"reg5": 2}, [output(1)])
    msg = roundtrip(c, c.delete_flow(flow))
    assert msg.command == OFPFC_DELETE_STRICT
    assert (msg.cookie, msg.cookie_mask) == (flow.cookie, 2**64 - 1)
    assert (msg.table_id, msg.priority, msg.out_port) == (4, 33, wire.OFPP_ANY)
    assert dict(msg.match._fields2) == {"reg5": 2}
    assert msg.instructions == []
    assert c.flow_mod(FlowMod.delete(flow)) == c.delete_flow(flow)
    assert c.flow_mod(FlowMod.add(flow)) == c.add_flow(flow)


def test_the_codec_cannot_encode_a_table_wide_delete() -> None:
    """vlcp never flushes: every delete it can send is strict, one flow by its cookie."""
    source = inspect.getsource(codec)
    assert re.search(r"OFPFC_DELETE(?!_STRICT)", source) is None
    assert not hasattr(codec.Codec, "delete_flows")


def test_equal_flows_encode_alike_per_command_and_version(c: codec.Codec) -> None:
    first = Flow.make(2, 10, {"reg1": 1}, [output(3)])
    again = Flow.make(2, 10, {"reg1": 1}, [output(3)])  # equal value, different object
    assert c.add_flow(first) == c.add_flow(again)
    assert c.delete_flow(first) == c.delete_flow(again)
    assert c.add_flow(first) != c.delete_flow(first)
    other = codec_for(OFP14 if c.version == OFP13 else OFP13)
    assert other.add_flow(first)[0] != c.add_flow(first)[0]  # the parts' cache has the version


def test_add_of_an_installed_flow_is_refused(c: codec.Codec) -> None:
    installed = InstalledFlow(1, 0, 1, (), b"")
    with pytest.raises(ValueError, match="only a Flow"):
        c.flow_mod(FlowMod("add", installed))


# ---------------------------------------------------------------- actions


def test_output_controller_and_named_ports(c: codec.Codec) -> None:
    assert only_action(c, output("in_port")).port == 0xFFFFFFF8
    plain = only_action(c, controller())
    assert (plain.port, plain.max_len) == (wire.OFPP_CONTROLLER, 0xFFFF)
    nx = only_action(c, controller(max_len=128, reason=1))
    assert type(nx).__name__ == "NXActionController"
    assert (nx.max_len, nx.reason) == (128, 1)


def test_a_metered_controller_action_is_ovs_controller2_with_its_meter(c: codec.Codec) -> None:
    metered = only_action(c, controller(meter_id=7))
    assert type(metered).__name__ == "NXActionController2"
    assert (metered.max_len, metered.meter_id) == (0xFFFF, 7)
    assert not hasattr(metered, "reason")  # OVS's default (ACTION), as plain output has


FLOW_STATS_READER = """
import sys
from vlcp.southbound.openflow.codec import codec_for
(flow,) = codec_for(int(sys.argv[1])).decode_flow_stats([codec_for(int(sys.argv[1])).parse(
    bytes.fromhex(sys.argv[2]))])
print(flow.cookie)
"""


@pytest.mark.parametrize("version", VERSIONS, ids=["of13", "of14"])
def test_a_fresh_process_reads_back_flows_with_a_metered_controller_action(version: int) -> None:
    """What a restarted controller does first: read the switch's flows, before it has
    encoded any metered action (os-ken must know the meter property from the import)."""
    c = codec_for(version)
    flow = Flow.make(5, 100, {"in_port": 7}, [controller(meter_id=7)])
    mod = c.add_flow(flow)
    assert struct.pack("!HHI", 5, 8, 7) in mod  # NXAC2PT_METER_ID, 8 bytes, meter 7
    match_and_instructions = mod[48:]  # a flow-mod and a flow-stats entry: 48 fixed bytes
    entry = struct.pack(
        "!HBxIIHHHHxxxxQQQ",
        48 + len(match_and_instructions),
        5,
        0,
        0,
        100,
        0,
        0,
        0,
        flow.cookie,
        0,
        0,
    )
    body = struct.pack("!HH4x", 1, 0) + entry + match_and_instructions  # OFPMP_FLOW
    reply = struct.pack("!BBHI", version, 19, 8 + len(body), 1) + body
    argv = [sys.executable, "-c", FLOW_STATS_READER, str(version), reply.hex()]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == flow.cookie


def test_set_field_push_pop_vlan_and_group(c: codec.Codec) -> None:
    flow = Flow.make(
        0,
        1,
        {},
        [
            push_vlan(),
            *set_field(vlan_vid=0x1000 | 5, tun_ipv4_dst="192.0.2.9", tunnel_id=42),
            pop_vlan(),
            Action.make("group", group_id=12),
        ],
    )
    acts = applied(roundtrip(c, c.add_flow(flow)))
    names = [type(a).__name__ for a in acts]
    assert names == [
        "OFPActionPushVlan",
        "OFPActionSetField",
        "OFPActionSetField",
        "OFPActionSetField",
        "OFPActionPopVlan",
        "OFPActionGroup",
    ]
    assert acts[0].ethertype == 0x8100
    assert [(a.key, a.value) for a in acts[1:4]] == [
        ("tun_ipv4_dst", "192.0.2.9"),
        ("tunnel_id", 42),
        ("vlan_vid", 0x1005),
    ]
    assert acts[5].group_id == 12


def test_nx_resubmit(c: codec.Codec) -> None:
    act = only_action(c, resubmit(7))
    assert (type(act).__name__, act.table_id, act.in_port) == ("NXActionResubmitTable", 7, 0xFFF8)
    assert only_action(c, resubmit(7, in_port=3)).in_port == 3


def test_nx_dec_ttl_names_no_controller_unless_told(c: codec.Codec) -> None:
    """A routed packet whose TTL runs out is dropped on the switch, not sent up."""
    act = only_action(c, dec_ttl())
    assert (type(act).__name__, act.cnt_ids) == ("NXActionDecTtlCntIds", [])
    assert only_action(c, dec_ttl(1, 2)).cnt_ids == [1, 2]


def test_nx_conjunction_counts_clauses_from_one_like_ovs_ofctl(c: codec.Codec) -> None:
    act = only_action(c, Action.make("nx_conjunction", id=10, clause=2, n_clauses=3))
    assert (act.id, act.clause, act.n_clauses) == (10, 1, 3)  # wire clause is 0-based
    with pytest.raises(ValueError, match="clause 4/3"):
        bad = Action.make("nx_conjunction", id=1, clause=4, n_clauses=3)
        c.add_flow(Flow.make(0, 1, {}, [bad]))


def test_nx_learn_specs(c: codec.Codec) -> None:
    learn = Action.make(
        "nx_learn",
        table=20,
        priority=7,
        idle_timeout=30,
        cookie=0x99,
        specs=[
            {"type": "match", "src": "eth_src", "dst": "eth_dst"},
            {"type": "match", "src": 0x800, "dst": "eth_type"},
            {"type": "load", "src": ("reg1", 0), "dst": ("reg2", 0), "n_bits": 16},
            {"type": "output", "src": "in_port", "n_bits": 16},
        ],
    )
    act = only_action(c, learn)
    assert (act.table_id, act.priority, act.idle_timeout, act.cookie) == (20, 7, 30, 0x99)
    specs = [(type(s).__name__, s.src, s.dst, s.n_bits) for s in act.specs]
    assert specs == [
        ("NXFlowSpecMatch", ("eth_src", 0), ("eth_dst", 0), 48),
        ("NXFlowSpecMatch", 0x800, ("eth_type", 0), 16),
        ("NXFlowSpecLoad", ("reg1", 0), ("reg2", 0), 16),
        ("NXFlowSpecOutput", ("in_port", 0), "", 16),
    ]


def test_nx_ct_with_commit_zone_table_and_nested_actions(c: codec.Codec) -> None:
    ct = Action.make(
        "nx_ct",
        commit=True,
        zone=5,
        table=3,
        actions=(
            Action.make("set_field", field="ct_mark", value=1),
            Action.make("nx_nat", flags=1, ipv4_min="10.0.0.1", ipv4_max="10.0.0.9"),
        ),
    )
    act = only_action(c, ct)
    assert (act.flags, act.zone_src, act.zone_ofs_nbits, act.recirc_table) == (1, "", 5, 3)
    assert [type(a).__name__ for a in act.actions] == ["OFPActionSetField", "NXActionNAT"]
    assert act.actions[1].range_ipv4_min == "10.0.0.1"
    by_register = only_action(c, Action.make("nx_ct", zone=("reg6", 0)))
    assert (by_register.zone_src, by_register.recirc_table) == ("reg6", 0xFF)
    assert by_register.zone_ofs_nbits == (0 << 6) | 15  # bits 0..15 of reg6


def test_nx_reg_load_and_move(c: codec.Codec) -> None:
    load = only_action(c, Action.make("nx_reg_load", field="reg3", value=5, ofs=8, n_bits=4))
    assert (load.dst, load.value, load.ofs_nbits) == ("reg3", 5, (8 << 6) | 3)
    full = only_action(c, Action.make("nx_reg_load", field="metadata", value=1))
    assert full.ofs_nbits == 63
    move = only_action(c, Action.make("nx_reg_move", src="reg0", dst="tunnel_id", n_bits=24))
    assert (move.src_field, move.dst_field, move.n_bits) == ("reg0", "tunnel_id", 24)


def test_every_action_kind_in_the_table_is_covered() -> None:
    covered = {
        "output",
        "controller",
        "set_field",
        "push_vlan",
        "pop_vlan",
        "group",
        "drop",
        "nx_resubmit",
        "nx_dec_ttl",
        "nx_learn",
        "nx_conjunction",
        "nx_ct",
        "nx_nat",
        "nx_reg_load",
        "nx_reg_move",
    }
    assert set(codec.ACTIONS) == covered


# ---------------------------------------------------------------- rejected input


def test_unknown_action_kind_is_named(c: codec.Codec) -> None:
    with pytest.raises(ValueError, match="'teleport'"):
        c.add_flow(Flow.make(0, 1, {}, [Action.make("teleport", to=3)]))


def test_unknown_action_argument_is_named(c: codec.Codec) -> None:
    with pytest.raises(ValueError, match="colour"):
        c.add_flow(Flow.make(0, 1, {}, [Action.make("output", port=1, colour="red")]))


def test_unknown_match_field_is_named(c: codec.Codec) -> None:
    with pytest.raises(ValueError, match="'reg16'"):
        c.add_flow(Flow.make(0, 1, {"reg16": 1}, []))
    with pytest.raises(ValueError, match="'nw_src'"):
        c.delete_flow(Flow.make(0, 1, {"nw_src": "10.0.0.1"}, []))


def test_bad_match_value_is_named(c: codec.Codec) -> None:
    with pytest.raises(ValueError, match="'eth_dst'"):
        c.add_flow(Flow.make(0, 1, {"in_port": 1, "eth_dst": "not-a-mac"}, []))


def test_unknown_set_field_target_and_masked_set_field(c: codec.Codec) -> None:
    with pytest.raises(ValueError, match="'vni'"):
        c.add_flow(Flow.make(0, 1, {}, [Action.make("set_field", field="vni", value=1)]))
    with pytest.raises(ValueError, match="nx_reg_load"):
        c.add_flow(Flow.make(0, 1, {}, [Action.make("set_field", field="reg1", value=(1, 3))]))


def test_unknown_field_inside_a_learn_spec_or_reg_move(c: codec.Codec) -> None:
    with pytest.raises(ValueError, match="'bogus'"):
        c.add_flow(
            Flow.make(0, 1, {}, [Action.make("nx_learn", table=1, specs=[{"src": "bogus"}])])
        )
    with pytest.raises(ValueError, match="'regX'"):
        c.add_flow(Flow.make(0, 1, {}, [Action.make("nx_reg_move", src="regX", dst="reg1")]))


def test_unknown_names_for_ports_groups_roles_and_bundles(c: codec.Codec) -> None:
    with pytest.raises(ValueError, match="'upstairs'"):
        c.packet_out(b"x" * 60, [output("upstairs")])
    with pytest.raises(ValueError):
        c.group_mod("add", 1, "round_robin")
    with pytest.raises(ValueError, match="'boss'"):
        c.role_request("boss")
    with pytest.raises(ValueError, match="'rollback'"):
        c.bundle_ctrl(1, "rollback")  # type: ignore[arg-type]


# ---------------------------------------------------------------- flow stats


def flow_stats_reply(version: int, entries: list[tuple[Flow, bytes]], more: bool = False) -> bytes:
    """A switch's OFPMP_FLOW reply, packed by hand (independently of the encoder)."""
    body = b""
    for flow, match in entries:
        fixed = struct.pack(
            "!BxIIHHHH4xQQQ", flow.table, 12, 0, flow.priority, 0, 0, 0, flow.cookie, 5, 500
        )
        entry = fixed + match
        body += struct.pack("!H", 2 + len(entry)) + entry
    head = struct.pack("!HH4x", 1, 1 if more else 0)
    return wire.HEADER.pack(version, 19, 8 + len(head) + len(body), 9) + head + body


def match_bytes_of(c: codec.Codec, flow: Flow) -> bytes:
    """The padded OXM match inside an encoded flow-mod (it starts at offset 48)."""
    data = c.add_flow(flow)
    (length,) = struct.unpack_from("!H", data, 50)
    return data[48 : 48 + (length + 7) // 8 * 8]


def test_flow_stats_decode_and_strict_delete_of_what_was_read(c: codec.Codec) -> None:
    a = Flow.make(0, 100, {"in_port": 1, "reg0": (4, 0xF)}, [output(2)])
    b = Flow.make(7, 1, {}, [])
    request = c.flow_stats_request(table=7, cookie=0xA5 << 56, cookie_mask=0xFF << 56)
    mp_type, table, out_port, out_group, cookie, mask = struct.unpack_from(
        "!H6xB3xII4xQQ", request, 8
    )
    assert (mp_type, table, out_port, out_group) == (1, 7, wire.OFPP_ANY, 0xFFFFFFFF)
    assert (cookie, mask) == (0xA5 << 56, 0xFF << 56)
    assert c.flow_stats_request()[16] == 0xFF  # all tables

    replies = [
        c.parse(flow_stats_reply(c.version, [(a, match_bytes_of(c, a))], more=True)),
        c.parse(flow_stats_reply(c.version, [(b, match_bytes_of(c, b))])),
    ]
    installed = c.decode_flow_stats(replies)
    assert [(f.cookie, f.table, f.priority) for f in installed] == [
        (a.cookie, 0, 100),
        (b.cookie, 7, 1),
    ]
    assert dict(installed[0].match_fields) == a.match_dict
    assert (installed[0].packet_count, installed[0].byte_count, installed[0].duration_sec) == (
        5,
        500,
        12,
    )
    delete = roundtrip(c, c.delete_flow(installed[0]))
    assert delete.command == OFPFC_DELETE_STRICT
    assert (delete.cookie, delete.cookie_mask, delete.table_id, delete.priority) == (
        a.cookie,
        2**64 - 1,
        0,
        100,
    )
    assert dict(delete.match._fields2) == a.match_dict
    assert c.delete_flow(installed[0]) == c.delete_flow(a)  # same bytes as deleting the Flow


# ---------------------------------------------------------------- other messages


# os-ken has no parser for messages only a controller sends (group-mod, packet-out,
# multipart requests, set-async, barrier request): those are checked field by field.

OUTPUT = struct.Struct("!HHIH6x")


def test_group_mod_and_group_requests(c: codec.Codec) -> None:
    buckets = [Bucket((output(1),), weight=5), Bucket((output(2), output(3)), weight=6)]
    data = c.group_mod("add", 9, "select", buckets)
    header = wire.parse_header(data)
    assert (header.type, header.length) == (15, len(data))
    assert struct.unpack_from("!HBxI", data, 8) == (0, 1, 9)  # add, select, group 9
    offset, found = 16, []
    while offset < len(data):
        length, weight, watch_port, _ = struct.unpack_from("!HHII", data, offset)
        ports = [OUTPUT.unpack_from(data, o)[2] for o in range(offset + 16, offset + length, 16)]
        found.append((weight, watch_port, ports))
        offset += length
    assert found == [(5, wire.OFPP_ANY, [1]), (6, wire.OFPP_ANY, [2, 3])]
    assert struct.unpack_from("!HBxI", c.group_mod("delete", 9), 8) == (2, 0, 9)
    assert struct.unpack_from("!H", c.group_desc_request(), 8) == (7,)  # OFPMP_GROUP_DESC
    assert struct.unpack_from("!H6xI", c.group_stats_request(), 8) == (6, wire.OFPG_ALL)


def test_packet_out(c: codec.Codec) -> None:
    frame = bytes(range(64))
    data = c.packet_out(frame, [output(4)], in_port=2)
    assert wire.parse_header(data).type == 13
    buffer_id, in_port, actions_len = struct.unpack_from("!IIH", data, 8)
    assert (buffer_id, in_port, actions_len) == (wire.OFP_NO_BUFFER, 2, 16)
    assert OUTPUT.unpack_from(data, 24)[:3] == (0, 16, 4)
    assert data[40:] == frame
    in_port_default = struct.unpack_from("!I", c.packet_out(frame, [output("in_port")]), 12)
    assert in_port_default == (wire.OFPP_CONTROLLER,)


@pytest.mark.parametrize(
    "actions",
    [
        [output(4)],
        [output("in_port"), resubmit(3)],
        [*set_field(eth_dst="02:00:00:00:00:09"), output(1), output(2)],
    ],
)
def test_packet_out_bytes_are_os_kens(c: codec.Codec, actions: list[Action]) -> None:
    frame = bytes(range(60))
    ours = c.packet_out(frame, actions, in_port=7)
    theirs = c.parser.OFPPacketOut(
        c.dp, buffer_id=wire.OFP_NO_BUFFER, in_port=7, actions=c.actions(actions), data=frame
    )
    assert ours == c._bytes(theirs)


def test_control_messages(c: codec.Codec) -> None:
    assert c.barrier_request() == wire.HEADER.pack(c.version, 20, 8, 0)
    assert c.features_request() == wire.HEADER.pack(c.version, 5, 8, 0)
    assert roundtrip(c, c.echo_request(b"hi")).data == b"hi"
    assert roundtrip(c, c.echo_reply(b"yo", xid=5)).xid == 5
    role = c.role_request("master", generation_id=3)
    assert wire.parse_header(role).type == 24
    assert struct.unpack_from("!I4xQ", role, 8) == (2, 3)  # OFPCR_ROLE_MASTER
    config = c.set_config(miss_send_len=128)
    assert wire.parse_header(config).type == 9
    assert struct.unpack_from("!HH", config, 8) == (0, 128)


def test_set_async_both_versions(c: codec.Codec) -> None:
    data = c.set_async(packet_in=(1, 0), port_status=(7, 6), flow_removed=(0, 2))
    assert wire.parse_header(data).type == 28
    if c.version == OFP13:
        assert struct.unpack_from("!6I", data, 8) == (1, 0, 7, 6, 0, 2)
    else:
        props = {}
        for offset in range(8, len(data), 8):
            prop_type, length, mask = struct.unpack_from("!HHI", data, offset)
            assert length == 8
            props[prop_type] = mask
        # OFPACPT_*: 0/1 packet-in slave/master, 2/3 port-status, 4/5 flow-removed
        assert props == {0: 0, 1: 1, 2: 6, 3: 7, 4: 2, 5: 0}


def test_bundle_control_uses_the_onf_extension_on_13(c: codec.Codec) -> None:
    msg = roundtrip(c, c.bundle_ctrl(42, "commit"))
    expected = "ONFBundleCtrlMsg" if c.version == OFP13 else "OFPBundleCtrlMsg"
    assert type(msg).__name__ == expected
    assert (msg.bundle_id, msg.type, msg.flags) == (42, 4, 3)
    assert wire.reply_kind(c.bundle_ctrl(1, "open")) == "one"


def test_bundle_add_wraps_a_message_and_keeps_inner_xid_equal(c: codec.Codec) -> None:
    inner = c.add_flow(Flow.make(1, 2, {"reg1": 3}, [output(1)]))
    wrapped = wire.set_xid(c.bundle_add(7, inner), 0xDEAD)
    offset = 24 if c.version == OFP13 else 16
    (bundle_id, flags) = struct.unpack_from("!I2xH", wrapped, offset - 8)
    assert (bundle_id, flags) == (7, 3)
    assert wire.parse_header(wrapped).xid == 0xDEAD
    assert wire.parse_header(wrapped).length == len(wrapped) == offset + len(inner)
    inner_back = roundtrip(c, wrapped[offset:])
    assert inner_back.xid == 0xDEAD
    assert inner_back.cookie == Flow.make(1, 2, {"reg1": 3}, [output(1)]).cookie
    assert wire.reply_kind(wrapped) == "none"


def test_reply_kinds() -> None:
    c = codec_for(OFP14)
    assert wire.reply_kind(c.flow_stats_request()) == "multipart"
    assert wire.reply_kind(c.barrier_request()) == "one"
    assert wire.reply_kind(c.add_flow(Flow.make(0, 1))) == "none"
    assert wire.reply_kind(c.packet_out(b"", [])) == "none"


# ---------------------------------------------------------------- framing and parsing


def test_split_messages_keeps_partial_tail() -> None:
    a = wire.encode_echo(OFP14, False, b"abc", xid=1)
    b = wire.encode_echo(OFP14, True, b"", xid=2)
    buffer = bytearray(a + b + b[:5])
    assert wire.split_messages(buffer) == [a, b]
    assert buffer == b[:5]
    buffer += b[5:]
    assert wire.split_messages(buffer) == [b]
    assert buffer == b""


def test_split_messages_rejects_a_length_below_the_header() -> None:
    with pytest.raises(MalformedMessage, match="< 8"):
        wire.split_messages(bytearray(wire.HEADER.pack(OFP14, 2, 7, 1)))


def test_hello_bitmap_round_trip() -> None:
    hello = wire.encode_hello([OFP13, OFP14])
    assert wire.parse_header(hello).version == OFP14
    assert wire.decode_hello(hello) == {OFP13, OFP14}
    assert wire.decode_hello(wire.HEADER.pack(6, 0, 8, 0)) is None
    with pytest.raises(MalformedMessage):
        wire.decode_hello(wire.HEADER.pack(6, 0, 12, 0) + struct.pack("!HH", 1, 40))


def test_parse_rejects_wrong_version_unknown_type_and_truncated_bodies(c: codec.Codec) -> None:
    other = OFP14 if c.version == OFP13 else OFP13
    with pytest.raises(MalformedMessage, match="version"):
        c.parse(wire.encode_echo(other, False))
    with pytest.raises(MalformedMessage, match="type 200"):
        c.parse(wire.HEADER.pack(c.version, 200, 8, 1))
    with pytest.raises(MalformedMessage):
        c.parse(wire.HEADER.pack(c.version, wire.OFPT_PACKET_IN, 12, 1) + b"\0" * 4)
    with pytest.raises(MalformedMessage, match="length"):
        c.parse(wire.HEADER.pack(c.version, wire.OFPT_ECHO_REPLY, 20, 1))


def test_error_names() -> None:
    assert codec.error_names(OFP13, 4, 6) == ("OFPET_BAD_MATCH", "OFPBMC_BAD_FIELD")
    assert codec.error_names(OFP14, 17, 13) == ("OFPET_BUNDLE_FAILED", "OFPBFC_MSG_FAILED")
    assert codec.error_names(OFP13, 0xFFFF, 2313) == ("OFPET_EXPERIMENTER", "ONFERR_ET_FAILED")
    assert codec.error_names(OFP14, 99, 1) == ("99", "1")
    names = codec.error_names(OFP14, 5, 0)
    error = messages.SwitchError(5, 0, b"", xid=3, type_name=names[0], code_name=names[1])
    assert str(error) == "OFPET_FLOW_MOD_FAILED/OFPFMFC_UNKNOWN (xid 3)"
    assert str(messages.SwitchError(99, 1)) == "99/1 (xid 0)"
