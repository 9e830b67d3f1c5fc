"""Neutron routers as vlcp's distributed routers, through Neutron's callbacks.

Neutron's L3 service plugin (`router`) keeps routers in its database and publishes an
event after each change; these hooks, subscribed by the mechanism driver, write the same
change to vlcp: a router (with its extra routes) and one interface per IPv4 subnet it is
attached to. The router's ports themselves are not logical ports (`mapping.ROUTER_OWNERS`):
vlcp's router answers for the subnet's gateway address on every server. Errors in these
*after* events are logged by Neutron and do not fail the request.
"""

from __future__ import annotations

from typing import Any

from neutron_lib.callbacks import events, registry, resources
from oslo_log import log

from vlcp.client import ApiError

from . import mapping
from .writer import Writer

LOG = log.getLogger(__name__)


class RouterHooks:
    """Callbacks that mirror Neutron's routers and router interfaces into vlcp."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    def subscribe(self) -> None:
        registry.subscribe(self.created, resources.ROUTER, events.AFTER_CREATE)
        registry.subscribe(self.updated, resources.ROUTER, events.AFTER_UPDATE)
        registry.subscribe(self.deleted, resources.ROUTER, events.AFTER_DELETE)
        registry.subscribe(self.attached, resources.ROUTER_INTERFACE, events.AFTER_CREATE)
        registry.subscribe(self.detached, resources.ROUTER_INTERFACE, events.AFTER_DELETE)

    def created(self, resource: str, event: str, trigger: Any, payload: Any) -> None:
        self._logged(lambda: self.writer.create("routers", mapping.router(payload.latest_state)))

    def updated(self, resource: str, event: str, trigger: Any, payload: Any) -> None:
        changes = mapping.router_changes(payload.latest_state)
        self._logged(lambda: self.writer.update("routers", payload.resource_id, changes))

    def deleted(self, resource: str, event: str, trigger: Any, payload: Any) -> None:
        self._logged(lambda: self.writer.delete("routers", payload.resource_id))

    def attached(self, resource: str, event: str, trigger: Any, payload: Any) -> None:
        for body in mapping.router_interfaces(payload.metadata["port"]):
            self._logged(lambda b=body: self.writer.add_interface(payload.resource_id, b))

    def detached(self, resource: str, event: str, trigger: Any, payload: Any) -> None:
        for subnet in payload.metadata.get("subnet_ids") or []:
            self._logged(lambda s=subnet: self.writer.remove_interface(payload.resource_id, s))

    @staticmethod
    def _logged(call: Any) -> None:
        try:
            call()
        except ApiError as error:
            LOG.error("vlcp: a router change was not written: %s", error)
