"""Store URL parsing shared by the networked backends (ZooKeeper, etcd, Redis).

Every backend reads its URL once, at start-up, and a typo must fail there with a
ValueError that names the URL and the problem, the same way for every scheme.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import SplitResult, parse_qs, urlsplit

V = TypeVar("V")


def split_store_url(url: str, scheme: str) -> SplitResult:
    """The parts of `url`, which must use `scheme`."""
    parts = urlsplit(url)
    if parts.scheme != scheme:
        raise ValueError(f"store URL {url!r}: scheme must be {scheme}")
    return parts


def host_ports(url: str, netloc: str, default_port: int) -> list[str]:
    """``host:port`` of every member in ``host[:port][,host[:port]...]``.

    A missing port means `default_port`; IPv6 addresses are written in brackets
    (``[::1]:2181``). Credentials are refused: no networked backend supports them in
    the host list.
    """
    if not netloc or "@" in netloc:
        raise ValueError(f"store URL {url!r} needs host:port[,host:port...] (no credentials)")
    members = []
    for item in netloc.split(","):
        item = item.strip()
        host, sep, port = item.rpartition(":")
        if not sep or "]" in port:  # no port (a bracketed IPv6 address has colons inside)
            host, port = item, str(default_port)
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"store URL {url!r}: bad host:port {item!r}")
        members.append(f"{host}:{port}")
    return members


class UrlParams:
    """The query parameters of a store URL, read one by one, then checked for leftovers.

    A repeated parameter counts with its last value. Each reader returns the default when
    the parameter is absent; `refuse_unknown` then refuses any parameter nobody read, so a
    misspelt one is never silently ignored.
    """

    def __init__(self, url: str, query: str) -> None:
        self.url = url
        pairs = parse_qs(query, keep_blank_values=True)
        self._values = {name: values[-1] for name, values in pairs.items()}
        self._known: list[str] = []

    def text(self, name: str, default: str) -> str:
        return self._read(name, default, str, lambda _value: True, "text")

    def number(self, name: str, default: float, *, below: float = math.inf) -> float:
        """A finite number above 0 (and below `below`): a timeout, in seconds."""
        limit = f" and below {below:g}" if math.isfinite(below) else ""
        return self._read(
            name,
            default,
            float,
            lambda v: 0 < v < below and math.isfinite(v),
            f"a number above 0{limit}",
        )

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        return self._read(
            name, default, int, lambda v: v >= minimum, f"an integer of at least {minimum}"
        )

    def _read(
        self,
        name: str,
        default: V,
        convert: Callable[[str], V],
        valid: Callable[[V], bool],
        expected: str,
    ) -> V:
        """`name` converted and checked, or `default` when the URL does not say."""
        self._known.append(name)
        text = self._values.get(name)
        if text is None:
            return default
        invalid = ValueError(f"store URL {self.url!r}: {name}={text!r} must be {expected}")
        try:
            value = convert(text)
        except ValueError:
            raise invalid from None
        if not valid(value):
            raise invalid
        return value

    def refuse_unknown(self) -> None:
        """Raise ValueError if the URL has a parameter that no reader asked for."""
        unknown = sorted(set(self._values) - set(self._known))
        if unknown:
            raise ValueError(
                f"store URL {self.url!r}: unknown parameter(s) {', '.join(unknown)} "
                f"(known: {', '.join(self._known)})"
            )
