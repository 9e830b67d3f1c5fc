"""`vlcp-cni`: a CNI plugin (spec 1.0.0, with 1.1's GC and STATUS) that gives a container
an interface on a vlcp logical network.

The runtime (podman, containerd, CRI-O, kubelet through them) runs the plugin with the
`CNI_*` variables and the network config on stdin:

    {"cniVersion": "1.0.0", "name": "tenant-a", "type": "vlcp-cni",
     "network": "net-a", "api": "http://10.0.0.5:8081",
     "bridge": "br-int", "ovsdb": "unix:/var/run/openvswitch/db.sock"}

ADD creates a logical port through REST v1 (address from the subnet's pool), a veth pair
whose container end becomes CNI_IFNAME in CNI_NETNS with the port's MAC, address, routes
and MTU, and whose host end joins the OVS bridge with `external_ids:iface-id`, so the
local `vlcp run` binds it; it returns once the controller reports the port up. DEL undoes
all of it and succeeds on what is already gone; CHECK compares the interface and the
switch with the port; GC deletes this network's ports of attachments the runtime no
longer has. Every object is named from (network name, container id, ifname), so no state is
kept between calls. Errors are CNI error objects on stdout, with a non-zero exit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vlcp.api_error import ApiError
from vlcp.client import DEFAULT_URL, Client

from .endpoint import (
    Endpoint,
    EndpointError,
    NotBound,
    choose_subnet,
    describe,
    ensure_port,
    lookup,
    remove_port,
    wait_bound,
)
from .plumbing import PlumbingError, Switch, configure_commands, host_ifname, in_netns, run

CNI_VERSION = "1.0.0"
SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]

# The spec's well-known error codes (1-99 are reserved to it; 100+ are the plugin's).
INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENVIRONMENT = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
NOT_AVAILABLE = 50
CHECK_MISMATCH = 100
"""The plugin's own: CHECK found the interface or the switch unlike the port."""

STANDARD_KEYS = frozenset(
    {"cniVersion", "cniVersions", "name", "type", "args", "ipMasq", "ipam", "dns",
     "capabilities", "runtimeConfig", "prevResult", "cni.dev/valid-attachments",
     "disableCheck", "disableGC"}
)  # fmt: skip
"""Keys the spec or the runtime puts into a plugin's config: never an error."""
OPTIONS = {
    "network": "the vlcp logical network id (required)",
    "subnet": "the subnet to take addresses from (default: the network's one IPv4 subnet)",
    "api": f"the REST v1 URL (default {DEFAULT_URL})",
    "token": "the API's bearer token, if it requires one",
    "bridge": "the integration bridge (default br-int)",
    "ovsdb": "the local OVSDB (default unix:/var/run/openvswitch/db.sock)",
    "ovs_netns": "the network namespace of the OVS (default: the plugin's own)",
    "wait_up": "seconds ADD waits for the local controller to bind the port (10; 0: no wait)",
}  # fmt: skip


class CniError(Exception):
    """A failed call, as the spec's error object."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def document(self, version: str = CNI_VERSION) -> dict[str, Any]:
        return {"cniVersion": version, "code": self.code, "msg": self.msg, "details": self.details}


@dataclass(frozen=True)
class NetConf:
    """A network config, checked: the vlcp options and what the runtime added."""

    cni_version: str
    name: str
    network: str
    subnet: str | None = None
    api: str = DEFAULT_URL
    token: str | None = None
    switch: Switch = field(default_factory=Switch)
    wait_up: float = 10.0
    valid_attachments: list[dict[str, str]] = field(default_factory=list)
    """GC: the (containerID, ifname) attachments the runtime still has."""


@dataclass(frozen=True)
class Invocation:
    """The `CNI_*` variables of one call."""

    command: str
    container_id: str = ""
    netns: str | None = None
    ifname: str = ""

    @property
    def key(self) -> str:
        return f"{self.container_id}/{self.ifname}"


def _text_option(config: Mapping[str, Any], name: str, default: str | None = None) -> str | None:
    value = config.get(name, default)
    if value is not None and (not isinstance(value, str) or not value):
        raise CniError(INVALID_CONFIG, f"option {name!r} must be a non-empty string")
    return value


def parse_config(text: str) -> NetConf:
    """The network config from stdin, refusing unknown keys and missing options with a
    message that names them: a typo must not silently plug a container elsewhere."""
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise CniError(DECODE_FAILURE, f"network config is not JSON: {exc}") from None
    if not isinstance(config, dict):
        raise CniError(DECODE_FAILURE, "network config is not a JSON object")
    version = config.get("cniVersion", "")
    if version not in SUPPORTED_VERSIONS:
        raise CniError(
            INCOMPATIBLE_VERSION,
            f"cniVersion {version!r} is not supported",
            f"supported: {', '.join(SUPPORTED_VERSIONS)}",
        )
    unknown = sorted(set(config) - STANDARD_KEYS - set(OPTIONS))
    if unknown:
        raise CniError(
            UNSUPPORTED_FIELD,
            f"vlcp-cni: unknown option {', '.join(map(repr, unknown))}",
            "options: " + "; ".join(f"{k}: {v}" for k, v in OPTIONS.items()),
        )
    network = _text_option(config, "network")
    if network is None:
        raise CniError(
            INVALID_CONFIG, "vlcp-cni: option 'network' (the logical network) is missing"
        )
    wait_up = config.get("wait_up", 10.0)
    if isinstance(wait_up, bool) or not isinstance(wait_up, int | float) or wait_up < 0:
        raise CniError(INVALID_CONFIG, "option 'wait_up' must be a number of seconds >= 0")
    defaults = Switch()
    return NetConf(
        cni_version=version,
        name=_text_option(config, "name") or "",
        network=network,
        subnet=_text_option(config, "subnet"),
        api=_text_option(config, "api", DEFAULT_URL) or DEFAULT_URL,
        token=_text_option(config, "token"),
        switch=Switch(
            bridge=_text_option(config, "bridge", defaults.bridge) or defaults.bridge,
            ovsdb=_text_option(config, "ovsdb", defaults.ovsdb) or defaults.ovsdb,
            ovs_netns=_text_option(config, "ovs_netns"),
        ),
        wait_up=float(wait_up),
        valid_attachments=list(config.get("cni.dev/valid-attachments") or []),
    )


REQUIRED = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "GC": (),
    "STATUS": (),
    "VERSION": (),
}


def parse_environment(env: Mapping[str, str]) -> Invocation:
    """The call's variables; a missing one the command needs is error 4."""
    command = env.get("CNI_COMMAND", "")
    if command not in REQUIRED:
        raise CniError(
            INVALID_ENVIRONMENT, f"CNI_COMMAND {command!r} is not one of {list(REQUIRED)}"
        )
    missing = [name for name in REQUIRED[command] if not env.get(name)]
    if missing:
        raise CniError(INVALID_ENVIRONMENT, f"{command} needs {', '.join(missing)}")
    return Invocation(
        command=command,
        container_id=env.get("CNI_CONTAINERID", ""),
        netns=env.get("CNI_NETNS") or None,
        ifname=env.get("CNI_IFNAME", ""),
    )


def port_id(conf: NetConf, invocation: Invocation) -> str:
    """The logical port of one attachment: a pure function of its identity, so DEL and
    CHECK find it, and a retried ADD gets the same one."""
    return "cni-" + hashlib.sha256(f"{conf.name}/{invocation.key}".encode()).hexdigest()[:32]


def attachment(conf: NetConf, invocation: Invocation) -> dict[str, str]:
    """The port's extra attributes: whose it is, for ADD's retries and for GC."""
    return {
        "cni_network": conf.name,
        "cni_container": invocation.container_id,
        "cni_ifname": invocation.ifname,
    }


def result(
    conf: NetConf, invocation: Invocation, endpoint: Endpoint, host: str, host_mac: str
) -> dict:
    """The ADD result in the config's version (0.3.x/0.4.0 add each IP's `version`)."""
    interfaces = [
        {"name": host, "mac": host_mac},
        {"name": invocation.ifname, "mac": endpoint.mac, "sandbox": invocation.netns},
    ]
    ips = []
    if endpoint.address is not None:
        ip: dict[str, Any] = {"address": endpoint.address.with_prefixlen, "interface": 1}
        if endpoint.gateway:
            ip["gateway"] = endpoint.gateway
        if conf.cni_version.startswith("0."):
            ip["version"] = "4"
        ips.append(ip)
    routes = [{"dst": "0.0.0.0/0", "gw": endpoint.gateway}] if endpoint.gateway else []
    routes += [{"dst": dst, "gw": hop} for dst, hop in endpoint.routes]
    dns: dict[str, Any] = {}
    if endpoint.nameservers:
        dns["nameservers"] = endpoint.nameservers
    if endpoint.domain:
        dns["domain"] = endpoint.domain
    return {
        "cniVersion": conf.cni_version,
        "interfaces": interfaces,
        "ips": ips,
        "routes": routes,
        "dns": dns,
    }


class Plugin:
    """The commands, against one API and one switch."""

    def __init__(self, conf: NetConf, invocation: Invocation) -> None:
        self.conf = conf
        self.invocation = invocation
        self.client = Client(conf.api, token=conf.token, timeout=15.0)
        self.port = port_id(conf, invocation)
        self.host = host_ifname(f"{conf.name}/{invocation.key}")

    def add(self) -> dict[str, Any]:
        conf, switch = self.conf, self.conf.switch
        lookup(self.client, "logical-networks", conf.network, "logical network")
        subnet = choose_subnet(self.client, conf.network, conf.subnet)
        port = ensure_port(
            self.client,
            self.port,
            conf.network,
            subnet["id"] if subnet else None,
            attachment(conf, self.invocation),
        )
        try:
            endpoint = describe(self.client, port)
            switch.attach(self.host, self.invocation.ifname, endpoint, self.invocation.netns)
            lines = configure_commands(self.invocation.ifname, endpoint)
            run([*in_netns(self.invocation.netns), "ip", "-batch", "-"], input="\n".join(lines))
            wait_bound(self.client, self.port, conf.wait_up)
            host = switch.link(self.host, switch.ovs_netns) or {}
        except BaseException:
            with contextlib.suppress(Exception):  # the first error is the one to report
                self.delete()
            raise
        return result(conf, self.invocation, endpoint, self.host, host.get("address", ""))

    def delete(self) -> None:
        self.conf.switch.unplug(self.host)
        remove_port(self.client, self.port)

    def check(self) -> None:
        """Raise `CniError` unless the port, the switch and the interface agree."""
        try:
            port = self.client.get("logical-ports", self.port)
        except ApiError as exc:
            if exc.status == 404:
                raise CniError(CHECK_MISMATCH, f"logical port {self.port} is gone") from None
            raise
        plugged = self.conf.switch.iface_id(self.host)
        if plugged != self.port:
            raise CniError(
                CHECK_MISMATCH,
                f"{self.host} is not on bridge {self.conf.switch.bridge} as {self.port}",
                f"iface-id: {plugged}",
            )
        link = Switch.link(self.invocation.ifname, self.invocation.netns)
        if link is None:
            raise CniError(
                UNKNOWN_CONTAINER, f"no interface {self.invocation.ifname} in the container"
            )
        if link.get("address") != port["mac_address"]:
            raise CniError(
                CHECK_MISMATCH,
                f"{self.invocation.ifname}: MAC {link.get('address')}, not {port['mac_address']}",
            )
        addresses = {a.get("local") for a in link.get("addr_info", [])}
        if port.get("ip_address") and port["ip_address"] not in addresses:
            raise CniError(
                CHECK_MISMATCH,
                f"{self.invocation.ifname} lacks the port's address {port['ip_address']}",
            )

    def gc(self) -> None:
        """Delete this network's CNI ports whose attachment the runtime no longer lists."""
        valid = {(a.get("containerID"), a.get("ifname")) for a in self.conf.valid_attachments}
        for port in self.client.list("logical-ports", {"logicalnetwork": self.conf.network}):
            if port.get("cni_network") != self.conf.name:
                continue
            if (port.get("cni_container"), port.get("cni_ifname")) in valid:
                continue
            stale = Invocation("DEL", port["cni_container"], None, port["cni_ifname"])
            Plugin(self.conf, stale).delete()

    def status(self) -> None:
        try:
            self.client.health()
        except ApiError as exc:
            raise CniError(NOT_AVAILABLE, f"the vlcp API is not available: {exc}") from None


def handle(env: Mapping[str, str], stdin: str) -> dict[str, Any] | None:
    """One call: the document to print (None: nothing), or `CniError`."""
    invocation = parse_environment(env)
    if invocation.command == "VERSION":
        return {"cniVersion": CNI_VERSION, "supportedVersions": SUPPORTED_VERSIONS}
    plugin = Plugin(parse_config(stdin), invocation)
    actions: dict[str, Callable[[], dict[str, Any] | None]] = {
        "ADD": plugin.add,
        "DEL": plugin.delete,
        "CHECK": plugin.check,
        "GC": plugin.gc,
        "STATUS": plugin.status,
    }
    try:
        return actions[invocation.command]()
    except EndpointError as exc:
        raise CniError(INVALID_CONFIG, f"vlcp-cni: {exc}") from None
    except NotBound as exc:
        raise CniError(TRY_AGAIN_LATER, f"vlcp-cni: {exc}") from None
    except PlumbingError as exc:
        raise CniError(IO_FAILURE, f"vlcp-cni: {exc}") from None
    except ApiError as exc:
        code = TRY_AGAIN_LATER if exc.status == 0 else IO_FAILURE
        raise CniError(code, f"vlcp-cni: {exc}") from None


def main() -> None:
    """The executable: the CNI variables, the config on stdin, the answer on stdout."""
    stdin = sys.stdin.read()
    try:
        answer = handle(os.environ, stdin)
    except CniError as exc:
        version = CNI_VERSION
        with contextlib.suppress(ValueError, AttributeError):
            version = json.loads(stdin).get("cniVersion") or CNI_VERSION
        json.dump(exc.document(version), sys.stdout)
        sys.stdout.write("\n")
        sys.exit(1)
    if answer is not None:
        json.dump(answer, sys.stdout)
        sys.stdout.write("\n")


if __name__ == "__main__":
    main()
