"""The example packages under `examples/`, imported from the source tree.

They are separate distributions (their own pyproject.toml), which CI does not install:
the tests put the package's directory on `sys.path` instead, so what they test is the
code in this checkout.
"""

from __future__ import annotations

import importlib
import re
import sys
import tomllib
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def import_example(distribution: str, package: str) -> ModuleType:
    """`package` from `examples/<distribution>/`."""
    path = str(EXAMPLES / distribution)
    if path not in sys.path:
        sys.path.insert(0, path)
    return importlib.import_module(package)


def installed_example(distribution: str, directory: Path) -> list[Path]:
    """`examples/<distribution>/` as pip would install it, for another process: writes
    its `.dist-info` (METADATA, and entry_points.txt from its pyproject.toml) into
    `directory`; returns the directories to put on that process's PYTHONPATH."""
    source = EXAMPLES / distribution
    project = tomllib.loads((source / "pyproject.toml").read_text())["project"]
    name, version = project["name"], project["version"]
    info = directory / f"{re.sub(r'[-_.]+', '_', name)}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    groups = project.get("entry-points", {})
    entry_points = [
        f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in entries.items())
        for group, entries in groups.items()
    ]
    (info / "entry_points.txt").write_text("\n".join(entry_points))
    return [directory, source]
