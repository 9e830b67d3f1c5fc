"""The registry of object kinds: every `Kind`, in the order lists and messages show them.

Each kind's record sits in its own module beside the operations it names (see `kind.py`);
this is the one list of them that the model's operations, the REST API, the
VLCP-compatible API and the CLI derive from. A new kind is its module plus one line here.
"""

from __future__ import annotations

from pydantic import BaseModel

from .kind import Kind
from .lognet import LOGNETS
from .lport import LPORTS
from .objects import RouterInterface, RouterInterfaceCreate
from .physnet import PHYSNETS
from .physport import PHYSPORTS
from .router import ROUTERS
from .subnet import SUBNETS

KINDS: tuple[Kind, ...] = (PHYSNETS, PHYSPORTS, LOGNETS, LPORTS, SUBNETS, ROUTERS)
BY_NAME: dict[str, Kind] = {kind.name: kind for kind in KINDS}
NAMES: tuple[str, ...] = tuple(BY_NAME)

ROUTER_INTERFACES = "router-interfaces"
"""Not a kind but parts of a router, added and removed by subnet (`router.py`); a batch
and the original API still name them like a kind."""

SHAPES: dict[str, tuple[type[BaseModel], type[BaseModel] | None, type[BaseModel]]] = {
    **{kind.name: (kind.create_body, kind.update_body, kind.stored) for kind in KINDS},
    ROUTER_INTERFACES: (RouterInterfaceCreate, None, RouterInterface),
}
"""Per kind name: (create body, update body, returned object); for the API's documents."""
