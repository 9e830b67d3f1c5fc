"""os-ken's OpenFlow 1.3 and 1.4 message modules, imported without the rest of os-ken.

vlcp uses os-ken for OpenFlow messages only (`codec`). Imported the usual way, they bring
along `os_ken/__init__` (pbr's version lookup: importlib.metadata, email),
`os_ken.ofproto/__init__` (the parsers of every OpenFlow version) and
`os_ken.lib.packet/__init__` (every protocol, and through zebra `os_ken.flags` and
oslo.config): 38 MiB of resident memory in a process, measured, where these modules alone
need 17. Every agent pays it before its first port (issue 16: an agent under 50 MiB at
1,000 ports).

So those three packages are entered in `sys.modules` as bare packages (their directory,
none of their `__init__` code), which the message modules import from like from the real
ones, and `os_ken.lib.packet.packet`, which the 1.3 and 1.4 parsers import for one
`isinstance` in `OFPPacketOut` (never reached: `codec` encodes packet-outs itself), loads
only when something uses it. A process that imported os-ken before keeps it as it is.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path


def _bare_package(name: str, directory: Path) -> None:
    package = types.ModuleType(name)
    package.__path__ = [str(directory)]
    package.__package__ = name
    sys.modules[name] = package


def _lazy_module(name: str) -> None:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None, name
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    # As an attribute of its package, so that `from package import module` takes it as it
    # is (the import system would otherwise look into it, which loads it).
    package, _, attribute = name.rpartition(".")
    setattr(sys.modules[package], attribute, module)


def _enter_bare() -> None:
    if "os_ken" in sys.modules:
        return
    spec = importlib.util.find_spec("os_ken")
    assert spec is not None and spec.origin is not None, "os-ken is not installed"
    root = Path(spec.origin).parent
    _bare_package("os_ken", root)
    _bare_package("os_ken.ofproto", root / "ofproto")
    _bare_package("os_ken.lib.packet", root / "lib" / "packet")
    _lazy_module("os_ken.lib.packet.packet")


_enter_bare()

from os_ken.ofproto import (  # noqa: E402  (after the packages are entered)
    nicira_ext,
    ofproto_v1_3,
    ofproto_v1_3_parser,
    ofproto_v1_4,
    ofproto_v1_4_parser,
)

__all__ = [
    "nicira_ext",
    "ofproto_v1_3",
    "ofproto_v1_3_parser",
    "ofproto_v1_4",
    "ofproto_v1_4_parser",
]
