"""Arbitrary JSON in any field of any request: a ModelError (4xx), never another exception.

The API turns anything but a ModelError into a 5xx, and no request may produce one.
"""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vlcp.model import Model, ModelError, Op
from vlcp.model.objects import (
    LogicalNetworkCreate,
    LogicalPortCreate,
    PhysicalNetworkCreate,
    PhysicalPortCreate,
    RouterCreate,
    RouterInterfaceCreate,
    SubnetCreate,
)
from vlcp.store import open_store

from .conftest import fresh_db_dir
from .invariants import check

KINDS = {
    "physical-networks": PhysicalNetworkCreate,
    "physical-ports": PhysicalPortCreate,
    "logical-networks": LogicalNetworkCreate,
    "logical-ports": LogicalPortCreate,
    "subnets": SubnetCreate,
    "routers": RouterCreate,
    "router-interfaces": RouterInterfaceCreate,
}
FIELDS = [
    *sorted({name for model in KINDS.values() for name in model.model_fields}),
    *["x", "Bad", "status", "mtu_", "a" * 70],
]
VALID = {
    "physical-networks": {"type": "vlan", "vlanrange": [[1, 9]]},
    "physical-ports": {"physicalnetwork": "p1", "name": "e0"},
    "logical-networks": {"physicalnetwork": "p1"},
    "logical-ports": {"logicalnetwork": "n1", "subnet": "s1"},
    "subnets": {"logicalnetwork": "n1", "cidr": "10.1.0.0/24"},
    "routers": {},
    "router-interfaces": {"subnet": "s1"},
}
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "10.0.0.1",
            "10.0.0.0/24",
            "fd00::1",
            "fe80::1%eth0",
            "n1",
            "p1",
            "s1",
            "%",
            "",
            "\ud800",
            "02:00:00:00:00:01",
            "vlan",
            "vxlan",
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6),
    json_values,
)
ids = st.one_of(st.sampled_from(["p1", "n1", "s1", "r1", "x1", "a/b", ""]), st.text(max_size=5))
mutated = st.builds(
    lambda kind, action, field, value: Op(
        action, kind, "r1" if kind == "router-interfaces" else None, {**VALID[kind], field: value}
    ),
    st.sampled_from(list(VALID)),
    st.sampled_from(["create", "create", "update"]),
    st.sampled_from(FIELDS),
    json_values,
)
arbitrary = st.builds(
    Op,
    action=st.sampled_from(["create", "update", "delete", "upsert"]),
    kind=st.sampled_from([*KINDS, "widgets"]),
    id=st.one_of(st.none(), ids),
    body=bodies,
)
operations = st.one_of(arbitrary, mutated)


def run(coro: Any) -> Any:
    return LOOP.run_until_complete(coro)


LOOP = asyncio.new_event_loop()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(operations, min_size=1, max_size=3))
def test_any_input_is_answered_with_a_model_error(ops: list[Op]) -> None:
    try:
        run(MODEL.batch(ops))
    except ModelError as exc:
        assert 400 <= exc.status < 500, exc
    for op in ops:
        if op.kind in KINDS and op.kind != "router-interfaces":
            try:
                if op.action == "create":
                    run(MODEL.create(op.kind, op.body))  # type: ignore[arg-type]
                elif op.action == "update":
                    run(MODEL.update(op.kind, op.id, op.body))  # type: ignore[arg-type]
                run(MODEL.get(op.kind, op.id))  # type: ignore[arg-type]
            except ModelError as exc:
                assert 400 <= exc.status < 500, exc
    check(run(MODEL.store.read_prefix("")).values)


def setup_module() -> None:
    global MODEL, DIRECTORY
    DIRECTORY = fresh_db_dir()
    MODEL = Model(run(open_store(f"sqlite://{DIRECTORY}/state.db")))
    run(
        MODEL.batch(
            [
                Op(
                    "create",
                    "physical-networks",
                    body={"id": "p1", "type": "vlan", "vlanrange": [[1, 9]]},
                ),
                Op("create", "logical-networks", body={"id": "n1", "physicalnetwork": "p1"}),
                Op(
                    "create",
                    "subnets",
                    body={"id": "s1", "logicalnetwork": "n1", "cidr": "10.0.0.0/24"},
                ),
                Op("create", "routers", body={"id": "r1"}),
            ]
        )
    )


def teardown_module() -> None:
    run(MODEL.store.close())
    LOOP.close()
    shutil.rmtree(DIRECTORY, ignore_errors=True)


MODEL: Model
DIRECTORY: str
