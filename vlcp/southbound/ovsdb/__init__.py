"""An asyncio OVSDB (RFC 7047) client: transactions, monitors with a resyncing row cache, locks.

Layers, bottom up (each imports only the ones before it):

* ``protocol``  sans-I/O JSON-RPC: stream framing, ids, inactivity probe state;
* ``schema``, ``values``, ``ops``  schema types, value decoding/encoding, op builders;
* ``cache``  the pure row cache: applies updates, computes the resync diff;
* ``connection``, ``client``  the asyncio adapter: reconnects, echo, locks, transact;
* ``monitor``  keeps a :class:`~.cache.RowCache` in step with the server;
* ``vswitch``  Open_vSwitch helpers the agent uses (iface-id, system-id, bridge setup).
"""

from . import ops, vswitch
from .cache import ChangeKind, ChangeSet, RowCache, RowChange, diff_tables
from .client import Backoff, OvsdbClient
from .connection import Session, Target
from .errors import (
    ClientClosed,
    ConnectionLost,
    OvsdbError,
    ProtocolError,
    RpcError,
    TransactError,
)
from .monitor import Monitor
from .schema import ColumnType, DatabaseSchema, TableSchema
from .values import NamedUuid, Row, decode_value, encode_value

__all__ = [
    "Backoff",
    "ChangeKind",
    "ChangeSet",
    "ClientClosed",
    "ColumnType",
    "ConnectionLost",
    "DatabaseSchema",
    "Monitor",
    "NamedUuid",
    "OvsdbClient",
    "OvsdbError",
    "ProtocolError",
    "Row",
    "RowCache",
    "RowChange",
    "RpcError",
    "Session",
    "TableSchema",
    "Target",
    "TransactError",
    "decode_value",
    "diff_tables",
    "encode_value",
    "ops",
    "vswitch",
]
