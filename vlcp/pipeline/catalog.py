"""The known modules (`Catalog`) and the loaded ones (`ModuleSet`).

The pipeline is built from the tables of every known module, loaded or not, so a table's
id and every goto route depend on the catalog alone: loading or unloading a module never
renumbers a table, hence never changes another module's flow (a flow's cookie is a hash
of its content, table ids and gotos included). A known module that is not loaded keeps
its tables, each with nothing but its miss flow, which belongs to the pipeline (the base
owner), not to the module: the table passes everything through to where its miss goes.
Unloading a module therefore removes exactly the flows its functions produced.

A `ModuleSet` is a value: `load`, `unload` and `reload` return a new one, so the agent
can compute the new set (and refuse a bad request) before touching anything. A module
whose code raises while a set is built or compiles is named by `ModuleFailed`, so the
agent can unload that module alone and keep the others running.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from vlcp.module_graph import GraphError, closure, dependents
from vlcp.southbound.openflow.flow import Flow

from .module import OWNER_KINDS, Context, Module, ModuleError, ModuleFailed, OwnerFlows, PacketIn
from .tables import Pipeline
from .view import BASE, Owner, View


class Catalog:
    """Every known module, in declaration order, and the pipeline of all their tables."""

    def __init__(self, modules: Iterable[Module], first_id: int = 0) -> None:
        self.first_id = first_id
        self._modules: dict[str, Module] = {}
        for module in modules:
            if module.name in self._modules:
                raise ModuleError(f"module {module.name} declared twice")
            self._modules[module.name] = module
        for module in self:
            unknown = sorted(set(module.depends) - self._modules.keys())
            if unknown:
                raise ModuleError(f"module {module.name} depends on unknown module(s) {unknown}")
        self._graph = {m.name: m.depends for m in self}
        try:
            self._needs = {name: closure(self._graph, [name]) for name in self._modules}
        except GraphError as exc:
            raise ModuleError(str(exc)) from exc
        self.table_owner: dict[str, str] = {}
        """Table name -> the module that declares it."""
        for module in self:
            for table in module.tables:
                if table.name in self.table_owner:
                    owner = self.table_owner[table.name]
                    raise ModuleError(f"table {table.name} declared by {owner} and {module.name}")
                self.table_owner[table.name] = module.name
        self.pipeline = Pipeline((t for m in self for t in m.tables), first_id)

    def __getitem__(self, name: str) -> Module:
        module = self._modules.get(name)
        if module is None:
            raise ModuleError(f"unknown module {name!r} (known: {', '.join(self._modules)})")
        return module

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __contains__(self, name: object) -> bool:
        return name in self._modules

    def requires(self, names: Iterable[str]) -> frozenset[str]:
        """The modules `names` need to be loaded, themselves included."""
        needed: set[str] = set()
        for name in names:
            self[name]  # an unknown name says so
            needed |= self._needs[name]
        return frozenset(needed)

    def dependents(self, names: Iterable[str], among: Iterable[str]) -> frozenset[str]:
        """The modules of `among` that need one of `names`, directly or not."""
        return dependents(self._graph, names, among)

    def watches(self) -> frozenset[str]:
        """The store prefixes its modules need to see, loaded or not."""
        return frozenset(w for m in self for w in m.watches)

    def replace(self, module: Module) -> Catalog:
        """The catalog with a new version of a known module (its code reloaded).

        Its tables must keep their names and positions: another layout could renumber
        tables or move gotos of the running pipeline, changing other modules' flows,
        which only a restart with the new catalog may do. (Their matches and docs may
        change: they only check the module's own flows.)"""
        if _layout(self[module.name]) != _layout(module):
            raise ModuleError(f"module {module.name}: a reload cannot move or rename its tables")
        return Catalog((module if m.name == module.name else m for m in self), self.first_id)


def _call(name: str, fn: Callable[..., frozenset[Flow]], *args: object) -> frozenset[Flow]:
    """A module's flow function, its failure blamed on it (`ModuleFailed`), so the caller
    can carry on without it rather than fail as a whole."""
    try:
        return fn(*args)
    except Exception as exc:
        raise ModuleFailed(name, exc) from exc


def _layout(module: Module) -> list[tuple[object, ...]]:
    return [(t.name, t.after, t.before, t.miss) for t in module.tables]


class ModuleSet:
    """The loaded modules of a catalog, and the flows they compile to.

    Loading pulls in what a module depends on; unloading refuses to leave a loaded
    module without what it needs, unless asked to unload the dependents too. Flows are
    grouped by owner as in `compile.py`; the base owner holds every table's miss (the
    pipeline's own flows) and the loaded modules' base flows.
    """

    def __init__(
        self,
        catalog: Catalog,
        loaded: Iterable[str] = (),
        settings: Mapping[str, object] | None = None,
    ) -> None:
        self.catalog = catalog
        self.loaded = catalog.requires(loaded)
        self.settings: Mapping[str, object] = dict(settings or {})
        self._contexts = {m.name: self._context(m) for m in catalog if m.name in self.loaded}
        self._functions: dict[str, tuple[tuple[str, OwnerFlows, Context], ...]] = {}
        for kind in OWNER_KINDS:
            self._functions[kind] = tuple(
                (m.name, fn, self._contexts[m.name])
                for m in self.modules()
                if (fn := m.owner_flows(kind)) is not None
            )
        base = set(self.pipeline.miss_flows())
        for m in self.modules():
            if m.base is not None:
                base |= _call(m.name, m.base, self._contexts[m.name])
        self.base_flows: frozenset[Flow] = frozenset(base)
        """The base owner's flows: what does not depend on the view."""

    @classmethod
    def all(cls, catalog: Catalog) -> ModuleSet:
        """Every known module loaded."""
        return cls(catalog, (m.name for m in catalog))

    @property
    def pipeline(self) -> Pipeline:
        return self.catalog.pipeline

    def _context(self, module: Module) -> Context:
        value = self.settings.get(module.name)
        if module.settings is None:
            if value is not None:
                raise ModuleError(f"module {module.name} takes no settings")
            return Context(self.pipeline)
        if value is None:
            try:
                value = module.settings()
            except (ValueError, TypeError) as exc:  # a required setting, or a bad default
                raise ModuleFailed(module.name, exc, "needs settings") from exc
        elif not isinstance(value, module.settings):
            raise ModuleError(f"module {module.name}: settings must be {module.settings.__name__}")
        return Context(self.pipeline, value)

    def modules(self) -> list[Module]:
        """The loaded modules, in catalog order."""
        return [m for m in self.catalog if m.name in self.loaded]

    def context(self, name: str) -> Context:
        """What a loaded module's functions are called with."""
        context = self._contexts.get(name)
        if context is None:
            raise ModuleError(f"module {name} is not loaded")
        return context

    # ------------------------------------------------------------ load, unload, reload

    def load(self, *names: str) -> ModuleSet:
        """These modules loaded too, with what they depend on."""
        return ModuleSet(self.catalog, self.loaded | self.catalog.requires(names), self.settings)

    def unload(self, *names: str, dependents: bool = False) -> ModuleSet:
        """These modules unloaded; refused if a loaded module needs one of them, unless
        `dependents`, which unloads those too. A module not loaded is no error."""
        for name in names:
            self.catalog[name]  # an unknown name says so
        needing = self.catalog.dependents(names, self.loaded)
        if needing and not dependents:
            raise ModuleError(
                f"cannot unload {', '.join(sorted(names))}: needed by "
                f"{', '.join(sorted(needing))} (unload them too, or ask for dependents)"
            )
        return ModuleSet(self.catalog, self.loaded - set(names) - needing, self.settings)

    def reload(self, module: Module) -> ModuleSet:
        """A new version of a known module in its place (loaded if it was loaded, with
        what its new version depends on); no table moves (see `Catalog.replace`)."""
        return ModuleSet(self.catalog.replace(module), self.loaded, self.settings)

    # ------------------------------------------------------------ flows

    def compile_owner(self, view: View, owner: Owner) -> frozenset[Flow]:
        """The flows of any owner; an empty set means the owner has none (remove it).

        Raises `ModuleFailed` naming the module whose function raised."""
        if owner == BASE:
            return self.base_flows
        kind, key = owner
        flows: set[Flow] = set()
        for name, fn, ctx in self._functions[kind]:
            flows |= _call(name, fn, ctx, view, key)
        return frozenset(flows)

    def owners(self, view: View) -> list[Owner]:
        """Every owner that may have flows in this view."""
        return [
            BASE,
            *(("network", n) for n in view.networks),
            *(("port", p) for p in view.ports),
            *(("remote", r) for r in view.remotes),
        ]

    def compile_all(self, view: View) -> dict[Owner, frozenset[Flow]]:
        """Every owner's flows, from scratch; owners without flows are left out."""
        result = {}
        for owner in self.owners(view):
            flows = self.compile_owner(view, owner)
            if flows:
                result[owner] = flows
        return result

    # ------------------------------------------------------------ what the agent needs

    def watches(self) -> frozenset[str]:
        """The store prefixes the loaded modules need to see."""
        return frozenset(w for m in self.modules() for w in m.watches)

    def packet_in_budget(self) -> tuple[float, int] | None:
        """What one port may send to the controller, every kind together: the loaded
        modules' packet-in rates and bursts, summed (None when none sends any). The
        switch's per-port meter (`to_controller`) lets this much through, so the
        controller's own buckets rarely have to drop one."""
        packet_ins = [p for m in self.modules() for p in m.packet_ins]
        if not packet_ins:
            return None
        return sum(p.rate for p in packet_ins), sum(p.burst for p in packet_ins)

    def packet_in(self, table_id: int) -> tuple[Context, PacketIn] | None:
        """The handler of a packet-in from `table_id`, if a loaded module has one."""
        table = self.pipeline.by_id(table_id)
        if table is None or (owner := self.catalog.table_owner[table.name]) not in self.loaded:
            return None
        for packet_in in self.catalog[owner].packet_ins:
            if packet_in.table == table.name:
                return self._contexts[owner], packet_in
        return None
