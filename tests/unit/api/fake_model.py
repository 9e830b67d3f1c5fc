"""An in-memory stand-in for `vlcp.model.service.Model`, for unit tests of the API layer.

It keeps the contract's observable behaviour (ids, NotFound/Conflict/Invalid with a field,
parents must exist, deletion guards, all-or-nothing batches, waiting for a port to be up)
without a store, so the API's translation of requests and errors can be tested fast and
on its own. (The real model runs under the integration tests and the schemathesis run.)
"""

from __future__ import annotations

import asyncio
import copy
import re
import uuid
from typing import Any

from vlcp.model.errors import Conflict, Invalid, ModelError, NotFound, TimedOut
from vlcp.model.service import Op

KINDS = (
    "physical-networks",
    "physical-ports",
    "logical-networks",
    "logical-ports",
    "subnets",
    "routers",
)
PARENTS = {
    "physical-ports": ("physicalnetwork", "physical-networks"),
    "logical-networks": ("physicalnetwork", "physical-networks"),
    "logical-ports": ("logicalnetwork", "logical-networks"),
    "subnets": ("logicalnetwork", "logical-networks"),
}
ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _error(cls: type[ModelError], message: str, field: str | None = None) -> ModelError:
    return cls(message, field=field)


class FakeModel:
    """The model contract over dicts in memory."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in KINDS}
        self.interfaces: dict[str, dict[str, dict[str, Any]]] = {}
        self.status: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []

    # -- the contract ------------------------------------------------------------------

    async def create(self, kind: str, body: dict) -> dict:
        return (await self.batch([Op("create", kind, None, body)]))[0]  # type: ignore[return-value]

    async def get(self, kind: str, id: str) -> dict:
        self._kind(kind)
        if id not in self.objects[kind]:
            raise _error(NotFound, f"{kind} {id!r} does not exist", "id")
        return copy.deepcopy(self.objects[kind][id])

    async def list(
        self,
        kind: str,
        filters: dict[str, object] | None = None,
        limit: int = 1000,
        after: str | None = None,
    ) -> list[dict]:
        self._kind(kind)
        found = [
            copy.deepcopy(obj)
            for id, obj in sorted(self.objects[kind].items())
            if (after is None or id > after)
            and all(obj.get(k) == v for k, v in (filters or {}).items())
        ]
        return found[:limit]

    async def update(self, kind: str, id: str, body: dict) -> dict:
        return (await self.batch([Op("update", kind, id, body)]))[0]  # type: ignore[return-value]

    async def delete(self, kind: str, id: str) -> None:
        await self.batch([Op("delete", kind, id, None)])

    async def add_router_interface(self, router: str, body: dict) -> dict:
        result = await self.batch([Op("create", "router-interfaces", router, body)])
        return result[0]  # type: ignore[return-value]

    async def remove_router_interface(self, router: str, subnet: str) -> None:
        await self.batch([Op("delete", "router-interfaces", router, {"subnet": subnet})])

    async def list_router_interfaces(self, router: str) -> list[dict]:
        await self.get("routers", router)
        return [copy.deepcopy(i) for _, i in sorted(self.interfaces.get(router, {}).items())]

    async def batch(self, ops: list[Op]) -> list[dict | None]:
        saved = copy.deepcopy((self.objects, self.interfaces))
        try:
            return [self._apply(op) for op in ops]
        except ModelError:
            self.objects, self.interfaces = saved
            raise

    async def get_port(self, id: str) -> dict:
        return {**await self.get("logical-ports", id), "status": self.status.get(id)}

    async def port_status(self, id: str) -> dict | None:
        return self.status.get(id)

    async def port_statuses(self, ids: list[str]) -> dict[str, dict | None]:
        self.calls.append(f"port_statuses {len(ids)}")
        return {id: copy.deepcopy(self.status.get(id)) for id in ids}

    async def wait_port_up(self, id: str, timeout: float) -> dict:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            port = await self.get("logical-ports", id)
            status = self.status.get(id)
            if status and status.get("state") == "up":
                return {**port, "status": status}
            if asyncio.get_running_loop().time() >= deadline:
                raise _error(TimedOut, f"logical port {id!r} not up after {timeout:g} s")
            await asyncio.sleep(0.01)

    # -- one operation -------------------------------------------------------------------

    def _kind(self, kind: str) -> None:
        if kind not in self.objects:
            raise _error(Invalid, f"unknown kind {kind!r}", "kind")

    def _apply(self, op: Op) -> dict | None:
        self.calls.append(f"{op.action} {op.kind}")
        if op.kind == "router-interfaces":
            return self._interface(op)
        self._kind(op.kind)
        store = self.objects[op.kind]
        body = dict(op.body or {})
        if op.action == "create":
            new_id = body.pop("id", None) or uuid.uuid4().hex
            if not isinstance(new_id, str) or not ID.match(new_id):
                raise _error(Invalid, f"id {new_id!r}: letters, digits, '.', '_', '-'", "id")
            if new_id in store:
                raise _error(Conflict, f"{op.kind} {new_id!r} already exists", "id")
            self._check(op.kind, body)
            store[new_id] = {"id": new_id, **body}
            return copy.deepcopy(store[new_id])
        if op.id not in store:
            raise _error(NotFound, f"{op.kind} {op.id!r} does not exist", "id")
        if op.action == "update":
            if "id" in body and body["id"] != op.id:
                raise _error(Invalid, "id cannot change", "id")
            self._check(op.kind, body)
            store[op.id].update(body)
            return copy.deepcopy(store[op.id])
        for child, (field, parent) in PARENTS.items():
            users = [i for i, o in self.objects[child].items() if o.get(field) == op.id]
            if parent == op.kind and users:
                raise _error(Conflict, f"{op.kind} {op.id!r} is used by {child} {users[0]!r}")
        if op.kind == "routers" and self.interfaces.get(op.id):
            raise _error(Conflict, f"router {op.id!r} has interfaces")
        del store[op.id]
        return None

    def _check(self, kind: str, body: dict) -> None:
        for name, value in body.items():
            if name == "mtu" and (not isinstance(value, int) or not 68 <= value <= 65535):
                raise _error(Invalid, f"mtu: {value!r} is not an integer in 68..65535", "mtu")
        if kind in PARENTS:
            field, parent = PARENTS[kind]
            if field in body and body[field] not in self.objects[parent]:
                raise _error(NotFound, f"{parent} {body[field]!r} does not exist", field)

    def _interface(self, op: Op) -> dict | None:
        body = dict(op.body or {})
        if op.id not in self.objects["routers"]:
            raise _error(NotFound, f"router {op.id!r} does not exist", "router")
        subnet = body.get("subnet")
        if subnet not in self.objects["subnets"]:
            raise _error(NotFound, f"subnet {subnet!r} does not exist", "subnet")
        mine = self.interfaces.setdefault(op.id, {})
        if op.action == "delete":
            if subnet not in mine:
                raise _error(NotFound, f"router {op.id!r} has no interface on {subnet!r}")
            del mine[subnet]
            return None
        if subnet in mine:
            raise _error(Conflict, f"router {op.id!r} is already on subnet {subnet!r}", "subnet")
        mine[subnet] = {"id": body.get("id") or uuid.uuid4().hex, "router": op.id, **body}
        return copy.deepcopy(mine[subnet])
