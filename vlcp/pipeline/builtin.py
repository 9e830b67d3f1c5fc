"""The built-in modules, and the catalog and module set a controller starts with.

Declaration order matters only for ties in table order (`tables.Pipeline`): it keeps the
built-in tables at the ids they had before modules existed (ingress 0 .. l2_forward 4),
so an upgraded controller finds its switch's flows already right. New modules go at the
end (dhcp's table, after every other, is 5; gateway's is 6; l3's is 7;
icmp_errors' is 8).
"""

from __future__ import annotations

from . import (
    arp,
    dhcp,
    external,
    gateway,
    icmp_errors,
    ingress,
    l2,
    l3,
    nexthops,
    port_security,
    static_routes,
    vxlan,
)
from .catalog import Catalog, ModuleSet
from .physical import NATIVE, VLAN

BUILTIN = Catalog(
    (
        ingress.MODULE,
        port_security.MODULE,
        arp.MODULE,
        l2.MODULE,
        vxlan.MODULE,
        VLAN,
        NATIVE,
        dhcp.MODULE,
        gateway.MODULE,
        l3.MODULE,
        icmp_errors.MODULE,
        static_routes.MODULE,
        nexthops.MODULE,
        external.MODULE,
    )
)
DEFAULT = ModuleSet.all(BUILTIN)
"""Every built-in module loaded: what a controller runs unless told otherwise."""
PIPELINE = BUILTIN.pipeline
"""The tables of the built-in catalog (for names in dumps and tests)."""
