"""`vlcp docker-plugin`: the Docker plugin's HTTP side, on a unix socket.

Docker finds a plugin by a socket or a `.spec` file in its plugin directories
(/run/docker/plugins, /etc/docker/plugins) and POSTs one JSON body per call to
`/<Call>`; the reply is JSON in the plugin content type. The calls block on the REST API
and on `ip`/`ovs-vsctl`, so each runs in a worker thread, and Docker's concurrent calls
(two containers starting) do not wait for each other.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from .docker import DockerPlugin

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.docker.plugins.v1+json"


def create_app(plugin: DockerPlugin) -> FastAPI:
    """One route for every call: the path names it, `DockerPlugin.handle` answers."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/{call}")
    async def call(call: str, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            reply = {"Err": f"vlcp: {call}: the request is not JSON: {exc}"}
        else:
            reply = await run_in_threadpool(plugin.handle, call, body or {})
        if "Err" in reply:
            log.warning("%s refused: %s", call, reply["Err"])
        return Response(json.dumps(reply), media_type=CONTENT_TYPE)

    return app


async def serve(plugin: DockerPlugin, socket_path: Path) -> None:
    """Serve until interrupted; the socket is removed afterwards, so Docker does not find
    a dead plugin."""
    import uvicorn

    socket_path.parent.mkdir(parents=True, exist_ok=True)
    config = uvicorn.Config(
        create_app(plugin), uds=str(socket_path), log_config=None, lifespan="off"
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        if socket_path.is_socket():
            os.unlink(socket_path)
