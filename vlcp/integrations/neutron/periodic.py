"""The driver's periodic sync: inside Neutron, every `sync_interval` seconds, the repair
`vlcp-neutron sync` makes, with Neutron's side read from the core plugin (as an admin)
rather than its REST API, so it needs no URL or token. Like OVN's maintenance task it
catches what a postcommit write could not (vlcp was unreachable) without an operator.
Every API worker runs one; the writes are idempotent, so two repairs at once are harmless.
"""

from __future__ import annotations

import threading

from neutron_lib import context as n_context
from neutron_lib.plugins import constants as plugin_constants
from neutron_lib.plugins import directory
from oslo_log import log

from vlcp.client import Client

from . import mapping, sync
from .repair import apply_all, read_vlcp
from .writer import Writer

LOG = log.getLogger(__name__)


class PeriodicSync:
    """A daemon thread that repairs vlcp from Neutron's database every `interval` s."""

    def __init__(
        self, client: Client, writer: Writer, settings: mapping.Settings, interval: float
    ) -> None:
        self.client = client
        self.writer = writer
        self.settings = settings
        self.interval = interval
        self._stopped = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="vlcp-sync", daemon=True).start()

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.once()
            except Exception:  # the next round tries again; a dead thread never would
                LOG.exception("vlcp: periodic sync failed")

    def once(self) -> None:
        plugin = directory.get_plugin()
        context = n_context.get_admin_context()
        l3 = directory.get_plugin(plugin_constants.L3)
        neutron = sync.State(
            plugin.get_networks(context),
            plugin.get_subnets(context),
            plugin.get_ports(context),
            l3.get_routers(context) if l3 is not None else None,
        )
        changes, skipped = sync.plan(neutron, read_vlcp(self.client), self.settings)
        for reason in skipped:
            LOG.warning("vlcp: periodic sync skipped %s", reason)
        apply_all(self.writer, changes, lambda line: LOG.info("vlcp: periodic sync: %s", line))
