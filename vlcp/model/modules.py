"""The modules each server's controller runs, as operators ask for them through the store.

The API never talks to a controller. It writes wanted sets (`modules-all` for every
server, `modules/<system-id>` for a server with a set of its own) and reads what each
controller reports in `module-status/<system-id>` (see `vlcp.layout`). A change is checked
against those reports (a name a target does not know, a module others still need) and
made as ONE store transaction that reads the wanted keys it rewrites and the reports it
checked: two operators never lose each other's change, and a change for every server (the
shared set and each server's own one) is made once for the cluster, or not at all.

What a module needs is the controllers' word (the `depends` they report), worked out
with `vlcp.module_graph`, the same functions their catalog uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from vlcp.layout import (
    CHASSIS,
    MODULE_STATUSES,
    MODULES,
    MODULES_ALL,
    chassis_key,
    module_status,
    modules_key,
)
from vlcp.module_graph import Graph, GraphError, closure, dependents
from vlcp.store import Snapshot, Store, Transaction
from vlcp.wanted_set import WantedSet

from .common import prefix_reader
from .errors import Conflict, Invalid, NotFound

Action = Literal["load", "unload", "reload", "configure"]
MAX_NAMES = 100
"""Most module names in one request (a catalog holds tens)."""


@dataclass(frozen=True)
class Change:
    """What an operator asks of the targets' wanted sets: load (with what they need),
    unload (with what needs them, if `dependents`), or reload these modules; or configure
    one module (its `settings`, None to go back to its defaults)."""

    action: Action
    modules: tuple[str, ...]
    dependents: bool = False
    settings: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not 1 <= len(self.modules) <= MAX_NAMES:
            raise Invalid(f"modules: give 1 to {MAX_NAMES} module names", field="modules")
        for index, name in enumerate(self.modules):
            if not isinstance(name, str) or not name:
                raise Invalid(
                    f"modules[{index}]: a module name is non-empty text, not {name!r}",
                    field=f"modules[{index}]",
                )
            if name in self.modules[:index]:
                raise Invalid(
                    f"modules[{index}]: {name!r} is given twice", field=f"modules[{index}]"
                )
        if self.dependents and self.action != "unload":
            raise Invalid("dependents: applies to unload only", field="dependents")
        if self.action == "configure" and len(self.modules) != 1:
            raise Invalid("modules: configure one module at a time", field="modules")
        if self.settings is not None and self.action != "configure":
            raise Invalid("settings: applies to configure only", field="settings")


@dataclass(frozen=True)
class Report:
    """What one controller reports of its modules (the parts a change is checked with)."""

    server: str
    graph: Graph
    default: frozenset[str]
    loaded: frozenset[str]
    generations: Mapping[str, int]
    configurable: frozenset[str]
    """The modules that take settings (their report gives a settings schema)."""


def _malformed(key: str, exc: Exception) -> Conflict:
    return Conflict(f"{key} holds a malformed value ({exc}): it was written outside vlcp")


def _names(value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        raise TypeError(f"expected a list of names, got {value!r}")
    return frozenset(value)


def _generations(value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or not all(
        isinstance(g, int) and not isinstance(g, bool) for g in value.values()
    ):
        raise TypeError(f"expected {{name: generation}}, got {value!r}")
    return dict(value)


def _parse_wanted(key: str, value: Any) -> WantedSet | None:
    """The wanted set stored at `key` (None if there is none)."""
    if value is None:
        return None
    try:
        return WantedSet.parse(value)
    except ValueError as exc:
        raise _malformed(key, exc) from None


def _parse_report(server: str, value: Any) -> Report | None:
    """What `server`'s controller reports (None if it never has)."""
    if value is None:
        return None
    try:
        known = value["known"]
        graph = {name: tuple(_names(about.get("depends", []))) for name, about in known.items()}
        return Report(
            server,
            graph,
            _names(value.get("default", [])),
            _names(value.get("loaded", [])),
            _generations(value.get("generations", {})),
            frozenset(name for name, about in known.items() if about.get("settings")),
        )
    except (TypeError, KeyError, AttributeError) as exc:
        raise _malformed(module_status(server), exc) from None


# -- changes -----------------------------------------------------------------------------


async def change_modules(txn: Transaction, change: Change, server: str | None) -> dict[str, Any]:
    """Apply `change` to `server`'s wanted set, or to every server's (None); returns the
    wanted sets written: {"all": the shared set, "servers": {system-id: its own set}}."""
    if server is None:
        return await _change_all(txn, change)
    return await _change_server(txn, change, server)


async def _change_server(txn: Transaction, change: Change, server: str) -> dict[str, Any]:
    """A server's own set, starting from the one it follows now (shared, else default)."""
    own_key, status_key = modules_key(server), module_status(server)
    values = await txn.get_many([own_key, status_key, MODULES_ALL])
    report = _parse_report(server, values[status_key])
    if report is None:
        raise Conflict(
            f"server {server} has not reported its modules (no {status_key}): its controller "
            "never ran with modules; start it, then retry",
            field="server",
        )
    _check_known([report], change.modules)
    current = (
        _parse_wanted(own_key, values[own_key])
        or _parse_wanted(MODULES_ALL, values[MODULES_ALL])
        or WantedSet(report.default)
    )
    new = _plan(
        f"server {server}", current, report.graph, report.generations, change, report.configurable
    )
    txn.put(own_key, new.value())
    return {"all": values[MODULES_ALL], "servers": {server: new.value()}}


async def _change_all(txn: Transaction, change: Change) -> dict[str, Any]:
    """The shared set and every server's own set, each checked against its controllers."""
    reader = prefix_reader.get()
    if reader is None:
        raise Conflict("the servers cannot be listed inside this transaction")
    # A transaction cannot read a prefix: list the servers, then read each one's keys in
    # the transaction, so an own set created or changed meanwhile makes it run again (only
    # a server reporting for the first time in between could be missed).
    servers = sorted(
        _by_server(await reader(MODULE_STATUSES)).keys() | _by_server(await reader(MODULES)).keys()
    )
    own_keys = {s: modules_key(s) for s in servers}
    values = await txn.get_many(
        [MODULES_ALL, *own_keys.values(), *(module_status(s) for s in servers)]
    )
    reports = {
        s: r for s in servers if (r := _parse_report(s, values[module_status(s)])) is not None
    }
    if not reports:
        raise Conflict(
            f"no controller has reported its modules yet (no {MODULE_STATUSES} key): "
            "start one, then retry"
        )
    silent = [s for s in servers if s not in reports and values[own_keys[s]] is not None]
    if silent:
        raise Conflict(
            f"server(s) {', '.join(silent)} have a module set of their own but never reported "
            "their modules: start their controller, or forget them (vlcp server forget)"
        )
    _check_known(reports.values(), change.modules)
    every = list(reports.values())
    graph = _merged(r.graph for r in every)
    applied = {name: max(r.generations.get(name, 0) for r in every) for name in graph}
    shared = _parse_wanted(MODULES_ALL, values[MODULES_ALL])
    default = WantedSet(frozenset().union(*(r.default for r in every)))
    configurable = frozenset().union(*(r.configurable for r in every))
    new_shared = _plan("all servers", shared or default, graph, applied, change, configurable)
    txn.put(MODULES_ALL, new_shared.value())
    written: dict[str, Any] = {}
    for server, report in reports.items():
        own = _parse_wanted(own_keys[server], values[own_keys[server]])
        if own is not None:
            new = _plan(
                f"server {server}", own, report.graph, report.generations, change, configurable
            )
            txn.put(own_keys[server], new.value())
            written[server] = new.value()
    return {"all": new_shared.value(), "servers": written}


def _check_known(reports: Iterable[Report], names: Iterable[str]) -> None:
    for report in reports:
        unknown = [n for n in names if n not in report.graph]
        if unknown:
            known = ", ".join(sorted(report.graph)) or "none"
            raise Invalid(
                f"modules: {', '.join(unknown)} unknown to server {report.server} "
                f"(its controller knows: {known})",
                field="modules",
            )


def _merged(graphs: Iterable[Graph]) -> dict[str, tuple[str, ...]]:
    """One graph for servers that share a set: what any of them says a module needs
    (they run the same code, unless an upgrade is rolling)."""
    merged: dict[str, set[str]] = {}
    for graph in graphs:
        for name, depends in graph.items():
            merged.setdefault(name, set()).update(depends)
    return {name: tuple(sorted(depends)) for name, depends in merged.items()}


def _effective(wanted: frozenset[str], graph: Graph) -> frozenset[str]:
    """What a controller loads for `wanted`: the closure of the names it knows, and the
    names it does not (which it reports as errors); GraphError if its report is broken."""
    foreign = wanted - graph.keys()
    return closure(graph, wanted - foreign) | foreign


def _plan(
    where: str,
    current: WantedSet,
    graph: Graph,
    applied: Mapping[str, int],
    change: Change,
    configurable: frozenset[str],
) -> WantedSet:
    """The wanted set after `change`, always written closed under dependencies."""
    names = frozenset(change.modules)
    try:
        running = _effective(current.modules, graph)
        if change.action == "load":
            return replace(current, modules=running | closure(graph, names))
        if change.action == "unload":
            needing = dependents(graph, names, running & graph.keys())
            if needing and not change.dependents:
                raise Conflict(
                    f"cannot unload {', '.join(sorted(names))} on {where}: "
                    f"{', '.join(sorted(needing))} need it (unload them too, or ask for "
                    "dependents to be unloaded with it)",
                    field="modules",
                )
            return replace(current, modules=running - names - needing)
    except GraphError as exc:
        raise Conflict(f"the modules {where} reports cannot be ordered: {exc}") from None
    if change.action == "configure":
        return _configured(where, current, change, configurable)
    idle = sorted(names - running)
    if idle:
        raise Conflict(
            f"cannot reload {', '.join(idle)} on {where}: not in its module set (load it)",
            field="modules",
        )
    reload = dict(current.reload)
    for name in names:
        reload[name] = max(reload.get(name, 0), applied.get(name, 0)) + 1
    return replace(current, reload=reload)


def _configured(
    where: str, current: WantedSet, change: Change, configurable: frozenset[str]
) -> WantedSet:
    """The wanted set with the one module's settings replaced (or dropped: None). Their
    content is checked by each controller, against the module's own settings model, which
    reports a refusal in its `errors` (the API half does not have the modules' code)."""
    (name,) = change.modules
    settings = dict(current.settings)
    if change.settings is None:
        settings.pop(name, None)
    elif name not in configurable:
        raise Invalid(f"modules: {name} takes no settings on {where}", field="modules")
    else:
        settings[name] = dict(change.settings)
    return replace(current, settings=settings)


# -- what an operator sees ------------------------------------------------------------------


async def modules_view(store: Store, server: str | None) -> dict[str, Any]:
    """{"all": the shared set or None, "servers": [one entry per server]} (see `_entry`);
    one server only with `server`, NotFound if the store knows nothing of its modules."""
    if server is not None:
        keys = [module_status(server), modules_key(server), MODULES_ALL, chassis_key(server)]
        found = (await store.read(keys)).values
        status, own, shared, chassis = (found.get(key) for key in keys)
        if status is None and own is None:
            raise NotFound(
                f"server {server}: no controller has reported its modules and it has no "
                "module set of its own",
                field="server",
            )
        return {"all": shared, "servers": [_entry(server, status, own, shared, chassis)]}
    statuses = _by_server(await store.read_prefix(MODULE_STATUSES))
    owns = _by_server(await store.read_prefix(MODULES))
    running = _by_server(await store.read_prefix(CHASSIS))
    shared = (await store.read([MODULES_ALL])).values.get(MODULES_ALL)
    servers = sorted(statuses.keys() | owns.keys())
    entries = [_entry(s, statuses.get(s), owns.get(s), shared, running.get(s)) for s in servers]
    return {"all": shared, "servers": entries}


def _by_server(snapshot: Snapshot) -> dict[str, Any]:
    """The values of a per-server prefix (`<prefix><system-id>`), by system-id."""
    return {key.partition("/")[2]: value for key, value in snapshot.values.items()}


def _entry(server: str, status: Any, own: Any, shared: Any, chassis: Any) -> dict[str, Any]:
    """One server: what its controller reports, the set it should run and from where
    ("server": its own, "all": the shared one, "default": none stored), and what its
    controller has yet to do about it ("pending"; None before it reports)."""
    report = status if isinstance(status, dict) else {}
    wanted_from = "server" if own is not None else "all" if shared is not None else "default"
    stored = _parse_wanted(modules_key(server), own) or _parse_wanted(MODULES_ALL, shared)
    wanted = sorted(stored.modules) if stored else report.get("default", [])
    reload = dict(stored.reload) if stored else {}
    settings = dict(stored.settings) if stored else {}
    return {
        "server": server,
        "running": chassis is not None,
        "reported": status is not None,
        "known": report.get("known", {}),
        "default": report.get("default", []),
        "loaded": report.get("loaded", []),
        "errors": report.get("errors", {}),
        "generations": report.get("generations", {}),
        "settings": report.get("settings", {}),
        "since": report.get("since"),
        "wanted": sorted(wanted),
        "wanted_from": wanted_from,
        "reload": reload,
        "wanted_settings": settings,
        "pending": _pending(server, status, wanted, reload),
    }


def _pending(server: str, status: Any, wanted: list[str], reload: Mapping[str, int]) -> Any:
    """{"load", "unload", "reload"}: the difference between the wanted set and what the
    controller reports (None when it has not reported, or its report cannot say)."""
    try:
        report = _parse_report(server, status)
        if report is None:
            return None
        target = _effective(frozenset(wanted), report.graph)
    except (Conflict, GraphError):
        return None
    return {
        "load": sorted(target - report.loaded),
        "unload": sorted(report.loaded - target),
        "reload": sorted(
            name
            for name, generation in reload.items()
            if name in target and generation > report.generations.get(name, 0)
        ),
    }
