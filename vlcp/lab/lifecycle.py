"""The ``with`` protocol shared by lab objects that start() and stop()."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class StartStop:
    """``with obj:`` starts the object on entry (returning it) and stops it on exit."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
