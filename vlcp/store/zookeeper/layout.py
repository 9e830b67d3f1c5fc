"""Where the store lives under its root znode, and how znode versions become store versions.

Layout under the root path:

- ``data/<container>/<key with '/' as '|'>``: one znode per key, in a container per first
  segment of the key, except a network's remote endpoints (`vlcp.layout.REMOTES`:
  ``netports/<network>/...``, ``vtep-macs/<network>/...``), in a container per network
  (``data/netports|<network>``): a server that follows a network lists that network's
  endpoints, not every network's (issue 16). A delete writes empty
  data (a tombstone) instead of removing the znode, because ZooKeeper restarts a
  re-created znode's version at 0, which would let a stale transaction pass its version
  check (ABA). Tombstones are removed later in bulk, each batch together with a bump of
  the ``gc`` znode's version (the *epoch*). A key's store version is
  ``epoch * 2**32 + znode version + 1``, and a commit that relies on a version also checks
  the epoch, so a removed-and-re-created znode can never match an old version.
- ``log/<segment>/e<sequence>``: the change log, one sequential znode per commit holding
  its change list and a unique commit id (entries written before ids existed have none;
  see `encode_changes`); revision = segment * SEGMENT_SPAN + sequence + 1. ``head`` names the
  current segment; every commit checks its version, so a commit lands in the current
  segment or fails. When a segment is full, one multi moves ``head`` on and appends an
  end marker to the old segment, so a reader waiting for "the next entry" always gets
  one. Old segments are deleted whole (never single entries), so sequence numbers within
  a segment have no gaps and a watcher only ever waits for one known path. The data of
  ``log`` names the first segment still kept; a watcher behind it must resync. The
  tombstones written by a segment's commits are collected when the segment is deleted.
- ``scopes/<segment>/<scope with '/' as '|'>/e<sequence>``: an empty sequential znode
  per commit and scope it touched (`vlcp.layout.scope_of`), created in the commit's multi
  next to its log entry, so both have the same ``czxid``. A scoped subscriber watches its
  scopes' next entries only (`scopes` module), so commits elsewhere never wake it. They
  are deleted with their log segment (`log._compact`).
- ``live/<session id>``: an ephemeral znode per liveness session, deleted by ZooKeeper
  when this process's ZooKeeper session ends.
"""

from __future__ import annotations

from typing import Any

from vlcp.layout import REMOTES

from ..backend import MISSING_VERSION

SEGMENT_SPAN = 1 << 24
"""Revisions reserved per log segment; a segment holds far fewer entries (`log_segment`)."""
SEGMENT_END = b""
"""Data of the entry that closes a segment (a real entry always lists at least one key)."""
_EPOCH_SHIFT = 32


class ZnodeLayout:
    """The znode paths of one store, all under its root."""

    def __init__(self, root: str) -> None:
        self._data_root = f"{root}/data"
        self._log_root = f"{root}/log"
        self._head_path = f"{root}/head"
        self._gc_path = f"{root}/gc"
        self._live_root = f"{root}/live"
        self._scopes_root = f"{root}/scopes"

    def _container_path(self, key: str) -> str:
        """The container of a key, or of every key under a prefix that lies in one
        container (see `_split_head`: a bare remote-endpoint prefix spans several)."""
        head, _, rest = key.partition("/")
        network, slash, _ = rest.partition("/")
        if slash and _split_head(head):
            return f"{self._data_root}/{head}|{network}"
        return f"{self._data_root}/{head}"

    def _containers_under(self, prefix: str, names: list[str]) -> list[str]:
        """Of the data root's children (`names`), the paths of the containers holding keys
        under a prefix that spans several ("" or a bare remote-endpoint prefix such as
        ``netports/``)."""
        head = prefix.partition("/")[0]
        return [
            f"{self._data_root}/{n}"
            for n in names
            if not prefix or n == head or n.startswith(f"{head}|")
        ]

    def _data_path(self, key: str) -> str:
        return f"{self._container_path(key)}/{key.replace('/', '|')}"

    def _segment_path(self, segment: int) -> str:
        return f"{self._log_root}/{segment:010d}"

    def _entry_path(self, segment: int, sequence: int) -> str:
        return f"{self._segment_path(segment)}/e{sequence:010d}"

    def _scope_segment_path(self, segment: int) -> str:
        return f"{self._scopes_root}/{segment:010d}"

    def _scope_path(self, segment: int, scope: str) -> str:
        return f"{self._scope_segment_path(segment)}/{scope.replace('/', '|')}"

    def _scope_entry_path(self, segment: int, scope: str, sequence: int) -> str:
        return f"{self._scope_path(segment, scope)}/e{sequence:010d}"

    def _live_path(self, session_id: str) -> str:
        return f"{self._live_root}/{session_id}"


def _split_head(head: str) -> bool:
    """Whether keys with this first segment are kept in a container per network."""
    return f"{head}/" in REMOTES


def spans_containers(prefix: str) -> bool:
    """Whether the keys under `prefix` lie in several containers (so listing them starts
    with the data root's children): everything, or a bare remote-endpoint prefix."""
    head, _, rest = prefix.partition("/")
    return not prefix or (not rest and _split_head(head))


def revision(segment: int, sequence: int) -> int:
    """The revision of the commit in entry `sequence` of `segment`."""
    return segment * SEGMENT_SPAN + sequence + 1


def entry_position(path: str) -> tuple[int, int]:
    """(segment, sequence) of a log entry from its path: .../log/<segment>/e<sequence>."""
    segment, entry = path.rsplit("/", 2)[-2:]
    return int(segment), int(entry[1:])


def store_version(epoch: int, zk_version: int) -> int:
    """Store version of a present key (never MISSING_VERSION: ZooKeeper counts from 0)."""
    return (epoch << _EPOCH_SHIFT) + zk_version + 1


def split_version(version: int) -> tuple[int, int]:
    """(epoch, znode version) of a store version."""
    return version >> _EPOCH_SHIFT, (version & ((1 << _EPOCH_SHIFT) - 1)) - 1


def stat_version(stat: Any, epoch: int) -> int:
    """Store version from a znode stat (None or empty data: absent)."""
    if stat is None or stat.dataLength == 0:
        return MISSING_VERSION
    return store_version(epoch, stat.version)
