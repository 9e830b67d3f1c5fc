"""Docker's remote network driver and IPAM driver (the libnetwork plugin API), as calls on
the vlcp REST API and the local OVS. `docker_server` serves them over HTTP.

Docker asks its IPAM driver for a pool and addresses before and apart from the network
driver's calls, and tells neither the other's ids, so the two meet through names derived
from what both see:

- the vlcp logical network of a Docker network is `vlcp.network` (given as `-o` to the
  driver and `--ipam-opt` to the IPAM driver), by default `docker-<subnet>`; the same
  `docker network create` on several Docker hosts thus joins one vlcp network;
- an IPAM pool id is `<network>@<cidr>`, so address requests find the subnet statelessly;
- an address request creates the logical port (vlcp's IPAM picks the address), which
  CreateEndpoint then finds by that address in the network and tags with the endpoint id;
- a Docker network is recorded on its vlcp network as the attribute `docker_<id prefix>`
  (the host's name as value), so a restarted plugin finds it, and a network the plugin
  created is deleted with the last Docker network that used it.

Nothing is kept in the plugin's memory: a restart disturbs no container.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, ip_interface, ip_network
from typing import Any

from vlcp.api_error import ApiError
from vlcp.client import Client

from .endpoint import (
    EndpointError,
    NotBound,
    describe,
    ensure_port,
    lookup,
    remove_port,
    wait_bound,
)
from .plumbing import PlumbingError, Switch, host_ifname

GENERIC = "com.docker.network.generic"
GATEWAY_REQUEST = "com.docker.network.gateway"
NETWORK_OPTIONS = {
    "vlcp.network": "the vlcp logical network (default docker-<subnet>); created if absent",
    "vlcp.physical_network": "the physical network of a network created (default: the plugin's)",
    "vlcp.vni": "the VNI of a network created on a VXLAN physical network (default: allocated)",
    "vlcp.vlanid": "the VLAN id of a network created on a VLAN physical network",
    "vlcp.mtu": "the MTU of a network created",
}
IPAM_OPTIONS = {"vlcp.network": NETWORK_OPTIONS["vlcp.network"]}
CREATED = "docker_created"
"""Attribute of a logical network the plugin created (and so may delete)."""

Reply = dict[str, Any]


class DockerError(Exception):
    """A call refused: its message goes back to Docker as `{"Err": ...}`."""


def default_network(cidr: str) -> str:
    return f"docker-{cidr.replace('/', '-')}"


def checked_options(options: Mapping[str, Any] | None, known: Mapping[str, str]) -> dict:
    """The `vlcp.*` options, refusing any unknown one by name (others are Docker's)."""
    options = dict(options or {})
    unknown = sorted(k for k in options if k.startswith("vlcp.") and k not in known)
    if unknown:
        listed = "; ".join(f"{k}: {v}" for k, v in known.items())
        raise DockerError(f"unknown option {', '.join(unknown)} (options: {listed})")
    return options


def pool_id(network: str, cidr: str) -> str:
    return f"{network}@{cidr}"


def parse_pool(pool: str) -> tuple[str, IPv4Network]:
    network, _, cidr = pool.rpartition("@")
    if not network:
        raise DockerError(f"pool {pool!r} is not one of vlcp's")
    return network, IPv4Network(cidr)


def network_attribute(docker_network: str) -> str:
    """The attribute naming a Docker network on its vlcp network (ids are 64 hex digits;
    attribute names at most 64 characters)."""
    return f"docker_{docker_network[:32]}"


def veth_peer(endpoint: str) -> str:
    """The container end's name before Docker moves it into the sandbox and renames it."""
    return "vp" + hashlib.sha256(endpoint.encode()).hexdigest()[:11]


@dataclass
class DockerPlugin:
    """The calls, against one API and one switch (the Docker host's)."""

    client: Client
    switch: Switch
    physical_network: str | None = None
    wait_up: float = 10.0
    host: str = socket.gethostname()

    def calls(self) -> dict[str, Callable[[Reply], Reply]]:
        """Every call Docker makes, by its URL path without the slash."""
        done: Callable[[Reply], Reply] = lambda _body: {}  # noqa: E731
        return {
            "Plugin.Activate": lambda _b: {"Implements": ["NetworkDriver", "IpamDriver"]},
            "IpamDriver.GetCapabilities": lambda _b: {"RequiresMACAddress": False},
            "IpamDriver.GetDefaultAddressSpaces": lambda _b: {
                "LocalDefaultAddressSpace": "vlcp",
                "GlobalDefaultAddressSpace": "vlcp",
            },
            "IpamDriver.RequestPool": self.request_pool,
            "IpamDriver.ReleasePool": done,
            "IpamDriver.RequestAddress": self.request_address,
            "IpamDriver.ReleaseAddress": self.release_address,
            "NetworkDriver.GetCapabilities": lambda _b: {
                "Scope": "local",
                "ConnectivityScope": "global",
            },
            "NetworkDriver.CreateNetwork": self.create_network,
            "NetworkDriver.DeleteNetwork": self.delete_network,
            "NetworkDriver.CreateEndpoint": self.create_endpoint,
            "NetworkDriver.DeleteEndpoint": self.leave,
            "NetworkDriver.EndpointOperInfo": lambda _b: {"Value": {}},
            "NetworkDriver.Join": self.join,
            "NetworkDriver.Leave": self.leave,
            "NetworkDriver.DiscoverNew": done,
            "NetworkDriver.DiscoverDelete": done,
            "NetworkDriver.ProgramExternalConnectivity": done,
            "NetworkDriver.RevokeExternalConnectivity": done,
            "NetworkDriver.AllocateNetwork": done,
            "NetworkDriver.FreeNetwork": done,
        }

    # -- IPAM -------------------------------------------------------------------------

    def request_pool(self, body: Reply) -> Reply:
        """The pool is the subnet Docker was given: vlcp allocates inside it, so there is
        no automatic pool, and IPv6 is for later."""
        if body.get("V6"):
            raise DockerError("vlcp's Docker IPAM serves IPv4 pools only")
        if not body.get("Pool"):
            raise DockerError("give the network's subnet (docker network create --subnet)")
        options = checked_options(body.get("Options"), IPAM_OPTIONS)
        cidr = str(ip_network(body["Pool"]))
        network = options.get("vlcp.network") or default_network(cidr)
        return {"PoolID": pool_id(network, cidr), "Pool": cidr, "Data": {}}

    def _subnet(self, network: str, cidr: IPv4Network) -> dict[str, Any] | None:
        found = self.client.list("subnets", {"logicalnetwork": network, "cidr": str(cidr)})
        return next(iter(found), None)

    def request_address(self, body: Reply) -> Reply:
        """The gateway: the one asked for, else the subnet's, else the first host address
        (written when CreateNetwork creates the subnet). An endpoint's address: a new
        logical port's, from the subnet's pool or the address asked for."""
        network, cidr = parse_pool(body["PoolID"])
        asked = body.get("Address") or None
        options = body.get("Options") or {}
        subnet = self._subnet(network, cidr)
        if options.get("RequestAddressType") == GATEWAY_REQUEST:
            gateway = asked or (subnet or {}).get("gateway") or str(next(cidr.hosts()))
            return {"Address": f"{gateway}/{cidr.prefixlen}", "Data": {}}
        if subnet is None:
            raise DockerError(
                f"vlcp network {network} has no subnet {cidr}: create the Docker network"
                " with the same vlcp.network as -o and --ipam-opt"
            )
        port = ensure_port(
            self.client, None, network, subnet["id"], {"docker_endpoint": ""}, ip_address=asked
        )
        return {"Address": f"{port['ip_address']}/{cidr.prefixlen}", "Data": {}}

    def _has(self, network: str) -> bool:
        try:
            self.client.get("logical-networks", network)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def release_address(self, body: Reply) -> Reply:
        """Delete the logical port holding the address; the gateway holds none."""
        network, cidr = parse_pool(body["PoolID"])
        subnet = self._subnet(network, cidr)
        if subnet is None or subnet.get("gateway") == body["Address"]:
            return {}
        for port in self.client.list(
            "logical-ports", {"subnet": subnet["id"], "ip_address": body["Address"]}
        ):
            remove_port(self.client, port["id"])
        return {}

    # -- networks ---------------------------------------------------------------------

    def create_network(self, body: Reply) -> Reply:
        """Adopt the vlcp network `vlcp.network` or create it (with the subnet and the
        gateway Docker chose), and record the Docker network on it."""
        options = checked_options((body.get("Options") or {}).get(GENERIC), NETWORK_OPTIONS)
        ipv4 = body.get("IPv4Data") or []
        if len(ipv4) != 1 or not ipv4[0].get("Pool"):
            raise DockerError("a vlcp Docker network has exactly one IPv4 subnet (--subnet)")
        cidr = IPv4Network(ipv4[0]["Pool"])
        network = options.get("vlcp.network") or default_network(str(cidr))
        if not self._has(network):
            self._create_network(network, options)
        if self._subnet(network, cidr) is None:
            gateway = ipv4[0].get("Gateway")
            subnet = {"logicalnetwork": network, "cidr": str(cidr)}
            if gateway:
                subnet["gateway"] = str(ip_interface(gateway).ip)
            self._create_once("subnets", subnet, lambda: self._subnet(network, cidr) is not None)
        attribute = network_attribute(body["NetworkID"])
        self.client.update("logical-networks", network, {attribute: self.host})
        return {}

    def _create_network(self, network: str, options: Mapping[str, str]) -> None:
        physnet = options.get("vlcp.physical_network") or self.physical_network
        if not physnet:
            raise DockerError(
                f"vlcp network {network} does not exist; to create it, give"
                " -o vlcp.physical_network=ID (or start the plugin with --physical-network)"
            )
        lookup(self.client, "physical-networks", physnet, "physical network")
        body: dict[str, Any] = {"id": network, "physicalnetwork": physnet, CREATED: True}
        for option, field in (("vlcp.vni", "vni"), ("vlcp.vlanid", "vlanid"), ("vlcp.mtu", "mtu")):
            if option in options:
                try:
                    body[field] = int(options[option])
                except ValueError:
                    raise DockerError(f"{option}: {options[option]!r} is not a number") from None
        self._create_once("logical-networks", body, lambda: self._has(network))

    def _create_once(self, kind: str, body: Reply, exists: Callable[[], bool]) -> None:
        """Create an object another Docker host may be creating at the same moment (the
        same `docker network create` run on several hosts): its 409 is fine if the object
        is there now."""
        try:
            self.client.create(kind, body)
        except ApiError as exc:
            if exc.status != 409 or not exists():
                raise

    def network_of(self, docker_network: str) -> dict[str, Any]:
        """The vlcp network a Docker network of this host was created on."""
        attribute = network_attribute(docker_network)
        for network in self.client.list("logical-networks", {attribute: self.host}):
            return network
        raise DockerError(f"Docker network {docker_network[:12]} is not known to vlcp")

    def delete_network(self, body: Reply) -> Reply:
        """Forget the Docker network; delete the vlcp network if the plugin created it and
        no Docker network (of any host) uses it any more."""
        try:
            network = self.network_of(body["NetworkID"])
        except DockerError:
            return {}  # already forgotten: deletes are retried
        attribute = network_attribute(body["NetworkID"])
        self.client.update("logical-networks", network["id"], {attribute: None})
        others = [k for k in network if k.startswith("docker_") and k not in (attribute, CREATED)]
        if network.get(CREATED) and not others:
            for subnet in self.client.list("subnets", {"logicalnetwork": network["id"]}):
                self.client.delete("subnets", subnet["id"])
            self.client.delete("logical-networks", network["id"])
        return {}

    # -- endpoints --------------------------------------------------------------------

    def _port_of(self, endpoint: str) -> dict[str, Any]:
        for port in self.client.list("logical-ports", {"docker_endpoint": endpoint}):
            return port
        raise DockerError(f"endpoint {endpoint[:12]} has no vlcp port")

    def create_endpoint(self, body: Reply) -> Reply:
        """Tag the port the address request created with the endpoint (and the MAC Docker
        was asked for, if any); tell Docker the port's MAC otherwise."""
        network = self.network_of(body["NetworkID"])
        interface = body.get("Interface") or {}
        if not interface.get("Address"):
            raise DockerError("the endpoint has no IPv4 address: use vlcp as the IPAM driver")
        address = str(ip_interface(interface["Address"]).ip)
        ports = self.client.list(
            "logical-ports", {"logicalnetwork": network["id"], "ip_address": address}
        )
        port = next(iter(ports), None)
        if port is None:
            raise DockerError(
                f"no vlcp port holds {address} in {network['id']}: give the Docker network"
                " the same vlcp.network as -o and --ipam-opt"
            )
        change: dict[str, Any] = {"docker_endpoint": body["EndpointID"]}
        if interface.get("MacAddress"):
            change["mac_address"] = interface["MacAddress"]
        port = self.client.update("logical-ports", port["id"], change)
        if interface.get("MacAddress"):
            return {}
        return {"Interface": {"MacAddress": port["mac_address"]}}

    def join(self, body: Reply) -> Reply:
        """The veth pair: one end on the bridge as the port, the other handed to Docker
        (which moves it into the sandbox and sets the address); returns once the local
        controller has bound the port."""
        port = self._port_of(body["EndpointID"])
        endpoint = describe(self.client, port)
        host, peer = host_ifname(body["EndpointID"]), veth_peer(body["EndpointID"])
        self.switch.attach(host, peer, endpoint, None)
        try:
            wait_bound(self.client, port["id"], self.wait_up)
        except BaseException:
            self.switch.unplug(host)
            raise
        routes = [{"Destination": d, "RouteType": 0, "NextHop": h} for d, h in endpoint.routes]
        reply: Reply = {"InterfaceName": {"SrcName": peer, "DstPrefix": "eth"}}
        if endpoint.gateway:
            reply["Gateway"] = endpoint.gateway
        if routes:
            reply["StaticRoutes"] = routes
        return reply

    def leave(self, body: Reply) -> Reply:
        """Unplug and delete the pair (also on DeleteEndpoint: a Leave may have been
        lost); the port itself goes with the address, in ReleaseAddress."""
        self.switch.unplug(host_ifname(body["EndpointID"]))
        return {}

    def handle(self, call: str, body: Reply) -> Reply:
        """One call's reply; a refusal or failure as `{"Err": message}`."""
        action = self.calls().get(call)
        if action is None:
            return {"Err": f"vlcp does not implement {call}"}
        try:
            return action(body)
        except (DockerError, EndpointError, NotBound, ApiError, PlumbingError) as exc:
            return {"Err": f"vlcp: {exc}"}
        except Exception as exc:  # a bug still reaches the user, named, not as a bare 500
            return {"Err": f"vlcp: {type(exc).__name__}: {exc}"}
