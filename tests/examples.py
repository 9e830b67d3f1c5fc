"""The example packages under `examples/`, imported from the source tree.

They are separate distributions (their own pyproject.toml), which CI does not install:
the tests put the package's directory on `sys.path` instead, so what they test is the
code in this checkout.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def import_example(distribution: str, package: str) -> ModuleType:
    """`package` from `examples/<distribution>/`."""
    path = str(EXAMPLES / distribution)
    if path not in sys.path:
        sys.path.insert(0, path)
    return importlib.import_module(package)
