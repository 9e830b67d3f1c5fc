"""What controllers report of their modules, written as they would, for the API half's tests.

The API half may not import the pipeline, so its tests use this stand-in catalog: the
built-in modules' names and dependencies, in the `module-status/<system-id>` shape of
`vlcp.layout.module_status`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from vlcp.layout import chassis_key, module_status
from vlcp.store import Store, Transaction

GRAPH: dict[str, tuple[str, ...]] = {
    "ingress": (),
    "port_security": ("ingress",),
    "arp_responder": ("ingress",),
    "l2_forward": ("ingress",),
    "vxlan": ("ingress", "l2_forward"),
    "vlan": ("ingress", "l2_forward"),
}
DEFAULT = ("ingress", "port_security", "l2_forward", "vxlan")
SCHEMA = {"type": "object", "properties": {"macs": {"type": "array"}}}
"""A settings schema, as a configurable module reports it."""


def status(
    *,
    loaded: Iterable[str] = DEFAULT,
    default: Sequence[str] = DEFAULT,
    generations: Mapping[str, int] | None = None,
    errors: Mapping[str, str] | None = None,
    graph: Mapping[str, Sequence[str]] = GRAPH,
    configurable: Iterable[str] = (),
) -> dict[str, Any]:
    """A `module-status/` value; the `configurable` modules report a settings schema."""
    return {
        "known": {
            name: {
                "doc": f"the {name} module",
                "depends": list(depends),
                "tables": [name],
                "source": "builtin",
                "settings": SCHEMA if name in configurable else None,
            }
            for name, depends in graph.items()
        },
        "default": list(default),
        "loaded": sorted(loaded),
        "generations": dict(generations or {}),
        "errors": dict(errors or {}),
        "since": 1700000000.0,
    }


async def put(store: Store, values: Mapping[str, Any]) -> None:
    """Write keys as their owners would (None deletes)."""

    async def write(txn: Transaction) -> None:
        for key, value in values.items():
            if value is None:
                txn.delete(key)
            else:
                txn.put(key, value)

    await store.transact(write)


async def report(store: Store, server: str, **fields: Any) -> dict[str, Any]:
    """`server`'s controller reports its modules (see `status` for the fields)."""
    value = status(**fields)
    await put(store, {module_status(server): value})
    return value


async def present(store: Store, server: str) -> None:
    """`server`'s controller is running (its presence key, without a session here)."""
    await put(store, {chassis_key(server): {"vtep": "192.0.2.1", "bridge": "br0", "node": server}})
