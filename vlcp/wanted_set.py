"""The wanted-set document: which modules a server should run, their reloads and settings.

Stored at `modules-all` and `modules/<system-id>` (see `vlcp.layout`), written by the API
(`vlcp.model.modules`) and followed by every controller (`vlcp.agent.modules`). The two
halves may not import each other, so the document's one reading lives here, below both:
a shape one side accepts is a shape the other side accepts.

    {"modules": [names],
     "reload": {name: generation},      # optional: a reload request is a higher one
     "settings": {name: {...}}}          # optional: a module's settings, as JSON

Settings are checked by the controllers, against each module's own settings model (the
API half does not have the modules' code); a controller that refuses them leaves the
module out and says why in its `module-status/`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class WantedSet:
    """One wanted-set document, parsed."""

    modules: frozenset[str]
    reload: Mapping[str, int] = field(default_factory=dict)
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: Any) -> WantedSet:
        """Raises ValueError, saying what is wrong, on anything but the documented shape."""
        if not isinstance(value, dict):
            raise ValueError(f"not an object: {value!r}")
        names = value.get("modules")
        reloads = value.get("reload", {})
        settings = value.get("settings", {})
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"modules: not a list of names: {names!r}")
        if not isinstance(reloads, dict) or not all(
            isinstance(g, int) and not isinstance(g, bool) for g in reloads.values()
        ):
            raise ValueError(f"reload: not names and generations: {reloads!r}")
        if not isinstance(settings, dict) or not all(
            isinstance(s, dict) for s in settings.values()
        ):
            raise ValueError(f"settings: not names and objects: {settings!r}")
        return cls(frozenset(names), dict(reloads), dict(settings))

    def value(self) -> dict[str, Any]:
        """The document to store."""
        return {
            "modules": sorted(self.modules),
            "reload": dict(sorted(self.reload.items())),
            "settings": dict(sorted(self.settings.items())),
        }
