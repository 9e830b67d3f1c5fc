"""The `vlcp` command."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
import time
from pathlib import Path

import click

from . import __version__
from .agent.vtep import resolve_vtep
from .cli_client import register_client_commands, vtep_group
from .config import Settings, load_settings, parse_listen
from .layout import server_key
from .store import Resync, Store, StoreError, StoreUnavailable, open_store
from .store.presence import Presence

log = logging.getLogger("vlcp")


class _Commands(click.Group):
    """The `vlcp` group, whose client verbs (`vlcp logical-port ...`, `vlcp vtep ...`) are
    added when first looked for: they are named from the model, which `vlcp run` must
    not import (an agent process stays free of pydantic, issue 16)."""

    def _with_client_commands(self) -> None:
        if "batch" not in self.commands:
            register_client_commands(self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            self._with_client_commands()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._with_client_commands()
        return super().list_commands(ctx)


@click.group(cls=_Commands)
@click.version_option(__version__)
@click.option("--config", type=click.Path(path_type=Path), help="TOML configuration file.")
@click.option("--store", "store_url", help="Store URL (overrides the configuration).")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.pass_context
def main(ctx: click.Context, config: Path | None, store_url: str | None, verbose: bool) -> None:
    """vlcp: isolated multi-tenant virtual networks on Open vSwitch."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    overrides = {"store": {"url": store_url}} if store_url else {}
    try:
        ctx.obj = load_settings(config, **overrides)
    except (ValueError, FileNotFoundError) as exc:  # Invalid, a TOML error, no such file
        raise click.ClickException(f"bad configuration: {exc}") from None


@main.command()
@click.pass_obj
def run(settings: Settings) -> None:
    """Run vlcp on this server until interrupted (Ctrl-C or SIGTERM).

    One process, one store: the web API on `[api] listen` (unless `[api] enabled =
    false`), the controller of the local Open vSwitch when `[agent] enabled = true`, and
    the server's liveness announcement.
    """
    if not (settings.api.enabled or settings.agent.enabled):
        raise click.ClickException(
            "nothing to run: [api] enabled and [agent] enabled are both false"
        )
    try:
        host, port = parse_listen(settings.api.listen)
    except ValueError as exc:
        raise click.ClickException(f"bad configuration: api.listen: {exc}") from None
    try:
        vtep = resolve_vtep(settings.agent.vtep) if settings.agent.enabled else None
    except ValueError as exc:
        raise click.ClickException(f"bad configuration: agent.vtep: {exc}") from None
    _run_async(_serve(settings, host, port, vtep))


async def _serve(settings: Settings, host: str, port: int, vtep: str | None) -> None:
    from .agent.agent import AgentConfig
    from .serve import ApiServer, start_agent
    from .tasks import stop_tasks

    store = await _open_store_patiently(settings.store.url)
    api = ApiServer(store, host, port, settings.api.token) if settings.api.enabled else None
    presence = Presence(store, settings.store.session_ttl)
    tasks: list[asyncio.Task[None]] = [asyncio.create_task(presence.run(), name="presence")]
    try:
        serves = ["store"]
        if api is not None:
            try:
                await api.start()
            except OSError as exc:
                raise click.ClickException(
                    f"could not serve the API on {host}:{port}: {exc}"
                ) from None
            serves.append("api")
        if settings.agent.enabled:
            agent = settings.agent
            config = AgentConfig(
                ovsdb=agent.ovsdb,
                ovs_rundir=agent.ovs_rundir,
                openflow_listen=agent.openflow_listen,
                bridge=agent.bridge,
                datapath_type=agent.datapath_type,
                vtep=vtep,
                system_id=agent.system_id,
                node_name=settings.node_name,
                session_ttl=settings.store.session_ttl,
                forwarding=agent.forwarding,
            )
            _, agent_task = start_agent(store, config)
            tasks.append(agent_task)
            serves.append("agent")
        key = server_key(settings.node_name)
        await presence.put(
            key,
            {"pid": os.getpid(), "version": __version__, "since": time.time(), "serves": serves},
        )
        log.info(
            "vlcp %s on %s: store %s (%s), API %s%s; announced as %s; Ctrl-C to stop",
            __version__,
            settings.node_name,
            settings.store.url,
            store.name,
            api.url if api is not None else "off",
            f", controller of {settings.agent.ovsdb}" if settings.agent.enabled else "",
            key,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        running = [*tasks, *([api.task] if api is not None and api.task else [])]
        stopped = asyncio.create_task(stop.wait(), name="waiting for a signal")
        tasks.append(stopped)  # when a task ends first, it is cancelled with the others
        await asyncio.wait([stopped, *running], return_when="FIRST_COMPLETED")
        for task in running:
            if task.done() and not stopped.done():
                error = task.exception() if not task.cancelled() else None
                raise click.ClickException(f"{task.get_name()} stopped: {error!r}")
        log.info("stopping")
    finally:
        await stop_tasks(tasks)
        await presence.close()
        if api is not None:
            await api.stop()
        await store.close()


async def _open_store_patiently(url: str, retry: float = 1.0) -> Store:
    """The store, waiting for it if it is unreachable: a server that boots during a store
    outage runs its controller as soon as the store is back, without a restart loop."""
    waiting = False
    while True:
        try:
            return await open_store(url)
        except StoreUnavailable as exc:
            if not waiting:
                log.warning("waiting for the store: %s", exc)
                waiting = True
            await asyncio.sleep(retry)


@main.command()
@click.option("--store", "store_url", help="Store URL (overrides the configuration).")
@click.option("--listen", help="HOST:PORT to listen on [default: api.listen, 127.0.0.1:8081].")
@click.option("--token", help="Require this bearer token [default: api.token, none].")
@click.pass_obj
def api(settings: Settings, store_url: str | None, listen: str | None, token: str | None) -> None:
    """Serve the web API alone (REST v1 and the original VLCP API) until interrupted.

    Any number of these processes may serve one store: each request is one transaction.
    """
    try:
        host, port = parse_listen(listen or settings.api.listen)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from None
    url = store_url or settings.store.url
    _run_async(_serve_api(url, host, port, token or settings.api.token))


async def _serve_api(store_url: str, host: str, port: int, token: str | None) -> None:
    # Imported here so that the other commands start without loading the web stack.
    import uvicorn

    from .api import create_app
    from .model.service import Model

    db = await open_store(store_url)
    try:
        app = create_app(Model(db), token=token)
        config = uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="off")
        server = uvicorn.Server(config)
        log.info(
            "vlcp api %s on http://%s:%d: store %s (%s)%s; Ctrl-C to stop",
            __version__,
            host,
            port,
            store_url,
            db.name,
            ", bearer token required" if token else "",
        )
        # uvicorn stops gracefully on SIGINT/SIGTERM, then raises the signal again for the
        # handler it found; a quiet one here lets the store close and the exit status be 0.
        previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            await server.serve()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if not server.started:
            raise click.ClickException(f"could not listen on {host}:{port}")
        log.info("stopped")
    finally:
        await db.close()


vtep = vtep_group()
main.add_command(vtep)


@vtep.command("run")
@click.option("--manager", help="The switch's hardware_vtep OVSDB [default: vtep.manager].")
@click.option("--switch", help="The Physical_Switch to control [default: vtep.switch].")
@click.pass_obj
def vtep_run(settings: Settings, manager: str | None, switch: str | None) -> None:
    """Control one hardware VTEP switch until interrupted (Ctrl-C or SIGTERM).

    Run it on two or more machines for failover: the instance holding the switch's OVSDB
    lock writes, the others wait for the lock (docs/hardware-vtep.md).
    """
    try:
        overrides = {k: v for k, v in (("manager", manager), ("switch", switch)) if v}
        chosen = dataclasses.replace(settings.vtep, **overrides)
    except ValueError as exc:
        raise click.ClickException(f"bad configuration: vtep: {exc}") from None
    if chosen.manager is None or chosen.switch is None:
        raise click.ClickException("give the switch's --manager and --switch (or [vtep])")
    _run_async(_serve_vtep(settings, chosen.manager, chosen.switch))


async def _serve_vtep(settings: Settings, manager: str, switch: str) -> None:
    from .agent.hwvtep.controller import VtepController
    from .tasks import stop_tasks

    store = await _open_store_patiently(settings.store.url)
    controller = VtepController(store, manager, switch, settings.node_name)
    task = asyncio.create_task(controller.run(), name="vtep controller")
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    stopped = asyncio.create_task(stop.wait(), name="waiting for a signal")
    log.info("vlcp vtep %s: switch %s at %s, store %s", __version__, switch, manager, store.name)
    try:
        await asyncio.wait([task, stopped], return_when="FIRST_COMPLETED")
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise click.ClickException(f"VTEP controller stopped: {task.exception()!r}")
    finally:
        await stop_tasks([task, stopped])
        await store.close()


def _stopped(signum: int, frame: object) -> None:
    """Signal handler for after uvicorn's graceful shutdown: nothing left to do."""


@main.command()
@click.option("--check", is_flag=True, help="Verify and exit: status 0 only if all held.")
@click.option("--listen", help="HOST:PORT for the API [default: a free port on 127.0.0.1].")
def demo(check: bool, listen: str | None) -> None:
    """Two servers on this machine (needs root), two tenants with the same addresses.

    Builds private Open vSwitch instances in network namespaces, runs a controller for each
    and the API on one sqlite store, plugs hosts, and prints which pings work (same tenant)
    and which must not (across tenants). Runs until Ctrl-C, then removes everything.
    """
    from .demo import run_demo

    if listen:
        try:
            parse_listen(listen)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--listen") from None
    if not run_demo(check=check, listen=listen):
        raise SystemExit(1)


@main.command("docker-plugin")
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(path_type=Path),
    default=Path("/run/docker/plugins/vlcp.sock"),
    show_default=True,
    help="Where Docker finds the plugin (its name is the file's stem).",
)
@click.option("--api", "api_url", help="REST v1 URL [default: api.url].")
@click.option("--token", help="The API's bearer token [default: api.token].")
@click.option("--bridge", default="br-int", show_default=True, help="The integration bridge.")
@click.option(
    "--ovsdb", default="unix:/var/run/openvswitch/db.sock", show_default=True, help="Local OVSDB."
)
@click.option("--ovs-netns", help="Network namespace of the OVS [default: this one].")
@click.option("--physical-network", help="Physical network of the vlcp networks it creates.")
@click.option(
    "--wait-up", default=10.0, show_default=True, help="Seconds a join waits for the binding."
)
@click.pass_obj
def docker_plugin(
    settings: Settings,
    socket_path: Path,
    api_url: str | None,
    token: str | None,
    bridge: str,
    ovsdb: str,
    ovs_netns: str | None,
    physical_network: str | None,
    wait_up: float,
) -> None:
    """Serve Docker's remote network and IPAM drivers until interrupted: `docker network
    create -d vlcp --ipam-driver vlcp --subnet CIDR NAME` (docs/integrations.md)."""
    from .client import Client
    from .integrations.docker import DockerPlugin
    from .integrations.docker_server import serve
    from .integrations.plumbing import Switch

    plugin = DockerPlugin(
        Client(api_url or settings.api.url, token=token or settings.api.token),
        Switch(bridge=bridge, ovsdb=ovsdb, ovs_netns=ovs_netns),
        physical_network=physical_network,
        wait_up=wait_up,
    )
    log.info("vlcp docker-plugin on %s, API %s, bridge %s", socket_path, plugin.client.url, bridge)
    _run_async(serve(plugin, socket_path))


@main.group()
def server() -> None:
    """Servers known to the store (for operators)."""


@server.command("forget")
@click.argument("system_id")
@click.option("--force", is_flag=True, help="Even if its controller is running.")
@click.pass_obj
def server_forget(settings: Settings, system_id: str, force: bool) -> None:
    """Withdraw every port SYSTEM_ID announces: the server is gone for good.

    A stopped or crashed controller's ports stay announced, so that its endpoints keep
    working; this is how the other servers are told to stop delivering to it.
    """
    from .model.errors import ModelError
    from .model.servers import forget_server

    async def forget() -> int:
        db = await open_store(settings.store.url)
        try:
            return await forget_server(db, system_id, force=force)
        finally:
            await db.close()

    try:
        removed = asyncio.run(forget())
    except ModelError as exc:
        raise click.ClickException(str(exc)) from None
    except StoreError as exc:
        raise click.ClickException(f"{exc}; run it again to finish") from None
    click.echo(f"server {system_id}: {removed} announcement(s) withdrawn")


@main.group()
def store() -> None:
    """Look into the central store (for operators)."""


@store.command("ls")
@click.argument("prefix", default="")
@click.pass_obj
def store_ls(settings: Settings, prefix: str) -> None:
    """Print every key under PREFIX with its value, as JSON lines."""

    async def show() -> None:
        db = await open_store(settings.store.url)
        try:
            snapshot = await db.read_prefix(prefix)
        finally:
            await db.close()
        for key, value in sorted(snapshot.values.items()):
            click.echo(json.dumps({"key": key, "value": value}))

    _run_async(show())


@store.command("watch")
@click.argument("prefix", default="")
@click.pass_obj
def store_watch(settings: Settings, prefix: str) -> None:
    """Print changes under PREFIX as JSON lines, until interrupted."""

    async def follow() -> None:
        db = await open_store(settings.store.url)
        try:
            async for item in db.watch(prefix=prefix):
                if isinstance(item, Resync):
                    click.echo(json.dumps({"revision": item.revision, "resync": item.values}))
                else:
                    changes = {c.key: c.value for c in item.changes}
                    click.echo(json.dumps({"revision": item.revision, "changes": changes}))
        finally:
            await db.close()

    _run_async(follow())


def _run_async(coro: object) -> None:
    try:
        asyncio.run(coro)  # type: ignore[arg-type]
    except (StoreError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
