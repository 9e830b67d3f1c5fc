"""The logical network model: objects, invariants, one store transaction per intent.

`Model(store)` is what the API uses; the per-kind functions (`create_lport(txn, body)`,
...) run inside a store transaction so a batch composes many in one. See docs/model.md.
"""

from .errors import Busy, Conflict, Invalid, ModelError, NotFound, TimedOut
from .keys import (
    KINDS,
    LOGNETS,
    LPORTS,
    PHYSNETS,
    PHYSPORTS,
    ROUTER_INTERFACES,
    ROUTERS,
    SUBNETS,
)
from .ops import Op, apply
from .physport import find_physical_port
from .service import Model

__all__ = [
    "KINDS",
    "LOGNETS",
    "LPORTS",
    "PHYSNETS",
    "PHYSPORTS",
    "ROUTERS",
    "ROUTER_INTERFACES",
    "SUBNETS",
    "Busy",
    "Conflict",
    "Invalid",
    "Model",
    "ModelError",
    "NotFound",
    "Op",
    "TimedOut",
    "apply",
    "find_physical_port",
]
