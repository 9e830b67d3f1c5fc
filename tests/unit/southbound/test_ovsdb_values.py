"""OVSDB value decoding/encoding and update2 diffs, checked against the real schemas' types."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from vlcp.southbound.ovsdb import ops
from vlcp.southbound.ovsdb.errors import ProtocolError, TransactError, describe_op
from vlcp.southbound.ovsdb.schema import ColumnType, DatabaseSchema
from vlcp.southbound.ovsdb.values import (
    NamedUuid,
    apply_diff,
    decode_value,
    encode_value,
)

VSWITCH = Path("/usr/share/openvswitch/vswitch.ovsschema")
VTEP = Path("/usr/share/openvswitch/vtep.ovsschema")
U1 = uuid.UUID("11111111-2222-3333-4444-555555555555")
U2 = uuid.UUID("66666666-2222-3333-4444-555555555555")


def column(table: str, name: str) -> ColumnType:
    schema = DatabaseSchema.from_json(json.loads(VSWITCH.read_text()))
    return schema.table(table).column(name).type


needs_schemas = pytest.mark.skipif(
    not (VSWITCH.exists() and VTEP.exists()), reason="OVS schemas not installed"
)


@needs_schemas
def test_both_shipped_schemas_parse() -> None:
    for path in (VSWITCH, VTEP):
        schema = DatabaseSchema.from_json(json.loads(path.read_text()))
        assert schema.tables
    vtep = DatabaseSchema.from_json(json.loads(VTEP.read_text()))
    assert vtep.name == "hardware_vtep"
    assert vtep.table("Physical_Switch").column("tunnel_ips").type.is_set


@needs_schemas
def test_column_shapes_follow_the_schema() -> None:
    assert column("Bridge", "name").is_scalar
    assert column("Bridge", "fail_mode").is_optional
    assert column("Bridge", "fail_mode").key.enum == {"standalone", "secure"}
    assert column("Bridge", "ports").is_set
    assert column("Bridge", "ports").key.ref_table == "Port"
    assert column("Interface", "external_ids").is_map


@needs_schemas
@pytest.mark.parametrize(
    ("table", "col", "wire", "value"),
    [
        ("Bridge", "name", "br0", "br0"),
        ("Bridge", "fail_mode", "secure", "secure"),
        ("Bridge", "fail_mode", ["set", []], None),
        ("Bridge", "protocols", "OpenFlow13", frozenset({"OpenFlow13"})),
        (
            "Bridge",
            "protocols",
            ["set", ["OpenFlow13", "OpenFlow14"]],
            {"OpenFlow13", "OpenFlow14"},
        ),
        ("Bridge", "ports", ["set", [["uuid", str(U1)], ["uuid", str(U2)]]], {U1, U2}),
        ("Interface", "ofport", 3, 3),
        ("Interface", "ofport", ["set", []], None),
        ("Interface", "external_ids", ["map", [["iface-id", "lp1"]]], {"iface-id": "lp1"}),
        ("Interface", "external_ids", ["map", []], {}),
        ("Port", "tag", 100, 100),
        ("Port", "trunks", ["set", [1, 2]], {1, 2}),
        ("Open_vSwitch", "next_cfg", 0, 0),
        ("Queue", "other_config", ["map", []], {}),
    ],
)
def test_typed_decoding(table: str, col: str, wire: object, value: object) -> None:
    decoded = decode_value(wire, column(table, col))
    assert decoded == value
    if isinstance(value, set):
        assert isinstance(decoded, frozenset)


@needs_schemas
@pytest.mark.parametrize(
    ("table", "col", "wire"),
    [
        ("Bridge", "name", 3),  # wrong atom type
        ("Bridge", "name", ["set", []]),  # required value missing
        ("Bridge", "fail_mode", ["set", ["a", "b"]]),  # too many for 0..1
        ("Interface", "ofport", True),  # bool is not an integer
        ("Interface", "external_ids", "x"),  # not a map
        ("Bridge", "ports", ["set", [["uuid", "not-a-uuid"]]]),
        ("Bridge", "ports", ["set", "x"]),
        ("Interface", "external_ids", ["map", [["k"]]]),
    ],
)
def test_values_that_do_not_fit_the_column_are_refused(table: str, col: str, wire: object) -> None:
    with pytest.raises(ProtocolError):
        decode_value(wire, column(table, col))


def test_untyped_decoding() -> None:
    assert decode_value(["set", [1, 2]]) == frozenset({1, 2})
    assert decode_value(["map", [["a", ["uuid", str(U1)]]]]) == {"a": U1}
    assert decode_value(["uuid", str(U1)]) == U1
    assert decode_value("x") == "x"
    with pytest.raises(ProtocolError):
        decode_value(["named-uuid", "x"])
    with pytest.raises(ProtocolError):
        decode_value({"a": 1})


def test_real_columns_coerce_integers() -> None:
    real = ColumnType.from_json("real")
    assert decode_value(3, real) == 3.0
    assert isinstance(decode_value(3, real), float)


# ---------------------------------------------------------------- update2 diffs


@needs_schemas
def test_set_diff_is_a_symmetric_difference() -> None:
    ports = column("Bridge", "ports")
    old = frozenset({U1})
    assert apply_diff(old, ["set", [["uuid", str(U1)], ["uuid", str(U2)]]], ports) == {U2}
    assert apply_diff(old, ["uuid", str(U2)], ports) == {U1, U2}


@needs_schemas
def test_map_diff_adds_removes_and_replaces() -> None:
    ext = column("Interface", "external_ids")
    old = {"keep": "1", "drop": "2", "change": "3"}
    diff = ["map", [["drop", "2"], ["change", "30"], ["new", "4"]]]
    assert apply_diff(old, diff, ext) == {"keep": "1", "change": "30", "new": "4"}
    assert old == {"keep": "1", "drop": "2", "change": "3"}  # not mutated


@needs_schemas
def test_single_valued_columns_carry_the_new_value() -> None:
    """What ovsdb-server 3.1 actually sends for 0..1 columns (seen on the wire)."""
    fail_mode = column("Bridge", "fail_mode")
    assert apply_diff("secure", "standalone", fail_mode) == "standalone"
    assert apply_diff("secure", ["set", []], fail_mode) is None
    assert apply_diff(None, "secure", fail_mode) == "secure"
    assert apply_diff("br0", "br1", column("Bridge", "name")) == "br1"


@needs_schemas
def test_a_diff_that_does_not_fit_is_refused() -> None:
    with pytest.raises(ProtocolError):
        apply_diff({"a": "b"}, "x", column("Interface", "external_ids"))
    with pytest.raises(ProtocolError):
        apply_diff("not a set", ["set", []], column("Bridge", "ports"))


# ---------------------------------------------------------------- encoding and ops


def test_encoding_python_values() -> None:
    assert encode_value(None) == ["set", []]
    assert encode_value(U1) == ["uuid", str(U1)]
    assert encode_value(NamedUuid("p")) == ["named-uuid", "p"]
    assert encode_value({"a": 1}) == ["map", [["a", 1]]]
    assert encode_value(frozenset({"x"})) == ["set", ["x"]]
    assert encode_value([1, 2]) == ["set", [1, 2]]
    with pytest.raises(TypeError):
        encode_value(object())


def test_op_builders_produce_rfc7047_operations() -> None:
    assert ops.insert("Port", {"name": "p", "interfaces": {NamedUuid("i")}}, "p") == {
        "op": "insert",
        "table": "Port",
        "row": {"name": "p", "interfaces": ["set", [["named-uuid", "i"]]]},
        "uuid-name": "p",
    }
    assert ops.mutate("Bridge", [ops.eq("name", "br0")], [("ports", "delete", {U1})]) == {
        "op": "mutate",
        "table": "Bridge",
        "where": [["name", "==", "br0"]],
        "mutations": [["ports", "delete", ["set", [["uuid", str(U1)]]]]],
    }


def test_transact_errors_name_the_failing_operation() -> None:
    op = ops.wait("Bridge", [ops.eq("name", "nobr")], ["name"], [{"name": "nobr"}])
    error = TransactError("Open_vSwitch", 2, op, "timed out", '"where" clause test failed', [])
    assert str(error) == (
        'transaction on Open_vSwitch failed at op 2 (wait on Bridge where name == "nobr"): '
        'timed out: "where" clause test failed'
    )
    commit = TransactError("Open_vSwitch", None, None, "referential integrity violation", "", [])
    assert "failed at commit: referential integrity violation" in str(commit)
    assert describe_op({"op": "comment", "comment": "x"}) == "comment"
