"""The modules a controller runs: which are known, which are wanted, and their reloads.

Kept out of the agent, which only asks three things of it: the `ModuleSet` to compile
with (`ModuleManager.current`), whether the wanted set changed it (`update`), and to put
aside a module whose code raised (`fail`). Everything here is decided from values (the
store documents, the installed entry points), so it is tested without a switch.

- **Known** (`discover`): the built-in modules and those installed packages register
  under the entry-point group `vlcp.modules`, read once at start. A package that cannot
  be imported, or that declares something the catalog refuses, is left out with the
  reason; the controller runs with the others. Installing a package needs a restart
  (the catalog numbers the tables); reloading an installed one does not.
- **Wanted**: `modules/<system-id>` if present, else `modules-all`, else the default
  (every built-in module; a third-party module runs only where a wanted set names it).
  The loaded modules are what the wanted ones need (`Catalog.requires`).
- **Reloaded**: when the wanted document's `reload` generation of a module is higher
  than the one last applied. At start the current generations count as applied (the
  code was just imported). A reload re-imports the Python module that defines the
  module and takes its declaration again; a failed import, or new code the catalog
  refuses (a moved table), keeps the old version and says why.
- **Failed**: a module whose code raises is unloaded with what needs it, and stays out
  until it is reloaded or the wanted list changes (retrying it would raise again).

What it reports (`status`) is written to `module-status/<system-id>` (`publish`) when it
differs from what the store holds.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from vlcp.layout import MODULES_ALL, module_status, modules_key
from vlcp.pipeline import BUILTIN, Catalog, Module, ModuleError, ModuleFailed, ModuleSet
from vlcp.pipeline.tables import PipelineError
from vlcp.store import Store, Transaction
from vlcp.typed import Invalid, dump, json_schema, validate
from vlcp.wanted_set import WantedSet

log = logging.getLogger(__name__)

GROUP = "vlcp.modules"
"""The entry-point group third-party packages register their modules under."""
BUILTIN_SOURCE = "builtin"


@dataclass(frozen=True)
class Source:
    """Where a module's declaration lives: `module:attr`, and who installed it."""

    module: str
    attr: str
    distribution: str | None = None
    """The installed package (None: built in)."""

    def describe(self) -> str:
        """ "builtin", or the entry point as "distribution:module:attr"."""
        if self.distribution is None:
            return BUILTIN_SOURCE
        return f"{self.distribution}:{self.module}:{self.attr}"

    def reimport(self) -> Module:
        """Run the Python module's code again and take the declaration it now makes."""
        python = sys.modules.get(self.module)
        if python is None:
            python = importlib.import_module(self.module)
        else:
            python = importlib.reload(python)
        found: Any = python
        for part in self.attr.split("."):
            found = getattr(found, part)
        return _module(found, f"{self.module}:{self.attr}")


@dataclass(frozen=True)
class Discovery:
    """The modules a controller knows, fixed at start."""

    catalog: Catalog
    sources: Mapping[str, Source | None]
    """Where each module's code is (None: not found, so it cannot be reloaded)."""
    default: frozenset[str]
    """What runs without a wanted set: the built-in modules."""
    errors: Mapping[str, str] = field(default_factory=dict)
    """Installed modules left out, and why."""


def discover(builtin: Catalog = BUILTIN, found: Iterable[EntryPoint] | None = None) -> Discovery:
    """The built-in catalog plus the modules registered under `GROUP` (`found`: the
    entry points, by default those of the installed packages)."""
    if found is None:
        found = entry_points(group=GROUP)
    errors: dict[str, str] = {}
    sources: dict[str, Source | None] = {m.name: _builtin_source(m) for m in builtin}
    candidates: dict[str, Module] = {}
    for point in sorted(found, key=lambda p: p.name):
        try:
            module = _module(point.load(), point.value)
        except Exception as exc:  # whatever the package's import raises
            errors[point.name] = f"cannot load {point.value}: {type(exc).__name__}: {exc}"
            continue
        if module.name in sources:
            errors[point.name] = f"{point.value}: a module named {module.name} is already known"
            continue
        dist = point.dist.name if point.dist is not None else "unknown"
        sources[module.name] = Source(point.module, point.attr, dist)
        candidates[module.name] = module
    catalog = _admit(builtin, candidates, errors)
    for name in errors:
        sources.pop(name, None)
    return Discovery(catalog, sources, frozenset(m.name for m in builtin), errors)


def _admit(builtin: Catalog, candidates: dict[str, Module], errors: dict[str, str]) -> Catalog:
    """The catalog with every candidate it accepts. Candidates may depend on each other
    in any order, so each pass adds those that fit, until a pass adds none; the rest are
    recorded in `errors` with the catalog's last reason."""
    catalog, pending = builtin, dict(candidates)
    progress = True
    while pending and progress:
        progress = False
        for name, module in list(pending.items()):
            try:
                catalog = Catalog([*catalog, module], builtin.first_id)
            except (ModuleError, PipelineError) as exc:
                errors[name] = str(exc)
                continue
            del pending[name]
            errors.pop(name, None)
            progress = True
    return catalog


def _module(value: object, where: str) -> Module:
    if not isinstance(value, Module):
        raise ModuleError(f"{where} is a {type(value).__name__}, not a vlcp Module")
    return value


def _builtin_source(module: Module) -> Source | None:
    """Where a built-in module is declared: the attribute holding it in the Python module
    that defines its functions."""
    functions = [module.base, module.port, module.network, module.remote]
    functions += [p.handler for p in module.packet_ins]
    for fn in functions:
        python = sys.modules.get(getattr(fn, "__module__", "") or "")
        for attr, value in sorted(vars(python).items()) if python else ():
            if value is module:
                return Source(python.__name__, attr)
    return None


class ModuleManager:
    """The module set one controller runs, following its wanted set in the store."""

    def __init__(
        self,
        discovery: Discovery,
        system_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.discovery = discovery
        self.system_id = system_id
        self.keys = (modules_key(system_id), MODULES_ALL)
        """The wanted-set keys, in order of precedence: this server's own, then all's."""
        self._clock = clock
        self._catalog = discovery.catalog
        self._names: tuple[str, ...] = tuple(sorted(discovery.default))
        """The modules wanted (not yet closed under dependencies)."""
        self._seen: tuple[Any, Any] | None = None
        """The documents last followed (None: never read, i.e. just started)."""
        self._applied: dict[str, int] = {}
        """Module -> the reload generation last applied."""
        self._settings: Mapping[str, Mapping[str, Any]] = {}
        """Module -> its settings as the wanted set gives them (JSON, not yet checked)."""
        self._refused: dict[str, str] = {}
        """Wanted modules whose settings their model refuses, and why."""
        self._failed: dict[str, str] = {}
        """Modules whose code raised, and what: kept out until reloaded or not wanted."""
        self._reload_errors: dict[str, str] = {}
        self._document_errors: dict[str, str] = {}
        """Wanted-set key -> why its value was ignored."""
        self.current = self._build()
        """The loaded modules: what the agent compiles flows with."""
        self._reported = self._report()
        self.since = clock()
        """When what `status` reports last changed."""
        self._unpublished = True

    # ------------------------------------------------------------ following the store

    def update(self, get: Callable[[str], Any]) -> bool:
        """Follow the wanted set (`get`: a key's current value, None if absent).

        Cheap when neither document changed, so it may be called on every change. Returns
        whether the loaded modules or their code changed (hand every owner over again)."""
        documents = (get(self.keys[0]), get(self.keys[1]))
        if documents == self._seen:
            return False
        first = self._seen is None
        self._seen = documents
        wanted = self._resolve(documents)
        if wanted is None:
            wanted = WantedSet(self.discovery.default)
        names, reloads = tuple(sorted(wanted.modules)), wanted.reload
        self._settings = wanted.settings
        before = self.current
        if names != self._names:
            self._names = names
            self._failed.clear()  # the operator changed the set: try them again
        if first:
            self._applied = dict(reloads)  # the code was just imported
        else:
            self._reload(reloads)
        self.current = self._build()
        self._changed()
        if (self.current.loaded, self.current.settings) == (before.loaded, before.settings) and (
            self.current.catalog is before.catalog
        ):
            self.current = before  # the same flows: nothing to hand over again
            return False
        return True

    def _resolve(self, documents: tuple[Any, Any]) -> WantedSet | None:
        """The document that wins (own > all), skipping one of the wrong shape."""
        self._document_errors = {}
        for key, value in zip(self.keys, documents, strict=True):
            if value is None:
                continue
            try:
                return WantedSet.parse(value)
            except ValueError as exc:
                log.error("ignoring the wanted modules in %s: %s", key, exc)
                self._document_errors[key] = str(exc)
        return None

    def _reload(self, reloads: Mapping[str, int]) -> None:
        """Reload each known module whose generation is newer than the one applied."""
        for name, generation in sorted(reloads.items()):
            if generation <= self._applied.get(name, 0) or name not in self._catalog:
                continue
            self._applied[name] = generation  # tried once per request, even if it fails
            source = self.discovery.sources.get(name)
            try:
                if source is None:
                    raise ModuleError("its code's location is unknown")
                catalog = self._catalog.replace(source.reimport())
                trial = self.current.loaded & {name}
                settings, refused = _settings(catalog, trial, self._settings)
                if refused:
                    raise ModuleError(refused[name])
                ModuleSet(catalog, trial, settings)  # its base flows compile
            except Exception as exc:  # the new code's import, declaration or flows
                why = f"reload {generation} failed, old version kept: {type(exc).__name__}: {exc}"
                log.error("module %s: %s", name, why)
                self._reload_errors[name] = why
                continue
            log.info("module %s reloaded (generation %d)", name, generation)
            self._catalog = catalog
            self._reload_errors.pop(name, None)
            self._failed.pop(name, None)

    # ------------------------------------------------------------ failures

    def fail(self, failure: ModuleFailed) -> None:
        """A loaded module's code raised: unload it, and what needs it, and say why."""
        log.error("unloading module %s and what needs it", failure.name, exc_info=failure)
        self._failed[failure.name] = str(failure)
        self.current = self._build()
        self._changed()

    def _build(self) -> ModuleSet:
        """The wanted modules with what they need, but those that failed or whose settings
        are refused, and their dependents. A module whose base flows raise joins the
        failed ones."""
        while True:
            wanted = self._wanted()
            settings, self._refused = _settings(self._catalog, wanted, self._settings)
            out = self._out()
            blocked = out.keys() | self._catalog.dependents(out, wanted)
            loaded = wanted - blocked
            try:
                return ModuleSet(
                    self._catalog, loaded, {n: v for n, v in settings.items() if n in loaded}
                )
            except ModuleFailed as failure:
                log.error("module %s cannot be loaded", failure.name, exc_info=failure)
                self._failed[failure.name] = str(failure)

    def _out(self) -> dict[str, str]:
        """The wanted modules kept out, and why: their code raised, or their settings
        were refused."""
        return self._failed | self._refused

    def _wanted(self) -> frozenset[str]:
        """The known modules wanted, with what they need."""
        return self._catalog.requires(n for n in self._names if n in self._catalog)

    # ------------------------------------------------------------ reporting

    def errors(self) -> dict[str, str]:
        """Why known or wanted modules are not running as asked (and ignored documents,
        under their key)."""
        errors = dict(self.discovery.errors)
        for name in self._names:
            if name not in self._catalog:
                errors[name] = "unknown module: not installed on this server"
        wanted, out = self._wanted(), self._out()
        for name in sorted(self._catalog.dependents(out, wanted)):
            failed = sorted(out.keys() & self._catalog.requires([name]))
            errors[name] = f"needs {', '.join(failed)}, which failed"
        errors |= self._reload_errors | out | self._document_errors
        return dict(sorted(errors.items()))

    def status(self) -> dict[str, Any]:
        """The `module-status/<system-id>` document."""
        return {**self._report(), "since": self.since}

    def _report(self) -> dict[str, Any]:
        sources = self.discovery.sources
        known = {
            m.name: {
                "doc": m.doc,
                "depends": list(m.depends),
                "tables": [t.name for t in m.tables],
                "source": source.describe() if (source := sources.get(m.name)) else BUILTIN_SOURCE,
                "settings": json_schema(m.settings) if m.settings else None,
            }
            for m in self._catalog
        }
        return {
            "known": known,
            "default": sorted(self.discovery.default),
            "loaded": sorted(self.current.loaded),
            "generations": dict(sorted(self._applied.items())),
            "settings": {
                m.name: dump(settings)
                for m in self.current.modules()
                if (settings := self.current.context(m.name).settings) is not None
            },
            "errors": self.errors(),
        }

    def _changed(self) -> None:
        report = self._report()
        if report != self._reported:
            self._reported = report
            self.since = self._clock()
            self._unpublished = True

    async def publish(self, store: Store) -> None:
        """Write the status if the store holds another one. A `StoreError` leaves it to
        publish again next time (the agent retries after an outage)."""
        if not self._unpublished:
            return
        key, status = module_status(self.system_id), self.status()

        async def write(txn: Transaction) -> None:
            held = await txn.get(key)
            if not isinstance(held, dict) or {**held, "since": status["since"]} != status:
                txn.put(key, status)

        await store.transact(write)
        self._unpublished = False


def _settings(
    catalog: Catalog, names: Iterable[str], given: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[str, object], dict[str, str]]:
    """The settings of the modules `names` that have some given, checked against each
    module's settings model: (accepted, {module: why refused}). A module without a model
    refuses any settings; one without settings given gets its model's defaults later."""
    accepted: dict[str, object] = {}
    refused: dict[str, str] = {}
    for name in names:
        value = given.get(name)
        if value is None:
            continue
        model = catalog[name].settings
        if model is None:
            refused[name] = "settings refused: this module takes none"
            continue
        try:
            accepted[name] = validate(model, value)
        except Invalid as exc:
            refused[name] = f"settings refused: {exc}"
    return accepted, refused
