"""Property tests: random sequences of operations against the sqlite store.

After every step the whole store is checked (`invariants.check`): no two ports of a network
share a MAC or an IP, no VLAN id is allocated twice in a physical network, no VNI twice
at all (the vniranges of two vxlan physical networks never overlap), no object
outlives its parent (the deletion guards), and every derived key and counter matches the
objects. A request or batch that fails must leave the store exactly as it was. Steps also
run concurrently through two `Model`s on two store connections, so optimistic conflicts
and the per-key locks are exercised too.
"""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from vlcp.model import Model, ModelError, Op
from vlcp.store import open_store

from .conftest import fresh_db_dir
from .invariants import check

PHYSNETS = ["p0", "p1", "p2", "p3"]
LOGNETS = ["n0", "n1", "n2", "n3"]
SUBNETS = ["s0", "s1", "s2", "s3", "s4"]
PORTS = [f"lp{i}" for i in range(8)]
ROUTERS = ["r0", "r1"]
MACS = ["02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"]
CIDRS = ["10.0.0.0/29", "10.0.0.8/29", "10.0.0.0/28", "10.0.1.0/30", "fd00::/125"]
ADDRESSES = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.9", "10.0.0.10", "10.0.1.1", "fd00::2"]


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(None), strategy)


def rarely(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """None three times out of four."""
    return st.one_of(st.just(None), st.just(None), st.just(None), strategy)


def body(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict]:
    """A dict drawing each field; fields drawn as None are left out."""
    return st.fixed_dictionaries(fields).map(
        lambda d: {k: v for k, v in d.items() if v is not None}
    )


span = st.tuples(st.integers(1, 5), st.integers(0, 6)).map(list)
physnet_create = st.one_of(
    body(
        id=st.sampled_from(PHYSNETS),
        type=st.just("vlan"),
        vlanrange=st.lists(span, min_size=1, max_size=2),
    ),
    body(
        id=st.sampled_from(PHYSNETS),
        type=st.just("vxlan"),
        vnirange=st.lists(span, min_size=1, max_size=2),
    ),
    body(id=st.sampled_from(PHYSNETS), type=st.sampled_from(["native", "local"])),
).map(lambda b: Op("create", "physical-networks", body=b))
physnet_update = st.builds(
    lambda id, field, value: Op("update", "physical-networks", id, {field: value}),
    st.sampled_from(PHYSNETS),
    st.sampled_from(["vlanrange", "vnirange"]),
    st.lists(span, min_size=1, max_size=2),
)
physport_create = body(
    physicalnetwork=st.sampled_from(PHYSNETS),
    name=st.sampled_from(["e0", "e1"]),
    systemid=optional(st.sampled_from(["%", "h1"])),
    bridge=optional(st.sampled_from(["%", "b1"])),
).map(lambda b: Op("create", "physical-ports", body=b))
physport_delete = body(
    name=st.sampled_from(["e0", "e1"]),
    systemid=optional(st.sampled_from(["%", "h1"])),
    bridge=optional(st.sampled_from(["%", "b1"])),
).map(lambda b: Op("delete", "physical-ports", body=b))
lognet_create = body(
    id=st.sampled_from(LOGNETS),
    physicalnetwork=st.sampled_from(PHYSNETS),
    vlanid=optional(st.integers(0, 6)),
    vni=optional(st.integers(0, 6)),
).map(lambda b: Op("create", "logical-networks", body=b))
lognet_update = st.builds(
    lambda id, b: Op("update", "logical-networks", id, b),
    st.sampled_from(LOGNETS),
    body(
        vlanid=optional(st.integers(1, 6)),
        vni=optional(st.integers(1, 6)),
        mtu=optional(st.just(1400)),
    ),
)
subnet_create = body(
    id=st.sampled_from(SUBNETS),
    logicalnetwork=st.sampled_from(LOGNETS),
    cidr=st.sampled_from(CIDRS),
    gateway=optional(st.sampled_from(ADDRESSES)),
    isexternal=optional(st.booleans()),
).map(lambda b: Op("create", "subnets", body=b))
subnet_update = st.builds(
    lambda id, b: Op("update", "subnets", id, b),
    st.sampled_from(SUBNETS),
    body(
        cidr=optional(st.sampled_from(CIDRS)),
        gateway=optional(st.sampled_from(ADDRESSES)),
        allocated_end=optional(st.sampled_from(ADDRESSES)),
    ),
)
lport_create = body(
    id=st.sampled_from(PORTS),
    logicalnetwork=st.sampled_from(["n0", "n0", "n1", "n1", "n2", "n3"]),
    subnet=rarely(st.sampled_from(["s0", "s1", "s2"])),
    ip_address=rarely(st.sampled_from(ADDRESSES)),
    mac_address=rarely(st.sampled_from(MACS)),
).map(lambda b: Op("create", "logical-ports", body=b))
lport_update = st.builds(
    lambda id, b: Op("update", "logical-ports", id, b),
    st.sampled_from(PORTS),
    st.fixed_dictionaries(
        {},
        optional={
            "subnet": optional(st.sampled_from(SUBNETS)),
            "ip_address": optional(st.sampled_from(ADDRESSES)),
            "mac_address": st.sampled_from(MACS),
        },
    ),
)
router_create = st.builds(
    lambda id: Op("create", "routers", body={"id": id}), st.sampled_from(ROUTERS)
)
interface_add = st.builds(
    lambda r, b: Op("create", "router-interfaces", r, b),
    st.sampled_from(ROUTERS),
    body(subnet=st.sampled_from(SUBNETS), ip_address=optional(st.sampled_from(ADDRESSES))),
)
interface_remove = st.builds(
    lambda r, s: Op("delete", "router-interfaces", r, {"subnet": s}),
    st.sampled_from(ROUTERS),
    st.sampled_from(SUBNETS),
)
delete = st.one_of(
    st.builds(lambda i, k=k: Op("delete", k, i), st.sampled_from(ids))
    for k, ids in [
        ("physical-networks", PHYSNETS),
        ("logical-networks", LOGNETS),
        ("subnets", SUBNETS),
        ("logical-ports", PORTS),
        ("routers", ROUTERS),
    ]
)
# creations weigh more, so the store fills up and guards and collisions come into play
operation = st.one_of(
    physnet_create,
    lognet_create,
    subnet_create,
    lport_create,
    lport_create,
    lport_create,
    physport_create,
    router_create,
    interface_add,
    physnet_update,
    lognet_update,
    subnet_update,
    lport_update,
    physport_delete,
    interface_remove,
    delete,
)


@st.composite
def chain(draw: st.DrawFn) -> list[Op]:
    """A batch building a network top-down; it succeeds when its ids are still free."""
    pn, ln, sn = (draw(st.sampled_from(ids)) for ids in (PHYSNETS, LOGNETS, SUBNETS))
    # a VNI range of its own (the random ones lie in 1..6), so the chain is not refused
    # for overlapping another vxlan network's range
    base = 10 * (PHYSNETS.index(pn) + 1)
    vnis = [[base, base + 2]]
    ops = [
        Op("create", "physical-networks", body={"id": pn, "type": "vxlan", "vnirange": vnis}),
        Op("create", "logical-networks", body={"id": ln, "physicalnetwork": pn}),
        Op(
            "create",
            "subnets",
            body={"id": sn, "logicalnetwork": ln, "cidr": draw(st.sampled_from(CIDRS))},
        ),
    ]
    for id in draw(st.lists(st.sampled_from(PORTS), max_size=3)):
        ops.append(
            Op("create", "logical-ports", body={"id": id, "logicalnetwork": ln, "subnet": sn})
        )
    start = draw(st.integers(0, 2))
    return ops[start:]


BASE = [
    Op("create", "physical-networks", body={"id": "p0", "type": "vlan", "vlanrange": [[1, 4]]}),
    Op("create", "logical-networks", body={"id": "n0", "physicalnetwork": "p0"}),
    Op("create", "logical-networks", body={"id": "n1", "physicalnetwork": "p0"}),
    Op(
        "create",
        "subnets",
        body={"id": "s0", "logicalnetwork": "n0", "cidr": "10.0.0.0/29", "gateway": "10.0.0.1"},
    ),
    Op("create", "subnets", body={"id": "s1", "logicalnetwork": "n1", "cidr": "10.0.0.0/28"}),
]


class ModelMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.directory = fresh_db_dir()
        url = f"sqlite://{self.directory}/state.db"
        self.stores = [self.run(open_store(url)), self.run(open_store(url))]
        self.models = [Model(s) for s in self.stores]
        self.most_ports = 0

    @initialize(base=st.booleans())
    def start(self, base: bool) -> None:
        """Half the runs start from a small network, so deep operations happen often."""
        if base:
            self.run(self.models[0].batch(BASE))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def snapshot(self) -> dict:
        values = self.run(self.stores[0].read_prefix("")).values
        self.most_ports = max(self.most_ports, sum(k.startswith("lport/") for k in values))
        return values

    def attempt(self, call: Any, what: str) -> None:
        before = self.snapshot()
        try:
            self.run(call)
            event(f"{what}: ok")
        except ModelError as exc:
            event(f"{what}: {type(exc).__name__}")
            assert self.snapshot() == before, "a failed request changed the store"
        check(self.snapshot())

    @rule(op=operation)
    def single(self, op: Op) -> None:
        self.attempt(self.models[0].batch([op]), f"{op.action} {op.kind}")

    @rule(ops=st.one_of(st.lists(operation, min_size=2, max_size=5), chain()))
    def batch(self, ops: list[Op]) -> None:
        self.attempt(self.models[1].batch(ops), "batch")

    @rule(ops=st.lists(operation, min_size=2, max_size=8))
    def concurrent(self, ops: list[Op]) -> None:
        """Operations racing through two processes' worth of Model and store connection."""

        async def race() -> None:
            calls = [self.models[i % 2].batch([op]) for i, op in enumerate(ops)]
            for result in await asyncio.gather(*calls, return_exceptions=True):
                if not isinstance(result, list | ModelError):
                    raise result

        self.run(race())
        check(self.snapshot())

    def teardown(self) -> None:
        event(f"most ports at once: {min(self.most_ports, 6)}")
        for store in self.stores:
            self.run(store.close())
        self.loop.close()
        shutil.rmtree(self.directory, ignore_errors=True)


ModelMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestModelProperties = ModelMachine.TestCase
