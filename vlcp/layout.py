"""Where everything lives in the central store: every key prefix and key builder.

The one contract between the two halves of vlcp. The API half (`vlcp.model`) writes the
objects users describe and the bookkeeping that keeps them consistent; the controller half
(`vlcp.agent`, one per server) reads the objects and writes what it finds on its server;
the store (`vlcp.store`) keeps its own session records. Each of them builds keys here and
nowhere else (a test fails on a key prefix spelled as a literal anywhere else in `vlcp/`),
so following a logical port from the REST API to its flows is following one name.

| Key | Value | Written by | Read by | Gone when |
|---|---|---|---|---|
| `physnet/<id>` | a physical network | API | API, controllers | deleted through the API |
| `physport/<id>` | a physical port | API | API, controllers | deleted through the API |
| `lognet/<id>` | a logical network | API | API, controllers | deleted through the API |
| `lport/<id>` | a logical port | API | API, controllers | deleted through the API |
| `subnet/<id>` | a subnet | API | API, controllers | deleted through the API |
| `router/<id>` | a router and its interfaces | API | API, controllers | deleted through the API |
| `physnet-state/<id>` | counts and the next free tag | API | API | with its network |
| `lognet-state/<id>` | counts, CIDRs of its subnets | API | API | with its network |
| `subnet-state/<id>` | counts | API | API | with its subnet |
| `physnet-tag/<physnet>/<tag>` | the logical network using a VLAN id or VNI | API | API | with the logical network |
| `physnet-vni-ranges` | {vxlan physical network: its vnirange} | API | API | with the last vxlan network |
| `lognet-mac/<lognet>/<mac>` | the port holding a MAC | API | API | with the port |
| `subnet-ip/<subnet>/<ip>` | the port (or `router:<id>`) holding an address | API | API | with the port or interface |
| `physport-key/<vhost>/<systemid>/<bridge>/<name>` | the physical port with that identity | API | API | with the physical port |
| `physnet-port/<physnet>/<vhost>/<systemid>/<bridge>` | the physical port for a selector | API | API | with the physical port |
| `netports/<network>/<port>` | where a port is bound: host, VTEP, MAC, IP, binding date | the binding controller | controllers, API | unbound or moved, port deleted, `vlcp server forget` |
| `lport-status/<port>` | up or down, on which host, since when | the binding controller | API (`status`, `?wait=up`) | as `netports/` |
| `chassis/<system-id>` | a running controller: VTEP, bridge, node, `forwards` (the physical networks it may forward external networks on) | its controller (session key) | API (`vlcp server forget`) | its session ends or expires |
| `servers/<node>` | a running `vlcp run`: PID, version, what it serves | `vlcp run` (session key) | operators, tests | its session ends or expires |
| `vtep-binding/<switch>/<port>/<vlan>` | the logical network a hardware switch port's VLAN carries | API | VTEP controllers, API | unbound through the API |
| `vtep-switch/<switch>` | what a hardware VTEP switch reports: tunnel IPs, ports, bindings | its active VTEP controller | API (`listphysicalswitches`) | never: the last state seen |
| `vtep-macs/<network>/<switch>/<mac>` | a MAC a hardware switch learned on a bound port (MAC, IP, the switch's tunnel IP); `unknown-dst`: the switch as a flood endpoint | its active VTEP controller | controllers (as remote ports) | the switch forgets it, or the binding goes |
| `modules-all` | the modules every server without its own set should run, and reload requests | API | controllers, API | never (an operator's choice) |
| `modules/<system-id>` | one server's own module set, and reload requests | API | its controller, API | `vlcp server forget` |
| `module-status/<system-id>` | the modules a controller knows, has loaded, and why any failed | its controller | API (`vlcp module list`) | `vlcp server forget` |
| `_sessions/<id>` | a session's header | store | store (reapers) | the session is reaped |
| `_session-keys/<id>/<digest>` | a key written through the session | store | store (reapers) | with the key or the session |
| `_owners/<key>` | the session owning a session key | store | store | with the key |

`netports/` and `lport-status/` are durable: a controller restart or a store outage of any
length never removes them (see docs/operations.md, "Retiring a server"). `chassis/` and
`servers/` are the only session keys; the store reaps them when their session dies.

One key per object (`lport/<id>`), a small state document per parent that serialises the
creation of children and guards deletion (`lognet-state/<id>`), and one key per allocated
value (`lognet-mac/<lognet>/<mac>`) so no document grows with the number of objects.

The one exception is `VNI_RANGES` (`physnet-vni-ranges`), the vnirange of every vxlan
physical network: it grows with the number of vxlan physical networks (tens), never with
the objects under them. A VNI is global on the shared underlay, so a range must be checked
against every other one, and a transaction cannot read a prefix: one key that every range
change reads and writes is what makes two concurrent overlapping creations collide.
"""

from __future__ import annotations

import ipaddress

# -- objects users describe (one key each) ---------------------------------------------
PHYSNET = "physnet/"
PHYSPORT = "physport/"
LOGNET = "lognet/"
LPORT = "lport/"
SUBNET = "subnet/"
ROUTER = "router/"

# -- the API's bookkeeping ---------------------------------------------------------------
PHYSNET_STATE = "physnet-state/"
LOGNET_STATE = "lognet-state/"
SUBNET_STATE = "subnet-state/"
PHYSNET_TAG = "physnet-tag/"
VNI_RANGES = "physnet-vni-ranges"
"""{vxlan physical network id: its vnirange}; absent while there is no vxlan network."""
LOGNET_MAC = "lognet-mac/"
SUBNET_IP = "subnet-ip/"
PHYSPORT_KEY = "physport-key/"
PHYSNET_PORT = "physnet-port/"

# -- what controllers report --------------------------------------------------------------
NETPORTS = "netports/"
PORT_STATUSES = "lport-status/"
CHASSIS = "chassis/"
SERVERS = "servers/"

# -- hardware VTEP switches (docs/hardware-vtep.md) ----------------------------------------
VTEP_BINDING = "vtep-binding/"
VTEP_SWITCH = "vtep-switch/"
VTEP_MACS = "vtep-macs/"

# -- the modules each controller runs ----------------------------------------------------------
MODULES_ALL = "modules-all"
"""The set every server runs unless it has its own `modules_key` (the document is
`vlcp.wanted_set.WantedSet`); absent: each controller runs its default set."""
MODULES = "modules/"
MODULE_STATUSES = "module-status/"

# -- the store's session records -------------------------------------------------------------
SESSIONS = "_sessions/"
"""One header per live session (and per session being reaped)."""
SESSION_KEYS = "_session-keys/"
"""The keys written through each session, one marker each (never under `SESSIONS`)."""
OWNERS = "_owners/"

PREFIXES = (
    PHYSNET,
    PHYSPORT,
    LOGNET,
    LPORT,
    SUBNET,
    ROUTER,
    PHYSNET_STATE,
    LOGNET_STATE,
    SUBNET_STATE,
    PHYSNET_TAG,
    LOGNET_MAC,
    SUBNET_IP,
    PHYSPORT_KEY,
    PHYSNET_PORT,
    NETPORTS,
    PORT_STATUSES,
    CHASSIS,
    SERVERS,
    VTEP_BINDING,
    VTEP_SWITCH,
    VTEP_MACS,
    MODULES,
    MODULE_STATUSES,
    SESSIONS,
    SESSION_KEYS,
    OWNERS,
)
"""Every prefix of the key space (`VNI_RANGES` and `MODULES_ALL` are single keys)."""

SINGLE_KEYS = (VNI_RANGES, MODULES_ALL)
"""The keys that are not under a prefix."""

WILDCARD = "%"
"""Physical port selectors: '%' matches any system-id or bridge."""
_KEY_WILDCARD = "_~"
"""'%' (and the empty vhost) in a key segment: '%' is not a key character and a segment may
not start with '~', so '_~'; selectors never contain '~', so it cannot clash with a name."""


def physnet_state(id: str) -> str:
    return f"{PHYSNET_STATE}{id}"


def lognet_state(id: str) -> str:
    return f"{LOGNET_STATE}{id}"


def subnet_state(id: str) -> str:
    return f"{SUBNET_STATE}{id}"


def physnet_tags(physnet: str) -> str:
    """The prefix of `physnet_tag` keys: listing it names the network's logical networks."""
    return f"{PHYSNET_TAG}{physnet}/"


def physnet_tag(physnet: str, tag: int) -> str:
    """VLAN id or VNI `tag` of a physical network -> the logical network using it."""
    return f"{physnet_tags(physnet)}{tag}"


def lognet_macs(lognet: str) -> str:
    """The prefix of `lognet_mac` keys: listing it names the network's ports."""
    return f"{LOGNET_MAC}{lognet}/"


def lognet_mac(lognet: str, mac: str) -> str:
    return f"{lognet_macs(lognet)}{mac}"


def subnet_ips(subnet: str) -> str:
    """The prefix of `subnet_ip` keys: listing it names the ports and routers holding one."""
    return f"{SUBNET_IP}{subnet}/"


def subnet_ip(subnet: str, ip: str) -> str:
    """An address of a subnet -> the port id, or 'router:<id>' for a router interface.

    IPv6 addresses are written exploded: a compressed one may start with ':', which a key
    segment may not.
    """
    address = ipaddress.ip_address(ip)
    text = address.exploded if address.version == 6 else str(address)
    return f"{subnet_ips(subnet)}{text}"


def _segment(value: str) -> str:
    if value in ("", WILDCARD):
        return _KEY_WILDCARD
    return value


def physport_key(vhost: str, systemid: str, bridge: str, name: str) -> str:
    """Uniqueness of (vhost, systemid, bridge, name) among all physical ports."""
    return f"{PHYSPORT_KEY}{_segment(vhost)}/{_segment(systemid)}/{_segment(bridge)}/{name}"


def physnet_ports(physnet: str) -> str:
    """The prefix of `physnet_port` keys: listing it names the network's physical ports."""
    return f"{PHYSNET_PORT}{physnet}/"


def physnet_port(physnet: str, vhost: str, systemid: str, bridge: str) -> str:
    """The physical port carrying `physnet` for one (vhost, systemid, bridge) selector."""
    selector = f"{_segment(vhost)}/{_segment(systemid)}/{_segment(bridge)}"
    return f"{physnet_ports(physnet)}{selector}"


def netports_key(network: str, port: str) -> str:
    """Where the controller binding `port` says it is ({"host", "vtep", "mac", "ip",
    "bound_at"}). Durable: removed by that server's own decisions, by deleting the port, or
    by the operator forgetting the server, never by a restart or an outage."""
    return f"{NETPORTS}{network}/{port}"


def port_status(port: str) -> str:
    """{"state", "host", "since"}, written by the controller that binds the port. Durable,
    like `netports_key`."""
    return f"{PORT_STATUSES}{port}"


def chassis_key(system_id: str) -> str:
    """A running controller's presence ({"vtep", "bridge", "node"}): a session key."""
    return f"{CHASSIS}{system_id}"


def server_key(node: str) -> str:
    """A running `vlcp run` ({"pid", "version", "since", "serves"}): a session key."""
    return f"{SERVERS}{node}"


def modules_key(system_id: str) -> str:
    """One server's wanted modules ({"modules": [names], "reload": {name: generation},
    "settings": {name: {...}}}, see `vlcp.wanted_set`), which replace `MODULES_ALL` for it. A reload request is a generation higher than the
    one the controller last applied: a value, so it survives a controller that is down."""
    return f"{MODULES}{system_id}"


def module_status(system_id: str) -> str:
    """What a controller reports of its modules: {"known": {name: {"doc", "depends",
    "tables", "source", "settings"}}, "default": [names], "loaded": [names], "generations":
    {name: generation}, "settings": {name: {...}}, "errors": {name: why}, "since": time}. Durable, like `netports_key`."""
    return f"{MODULE_STATUSES}{system_id}"


def vtep_bindings(switch: str) -> str:
    """The prefix of `vtep_binding` keys of one switch: what its controller applies."""
    return f"{VTEP_BINDING}{switch}/"


def vtep_port_bindings(switch: str, port: str) -> str:
    """The prefix of `vtep_binding` keys of one port of a switch."""
    return f"{vtep_bindings(switch)}{port}/"


def vtep_binding(switch: str, port: str, vlan: int) -> str:
    """(switch, port, VLAN) -> {"logicalnetwork"}: the one network that VLAN of the port
    carries (VLAN 0: untagged). One key per binding, so binding one port never rewrites
    another's."""
    return f"{vtep_port_bindings(switch, port)}{vlan}"


def split_vtep_binding(key: str) -> tuple[str, str, int]:
    """`vtep-binding/<switch>/<port>/<vlan>` -> (switch, port, vlan)."""
    switch, port, vlan = key.removeprefix(VTEP_BINDING).split("/")
    return switch, port, int(vlan)


def vtep_switch(switch: str) -> str:
    """What a switch's active VTEP controller last saw of it ({"description",
    "tunnel_ips", "ports": {name: {vlan: network}}, "controller"})."""
    return f"{VTEP_SWITCH}{switch}"


def vtep_mac(network: str, switch: str, mac: str) -> str:
    """A MAC `switch` learned in `network` ({"mac", "ip", "vtep", "switch"}): every server
    with the network sends frames for it to the switch's tunnel IP."""
    return f"{VTEP_MACS}{network}/{switch}/{mac}"


def vtep_flood(network: str, switch: str) -> str:
    """`switch` as a flood endpoint of `network` while the network is bound on it ({"vtep",
    "switch"}, no MAC): servers send it the network's floods even before (and after) it
    learned a MAC, so a VM reaches a quiet bare-metal host by ARP."""
    return f"{VTEP_MACS}{network}/{switch}/{FLOOD}"


FLOOD = "unknown-dst"
"""The last segment of `vtep_flood` keys (the `hardware_vtep` name of flood entries; never
a MAC)."""

REMOTES = (NETPORTS, VTEP_MACS)
"""The prefixes of a network's remote endpoints: the ports other servers bind and the MACs
hardware VTEP switches learned; `split_remote_key` reads both."""


def split_remote_key(key: str) -> tuple[str, str]:
    """A remote endpoint's key -> (network, endpoint id), for both kinds of endpoint: a
    port another server binds (`netports/<network>/<port>`: the port id) and a MAC a
    hardware switch learned (`vtep-macs/<network>/<switch>/<mac>`:
    "<network>/<switch>/<mac>", which no port id can be since ids have no '/'). The network
    is part of a switch endpoint's id: one switch floods, and may learn the same MAC, in
    several networks (each an endpoint of its own)."""
    if key.startswith(NETPORTS):
        network, _, port = key.removeprefix(NETPORTS).partition("/")
        return network, port
    endpoint = key.removeprefix(VTEP_MACS)
    return endpoint.partition("/")[0], endpoint


def vtep_mac_switch(key: str) -> str:
    """The switch of a `vtep_mac` or `vtep_flood` key."""
    return key.removeprefix(VTEP_MACS).split("/")[1]


# -- scopes: what a controller subscribes to (docs/store-backends.md, "Scoped watches") -------
NETWORK_SCOPE = "net:"
"""The scope of one logical network: its object and its remote endpoints (`REMOTES`)."""
PORT_SCOPE = "port:"
"""The scope of one logical port: its object."""
SCOPED = (LOGNET, LPORT, *REMOTES)
"""The prefixes whose keys belong to one network's or one port's scope: what grows with
the cluster. Every other key's scope is its prefix (or, for `SINGLE_KEYS`, itself)."""


def network_scope(network: str) -> str:
    return f"{NETWORK_SCOPE}{network}"


def port_scope(port: str) -> str:
    return f"{PORT_SCOPE}{port}"


def scope_of(key: str) -> str:
    """The one scope a key belongs to, from the key alone (a store can compute it when a
    commit is written and file the commit under it, whatever the value)."""
    if key.startswith(LPORT):
        return port_scope(key.removeprefix(LPORT))
    if key.startswith(LOGNET):
        return network_scope(key.removeprefix(LOGNET))
    if key.startswith(REMOTES):
        return network_scope(split_remote_key(key)[0])
    head, slash, _ = key.partition("/")
    return f"{head}/" if slash else key


def scope_extent(scope: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(prefixes, keys) holding exactly the keys of `scope`: what reading it reads."""
    if scope.startswith(NETWORK_SCOPE):
        network = scope.removeprefix(NETWORK_SCOPE)
        return tuple(f"{prefix}{network}/" for prefix in REMOTES), (f"{LOGNET}{network}",)
    if scope.startswith(PORT_SCOPE):
        return (), (f"{LPORT}{scope.removeprefix(PORT_SCOPE)}",)
    if scope.endswith("/"):
        return (scope,), ()
    return (), (scope,)


def watched_scopes(watched: tuple[str, ...] | list[str]) -> set[str]:
    """The fixed scopes of watched prefixes and keys; the `SCOPED` prefixes come one
    network or port at a time (`network_scope`, `port_scope`) and are left out."""
    return {scope_of(item) for item in watched if item not in SCOPED}
