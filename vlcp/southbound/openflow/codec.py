"""The OpenFlow message codec: the one module that knows os-ken.

Everything above this file speaks in plain values (`Flow`, `Action`, `InstalledFlow`,
`PacketIn`, ...) and bytes; os-ken's message classes appear only here, so that the rest
of vlcp never sees its datapath-bound objects, its global registries or its eventlet hub
(only ``os_ken.ofproto.*`` is imported, through `osken`, which keeps the rest of os-ken
out of the process). os-ken insists on a "datapath" to build and
parse messages; `_Datapath` is the stand-in that carries just the protocol modules.

Messages are produced as bytes with xid 0; the channel stamps the xid it allocates
(`wire.set_xid`). A flow-mod is assembled from the encodings of its match fields and
actions, which are cached (few distinct ones, shared by many flows); whole flow-mods are
not: assembling one from cached parts takes ~5 us, while a cache of them kept the bytes of
every flow sent lately, gone or not (about 1 MiB per 1,000 local ports, up to 65,536
flows' worth: issue 16's agent memory).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, NoReturn

from vlcp.southbound.openflow.flow import Action, Flow
from vlcp.southbound.openflow.flow_mod import (
    FIXED_SIZE,
    assemble,
    native_action,
    native_oxm,
)
from vlcp.southbound.openflow.messages import (
    Bucket,
    Features,
    FlowMod,
    FlowRemoved,
    GroupStats,
    InstalledFlow,
    InstalledGroup,
    Meter,
    MeterSupport,
    PacketIn,
    PortStatus,
    SwitchError,
)
from vlcp.southbound.openflow.osken import (
    nicira_ext,
    ofproto_v1_3,
    ofproto_v1_3_parser,
    ofproto_v1_4,
    ofproto_v1_4_parser,
)
from vlcp.southbound.openflow.wire import (
    ALL_ONES_64,
    HEADER,
    HEADER_SIZE,
    OFP13,
    OFP14,
    OFP_NO_BUFFER,
    OFPET_EXPERIMENTER,
    OFPG_ALL,
    OFPP_ANY,
    OFPP_CONTROLLER,
    OFPT_BUNDLE_ADD_MESSAGE,
    OFPT_EXPERIMENTER,
    OFPT_PACKET_OUT,
    ONF_ET_BUNDLE_ADD,
    ONF_EXPERIMENTER,
    MalformedMessage,
    encode_echo,
    encode_hello,
    parse_header,
)

Message = Any
"""A parsed os-ken message object (``OFPFlowStatsReply``, ``OFPBarrierReply``, ...)."""


class _Datapath:
    """What os-ken's message classes need from a "datapath": the protocol modules."""

    def __init__(self, ofproto: Any, parser: Any) -> None:
        self.ofproto = ofproto
        self.ofproto_parser = parser


_MODULES = {OFP13: (ofproto_v1_3, ofproto_v1_3_parser), OFP14: (ofproto_v1_4, ofproto_v1_4_parser)}

_ERROR_CODE_PREFIX = {
    0: "OFPHFC_",
    1: "OFPBRC_",
    2: "OFPBAC_",
    3: "OFPBIC_",
    4: "OFPBMC_",
    5: "OFPFMFC_",
    6: "OFPGMFC_",
    7: "OFPPMFC_",
    8: "OFPTMFC_",
    9: "OFPQOFC_",
    10: "OFPSCFC_",
    11: "OFPRRFC_",
    12: "OFPMMFC_",
    13: "OFPTFFC_",
    14: "OFPBPC_",
    15: "OFPACFC_",
    16: "OFPMOFC_",
    17: "OFPBFC_",
}


@functools.cache
def _names(version: int, prefix: str) -> dict[int, str]:
    ofproto = _MODULES.get(version, _MODULES[OFP14])[0]
    return {getattr(ofproto, n): n for n in dir(ofproto) if n.startswith(prefix)}


def error_names(version: int, err_type: int, code: int) -> tuple[str, str]:
    """("OFPET_BAD_MATCH", "OFPBMC_BAD_FIELD") for (4, 6); numbers where OpenFlow has none.

    OVS reports bundle errors on OpenFlow 1.3 as ONF experimenter errors (code 2300+).
    """
    type_name = _names(version, "OFPET_").get(err_type, str(err_type))
    prefix = "ONFERR_" if err_type == OFPET_EXPERIMENTER else _ERROR_CODE_PREFIX.get(err_type)
    code_name = _names(OFP13, prefix).get(code) if prefix else None
    if code_name is None and prefix and err_type != OFPET_EXPERIMENTER:
        code_name = _names(version, prefix).get(code)
    return type_name, code_name or str(code)


_PORT_NAMES = {
    "in_port": 0xFFFFFFF8,
    "table": 0xFFFFFFF9,
    "normal": 0xFFFFFFFA,
    "flood": 0xFFFFFFFB,
    "all": 0xFFFFFFFC,
    "controller": OFPP_CONTROLLER,
    "local": 0xFFFFFFFE,
    "any": OFPP_ANY,
}
_GROUP_TYPES = {"all": 0, "select": 1, "indirect": 2, "ff": 3, "fast_failover": 3}
_GROUP_COMMANDS = {"add": 0, "modify": 1, "delete": 2}
_ROLES = {"nochange": 0, "equal": 1, "master": 2, "slave": 3}
_BUNDLE_CTRL = {"open": 0, "close": 2, "commit": 4, "discard": 6}
BUNDLE_ATOMIC, BUNDLE_ORDERED = 1, 2


_PACKET_OUT = struct.Struct("!IIH6x")
"""ofp_packet_out after the header: buffer id, in port, length of the actions (1.3, 1.4)."""


def _port(port: int | str) -> int:
    if isinstance(port, str):
        if port not in _PORT_NAMES:
            raise ValueError(f"unknown port name {port!r}")
        return _PORT_NAMES[port]
    return port


def _fields(match: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((str(k), v) for k, v in match._fields2))


class Codec:
    """Encoders and decoders for one negotiated OpenFlow version (get it by `codec_for`)."""

    def __init__(self, version: int) -> None:
        if version not in _MODULES:
            raise ValueError(f"unsupported OpenFlow version 0x{version:02x}")
        self.version = version
        self.ofproto, self.parser = _MODULES[version]
        self.dp = _Datapath(self.ofproto, self.parser)
        self.match_fields = frozenset(
            f.name for f in self.ofproto.oxm_types if not f.name.startswith("_")
        )
        self.field_bits = {f.name: f.type.size * 8 for f in self.ofproto.oxm_types}

    supports_bundles = True
    """OpenFlow 1.4 bundles, or on 1.3 the ONF extension (EXT-230) that os-ken and OVS speak."""

    def _bytes(self, msg: Any) -> bytes:
        msg.serialize()
        return bytes(msg.buf)

    # ------------------------------------------------------------ parsing

    def parse(self, data: bytes) -> Message:
        """One complete message to an os-ken object; anything unparseable is malformed."""
        header = parse_header(data)
        if header.version != self.version:
            raise MalformedMessage(
                f"version 0x{header.version:02x} on a 0x{self.version:02x} connection"
            )
        if header.length != len(data):
            raise MalformedMessage(f"length {header.length} but {len(data)} bytes")
        try:
            msg = self.parser.msg_parser(
                self.dp, header.version, header.type, header.length, header.xid, data
            )
        except Exception as exc:
            raise MalformedMessage(f"cannot parse message type {header.type}: {exc!r}") from exc
        if msg is None:
            raise MalformedMessage(f"cannot parse message type {header.type}")
        return msg

    def error(self, msg: Message) -> SwitchError:
        code = msg.exp_type if msg.type == OFPET_EXPERIMENTER else msg.code
        type_name, code_name = error_names(self.version, msg.type, code)
        return SwitchError(
            msg.type,
            code,
            msg.data or b"",
            xid=msg.xid,
            type_name=type_name,
            code_name=code_name,
            experimenter=getattr(msg, "experimenter", None),
        )

    def features(self, msg: Message) -> Features:
        return Features(
            msg.datapath_id, msg.n_buffers, msg.n_tables, msg.auxiliary_id, msg.capabilities
        )

    def packet_in(self, msg: Message) -> PacketIn:
        fields = _fields(msg.match)
        return PacketIn(
            in_port=dict(fields).get("in_port"),
            table_id=msg.table_id,
            cookie=msg.cookie,
            reason=msg.reason,
            data=bytes(msg.data),
            match_fields=fields,
            buffer_id=msg.buffer_id,
            total_len=msg.total_len,
        )

    def port_status(self, msg: Message) -> PortStatus:
        reason = {0: "add", 1: "delete", 2: "modify"}.get(msg.reason, "modify")
        port = msg.desc
        name = port.name.decode(errors="replace") if isinstance(port.name, bytes) else port.name
        return PortStatus(
            reason, port.port_no, name.rstrip("\0"), port.hw_addr, port.config, port.state
        )

    def flow_removed(self, msg: Message) -> FlowRemoved:
        return FlowRemoved(
            msg.cookie,
            msg.table_id,
            msg.priority,
            msg.reason,
            _fields(msg.match),
            msg.packet_count,
            msg.byte_count,
        )

    # ------------------------------------------------------------ match and actions

    def match(self, fields: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> Any:
        """An os-ken OFPMatch; unknown names and unencodable values raise ValueError."""
        match = self._unchecked_match(fields)
        try:
            match.serialize(bytearray(), 0)
        except Exception as exc:
            self._explain_match(dict(fields), exc)
        return match

    def _unchecked_match(self, fields: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> Any:
        """An OFPMatch whose values are only checked when serialized (encoding a flow
        serializes once; a failure there is explained by `_explain_match`)."""
        items = dict(fields)
        for name in items:
            if name not in self.match_fields:
                raise ValueError(f"unknown match field {name!r}")
        try:
            return self.parser.OFPMatch(**items)
        except Exception as exc:
            self._explain_match(items, exc)

    def _explain_match(self, items: dict[str, Any], exc: Exception) -> NoReturn:
        """Raise a ValueError naming the field whose value os-ken could not take."""
        for name, value in items.items():
            try:
                self.parser.OFPMatch(**{name: value}).serialize(bytearray(), 0)
            except Exception:
                raise ValueError(f"bad value for match field {name!r}: {value!r}") from exc
        raise ValueError(f"cannot encode match {items!r}: {exc}") from exc

    def actions(self, actions: Iterable[Action]) -> list[Any]:
        """os-ken actions for our `Action` values, through the one `ACTIONS` table."""
        out: list[Any] = []
        for action in actions:
            spec = ACTIONS.get(action.kind)
            if spec is None:
                raise ValueError(f"unknown action kind {action.kind!r}")
            builder, allowed = spec
            extra = {name for name, _ in action.args} - allowed
            if extra:
                raise ValueError(f"action {action.kind!r}: unknown argument(s) {sorted(extra)}")
            try:
                out.extend(builder(self, action))
            except (KeyError, TypeError, struct.error) as exc:
                raise ValueError(f"action {action.kind!r}: {exc!r}") from exc
        return out

    def _field(self, name: str) -> str:
        if name not in self.match_fields:
            raise ValueError(f"unknown field {name!r}")
        return name

    def _subfield(self, ref: str | Sequence[Any]) -> tuple[str, int]:
        """A learn-spec field reference: "reg1" (from bit 0) or ("reg1", offset)."""
        if isinstance(ref, str):
            return (self._field(ref), 0)
        return (self._field(ref[0]), int(ref[1]))

    # ------------------------------------------------------------ flows

    def add_flow(self, flow: Flow) -> bytes:
        """OFPFC_ADD with cookie = flow.cookie (replaces a flow of equal match and priority)."""
        return self._encode_flow(flow, "add")

    def delete_flow(self, flow: Flow | InstalledFlow) -> bytes:
        """A strict delete of exactly this flow, restricted to its cookie."""
        if isinstance(flow, InstalledFlow):
            return self._delete_installed(flow)
        return self._encode_flow(flow, "delete")

    def oxm(self, name: str, value: Any) -> bytes:
        """One match field's OXM TLV as os-ken encodes it (cached; ValueError if bad)."""
        return _oxm_bytes(self.version, name, value)

    def action_bytes(self, action: Action) -> bytes:
        """One action's bytes as os-ken encodes it (cached; ValueError if bad)."""
        return _action_bytes(self.version, action)

    def flow_mod_prefix(self, op: Literal["add", "delete"]) -> bytes:
        """The fixed part of a flow-mod (`flow_mod.FIXED_SIZE` bytes) for `op`, from
        os-ken, with zero cookie, table, priority and timeouts for the caller to set."""
        return _flow_mod_prefix(self.version, op)

    def flow_mod(self, mod: FlowMod) -> bytes:
        if mod.op == "add":
            if not isinstance(mod.flow, Flow):
                raise ValueError("only a Flow can be added")
            return self.add_flow(mod.flow)
        return self.delete_flow(mod.flow)

    def _encode_flow(self, flow: Flow, op: Literal["add", "delete"]) -> bytes:
        assembled = assemble(self, flow, op)
        return assembled if assembled is not None else self._encode_with_os_ken(flow, op)

    def _encode_with_os_ken(self, flow: Flow, op: str) -> bytes:
        match = self._unchecked_match(flow.match)
        try:
            return self._flow_message(flow, op, match)
        except ValueError:
            raise
        except Exception as exc:  # a value os-ken took but cannot serialize: say which
            try:
                match.serialize(bytearray(), 0)
            except Exception:
                self._explain_match(dict(flow.match), exc)
            raise ValueError(f"cannot encode flow {flow!r}: {exc!r}") from exc

    def _flow_message(self, flow: Flow, op: str, match: Any) -> bytes:
        ofp, p = self.ofproto, self.parser
        if op == "delete":
            return self._strict_delete(flow.cookie, flow.table, flow.priority, match)
        instructions = []
        actions = self.actions(flow.actions)
        if actions:
            instructions.append(p.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions))
        if flow.goto is not None:
            instructions.append(p.OFPInstructionGotoTable(flow.goto))
        msg = p.OFPFlowMod(
            self.dp,
            cookie=flow.cookie,
            table_id=flow.table,
            command=ofp.OFPFC_ADD,
            idle_timeout=flow.idle_timeout,
            hard_timeout=flow.hard_timeout,
            priority=flow.priority,
            buffer_id=OFP_NO_BUFFER,
            out_port=OFPP_ANY,
            out_group=ofp.OFPG_ANY,
            match=match,
            instructions=instructions,
        )
        return self._bytes(msg)

    def _delete_installed(self, flow: InstalledFlow) -> bytes:
        """A strict delete carrying the switch's own match bytes, so OVS's normal form
        (added prerequisites, canonical masks) matches exactly what it reported."""
        ofp = self.ofproto
        empty = self._strict_delete(flow.cookie, flow.table, flow.priority, self.parser.OFPMatch())
        head = bytearray(empty[: ofp.OFP_FLOW_MOD_SIZE - ofp.OFP_MATCH_SIZE])
        head += flow.match_bytes
        struct.pack_into("!H", head, 2, len(head))
        return bytes(head)

    def _strict_delete(self, cookie: int, table: int, priority: int, match: Any) -> bytes:
        """The one strict delete vlcp sends: exactly one flow (table, priority, match), and
        only while it still carries ``cookie`` (all 64 bits), so a flow an add replaced in
        place, now under another cookie, survives it."""
        ofp = self.ofproto
        msg = self.parser.OFPFlowMod(
            self.dp,
            cookie=cookie,
            cookie_mask=ALL_ONES_64,
            table_id=table,
            command=ofp.OFPFC_DELETE_STRICT,
            priority=priority,
            out_port=OFPP_ANY,
            out_group=ofp.OFPG_ANY,
            match=match,
        )
        return self._bytes(msg)

    def flow_stats_request(
        self, table: int | None = None, cookie: int = 0, cookie_mask: int = 0
    ) -> bytes:
        ofp = self.ofproto
        msg = self.parser.OFPFlowStatsRequest(
            self.dp,
            0,
            ofp.OFPTT_ALL if table is None else table,
            OFPP_ANY,
            ofp.OFPG_ANY,
            cookie,
            cookie_mask,
            self.parser.OFPMatch(),
        )
        return self._bytes(msg)

    def decode_flow_stats(self, replies: Iterable[Message]) -> list[InstalledFlow]:
        out = []
        for reply in replies:
            for st in reply.body:
                raw = bytearray()
                st.match.serialize(raw, 0)
                out.append(
                    InstalledFlow(
                        st.cookie,
                        st.table_id,
                        st.priority,
                        _fields(st.match),
                        bytes(raw),
                        st.idle_timeout,
                        st.hard_timeout,
                        st.flags,
                        st.packet_count,
                        st.byte_count,
                        st.duration_sec,
                    )
                )
        return out

    # ------------------------------------------------------------ groups

    def group_mod(
        self,
        command: Literal["add", "modify", "delete"],
        group_id: int,
        group_type: str = "all",
        buckets: Sequence[Bucket] = (),
    ) -> bytes:
        if command not in _GROUP_COMMANDS or group_type not in _GROUP_TYPES:
            raise ValueError(f"bad group command/type {command!r}/{group_type!r}")
        p = self.parser
        obuckets = [
            p.OFPBucket(b.weight, b.watch_port, b.watch_group, self.actions(b.actions))
            for b in buckets
        ]
        msg = p.OFPGroupMod(
            self.dp, _GROUP_COMMANDS[command], _GROUP_TYPES[group_type], group_id, obuckets
        )
        return self._bytes(msg)

    def group_desc_request(self) -> bytes:
        return self._bytes(self.parser.OFPGroupDescStatsRequest(self.dp, 0))

    def decode_group_desc(self, replies: Iterable[Message]) -> list[InstalledGroup]:
        names = {v: k for k, v in _GROUP_TYPES.items() if k != "fast_failover"}
        return [
            InstalledGroup(g.group_id, names.get(g.type, str(g.type)), len(g.buckets))
            for r in replies
            for g in r.body
        ]

    def group_stats_request(self, group_id: int = OFPG_ALL) -> bytes:
        return self._bytes(self.parser.OFPGroupStatsRequest(self.dp, 0, group_id))

    def decode_group_stats(self, replies: Iterable[Message]) -> list[GroupStats]:
        return [
            GroupStats(g.group_id, g.ref_count, g.packet_count, g.byte_count)
            for r in replies
            for g in r.body
        ]

    # ------------------------------------------------------------ meters

    def meter_mod(self, command: Literal["add", "modify", "delete"], meter: Meter) -> bytes:
        """A packets-per-second meter with one drop band (`Meter`); delete needs its id only."""
        ofp, p = self.ofproto, self.parser
        commands = {"add": ofp.OFPMC_ADD, "modify": ofp.OFPMC_MODIFY, "delete": ofp.OFPMC_DELETE}
        if command == "delete":
            return self._bytes(p.OFPMeterMod(self.dp, ofp.OFPMC_DELETE, 0, meter.meter_id, []))
        bands = [p.OFPMeterBandDrop(rate=meter.rate, burst_size=meter.burst)]
        flags = ofp.OFPMF_PKTPS | ofp.OFPMF_BURST
        return self._bytes(p.OFPMeterMod(self.dp, commands[command], flags, meter.meter_id, bands))

    def meter_config_request(self) -> bytes:
        return self._bytes(
            self.parser.OFPMeterConfigStatsRequest(self.dp, 0, self.ofproto.OFPM_ALL)
        )

    def decode_meter_config(self, replies: Iterable[Message]) -> list[Meter]:
        """Every meter the switch holds; one not of vlcp's kind with rate and burst 0."""
        ofp, out = self.ofproto, []
        ours = ofp.OFPMF_PKTPS | ofp.OFPMF_BURST
        for reply in replies:
            for config in reply.body:
                bands = config.bands
                if (
                    config.flags & ours == ours
                    and len(bands) == 1
                    and bands[0].type == ofp.OFPMBT_DROP
                ):
                    out.append(Meter(config.meter_id, bands[0].rate, bands[0].burst_size))
                else:
                    out.append(Meter(config.meter_id, 0, 0))
        return out

    def meter_features_request(self) -> bytes:
        return self._bytes(self.parser.OFPMeterFeaturesStatsRequest(self.dp, 0))

    def decode_meter_features(self, replies: Iterable[Message]) -> MeterSupport:
        ofp = self.ofproto
        for reply in replies:
            for features in reply.body:
                needed = ofp.OFPMF_PKTPS | ofp.OFPMF_BURST
                usable = (
                    features.capabilities & needed == needed
                    and features.band_types & (1 << ofp.OFPMBT_DROP) != 0
                    and features.max_meter > 0
                )
                return MeterSupport(features.max_meter, usable)
        return MeterSupport(0, False)

    # ------------------------------------------------------------ control messages

    def hello(self) -> bytes:
        return encode_hello()

    def echo_request(self, data: bytes = b"") -> bytes:
        return encode_echo(self.version, False, data)

    def echo_reply(self, data: bytes = b"", xid: int = 0) -> bytes:
        return encode_echo(self.version, True, data, xid)

    def features_request(self) -> bytes:
        return self._bytes(self.parser.OFPFeaturesRequest(self.dp))

    def barrier_request(self) -> bytes:
        return self._bytes(self.parser.OFPBarrierRequest(self.dp))

    def set_config(self, miss_send_len: int = 0xFFFF, flags: int = 0) -> bytes:
        return self._bytes(self.parser.OFPSetConfig(self.dp, flags, miss_send_len))

    def role_request(self, role: str, generation_id: int = 0) -> bytes:
        if role not in _ROLES:
            raise ValueError(f"unknown role {role!r}")
        return self._bytes(self.parser.OFPRoleRequest(self.dp, _ROLES[role], generation_id))

    def set_async(
        self,
        packet_in: tuple[int, int],
        port_status: tuple[int, int],
        flow_removed: tuple[int, int],
    ) -> bytes:
        """Which asynchronous messages we get, as (master/equal mask, slave mask) pairs."""
        p = self.parser
        if self.version == OFP13:
            return self._bytes(
                p.OFPSetAsync(self.dp, list(packet_in), list(port_status), list(flow_removed))
            )
        ofp = self.ofproto
        props = [
            (ofp.OFPACPT_PACKET_IN_MASTER, packet_in[0]),
            (ofp.OFPACPT_PACKET_IN_SLAVE, packet_in[1]),
            (ofp.OFPACPT_PORT_STATUS_MASTER, port_status[0]),
            (ofp.OFPACPT_PORT_STATUS_SLAVE, port_status[1]),
            (ofp.OFPACPT_FLOW_REMOVED_MASTER, flow_removed[0]),
            (ofp.OFPACPT_FLOW_REMOVED_SLAVE, flow_removed[1]),
        ]
        reasons = [p.OFPAsyncConfigPropReasons(type_=t, mask=m) for t, m in props]
        return self._bytes(p.OFPSetAsync(self.dp, reasons))

    def packet_out(
        self,
        data: bytes,
        actions: Iterable[Action],
        in_port: int | str = "controller",
        buffer_id: int = OFP_NO_BUFFER,
    ) -> bytes:
        """Encoded here, not by os-ken's `OFPPacketOut`, whose first use would load all of
        os-ken's packet library into the agent (see `osken`); the same bytes (tested)."""
        encoded = b"".join(self.action_bytes(a) for a in actions)
        body = _PACKET_OUT.pack(buffer_id, _port(in_port), len(encoded)) + encoded
        if buffer_id == OFP_NO_BUFFER:
            body += data
        return HEADER.pack(self.version, OFPT_PACKET_OUT, HEADER_SIZE + len(body), 0) + body

    # ------------------------------------------------------------ bundles

    def bundle_ctrl(
        self,
        bundle_id: int,
        kind: Literal["open", "close", "commit", "discard"],
        flags: int = BUNDLE_ATOMIC | BUNDLE_ORDERED,
    ) -> bytes:
        """Bundle control: OFPT_BUNDLE_CONTROL on 1.4, the ONF experimenter message on 1.3."""
        if kind not in _BUNDLE_CTRL:
            raise ValueError(f"unknown bundle control {kind!r}")
        p = self.parser
        cls = p.ONFBundleCtrlMsg if self.version == OFP13 else p.OFPBundleCtrlMsg
        return self._bytes(cls(self.dp, bundle_id, _BUNDLE_CTRL[kind], flags, []))

    def bundle_add(
        self, bundle_id: int, message: bytes, flags: int = BUNDLE_ATOMIC | BUNDLE_ORDERED
    ) -> bytes:
        """Wrap an already-encoded message; `set_xid` later keeps both xids equal."""
        ofp = self.ofproto
        if self.version == OFP13:
            head = struct.pack("!II", ONF_EXPERIMENTER, ONF_ET_BUNDLE_ADD)
            head += struct.pack(ofp.ONF_BUNDLE_ADD_MSG_PACK_STR, bundle_id, flags)
            mtype = OFPT_EXPERIMENTER
        else:
            head = struct.pack(ofp.OFP_BUNDLE_ADD_MSG_0_PACK_STR, bundle_id, flags)
            mtype = OFPT_BUNDLE_ADD_MESSAGE
        body = head + message
        return HEADER.pack(self.version, mtype, HEADER_SIZE + len(body), 0) + body


@functools.cache
def codec_for(version: int) -> Codec:
    """The shared codec of a version (stateless apart from its caches)."""
    return Codec(version)


@functools.lru_cache(maxsize=1 << 16)
def _oxm_bytes(version: int, name: str, value: Any) -> bytes:
    native = native_oxm(name, value)
    if native is not None:
        return native
    buf = bytearray()
    match = codec_for(version).match({name: value})
    match.serialize(buf, 0)
    return bytes(buf[4 : match.length])  # without the match header and padding


@functools.lru_cache(maxsize=1 << 16)
def _action_bytes(version: int, action: Action) -> bytes:
    native = native_action(action)
    if native is not None:
        return native
    buf = bytearray()
    for encoded in codec_for(version).actions([action]):
        start = len(buf)
        encoded.serialize(buf, start)
        # some (learn) leave their trailing padding to whatever is written next
        (declared,) = struct.unpack_from("!H", buf, start + 2)
        buf += bytes(start + declared - len(buf))
    return bytes(buf)


@functools.cache
def _flow_mod_prefix(version: int, op: str) -> bytes:
    c = codec_for(version)
    empty = Flow(table=0, priority=0)
    whole = c._flow_message(empty, op, c.parser.OFPMatch())
    prefix = bytearray(whole[:FIXED_SIZE])
    struct.pack_into("!Q", prefix, 8, 0)  # the cookie is the flow's
    return bytes(prefix)


# ---------------------------------------------------------------- the action table


def _immediate_or_field(c: Codec, value: Any) -> Any:
    """A learn-spec source: an int is an immediate value, anything else a field."""
    return value if isinstance(value, int) else c._subfield(value)


def _learn_spec(c: Codec, spec: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> Any:
    """{"type": "match"|"load"|"output", "src": ..., "dst": ..., "n_bits": N}."""
    s = dict(spec)
    kind, p = s.get("type", "match"), c.parser
    src = _immediate_or_field(c, s["src"])
    n_bits = s.get("n_bits")
    if n_bits is None:
        ref = s.get("dst") if isinstance(src, int) else s["src"]
        n_bits = c.field_bits[c._subfield(ref)[0]]
    if kind == "output":
        return p.NXFlowSpecOutput(src=src, n_bits=n_bits, dst="")
    cls = {"match": p.NXFlowSpecMatch, "load": p.NXFlowSpecLoad}.get(kind)
    if cls is None:
        raise ValueError(f"unknown learn spec type {kind!r}")
    dst = c._subfield(s.get("dst", s["src"]))
    return cls(src=src, dst=dst, n_bits=n_bits)


def _output(c: Codec, a: Action) -> list[Any]:
    return [c.parser.OFPActionOutput(_port(a.arg("port")), a.arg("max_len", 0))]


def _controller(c: Codec, a: Action) -> list[Any]:
    """Plain output:CONTROLLER, Nicira controller() when a reason or id is asked for, or
    Nicira controller2 with its meter property when a meter is (`_register_meter_property`)."""
    max_len = a.arg("max_len", c.ofproto.OFPCML_NO_BUFFER)
    reason, cid, meter = a.arg("reason", 0), a.arg("controller_id", 0), a.arg("meter_id")
    if meter is not None:
        optional = {"controller_id": cid, "reason": reason}  # absent: OVS's defaults (ACTION)
        properties = {name: value for name, value in optional.items() if value}
        return [c.parser.NXActionController2(max_len=max_len, meter_id=meter, **properties)]
    if reason or cid:
        return [c.parser.NXActionController(max_len, cid, reason)]
    return [c.parser.OFPActionOutput(OFPP_CONTROLLER, max_len)]


NXAC2PT_METER_ID = 5
"""OVS's controller2 property naming the meter its packet-ins go through (OVS >= 2.11)."""
_METER_PROPERTY = struct.Struct("!HHI")
_METER_ID = struct.Struct("!I")


def _register_meter_property(parser: Any) -> None:
    """Teach os-ken's NXActionController2 the meter property, which it does not know.

    Why this action and not OpenFlow's meter instruction: OVS accepts a flow naming a
    meter here whether or not the meter exists, and deleting the meter leaves the flow
    alone; a meter instruction is refused without its meter and deleted with it. So a
    bridge's meters can be kept apart from its flows (`vlcp.southbound.meters`, which says
    the one order that matters).

    os-ken keeps controller2's property types in a registry its generated classes close
    over, and fails to parse a property it does not know (so a flow-stats reply holding
    one of these flows could not be read at all): the meter property is registered there,
    once per protocol version when this module is imported: before the first flow-stats
    reply is parsed, not at the first metered action encoded (a restarted controller reads
    the switch's flows before it encodes any).
    """
    action = parser.NXActionController2
    cells = dict(
        zip(
            action.parser.__func__.__code__.co_freevars,
            action.parser.__func__.__closure__,
            strict=True,
        )
    )
    registry = cells["NXActionController2Prop"].cell_contents
    if "meter_id" not in registry._NAMES:

        @registry.register_type(NXAC2PT_METER_ID)
        class MeterId(registry):  # type: ignore[misc,valid-type]
            _arg_name = "meter_id"

            @classmethod
            def parser_prop(cls, buf: bytes, length: int) -> tuple[int, int]:
                return _METER_ID.unpack_from(buf, 0)[0], _METER_ID.size

            @classmethod
            def serialize_prop(cls, meter_id: int) -> bytes:
                return _METER_PROPERTY.pack(NXAC2PT_METER_ID, _METER_PROPERTY.size, meter_id)


for _parser in (ofproto_v1_3_parser, ofproto_v1_4_parser):
    _register_meter_property(_parser)


def _set_field(c: Codec, a: Action) -> list[Any]:
    name, value = c._field(a.arg("field")), a.arg("value")
    if isinstance(value, tuple):
        raise ValueError(f"set_field {name}: masked values need nx_reg_load")
    return [c.parser.OFPActionSetField(**{name: value})]


def _reg_load(c: Codec, a: Action) -> list[Any]:
    name = c._field(a.arg("field"))
    ofs = a.arg("ofs", 0)
    n_bits = a.arg("n_bits") or c.field_bits[name] - ofs
    ofs_nbits = nicira_ext.ofs_nbits(ofs, ofs + n_bits - 1)
    return [c.parser.NXActionRegLoad(ofs_nbits=ofs_nbits, dst=name, value=a.arg("value"))]


def _reg_move(c: Codec, a: Action) -> list[Any]:
    src, dst = c._field(a.arg("src")), c._field(a.arg("dst"))
    n_bits = a.arg("n_bits") or min(c.field_bits[src], c.field_bits[dst])
    return [c.parser.NXActionRegMove(src, dst, n_bits, a.arg("src_ofs", 0), a.arg("dst_ofs", 0))]


def _learn(c: Codec, a: Action) -> list[Any]:
    specs = [_learn_spec(c, s) for s in a.arg("specs", ())]
    return [
        c.parser.NXActionLearn(
            table_id=a.arg("table"),
            specs=specs,
            idle_timeout=a.arg("idle_timeout", 0),
            hard_timeout=a.arg("hard_timeout", 0),
            priority=a.arg("priority", 0x8000),
            cookie=a.arg("cookie", 0),
            flags=a.arg("flags", 0),
            fin_idle_timeout=a.arg("fin_idle_timeout", 0),
            fin_hard_timeout=a.arg("fin_hard_timeout", 0),
        )
    ]


def _conjunction(c: Codec, a: Action) -> list[Any]:
    """conjunction(id, k/n) with k counted from 1, as ovs-ofctl writes it (0-based on the wire)."""
    clause, n_clauses = a.arg("clause"), a.arg("n_clauses")
    if not 1 <= clause <= n_clauses <= 64:
        raise ValueError(f"conjunction clause {clause}/{n_clauses} is out of range")
    return [c.parser.NXActionConjunction(clause - 1, n_clauses, a.arg("id"))]


def _ct(c: Codec, a: Action) -> list[Any]:
    """ct(commit, zone=N or zone=reg[...], table=T, alg=P, exec(nested actions))."""
    flags = a.arg("flags", 0) | (1 if a.arg("commit") else 0) | (2 if a.arg("force") else 0)
    zone = a.arg("zone", 0)
    if isinstance(zone, int):
        zone_src, zone_ofs_nbits = "", zone
    else:
        name, ofs = c._subfield(zone)
        zone_src, zone_ofs_nbits = name, nicira_ext.ofs_nbits(ofs, ofs + 15)
    nested = c.actions(a.arg("actions", ()))
    table = a.arg("table")
    return [
        c.parser.NXActionCT(
            flags,
            zone_src,
            zone_ofs_nbits,
            0xFF if table is None else table,
            a.arg("alg", 0),
            nested,
        )
    ]


def _nat(c: Codec, a: Action) -> list[Any]:
    return [
        c.parser.NXActionNAT(
            a.arg("flags", 0),
            range_ipv4_min=a.arg("ipv4_min", ""),
            range_ipv4_max=a.arg("ipv4_max", ""),
            range_proto_min=a.arg("proto_min"),
            range_proto_max=a.arg("proto_max"),
        )
    ]


def _resubmit(c: Codec, a: Action) -> list[Any]:
    in_port = a.arg("in_port")
    return [
        c.parser.NXActionResubmitTable(0xFFF8 if in_port is None else in_port, a.arg("table", 0xFF))
    ]


def _dec_ttl(c: Codec, a: Action) -> list[Any]:
    """Nicira dec_ttl(ids): an IPv4 packet at TTL 0 or 1 is dropped, sent to the
    controllers named (none: dropped silently, no controller on the path)."""
    return [c.parser.NXActionDecTtlCntIds(cnt_ids=list(a.arg("controllers", ())))]


_Builder = Callable[[Codec, Action], list[Any]]
ACTIONS: dict[str, tuple[_Builder, frozenset[str]]] = {
    "output": (_output, frozenset({"port", "max_len"})),
    "controller": (_controller, frozenset({"max_len", "reason", "controller_id", "meter_id"})),
    "set_field": (_set_field, frozenset({"field", "value"})),
    "push_vlan": (
        lambda c, a: [c.parser.OFPActionPushVlan(a.arg("ethertype", 0x8100))],
        frozenset({"ethertype"}),
    ),
    "pop_vlan": (lambda c, a: [c.parser.OFPActionPopVlan()], frozenset()),
    "group": (lambda c, a: [c.parser.OFPActionGroup(a.arg("group_id"))], frozenset({"group_id"})),
    "drop": (lambda c, a: [], frozenset()),
    "nx_resubmit": (_resubmit, frozenset({"table", "in_port"})),
    "nx_dec_ttl": (_dec_ttl, frozenset({"controllers"})),
    "nx_learn": (
        _learn,
        frozenset(
            {
                "table",
                "specs",
                "idle_timeout",
                "hard_timeout",
                "priority",
                "cookie",
                "flags",
                "fin_idle_timeout",
                "fin_hard_timeout",
            }
        ),
    ),
    "nx_conjunction": (_conjunction, frozenset({"id", "clause", "n_clauses"})),
    "nx_ct": (_ct, frozenset({"commit", "force", "flags", "zone", "table", "alg", "actions"})),
    "nx_nat": (_nat, frozenset({"flags", "ipv4_min", "ipv4_max", "proto_min", "proto_max"})),
    "nx_reg_load": (_reg_load, frozenset({"field", "value", "ofs", "n_bits"})),
    "nx_reg_move": (_reg_move, frozenset({"src", "dst", "n_bits", "src_ofs", "dst_ofs"})),
}
"""`Action.kind` -> (builder, accepted argument names). The one place names meet os-ken."""
