"""What the container end-to-end tests (CNI with podman, Docker) look at the same way."""

from __future__ import annotations

from typing import Protocol

from vlcp.lab.netns import run
from vlcp.lab.servers import BRIDGE

from ..conftest import Cloud


class Runtime(Protocol):
    def exec(self, name: str, *command: str, check: bool = True) -> str: ...


def pings(runtime: Runtime, container: str, ip: str, count: int = 1) -> bool:
    """Whether every one of `count` pings from `container` to `ip` was answered."""
    output = runtime.exec(container, "ping", "-c", str(count), "-W", "1", ip, check=False)
    return f"{count} packets received" in output


def vlcp_ports(cloud: Cloud, server: str) -> list[str]:
    """The integrations' OVS ports on `server`'s bridge (host ends are named vl...)."""
    ports = cloud.servers[server].hv.vsctl("list-ports", BRIDGE).split()
    return [p for p in ports if p.startswith("vl")]


def host_ends(cloud: Cloud, server: str) -> list[str]:
    """The integrations' veth ends in `server`'s namespace, plugged or not."""
    links = run("ip", "-o", "link", "show", netns=cloud.servers[server].hv.netns).stdout
    names = (line.split(":")[1].strip().split("@")[0] for line in links.splitlines())
    return [name for name in names if name.startswith("vl")]
