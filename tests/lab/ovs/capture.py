"""tcpdump captures inside a lab namespace, decoded with scapy (a test-only dependency)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from vlcp.lab.netns import wait_until
from vlcp.lab.ovs.capture import PcapCapture

if TYPE_CHECKING:
    from scapy.packet import Packet


class Capture(PcapCapture):
    """A :class:`~vlcp.lab.ovs.capture.PcapCapture` whose packets are read with scapy."""

    def packets(self) -> list[Packet]:
        """The packets captured so far (the last one may be missing while tcpdump writes)."""
        from scapy.error import Scapy_Exception
        from scapy.utils import rdpcap

        if not self.path.exists() or self.path.stat().st_size == 0:
            return []
        try:
            return list(rdpcap(str(self.path)))
        except (Scapy_Exception, EOFError):  # header not flushed yet
            return []

    def wait_for(
        self,
        predicate: Callable[[Packet], bool],
        *,
        count: int = 1,
        timeout: float = 5.0,
    ) -> list[Packet]:
        """Poll the capture until ``count`` packets match ``predicate``; returns them."""

        def matches() -> list[Packet]:
            found = [p for p in self.packets() if predicate(p)]
            return found if len(found) >= count else []

        return wait_until(
            matches,
            timeout=timeout,
            interval=0.05,
            message=f"{count} matching packet(s) on {self.netns}/{self.iface}",
        )

    def stop(self) -> list[Packet]:
        """Stop tcpdump (SIGTERM flushes and closes the file) and return every packet."""
        super().stop()
        return self.packets()
