"""The `vlcp` client verbs: `vlcp <kind> create|show|list|update|delete` over REST v1.

In the manner of `ovn-nbctl` and the OpenStack client: one verb per call, fields given as
`FIELD=VALUE` arguments, a table for people and `--json` for scripts. Values are JSON when
they parse as JSON (`mtu=1500`, `vlanrange=[[100,200]]`), text otherwise; quote a number
as JSON text to keep it text (`hostname='"42"'`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import click

from .client import ApiError, Client
from .config import Settings


def parse_fields(pairs: Iterable[str]) -> dict[str, Any]:
    """`["mtu=1500", "name=eth0"]` -> `{"mtu": 1500, "name": "eth0"}`."""
    fields: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not FIELD=VALUE", param_hint="FIELD=VALUE")
        if name in fields:
            raise click.BadParameter(f"{name!r} is given twice", param_hint="FIELD=VALUE")
        try:
            fields[name] = json.loads(text)
        except ValueError:
            fields[name] = text
    return fields


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """Rows as an aligned text table, `id` first, columns in order of first appearance."""
    if columns is None:
        columns = ["id"] if any("id" in r for r in rows) else []
        for row in rows:
            columns += [name for name in row if name not in columns]
    cells = [[_cell(row.get(name, "")) for name in columns] for row in rows]
    widths = [max([len(name), *(len(c[i]) for c in cells)]) for i, name in enumerate(columns)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def show(obj: Any, as_json: bool) -> None:
    """Print one object (a field/value table) or a list of objects."""
    if as_json:
        click.echo(json.dumps(obj, indent=2, sort_keys=False))
    elif isinstance(obj, list):
        click.echo(table(obj) if obj else "(none)")
    else:
        rows = [{"field": k, "value": v} for k, v in obj.items()]
        click.echo(table(rows, ["field", "value"]))


def status_text(status: Any) -> str:
    """A port's status in words: "up on hv1 since 2026-12-03 10:04:23 UTC", "not reported"."""
    if status is None:
        return "not reported"
    try:
        since = datetime.fromtimestamp(status["since"], UTC)
        return f"{status['state']} on {status['host']} since {since:%Y-%m-%d %H:%M:%S} UTC"
    except (TypeError, KeyError, ValueError, OverflowError, OSError):
        return _cell(status)  # not the documented shape: show it as it came


def readable_port(port: dict[str, Any]) -> dict[str, Any]:
    """A logical port as a table shows it: its status (when read with it) in words, last."""
    if "status" not in port:
        return port
    fields = {name: value for name, value in port.items() if name != "status"}
    return {**fields, "status": status_text(port["status"])}


def client_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--api`, `--token`, `--json` on every verb; the call gets a ready `Client`."""

    @click.option("--api", "api_url", help="API URL [default: api.url, http://127.0.0.1:8081].")
    @click.option("--token", help="Bearer token [default: api.token].")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    @click.pass_obj
    @functools.wraps(fn)
    def wrapper(
        settings: Settings, api_url: str | None, token: str | None, *args: Any, **kwargs: Any
    ) -> None:
        client = Client(api_url or settings.api.url, token=token or settings.api.token)
        try:
            fn(client, *args, **kwargs)
        except ApiError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def wait_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=10.0,
        show_default=True,
        help="Seconds to wait with --wait.",
    )(fn)
    return click.option(
        "--wait", type=click.Choice(["up"]), help="Answer once the port is up (or time out)."
    )(fn)


def kind_group(name: str, kind: str, is_port: bool, has_interfaces: bool) -> click.Group:
    """The five verbs of one kind; a port's `show --wait up`, a router's `interface`."""

    def output(obj: Any, as_json: bool) -> None:
        if is_port and not as_json:
            obj = [readable_port(o) for o in obj] if isinstance(obj, list) else readable_port(obj)
        show(obj, as_json)

    @click.group(name=name, help=f"Create, show, list, update, delete {kind}.")
    def group() -> None:
        pass

    @group.command("create")
    @click.argument("fields", nargs=-1, metavar="FIELD=VALUE...")
    @client_options
    @wait_options
    def create(
        client: Client, fields: tuple[str, ...], as_json: bool, wait: str | None, timeout: float
    ) -> None:
        """Create one object from FIELD=VALUE pairs (`id=...` to choose its id)."""
        obj = client.create(kind, parse_fields(fields))
        if wait:
            _only_ports(is_port)
            obj = client.get(kind, obj["id"], wait=wait, timeout=timeout)
        output(obj, as_json)

    @group.command("show")
    @click.argument("id")
    @client_options
    @wait_options
    def show_one(client: Client, id: str, as_json: bool, wait: str | None, timeout: float) -> None:
        """Show one object; a logical port with its status (--wait up: once it is up)."""
        if wait:
            _only_ports(is_port)
        output(client.get(kind, id, wait=wait, timeout=timeout), as_json)

    @group.command("list")
    @click.argument("filters", nargs=-1, metavar="[FIELD=VALUE]...")
    @click.option("--limit", type=click.IntRange(min=1), help="At most this many.")
    @client_options
    def list_all(
        client: Client, filters: tuple[str, ...], as_json: bool, limit: int | None
    ) -> None:
        """List objects whose fields equal the FIELD=VALUE filters, sorted by id (logical
        ports with their status)."""
        wanted = {k: _filter_text(v) for k, v in parse_fields(filters).items()}
        output(list(client.list(kind, wanted, limit=limit)), as_json)

    @group.command("update")
    @click.argument("id")
    @click.argument("fields", nargs=-1, required=True, metavar="FIELD=VALUE...")
    @client_options
    def update(client: Client, id: str, fields: tuple[str, ...], as_json: bool) -> None:
        """Change the given fields of one object."""
        show(client.update(kind, id, parse_fields(fields)), as_json)

    @group.command("delete")
    @click.argument("ids", nargs=-1, required=True, metavar="ID...")
    @client_options
    def delete(client: Client, ids: tuple[str, ...], as_json: bool) -> None:
        """Delete objects; several ids are deleted in one transaction (all or none)."""
        if len(ids) == 1:
            client.delete(kind, ids[0])
        else:
            client.batch([{"action": "delete", "kind": kind, "id": i} for i in ids])
        if as_json:
            click.echo(json.dumps({"deleted": list(ids)}))

    if has_interfaces:
        group.add_command(interface_group())
    return group


def _filter_text(value: Any) -> str:
    """A filter as the query string carries it (the API types it by the field)."""
    if value is None:
        return "null"
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _only_ports(is_port: bool) -> None:
    if not is_port:
        raise click.UsageError("--wait applies to logical ports only")


def interface_group() -> click.Group:
    """`vlcp router interface add|list|remove`."""

    @click.group(name="interface", help="Attach routers to subnets.")
    def group() -> None:
        pass

    @group.command("add")
    @click.argument("router")
    @click.argument("fields", nargs=-1, required=True, metavar="subnet=ID [ip_address=IP]...")
    @client_options
    def add(client: Client, router: str, fields: tuple[str, ...], as_json: bool) -> None:
        """Attach ROUTER to a subnet (its address defaults to the subnet's gateway)."""
        show(client.add_interface(router, parse_fields(fields)), as_json)

    @group.command("list")
    @click.argument("router")
    @client_options
    def list_interfaces(client: Client, router: str, as_json: bool) -> None:
        """The interfaces of ROUTER."""
        show(client.interfaces(router), as_json)

    @group.command("remove")
    @click.argument("router")
    @click.argument("subnet")
    @client_options
    def remove(client: Client, router: str, subnet: str, as_json: bool) -> None:
        """Detach ROUTER from SUBNET."""
        client.remove_interface(router, subnet)

    return group


@click.command("batch")
@click.argument("file", type=click.File("r"), default="-")
@client_options
def batch(client: Client, file: Any, as_json: bool) -> None:
    """Apply the operations in FILE (JSON; '-' for stdin) in one transaction."""
    try:
        document = json.load(file)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="FILE") from None
    operations = document.get("operations") if isinstance(document, dict) else document
    if not isinstance(operations, list):
        raise click.BadParameter("expected a list of operations", param_hint="FILE")
    results = client.batch(operations)
    show([r for r in results if r is not None] if not as_json else results, as_json)


def module_rows(view: dict[str, Any]) -> list[dict[str, Any]]:
    """`GET /v1/modules` as a table: one row per server and module it knows."""
    rows = []
    for entry in view["servers"]:
        server = {
            "server": entry["server"],
            "running": "yes" if entry["running"] else "no",
            "set": entry["wanted_from"],
        }
        if not entry["reported"]:
            rows.append({**server, "module": "", "error": "its controller has not reported"})
            continue
        pending = entry["pending"] or {}
        for name in sorted(entry["known"]):
            todo = [what for what in ("load", "unload", "reload") if name in pending.get(what, ())]
            rows.append(
                {
                    **server,
                    "module": name,
                    "loaded": "yes" if name in entry["loaded"] else "no",
                    "wanted": "yes" if name in entry["wanted"] else "no",
                    "pending": ",".join(todo),
                    "error": entry["errors"].get(name, ""),
                }
            )
    return rows


def wanted_rows(sets: dict[str, Any]) -> list[dict[str, Any]]:
    """The wanted sets a change wrote, one row per set."""
    targets = [("all", sets["all"])] if sets["all"] is not None else []
    targets += sorted(sets["servers"].items())
    return [
        {
            "set": name,
            "modules": ", ".join(value["modules"]),
            "reload": value["reload"] or "",
            "settings": value.get("settings") or "",
        }
        for name, value in targets
    ]


def module_group() -> click.Group:
    """`vlcp module list|load|unload|reload|configure`."""
    server_option = click.option(
        "--server", help="A server's system-id [default: every server, through modules-all]."
    )

    @click.group(
        name="module", help="List, load, unload, reload and configure the controllers' modules."
    )
    def group() -> None:
        pass

    @group.command("list")
    @server_option
    @client_options
    def list_modules(client: Client, server: str | None, as_json: bool) -> None:
        """Each server's modules: loaded, wanted (from its own set, modules-all, or its
        default), what its controller has yet to do, and why a module failed."""
        view = client.modules(server)
        if as_json:
            show(view, True)
            return
        show(module_rows(view), False)
        shared = view["all"]
        click.echo(
            f"\nmodules-all: {', '.join(shared['modules'])}"
            if shared is not None
            else "\nmodules-all: not set (servers without their own set run their default)"
        )

    def change_command(action: str, summary: str) -> click.Command:
        @click.argument("names", nargs=-1, required=True, metavar="NAME...")
        @server_option
        @client_options
        def change(
            client: Client, names: tuple[str, ...], server: str | None, **flags: Any
        ) -> None:
            as_json = flags.pop("as_json")
            sets = client.change_modules(action, list(names), server=server, **flags)
            show(sets if as_json else wanted_rows(sets), as_json)

        change.__doc__ = summary
        return group.command(action)(change)

    change_command("load", "Load modules, with the modules they need.")
    unload = change_command(
        "unload", "Unload modules; refused if others need them, unless --dependents."
    )
    click.option("--dependents", is_flag=True, help="Unload the modules that need them too.")(
        unload
    )
    change_command("reload", "Reload modules: their controllers re-import the code.")

    @group.command("configure")
    @click.argument("name")
    @click.option(
        "--settings",
        "text",
        metavar="JSON",
        help="The settings, a JSON object (see `list --json`: known.NAME.settings).",
    )
    @click.option("--defaults", is_flag=True, help="Drop its settings: back to its defaults.")
    @server_option
    @client_options
    def configure(
        client: Client,
        name: str,
        text: str | None,
        defaults: bool,
        server: str | None,
        as_json: bool,
    ) -> None:
        """Give a module its settings; each controller checks them (see `list`)."""
        if defaults == (text is not None):
            raise click.UsageError("give exactly one of --settings JSON and --defaults")
        settings = None if defaults else _json_object(text or "", "--settings")
        sets = client.configure_module(name, settings, server=server)
        show(sets if as_json else wanted_rows(sets), as_json)

    return group


def _json_object(text: str, hint: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=hint) from None
    if not isinstance(value, dict):
        raise click.BadParameter("expected a JSON object", param_hint=hint)
    return value


def vtep_group() -> click.Group:
    """`vlcp vtep switches|bindings|bind|unbind` (and `run`, the controller, from `vlcp.cli`)."""

    @click.group(name="vtep", help="Hardware VTEP switches: bind their ports' VLANs to networks.")
    def group() -> None:
        pass

    @group.command("switches")
    @click.option("--switch", help="Only this switch.")
    @client_options
    def switches(client: Client, switch: str | None, as_json: bool) -> None:
        """The switches as their VTEP controllers report them, with their bindings."""
        show(client.vtep_switches(switch), as_json)

    @group.command("bindings")
    @click.option("--switch", help="Only this switch's.")
    @client_options
    def bindings(client: Client, switch: str | None, as_json: bool) -> None:
        """Every binding of a switch port's VLAN to a logical network."""
        show(client.vtep_bindings(switch), as_json)

    @group.command("bind")
    @click.argument("switch")
    @click.argument("port")
    @click.argument("vlan", type=click.IntRange(0, 4095))
    @click.argument("network")
    @client_options
    def bind(
        client: Client, switch: str, port: str, vlan: int, network: str, as_json: bool
    ) -> None:
        """Bind VLAN (0: untagged) of PORT on SWITCH to the vxlan logical NETWORK."""
        show(client.vtep_bind(switch, port, vlan, network), as_json)

    @group.command("unbind")
    @click.argument("switch")
    @click.argument("port")
    @click.argument("vlan", type=click.IntRange(0, 4095), required=False)
    @client_options
    def unbind(client: Client, switch: str, port: str, vlan: int | None, as_json: bool) -> None:
        """Unbind VLAN of PORT on SWITCH, or every VLAN of the port without VLAN."""
        removed = client.vtep_unbind(switch, port, vlan)
        if removed is not None:
            show(removed, as_json)

    return group


def register_client_commands(main: click.Group) -> None:
    """Add the client verbs to the `vlcp` command.

    Their names come from the model's kinds, whose pydantic shapes an agent process does
    not load: `vlcp.cli` calls this only when a command other than its own is asked for.
    """
    from .model.kinds import KINDS
    from .model.lport import LPORTS
    from .model.router import ROUTERS

    for kind in KINDS:
        main.add_command(kind_group(kind.cli, kind.name, kind is LPORTS, kind is ROUTERS))
    main.add_command(batch)
    main.add_command(module_group())
