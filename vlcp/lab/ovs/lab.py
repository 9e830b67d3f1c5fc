"""The owner of one test's hypervisors and hosts, which removes them in reverse order."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar, cast

from vlcp.lab.ovs.host import Host
from vlcp.lab.ovs.hypervisor import Hypervisor
from vlcp.lab.ovs.namespace import close_quietly

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_R = TypeVar("_R")
_Obj = TypeVar("_Obj", bound=Hypervisor | Host)


def _parameters_of(
    target: Callable[_P, object],
) -> Callable[[Callable[..., _R]], Callable[Concatenate[OvsLab, _P], _R]]:
    """Give a pass-through method ``target``'s parameters, so they are written once.

    The method takes ``*args, **kwargs`` and hands them on; type checkers see
    ``target``'s parameters (ParamSpec) and ``help()``/``inspect`` its signature, so a
    parameter added to ``target`` needs no second edit here. The method itself is
    returned, not wrapped: calling it costs nothing more.
    """

    def give(method: Callable[..., _R]) -> Callable[Concatenate[OvsLab, _P], _R]:
        own = inspect.signature(method)
        self_parameter = next(iter(own.parameters.values()))
        parameters = [self_parameter, *inspect.signature(target).parameters.values()]
        method.__signature__ = own.replace(parameters=parameters)  # type: ignore[attr-defined]
        return cast("Callable[Concatenate[OvsLab, _P], _R]", method)

    return give


class OvsLab:
    """Owns the hypervisors and hosts of one test and removes them in reverse order.

    Objects are recorded before they start, so a half-started one is cleaned up too.
    The pytest fixtures are thin wrappers around this; tests may also use it directly.
    """

    def __init__(self) -> None:
        self._objects: list[Hypervisor | Host] = []

    def hypervisor(self, name: str = "hv") -> Hypervisor:
        """A started Hypervisor."""
        return self.adopt(Hypervisor(name))

    @_parameters_of(Host)
    def host(self, *args: Any, **kwargs: Any) -> Host:
        """A started Host: the arguments are :class:`Host`'s, passed on as they are."""
        return self.adopt(Host(*args, **kwargs))

    def adopt(self, obj: _Obj) -> _Obj:
        """Record ``obj`` before starting it, so a half-started one is cleaned up too; for
        kinds of lab object this class does not make itself (an emulated VTEP switch)."""
        self._objects.append(obj)
        return obj.start()

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
