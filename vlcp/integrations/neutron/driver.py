"""`VlcpMechanismDriver`: ML2's hooks, each a REST v1 write of `mapping`'s body.

Only Neutron's environment imports this module (it needs neutron-lib and oslo). The hooks:

- *precommit* checks that vlcp can represent the resource as Neutron means it (one
  segment of a type vlcp carries, DHCP on, port security on, one IPv4 address per port:
  `mapping.Unsupported` becomes a 400 and Neutron's transaction rolls back): nothing is
  written to vlcp inside Neutron's transaction, which may still roll back;
- *postcommit* writes through `Writer` (retried, idempotent). vlcp refusing the write (a
  4xx: an unknown physical network, a tag in use) is the user's error: it is raised as a
  Neutron error carrying vlcp's message, and ML2 deletes what it just created. vlcp
  unreachable after the retries is logged and not raised: Neutron's object stays, and
  `sync` creates it in vlcp later (`vlcp-neutron sync`, or `periodic` every
  `sync_interval` seconds);
- `bind_port` binds `vif_type=ovs` on a host where a vlcp controller runs (a server of
  `GET /v1/modules`, by its system-id), with the integration bridge in `vif_details`;
- a port bound there gets an L2 provisioning block, which a thread lifts once vlcp reports
  the port up (`GET /v1/logical-ports/{id}?wait=up`): ML2 then makes it ACTIVE;
- with Neutron's L3 service plugin (`router`), `routers.RouterHooks` mirror routers and
  their interfaces into vlcp's distributed routers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from neutron.db import provisioning_blocks
from neutron_lib import constants, exceptions
from neutron_lib import context as n_context
from neutron_lib.api.definitions import portbindings
from neutron_lib.callbacks import resources
from neutron_lib.plugins.ml2 import api
from oslo_config import cfg
from oslo_db import exception as db_exception
from oslo_log import log
from sqlalchemy import exc as sa_exc

from vlcp.client import ApiError, Client

from . import mapping
from .periodic import PeriodicSync
from .routers import RouterHooks
from .writer import Writer, unavailable

LOG = log.getLogger(__name__)

GROUP = "ml2_vlcp"
OPTIONS = [
    cfg.StrOpt("api_url", default="http://127.0.0.1:8081", help="vlcp's REST API"),
    cfg.StrOpt("api_token", secret=True, help="vlcp's API bearer token, if it has one"),
    cfg.DictOpt(
        "physical_network_mappings",
        default={},
        help="Neutron physical network:vlcp physical network id (default: the same name)",
    ),
    cfg.StrOpt(
        "vxlan_physical_network",
        default="vxlan",
        help="The vlcp vxlan physical network whose VNI range covers Neutron's vni_ranges",
    ),
    cfg.StrOpt("integration_bridge", default="br-int", help="The OVS bridge vlcp controls"),
    cfg.IntOpt("write_attempts", default=3, help="Tries of each write while vlcp is down"),
    cfg.IntOpt("port_up_timeout", default=120, help="Seconds to wait for a bound port up"),
    cfg.IntOpt(
        "sync_interval",
        default=300,
        help="Seconds between the periodic repairs of vlcp from Neutron's database (0: none)",
    ),
]
SUPPORTED_TYPES = ("flat", "vlan", "vxlan")
COMPLETE_ATTEMPTS = 5
"""Tries to lift a port's provisioning block: a database may refuse a second writer for
a moment (sqlite's "database is locked"), and no request retries this thread's write."""
DATABASE_BUSY = (db_exception.DBError, sa_exc.OperationalError)
"""What that refusal raises: oslo.db's error, or SQLAlchemy's own when oslo.db's filters
do not wrap it (two ports coming up at once, each lifting its block from its thread)."""


class VlcpError(exceptions.BadRequest):
    """vlcp refused a write (400): its own message, naming the field, for the user."""

    message = "vlcp refused this: %(reason)s"


class VlcpConflict(exceptions.Conflict):
    """vlcp found the write in conflict with its state (409)."""

    message = "vlcp refused this: %(reason)s"


class VlcpMechanismDriver(api.MechanismDriver):
    """Neutron networks, subnets and ports as vlcp's; ports bound on vlcp's servers."""

    def initialize(self) -> None:
        cfg.CONF.register_opts(OPTIONS, GROUP)
        conf = cfg.CONF[GROUP]
        self.settings = mapping.Settings(
            dict(conf.physical_network_mappings), conf.vxlan_physical_network
        )
        self.client = Client(conf.api_url, token=conf.api_token)
        self.writer = Writer(self.client, attempts=conf.write_attempts)
        self.bridge = conf.integration_bridge
        self.port_up_timeout = conf.port_up_timeout
        RouterHooks(self.writer).subscribe()
        if conf.sync_interval > 0:
            PeriodicSync(self.client, self.writer, self.settings, conf.sync_interval).start()

    @property
    def connectivity(self) -> str:
        return portbindings.CONNECTIVITY_L2

    # -- networks -------------------------------------------------------------------------

    def create_network_precommit(self, context: api.NetworkContext) -> None:
        self._checked(lambda: self._network_body(context))

    def create_network_postcommit(self, context: api.NetworkContext) -> None:
        body = self._network_body(context)
        self._write(lambda: self.writer.create("logical-networks", body))

    def update_network_postcommit(self, context: api.NetworkContext) -> None:
        changes = mapping.logical_network_changes(context.current)
        self._write(lambda: self.writer.update("logical-networks", context.current["id"], changes))

    def delete_network_postcommit(self, context: api.NetworkContext) -> None:
        self._write(lambda: self.writer.delete("logical-networks", context.current["id"]))

    def _network_body(self, context: api.NetworkContext) -> mapping.Body:
        return mapping.logical_network(context.current, context.network_segments, self.settings)

    # -- subnets --------------------------------------------------------------------------

    def create_subnet_precommit(self, context: api.SubnetContext) -> None:
        self._checked(lambda: mapping.check_subnet(context.current))

    def update_subnet_precommit(self, context: api.SubnetContext) -> None:
        self._checked(lambda: mapping.check_subnet(context.current))

    def create_subnet_postcommit(self, context: api.SubnetContext) -> None:
        body = mapping.subnet(context.current)
        if body is not None:
            self._write(lambda: self.writer.create("subnets", body))

    def update_subnet_postcommit(self, context: api.SubnetContext) -> None:
        if mapping.subnet(context.current) is not None:
            changes = mapping.subnet_changes(context.current)
            self._write(lambda: self.writer.update("subnets", context.current["id"], changes))

    def delete_subnet_postcommit(self, context: api.SubnetContext) -> None:
        if mapping.subnet(context.current) is not None:
            self._write(lambda: self.writer.delete("subnets", context.current["id"]))

    # -- ports ----------------------------------------------------------------------------

    def create_port_precommit(self, context: api.PortContext) -> None:
        self._checked(lambda: mapping.check_port(context.current))

    def create_port_postcommit(self, context: api.PortContext) -> None:
        body = mapping.logical_port(context.current)
        if body is not None:
            self._write(lambda: self.writer.create("logical-ports", body))

    def update_port_precommit(self, context: api.PortContext) -> None:
        self._checked(lambda: mapping.check_port(context.current))
        if self._awaits_up(context):
            provisioning_blocks.add_provisioning_component(
                context._plugin_context,
                context.current["id"],
                resources.PORT,
                provisioning_blocks.L2_AGENT_ENTITY,
            )

    def update_port_postcommit(self, context: api.PortContext) -> None:
        port = context.current
        if mapping.logical_port(port) is None:
            return
        changes = mapping.port_changes(port)
        self._write(lambda: self.writer.update("logical-ports", port["id"], changes))
        if self._awaits_up(context):
            threading.Thread(target=self._complete_when_up, args=(port["id"],), daemon=True).start()

    def delete_port_postcommit(self, context: api.PortContext) -> None:
        if mapping.logical_port(context.current) is not None:
            self._write(lambda: self.writer.delete("logical-ports", context.current["id"]))

    # -- binding --------------------------------------------------------------------------

    def bind_port(self, context: api.PortContext) -> None:
        """Bind the first segment vlcp carries, on a host where a vlcp controller runs."""
        if not self._runs_vlcp(context.host):
            LOG.debug("vlcp: no controller runs on host %s", context.host)
            return
        for segment in context.segments_to_bind:
            if segment[api.NETWORK_TYPE] in SUPPORTED_TYPES:
                details = {
                    portbindings.VIF_DETAILS_BRIDGE_NAME: self.bridge,
                    portbindings.CAP_PORT_FILTER: True,
                    portbindings.VIF_DETAILS_CONNECTIVITY: self.connectivity,
                }
                context.set_binding(segment[api.ID], portbindings.VIF_TYPE_OVS, details)
                return

    def _runs_vlcp(self, host: str) -> bool:
        try:
            servers = self.client.modules()["servers"]
        except ApiError as error:
            LOG.warning("vlcp: cannot list its servers to bind a port: %s", error)
            return False
        return any(s["server"] == host and s.get("running") for s in servers)

    def _awaits_up(self, context: api.PortContext) -> bool:
        """Whether the port is bound by vlcp (now) and not yet ACTIVE."""
        return (
            context.vif_type == portbindings.VIF_TYPE_OVS
            and context.current.get("status") != constants.PORT_STATUS_ACTIVE
            and mapping.logical_port(context.current) is not None
        )

    def _complete_when_up(self, port_id: str) -> None:
        """Lift the port's provisioning block once its vlcp controller reports it up."""
        try:
            self.client.get("logical-ports", port_id, wait="up", timeout=self.port_up_timeout)
        except ApiError as error:
            LOG.warning("vlcp: port %s not reported up: %s", port_id, error)
            return
        for attempt in range(1, COMPLETE_ATTEMPTS + 1):
            try:
                provisioning_blocks.provisioning_complete(
                    n_context.get_admin_context(),
                    port_id,
                    resources.PORT,
                    provisioning_blocks.L2_AGENT_ENTITY,
                )
                return
            except DATABASE_BUSY as error:
                LOG.warning("vlcp: port %s up, try %d to record it: %s", port_id, attempt, error)
                time.sleep(attempt)
        LOG.error("vlcp: port %s is up but stays DOWN in Neutron", port_id)

    # -- errors ---------------------------------------------------------------------------

    @staticmethod
    def _checked(call: Callable[[], Any]) -> Any:
        """`call()`, with `mapping.Unsupported` as a 400 for the Neutron user."""
        try:
            return call()
        except mapping.Unsupported as error:
            raise exceptions.InvalidInput(error_message=f"vlcp: {error}") from None

    @staticmethod
    def _write(call: Callable[[], Any]) -> None:
        """A write to vlcp; refused: a Neutron error; unreachable: logged, left to `sync`."""
        try:
            call()
        except ApiError as error:
            if unavailable(error):
                LOG.error("vlcp: %s; `vlcp-neutron sync` will repair it", error)
                return
            if error.status == 409:
                raise VlcpConflict(reason=error.message) from None
            raise VlcpError(reason=error.message) from None
