"""The Docker plugin without Docker: the calls that need no API (activation, capabilities,
pools), the refusals Docker shows the user as `{"Err": ...}`, the names it derives, and
the HTTP side. Everything against vlcp and OVS is in tests/e2e/containers/test_docker.py."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from tests.unit.api.asgi import call
from vlcp.client import Client
from vlcp.integrations.docker import (
    DockerError,
    DockerPlugin,
    checked_options,
    network_attribute,
    parse_pool,
    veth_peer,
)
from vlcp.integrations.docker_server import CONTENT_TYPE, create_app
from vlcp.integrations.plumbing import Switch, host_ifname

UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture
def plugin() -> DockerPlugin:
    return DockerPlugin(Client(UNREACHABLE, timeout=2), Switch(), physical_network="vx")


def test_activate_and_capabilities(plugin: DockerPlugin):
    assert plugin.handle("Plugin.Activate", {}) == {"Implements": ["NetworkDriver", "IpamDriver"]}
    assert plugin.handle("NetworkDriver.GetCapabilities", {})["Scope"] == "local"
    assert plugin.handle("IpamDriver.GetCapabilities", {}) == {"RequiresMACAddress": False}


def test_pools_name_the_network(plugin: DockerPlugin):
    pool = plugin.handle("IpamDriver.RequestPool", {"Pool": "10.0.0.0/24"})
    assert pool == {"PoolID": "docker-10.0.0.0-24@10.0.0.0/24", "Pool": "10.0.0.0/24", "Data": {}}
    named = {"Pool": "10.0.0.0/24", "Options": {"vlcp.network": "net-a"}}
    assert plugin.handle("IpamDriver.RequestPool", named)["PoolID"] == "net-a@10.0.0.0/24"
    assert parse_pool("net-a@10.0.0.0/24") == ("net-a", IPv4Network("10.0.0.0/24"))


@pytest.mark.parametrize(
    ("call", "body", "words"),
    [
        ("IpamDriver.RequestPool", {}, "--subnet"),
        ("IpamDriver.RequestPool", {"Pool": "fd00::/64", "V6": True}, "IPv4 pools only"),
        ("IpamDriver.RequestPool", {"Pool": "10.1.0.0/24", "Options": {"vlcp.vni": "5"}},
         "vlcp.vni"),
        ("NetworkDriver.CreateNetwork", {"NetworkID": "n", "Options": {}}, "one IPv4 subnet"),
        ("NetworkDriver.Attach", {}, "does not implement NetworkDriver.Attach"),
        ("NetworkDriver.CreateNetwork", {"NetworkID": "n", "IPv4Data": [{"Pool": "10.0.0.0/24"}]},
         "cannot reach the API"),
    ],
)  # fmt: skip
def test_refusals_are_err_documents(plugin: DockerPlugin, call: str, body: dict, words: str):
    reply = plugin.handle(call, body)
    assert set(reply) == {"Err"} and words in reply["Err"], reply


def test_unknown_option_names_the_options():
    with pytest.raises(DockerError) as refused:
        checked_options({"vlcp.netwrok": "x", "com.docker.network.mtu": "1"}, {"vlcp.network": "?"})
    assert "unknown option vlcp.netwrok (options: vlcp.network: ?)" in str(refused.value)


def test_names_fit_linux_and_vlcp():
    endpoint = "e" * 64
    assert len(veth_peer(endpoint)) <= 15 and len(host_ifname(endpoint)) <= 15
    assert veth_peer(endpoint) != host_ifname(endpoint)
    assert len(network_attribute("f" * 64)) <= 64


async def test_http_side(plugin: DockerPlugin):
    app = create_app(plugin)
    answer = await call(app, "POST", "/Plugin.Activate")
    assert answer.headers["content-type"] == CONTENT_TYPE
    assert answer.json() == {"Implements": ["NetworkDriver", "IpamDriver"]}
    answer = await call(app, "POST", "/IpamDriver.RequestPool", body=b"{")
    assert "not JSON" in answer.json()["Err"]
