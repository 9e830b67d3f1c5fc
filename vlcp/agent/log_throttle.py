"""Log lines that a flood of packets would otherwise repeat, at most once per interval.

A VIF can send a thousand bad packets a second; one log line each would fill the disk and
hide everything else. `LogThrottle` writes the first line of a kind, counts the ones that
follow within the interval, and says how many there were in the next line it writes.
The caller passes the time, so the throttle needs no clock of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable


class LogThrottle:
    """At most one line per `key` every `interval` seconds; the rest are counted."""

    def __init__(self, logger: logging.Logger, interval: float) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[Hashable, tuple[float, int]] = {}
        """Key -> when its last line was written, and how many were held back since."""

    def log(
        self,
        key: Hashable,
        now: float,
        level: int,
        msg: str,
        *args: object,
        exc_info: BaseException | None = None,
    ) -> None:
        """Write `msg % args` unless a line of this `key` was written in the interval."""
        last = self._last.get(key)
        if last is not None and now - last[0] < self.interval:
            self._last[key] = (last[0], last[1] + 1)
            return
        if last is not None and last[1]:
            msg += " (%d more like it in the last %.0f s)"
            args = (*args, last[1], now - last[0])
        self._last[key] = (now, 0)
        self.logger.log(level, msg, *args, exc_info=exc_info)
