"""Unique names and free ports for one test run, re-exported from :mod:`vlcp.lab.naming`."""

from __future__ import annotations

from vlcp.lab.naming import RUN_PREFIX, free_tcp_ports, private_dir, unique_name

__all__ = ["RUN_PREFIX", "free_tcp_ports", "private_dir", "unique_name"]
