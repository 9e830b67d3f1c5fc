"""The owner of one test's hypervisors and hosts, which removes them in reverse order."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from vlcp.lab.ovs.host import Host
from vlcp.lab.ovs.hypervisor import Hypervisor
from vlcp.lab.ovs.namespace import close_quietly

log = logging.getLogger(__name__)


class OvsLab:
    """Owns the hypervisors and hosts of one test and removes them in reverse order.

    Objects are recorded before they start, so a half-started one is cleaned up too.
    The pytest fixtures are thin wrappers around this; tests may also use it directly.
    """

    def __init__(self) -> None:
        self._objects: list[Hypervisor | Host] = []

    def hypervisor(self, name: str = "hv") -> Hypervisor:
        """A started Hypervisor."""
        hv = Hypervisor(name)
        self._objects.append(hv)
        return hv.start()

    def host(
        self,
        hypervisor: Hypervisor,
        bridge: str,
        ip: str,
        *,
        mac: str | None = None,
        port_name: str | None = None,
        ofport: int | None = None,
        iface_id: str | None = None,
        name: str = "host",
    ) -> Host:
        """A started Host on ``hypervisor``'s ``bridge`` (arguments as for :class:`Host`)."""
        host = Host(
            hypervisor,
            bridge,
            ip,
            mac=mac,
            port_name=port_name,
            ofport=ofport,
            iface_id=iface_id,
            name=name,
        )
        self._objects.append(host)
        return host.start()

    @property
    def objects(self) -> Sequence[Hypervisor | Host]:
        """Everything created so far, oldest first."""
        return tuple(self._objects)

    def close(self, *, keep_dirs: bool = False) -> None:
        """Stop everything (newest first); raise once at the end if anything failed."""
        errors: list[str] = []
        while self._objects:
            obj = self._objects.pop()
            close_quietly(lambda o=obj: o.stop(remove_dir=not keep_dirs), repr(obj), errors)
        if errors:
            raise RuntimeError("lab teardown: " + "; ".join(errors))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.close()
        except RuntimeError:
            if exc_type is None:
                raise
            log.exception("lab teardown failed while handling %s", exc_type.__name__)
