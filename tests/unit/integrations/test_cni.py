"""vlcp-cni without a runtime: the config and the variables it accepts or refuses (with
the spec's codes), the error object and the result it prints, and the names it derives.
ADD, DEL and CHECK against real podman and OVS are in tests/e2e/containers/test_cni.py."""

from __future__ import annotations

import io
import json
from ipaddress import IPv4Interface

import pytest

from vlcp.integrations import cni
from vlcp.integrations.endpoint import Endpoint
from vlcp.integrations.plumbing import configure_commands, host_ifname, in_netns

CONFIG = {"cniVersion": "1.0.0", "name": "tenant-a", "type": "vlcp-cni", "network": "net-a"}
ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c0ffee", "CNI_NETNS": "/run/netns/x"}
ENDPOINT = Endpoint(
    port="p1",
    mac="02:00:00:00:00:01",
    address=IPv4Interface("10.0.0.5/24"),
    gateway="10.0.0.1",
    mtu=1450,
    routes=[("192.0.2.0/24", "10.0.0.9")],
    nameservers=["198.51.100.53"],
    domain="example.org",
)


def refused(code: int, call) -> cni.CniError:
    with pytest.raises(cni.CniError) as raised:
        call()
    assert raised.value.code == code, raised.value.msg
    return raised.value


def test_config_defaults_and_options():
    conf = cni.parse_config(json.dumps(CONFIG))
    assert (conf.network, conf.subnet, conf.api, conf.wait_up) == (
        "net-a",
        None,
        cni.DEFAULT_URL,
        10,
    )
    assert (conf.switch.bridge, conf.switch.ovs_netns) == ("br-int", None)
    options = {"subnet": "s", "bridge": "br0", "ovsdb": "unix:/x", "ovs_netns": "hv", "wait_up": 0}
    conf = cni.parse_config(json.dumps({**CONFIG, **options, "runtimeConfig": {}, "args": {}}))
    assert (conf.subnet, conf.switch.bridge, conf.switch.ovsdb, conf.wait_up) == (
        "s",
        "br0",
        "unix:/x",
        0,
    )


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        ("{", cni.DECODE_FAILURE, "not JSON"),
        ("[]", cni.DECODE_FAILURE, "not a JSON object"),
        (json.dumps({**CONFIG, "cniVersion": "2.0.0"}), cni.INCOMPATIBLE_VERSION, "'2.0.0'"),
        (json.dumps({**CONFIG, "netwrok": "x"}), cni.UNSUPPORTED_FIELD, "unknown option 'netwrok'"),
        (
            json.dumps({k: v for k, v in CONFIG.items() if k != "network"}),
            cni.INVALID_CONFIG,
            "'network'",
        ),
        (json.dumps({**CONFIG, "network": ""}), cni.INVALID_CONFIG, "non-empty string"),
        (json.dumps({**CONFIG, "bridge": 7}), cni.INVALID_CONFIG, "'bridge'"),
        (json.dumps({**CONFIG, "wait_up": -1}), cni.INVALID_CONFIG, "'wait_up'"),
        (json.dumps({**CONFIG, "wait_up": True}), cni.INVALID_CONFIG, "'wait_up'"),
    ],
)
def test_bad_configs_are_refused_with_their_code(text: str, code: int, words: str):
    assert words in refused(code, lambda: cni.parse_config(text)).msg


def test_unknown_option_lists_the_options():
    error = refused(cni.UNSUPPORTED_FIELD, lambda: cni.parse_config(json.dumps({**CONFIG, "x": 1})))
    assert all(option in error.details for option in cni.OPTIONS)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({}, "CNI_COMMAND ''"),
        ({"CNI_COMMAND": "ATTACH"}, "'ATTACH'"),
        (ENV, "ADD needs CNI_IFNAME"),
        ({"CNI_COMMAND": "DEL", "CNI_IFNAME": "eth0"}, "DEL needs CNI_CONTAINERID"),
    ],
)
def test_missing_variables_are_error_4(env: dict, words: str):
    error = refused(cni.INVALID_ENVIRONMENT, lambda: cni.parse_environment(env))
    assert words in error.msg


def test_del_needs_no_netns():
    invocation = cni.parse_environment(
        {"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c", "CNI_IFNAME": "e"}
    )
    assert (invocation.netns, invocation.key) == (None, "c/e")


def test_version_needs_no_config():
    answer = cni.handle({"CNI_COMMAND": "VERSION"}, "")
    assert answer == {"cniVersion": "1.0.0", "supportedVersions": cni.SUPPORTED_VERSIONS}
    assert "1.0.0" in answer["supportedVersions"]


def test_names_are_stable_distinct_and_short():
    conf = cni.parse_config(json.dumps(CONFIG))
    one = cni.Invocation("ADD", "c0ffee", None, "eth0")
    two = cni.Invocation("ADD", "c0ffee", None, "eth1")
    assert cni.port_id(conf, one) == cni.port_id(conf, one) != cni.port_id(conf, two)
    assert len(cni.port_id(conf, one)) <= 64
    assert len(host_ifname(one.key)) <= 15


def test_result_1_0_0_and_0_4_0():
    invocation = cni.Invocation("ADD", "c0ffee", "/run/netns/x", "eth0")
    conf = cni.parse_config(json.dumps(CONFIG))
    answer = cni.result(conf, invocation, ENDPOINT, "vl0", "aa:bb:cc:dd:ee:ff")
    assert answer["interfaces"][1] == {
        "name": "eth0",
        "mac": "02:00:00:00:00:01",
        "sandbox": "/run/netns/x",
    }
    assert answer["ips"] == [{"address": "10.0.0.5/24", "interface": 1, "gateway": "10.0.0.1"}]
    assert answer["routes"] == [
        {"dst": "0.0.0.0/0", "gw": "10.0.0.1"},
        {"dst": "192.0.2.0/24", "gw": "10.0.0.9"},
    ]
    assert answer["dns"] == {"nameservers": ["198.51.100.53"], "domain": "example.org"}
    old = cni.parse_config(json.dumps({**CONFIG, "cniVersion": "0.4.0"}))
    assert cni.result(old, invocation, ENDPOINT, "vl0", "")["ips"][0]["version"] == "4"


def test_interface_commands():
    assert configure_commands("eth0", ENDPOINT) == [
        "link set eth0 up",
        "address add 10.0.0.5/24 dev eth0",
        "route add default via 10.0.0.1 dev eth0",
        "route add 192.0.2.0/24 via 10.0.0.9 dev eth0",
    ]
    assert in_netns(None) == []
    assert in_netns("hv1") == ["nsenter", "--net=/run/netns/hv1"]
    assert in_netns("/proc/1/ns/net") == ["nsenter", "--net=/proc/1/ns/net"]


def test_main_prints_the_error_object_and_exits_non_zero(monkeypatch, capsys):
    monkeypatch.setattr(
        "sys.stdin", io.StringIO(json.dumps({**CONFIG, "cniVersion": "0.4.0", "x": 1}))
    )
    monkeypatch.setattr(
        "os.environ", {"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c", "CNI_IFNAME": "e"}
    )
    with pytest.raises(SystemExit) as exited:
        cni.main()
    assert exited.value.code == 1
    error = json.loads(capsys.readouterr().out)
    assert set(error) == {"cniVersion", "code", "msg", "details"}
    assert (error["cniVersion"], error["code"]) == ("0.4.0", cni.UNSUPPORTED_FIELD)


def test_unreachable_api_is_try_again_later():
    conf = {**CONFIG, "api": "http://127.0.0.1:9"}
    env = {"CNI_COMMAND": "STATUS"}
    assert refused(cni.NOT_AVAILABLE, lambda: cni.handle(env, json.dumps(conf))).msg
    env = {"CNI_COMMAND": "GC"}
    error = refused(cni.TRY_AGAIN_LATER, lambda: cni.handle(env, json.dumps(conf)))
    assert "cannot reach the API" in error.msg
