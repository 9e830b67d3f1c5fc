"""Dependencies between modules as plain data: what a set of modules needs, what needs it.

Two places reason about the same graph and may not import each other: a controller's
catalog (`vlcp.pipeline.catalog`), from its modules' declarations, and the API
(`vlcp.model.modules`), from the `depends` each controller reports in `module-status/`.
These pure functions over `{name: depends}` are their one definition, so "loading pulls
in what a module needs" and "unloading refuses what others still need" mean the same on
both sides of the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

Graph = Mapping[str, Sequence[str]]
"""Module name -> the names of the modules it needs directly."""


class GraphError(ValueError):
    """The graph cannot answer: a name it does not know, or a cycle."""


class UnknownModule(GraphError):
    """`name` is not in the graph (`needed_by`: the module naming it, None if asked for)."""

    def __init__(self, name: str, needed_by: str | None = None) -> None:
        self.name = name
        self.needed_by = needed_by
        by = f" (needed by {needed_by})" if needed_by else ""
        super().__init__(f"unknown module {name!r}{by}")


class DependencyCycle(GraphError):
    """Modules that need each other: `cycle` starts and ends with the same name."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = tuple(cycle)
        super().__init__(f"modules depend on each other: {' -> '.join(cycle)}")


def closure(graph: Graph, names: Iterable[str]) -> frozenset[str]:
    """`names` and everything they need, directly or not.

    Raises `UnknownModule` for a name (or a dependency) missing from `graph`, and
    `DependencyCycle` for modules that need each other."""
    needed: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> None:
        if name in path:
            raise DependencyCycle([*path[path.index(name) :], name])
        if name in needed:
            return
        depends = graph.get(name)
        if depends is None:
            raise UnknownModule(name, path[-1] if path else None)
        path.append(name)
        for dependency in depends:
            visit(dependency)
        path.pop()
        needed.add(name)

    for name in names:
        visit(name)
    return frozenset(needed)


def dependents(graph: Graph, names: Iterable[str], among: Iterable[str]) -> frozenset[str]:
    """The modules of `among`, other than `names`, that need one of `names`, directly or
    not: what unloading `names` would leave without a dependency."""
    wanted = frozenset(names)
    return frozenset(m for m in among if m not in wanted and closure(graph, [m]) & wanted)
