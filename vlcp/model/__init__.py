"""The logical network model: objects, invariants, one store transaction per intent.

`Model(store)` is what the API uses; the per-kind functions (`create_lport(txn, body)`,
...) run inside a store transaction so a batch composes many in one. `KINDS` lists every
kind of object (`Kind`), which the APIs and the CLI derive their names from. See
docs/model.md.
"""

from .errors import Busy, Conflict, Invalid, ModelError, NotFound, TimedOut
from .kind import Kind
from .kinds import BY_NAME, KINDS, ROUTER_INTERFACES
from .ops import Op, apply
from .physport import find_physical_port
from .service import Model

__all__ = [
    "BY_NAME",
    "KINDS",
    "ROUTER_INTERFACES",
    "Busy",
    "Conflict",
    "Invalid",
    "Kind",
    "Model",
    "ModelError",
    "NotFound",
    "Op",
    "TimedOut",
    "apply",
    "find_physical_port",
]
