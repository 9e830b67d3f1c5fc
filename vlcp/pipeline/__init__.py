"""The pure pipeline: what one server sees (a `View`) in, sets of flows out.

No I/O, no asyncio, no store: the agent builds the view and hands the flows to the
reconciler. Registers are declared in `fields`; each function (`ingress`,
`port_security`, `arp`, `l2`, the network type drivers `vxlan` and `physical`) is a
`Module` declaring its tables and flow functions; a `Catalog` of known modules gives the
tables their ids, a `ModuleSet` (the loaded ones) compiles them by owner, `compile` does
so for the default set, and `changes` says which owners a change touches. See
docs/pipeline.md.
"""

from .builtin import BUILTIN, DEFAULT, PIPELINE
from .catalog import Catalog, ModuleSet
from .changes import (
    Change,
    DropNeighbour,
    DropNetwork,
    DropPort,
    DropRemote,
    DropRouter,
    DropSubnet,
    PutNeighbour,
    PutNetwork,
    PutPort,
    PutRemote,
    PutRouter,
    PutSubnet,
    SetForwarder,
    SetPhysicalPort,
    SetTunnel,
    apply,
    apply_all,
)
from .compile import compile_all, compile_owner, owners
from .module import (
    BadPacket,
    Context,
    Learned,
    Module,
    ModuleError,
    ModuleFailed,
    PacketIn,
    PacketOut,
    Received,
    to_controller,
)
from .ratelimit import PortRateLimiter, TokenBucket
from .render import render, render_all
from .tables import BoundTable, Pipeline, PipelineError, Table
from .view import (
    BASE,
    AddressPair,
    DhcpFields,
    DhcpOption,
    Forwarder,
    LocalPort,
    Network,
    Owner,
    RemotePort,
    Router,
    RouterInterface,
    Subnet,
    View,
    network_numbers,
)

__all__ = [
    "BASE",
    "BUILTIN",
    "DEFAULT",
    "PIPELINE",
    "AddressPair",
    "BadPacket",
    "BoundTable",
    "Catalog",
    "Change",
    "Context",
    "DhcpFields",
    "DhcpOption",
    "DropNeighbour",
    "DropNetwork",
    "DropPort",
    "DropRemote",
    "DropRouter",
    "DropSubnet",
    "Forwarder",
    "Learned",
    "LocalPort",
    "Module",
    "ModuleError",
    "ModuleFailed",
    "ModuleSet",
    "Network",
    "Owner",
    "PacketIn",
    "PacketOut",
    "Pipeline",
    "PipelineError",
    "PortRateLimiter",
    "PutNeighbour",
    "PutNetwork",
    "PutPort",
    "PutRemote",
    "PutRouter",
    "PutSubnet",
    "Received",
    "RemotePort",
    "Router",
    "RouterInterface",
    "SetForwarder",
    "SetPhysicalPort",
    "SetTunnel",
    "Subnet",
    "Table",
    "TokenBucket",
    "View",
    "apply",
    "apply_all",
    "compile_all",
    "compile_owner",
    "network_numbers",
    "owners",
    "render",
    "render_all",
    "to_controller",
]
