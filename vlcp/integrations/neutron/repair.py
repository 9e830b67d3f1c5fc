"""The I/O half of a sync, shared by `vlcp-neutron sync` (`cli`) and the driver's periodic
sync (`periodic`): vlcp's side read through REST v1, and `sync.plan`'s changes written
through the driver's `Writer` (idempotent, so a repair racing the driver is harmless)."""

from __future__ import annotations

from collections.abc import Callable

from vlcp.client import ApiError, Client

from . import sync
from .writer import Writer


def read_vlcp(client: Client) -> sync.State:
    return sync.State(
        list(client.list("logical-networks")),
        list(client.list("subnets")),
        list(client.list("logical-ports")),
        list(client.list("routers")),
    )


def apply(writer: Writer, change: sync.Change) -> None:
    if change.kind == "router-interfaces":
        _apply_interface(writer, change)
    elif change.action == "delete":
        writer.delete(change.kind, change.id)
    elif change.action == "update":
        writer.update(change.kind, change.id, change.body or {})
    else:
        writer.create(change.kind, change.body or {})


def _apply_interface(writer: Writer, change: sync.Change) -> None:
    router = change.router or ""
    if change.action == "delete":
        writer.remove_interface(router, change.id)
    else:
        writer.add_interface(router, change.body or {})


def apply_all(writer: Writer, changes: list[sync.Change], report: Callable[[str], None]) -> bool:
    """Write every change, telling `report` each one made (or failed); True if all were."""
    done = True
    for change in changes:
        try:
            apply(writer, change)
        except ApiError as error:
            report(f"failed {change}: {error}")
            done = False
        else:
            report(str(change))
    return done
