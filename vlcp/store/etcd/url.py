"""The etcd store URL: ``etcd://host:port[,host:port...]/root?timeout=5&retain=20000``."""

from __future__ import annotations

from dataclasses import dataclass

from ..url import UrlParams, host_ports, split_store_url

DEFAULT_PORT = 2379
DEFAULT_ROOT = "/vlcp"
DEFAULT_TIMEOUT = 5.0
LOG_RETAIN = 20000
"""Revisions of etcd history kept for watchers that reconnect; older ones force a resync."""


@dataclass(frozen=True)
class EtcdOptions:
    """What an ``etcd://host:port[,host:port...]/root?timeout=5&retain=20000`` URL says."""

    endpoints: tuple[str, ...]
    root: str = DEFAULT_ROOT
    timeout: float = DEFAULT_TIMEOUT
    retain: int = LOG_RETAIN


def parse_url(url: str) -> EtcdOptions:
    """Options from a store URL; ValueError names what is wrong.

    A member given without a port is reached on etcd's client port (2379).
    """
    parts = split_store_url(url, "etcd")
    endpoints = tuple(host_ports(url, parts.netloc, DEFAULT_PORT))
    root = parts.path.rstrip("/") or DEFAULT_ROOT
    params = UrlParams(url, parts.query)
    timeout = params.number("timeout", DEFAULT_TIMEOUT)
    retain = params.integer("retain", LOG_RETAIN, minimum=0)
    params.refuse_unknown()
    return EtcdOptions(endpoints, root, timeout, retain)
