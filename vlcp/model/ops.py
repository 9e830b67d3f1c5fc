"""Operations as data: `Op`, and `apply(txn, op)` which runs one inside a transaction.

Every kind's create/update/delete is a function of a store transaction, so a batch runs
many of them in ONE transaction and later operations see what earlier ones wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from vlcp.layout import VNI_RANGES, subnet_state
from vlcp.store import Transaction

from . import physport, router
from .errors import Invalid
from .keys import check_id
from .kinds import BY_NAME, NAMES, ROUTER_INTERFACES
from .physnet import PHYSNETS
from .physport import PHYSPORTS
from .router import ROUTERS

Action = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class Op:
    """One operation of a batch.

    For "router-interfaces", `id` is the router's id; `body` is {"subnet", "ip_address"?,
    "id"?} to create, {"subnet"} to delete. A physical port may be updated or deleted
    without `id`, by its VLCP key in `body`: name, and vhost/systemid/bridge if not default.
    """

    action: Action
    kind: str
    id: str | None = None
    body: dict | None = None


async def apply(txn: Transaction, op: Op) -> dict | None:
    """Run one operation inside `txn` (a batch runs several in one transaction)."""
    body = {} if op.body is None else op.body
    if not isinstance(body, dict):
        raise Invalid(f"body: expected a JSON object, got {type(body).__name__}", field="body")
    if op.kind == ROUTER_INTERFACES:
        return await _apply_interface(txn, op, body)
    kind = BY_NAME.get(op.kind)
    if kind is None:
        raise Invalid(f"kind: {op.kind!r} is not one of {', '.join(NAMES)}", field="kind")
    if op.action == "create":
        if op.id is not None:
            if body.get("id", op.id) != op.id:
                raise Invalid(f"id: {op.id!r} and body id {body['id']!r} differ", field="id")
            body = {**body, "id": op.id}
        return await kind.create(txn, body)
    if op.action not in ("update", "delete"):
        raise Invalid(f"action: {op.action!r} is not create, update or delete", field="action")
    id = op.id
    if id is None and kind is PHYSPORTS and "name" in body:
        keys = {k: body[k] for k in physport.KEY_FIELDS if k in body}
        body = {k: v for k, v in body.items() if k not in physport.KEY_FIELDS}
        if not all(isinstance(v, str) for v in keys.values()):
            raise Invalid("name, vhost, systemid and bridge must be strings", field="name")
        id = await physport.physport_id(txn, **keys)
    if id is None:
        raise Invalid(f"id: is required to {op.action} a {kind.noun}", field="id")
    check_id(id)
    if op.action == "update":
        return await kind.update(txn, id, body)
    await kind.delete(txn, id)
    return None


async def _apply_interface(txn: Transaction, op: Op, body: dict) -> dict | None:
    if op.id is None:
        raise Invalid("id: the router's id is required for router interfaces", field="id")
    check_id(op.id)
    if op.action == "create":
        return await router.add_router_interface(txn, op.id, body)
    if op.action == "delete":
        check_id(body.get("subnet"), "subnet")
        await router.remove_router_interface(txn, op.id, body["subnet"])
        return None
    raise Invalid("action: router interfaces are added and removed, not updated", field="action")


def lock_hint(op: Op) -> set[str]:
    """The contended keys an operation will likely write, known before it runs.

    Only an optimisation: a key missed here is taken when the first run reveals it.
    """
    body = op.body if isinstance(op.body, dict) else {}

    def ref(field: str, key: Callable[[str], str]) -> set[str]:
        value = body.get(field)
        return {key(value)} if isinstance(value, str) else set()

    if op.kind == ROUTER_INTERFACES:
        return ref("subnet", subnet_state) | (
            {ROUTERS.key(op.id)} if isinstance(op.id, str) else set()
        )
    if op.kind == PHYSNETS.name and op.action != "delete" and "vnirange" in body:
        return {VNI_RANGES}
    kind = BY_NAME.get(op.kind)
    if op.action != "create" or kind is None:
        return set()
    return set().union(*(ref(field, key) for field, key in kind.contended))
