"""What the OpenFlow layer hands up and takes down, as plain frozen values.

Nothing here knows os-ken: the codec turns these into wire messages and back, and the
reconciler, services and tests can build and compare them without any OpenFlow library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from vlcp.southbound.openflow.flow import Action, Flow
from vlcp.southbound.openflow.wire import OFP_NO_BUFFER, OFPP_ANY


@dataclass(frozen=True, slots=True)
class InstalledFlow:
    """A flow as read back from the switch: identity by cookie, table, priority, match."""

    cookie: int
    table: int
    priority: int
    match_fields: tuple[tuple[str, Any], ...]
    match_bytes: bytes = field(repr=False)
    """The OXM match exactly as re-encoded from the switch's report (for strict deletes)."""
    idle_timeout: int = 0
    hard_timeout: int = 0
    flags: int = 0
    packet_count: int = field(default=0, compare=False)
    byte_count: int = field(default=0, compare=False)
    duration_sec: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class FlowMod:
    """One change to a flow table, as a value a reconciler can plan with before I/O."""

    op: Literal["add", "delete"]
    flow: Flow | InstalledFlow

    @classmethod
    def add(cls, flow: Flow) -> FlowMod:
        return cls("add", flow)

    @classmethod
    def delete(cls, flow: Flow | InstalledFlow) -> FlowMod:
        return cls("delete", flow)


@dataclass(frozen=True, slots=True)
class Bucket:
    """A group bucket: actions plus the select/fast-failover parameters."""

    actions: tuple[Action, ...]
    weight: int = 0
    watch_port: int = OFPP_ANY
    watch_group: int = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class InstalledGroup:
    group_id: int
    group_type: str
    n_buckets: int


@dataclass(frozen=True, slots=True)
class GroupStats:
    group_id: int
    ref_count: int
    packet_count: int
    byte_count: int


@dataclass(frozen=True, slots=True)
class Meter:
    """A packets-per-second meter that drops what exceeds `rate`, after a `burst`: the one
    kind vlcp sets (read back, a meter of any other kind has rate and burst 0)."""

    meter_id: int
    rate: int
    burst: int


@dataclass(frozen=True, slots=True)
class MeterSupport:
    """Whether a switch can keep the meters vlcp sets, and how many."""

    max_meter: int
    usable: bool
    """Packets-per-second drop bands with a burst size are supported."""


@dataclass(frozen=True, slots=True)
class Features:
    datapath_id: int
    n_buffers: int
    n_tables: int
    auxiliary_id: int
    capabilities: int


@dataclass(frozen=True, slots=True)
class PacketIn:
    in_port: int | None
    table_id: int
    cookie: int
    reason: int
    data: bytes
    match_fields: tuple[tuple[str, Any], ...]
    buffer_id: int = OFP_NO_BUFFER
    total_len: int = 0


@dataclass(frozen=True, slots=True)
class PortStatus:
    reason: Literal["add", "delete", "modify"]
    port_no: int
    name: str
    hw_addr: str
    config: int
    state: int


@dataclass(frozen=True, slots=True)
class FlowRemoved:
    cookie: int
    table_id: int
    priority: int
    reason: int
    match_fields: tuple[tuple[str, Any], ...]
    packet_count: int
    byte_count: int


class SwitchError(Exception):
    """An OFPT_ERROR from the switch, with the names OpenFlow gives its type and code."""

    def __init__(
        self,
        err_type: int,
        code: int,
        data: bytes = b"",
        *,
        xid: int = 0,
        type_name: str | None = None,
        code_name: str | None = None,
        experimenter: int | None = None,
    ) -> None:
        self.type, self.code, self.data, self.xid = err_type, code, bytes(data), xid
        self.experimenter = experimenter
        self.type_name, self.code_name = type_name or str(err_type), code_name or str(code)
        super().__init__(f"{self.type_name}/{self.code_name} (xid {xid})")
