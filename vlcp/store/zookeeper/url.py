"""The ZooKeeper store URL: ``zookeeper://host:port,host:port/root?timeout=5&...``.

See docs/store-backends.md for every parameter; defaults suit a production ensemble.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..url import UrlParams, host_ports, split_store_url
from .layout import SEGMENT_SPAN

DEFAULT_PORT = 2181
DEFAULT_ROOT = "/vlcp"
_ROOT_RE = re.compile(r"(/[A-Za-z0-9._:@+=~-]+)+")


@dataclass(frozen=True)
class ZooKeeperConfig:
    """Everything the URL says; defaults suit a production ensemble."""

    hosts: str
    root: str = DEFAULT_ROOT
    timeout: float = 5.0
    """Seconds to wait for the ensemble before raising StoreUnavailable."""
    session_timeout: float = 10.0
    """ZooKeeper session timeout: how long after this process dies its sessions stay alive."""
    max_request_bytes: int = 1048575
    """The server's jute.maxbuffer: larger requests are refused as TransactionTooLarge."""
    log_segment: int = 2048
    """Commits per change-log segment."""
    log_keep: int = 5
    """Full segments kept besides the current one (at least log_segment * log_keep commits)."""

    @property
    def retained_commits(self) -> int:
        return self.log_segment * self.log_keep


def parse_url(url: str) -> ZooKeeperConfig:
    """``zookeeper://h1:p1,h2:p2/root?timeout=5&...``; ValueError says what is wrong."""
    parts = split_store_url(url, "zookeeper")
    hosts = ",".join(host_ports(url, parts.netloc, DEFAULT_PORT))
    root = parts.path.rstrip("/") or DEFAULT_ROOT
    if not _ROOT_RE.fullmatch(root) or any(p in (".", "..") for p in root.split("/")):
        raise ValueError(f"store URL {url!r}: bad root path {root!r}")
    defaults = ZooKeeperConfig(hosts=hosts, root=root)
    params = UrlParams(url, parts.query)
    config = ZooKeeperConfig(
        hosts=hosts,
        root=root,
        timeout=params.number("timeout", defaults.timeout),
        session_timeout=params.number("session_timeout", defaults.session_timeout),
        max_request_bytes=params.integer(
            "max_request_bytes", defaults.max_request_bytes, minimum=1
        ),
        log_segment=params.integer("log_segment", defaults.log_segment, minimum=2),
        log_keep=params.integer("log_keep", defaults.log_keep, minimum=1),
    )
    params.refuse_unknown()
    if config.log_segment > SEGMENT_SPAN // 2:
        raise ValueError(f"store URL {url!r}: log_segment must be at most {SEGMENT_SPAN // 2}")
    return config
