"""What a ZooKeeper ensemble and an etcd cluster share: members tests kill and restart.

Members are addressed by 0-based index. Subclasses say how the cluster is ready
(:meth:`_Cluster.wait_ready`, returning the leader's index) and how all members stop.
"""

from __future__ import annotations

from types import TracebackType
from typing import Generic, Self, TypeVar

from tests.lab.services.process import ServiceError
from tests.lab.services.server import START_TIMEOUT, _Server, stop_servers

S = TypeVar("S", bound=_Server)


class _Cluster(Generic[S]):
    """``members`` on loopback; a quorum of them must run for the cluster to serve."""

    label = "cluster"
    """How error messages name the product ("every started <label> member exited")."""

    members: list[S]

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def quorum(self) -> int:
        return self.size // 2 + 1

    def wait_ready(self, timeout: float = START_TIMEOUT) -> int:
        """Wait until the cluster serves; returns the leader's index."""
        raise NotImplementedError

    def _raise_if_all_dead(self) -> None:
        """Fail the wait at once when every member that was started has exited."""
        started = [m for m in self.members if m.ever_started]
        if started and not any(m.running for m in started):
            raise ServiceError(f"every started {self.label} member exited\n" + self.log_tail())

    def start_all(self, timeout: float = START_TIMEOUT) -> int:
        """Start the members that are not running; returns the leader's index."""
        for member in self.members:
            member.spawn()
        return self.wait_ready(timeout)

    def stop_all(self) -> None:
        """Stop every member (in parallel); data and ports stay for start_all()."""
        stop_servers(self.members)

    def restart(self, timeout: float = START_TIMEOUT) -> int:
        """Stop all, start all (same ports and data); returns the leader's index."""
        self.stop_all()
        return self.start_all(timeout)

    def kill_member(self, index: int) -> None:
        """SIGKILL one member, returning once it is gone (SIGTERM could hand over gracefully)."""
        self.members[index].kill()

    def stop_member(self, index: int) -> None:
        """SIGTERM one member (an etcd leader hands over leadership first)."""
        self.members[index].stop()

    def start_member(
        self, index: int, *, wait: bool = True, timeout: float = START_TIMEOUT
    ) -> None:
        """Start one member with its old data; by default wait until it serves (joined)."""
        member = self.members[index]
        member.spawn()
        if wait:
            member.wait_ready(timeout)

    def close(self) -> None:
        """Stop every member and remove their directories."""
        self.stop_all()
        for member in self.members:
            member.close()

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(member.log_tail(lines) for member in self.members)

    def __enter__(self) -> Self:
        self.start_all()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
