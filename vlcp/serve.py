"""What `vlcp run` and `vlcp demo` run inside one event loop: the API and agents.

Both are started as tasks and stopped by the caller, which owns the signal handling: the
API server here never installs signal handlers of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from .agent.agent import Agent, AgentConfig
from .store import Store
from .tasks import stop_tasks


class ApiServer:
    """The web API over one store, served by uvicorn as a task of the running loop."""

    def __init__(self, store: Store, host: str, port: int, token: str | None = None) -> None:
        # Imported here so that commands without the API start without the web stack.
        import uvicorn

        from .api import create_app
        from .model.service import Model

        class _Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:  # the caller handles signals
                yield

        app = create_app(Model(store), token=token)
        config = uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="off")
        self.host, self.port = host, port
        self._server = _Server(config)
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self, timeout: float = 10.0) -> None:
        """Serve in the background; returns once listening (raises if it cannot)."""
        self.task = asyncio.create_task(self._serve(), name="api")
        async with asyncio.timeout(timeout):
            while not self._server.started:
                if self.task.done():  # its error is raised here: nothing left to stop
                    task, self.task = self.task, None
                    task.result()
                    raise OSError(f"could not listen on {self.host}:{self.port}")
                await asyncio.sleep(0.02)

    async def _serve(self) -> None:
        """uvicorn's `serve()`, its startup failure turned into an OSError.

        uvicorn calls `sys.exit()` when it cannot listen (the port is taken), and a
        SystemExit escaping a task stops the event loop itself: `vlcp run` then died with a
        traceback instead of saying it could not serve the API, and cleaned nothing up.
        """
        try:
            await self._server.serve()
        except SystemExit as exc:
            if self._server.started:
                raise
            raise OSError(f"the server exited while starting (status {exc.code})") from None

    async def stop(self, grace: float = 10.0) -> None:
        """Graceful shutdown (open connections are closed), cancelled after `grace` seconds.

        The caller's own cancellation propagates; the server's errors are logged.
        """
        if self.task is None:
            return
        self._server.should_exit = True
        await asyncio.wait([self.task], timeout=grace)
        await stop_tasks([self.task])


def start_agent(store: Store, config: AgentConfig) -> tuple[Agent, asyncio.Task[None]]:
    """An agent running as a task (cancel it to stop); it keeps its own presence."""
    agent = Agent(store, config)
    return agent, asyncio.create_task(agent.run(), name=f"agent {config.node_name}")
