"""The pure pipeline: what one server sees (a `View`) in, sets of flows out.

No I/O, no asyncio, no store: the agent builds the view and hands the flows to the
reconciler. Tables are declared by name in `tables`, registers in `fields`; each feature
(`ingress`, `port_security`, `arp`, `l2`) is a module of flow functions; `compile` groups
them by owner and `changes` says which owners a change touches. See docs/pipeline.md.
"""

from .changes import (
    Change,
    DropNetwork,
    DropPort,
    DropRemote,
    PutNetwork,
    PutPort,
    PutRemote,
    SetPhysicalPort,
    SetTunnel,
    apply,
    apply_all,
)
from .compile import (
    compile_all,
    compile_base,
    compile_network,
    compile_owner,
    compile_port,
    compile_remote,
    owners,
)
from .render import render, render_all
from .tables import PIPELINE, BoundTable, Pipeline, PipelineError, Table
from .view import (
    BASE,
    AddressPair,
    LocalPort,
    Network,
    Owner,
    RemotePort,
    View,
    network_numbers,
)

__all__ = [
    "BASE",
    "PIPELINE",
    "AddressPair",
    "BoundTable",
    "Change",
    "DropNetwork",
    "DropPort",
    "DropRemote",
    "LocalPort",
    "Network",
    "Owner",
    "Pipeline",
    "PipelineError",
    "PutNetwork",
    "PutPort",
    "PutRemote",
    "RemotePort",
    "SetPhysicalPort",
    "SetTunnel",
    "Table",
    "View",
    "apply",
    "apply_all",
    "compile_all",
    "compile_base",
    "compile_network",
    "compile_owner",
    "compile_port",
    "compile_remote",
    "network_numbers",
    "owners",
    "render",
    "render_all",
]
