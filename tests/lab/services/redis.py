"""A private redis-server on a loopback port, durable across restarts (AOF, fsync always)."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.lab.services.server import LOOPBACK, _one_port, _Server


class RedisServer(_Server):
    """redis-server with a private config; AOF with fsync always so restarts keep every write."""

    kind = "redis"
    log_name = "redis.log"

    def __init__(self, *, port: int | None = None, directory: Path | None = None) -> None:
        port = _one_port(port)  # before mkdir
        super().__init__(directory)
        self.port = port
        self.name = f"redis:{self.port}"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` for ``redis.Redis.from_url``."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def config_path(self) -> Path:
        return self.directory / "redis.conf"

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            "\n".join(
                [
                    f"bind {LOOPBACK}",
                    f"port {self.port}",
                    # Only loopback is bound, so protected mode (which only guards other interfaces)
                    # never refuses our clients.
                    "protected-mode yes",
                    "daemonize no",
                    "supervised no",
                    f"dir {self.data_dir}",
                    f"logfile {self.server_log}",
                    "loglevel notice",
                    "always-show-logo no",
                    'save ""',
                    "appendonly yes",
                    "appendfsync always",
                ]
            )
            + "\n"
        )

    def _argv(self) -> list[str]:
        return ["redis-server", str(self.config_path)]

    def ping(self) -> bool:
        """Raw RESP PING: "+PONG" once the AOF is loaded ("-LOADING" before)."""
        if not self.running:
            return False
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=1.0) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _probe(self) -> bool:
        return self.ping()
