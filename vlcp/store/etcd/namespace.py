"""Where the store lives in etcd's key space, under the namespace root R (the URL path):

- ``R/<key>`` holds a store key. Its etcd ``mod_revision`` is the key's version: a global,
  strictly increasing revision, so a deleted and re-created key never gets an old version.
- ``R`` itself is the namespace's revision mark, rewritten by every commit: its
  ``mod_revision`` is the revision of the namespace's latest commit. Snapshots report it,
  so commits in other namespaces of a shared cluster do not move our revisions.
- ``R/_live/<session>`` is a session's liveness mark, attached to an etcd lease.
- ``R.txn/<client>-<n>`` is a commit's token, kept a minute by a lease (see `commit`);
  outside ``R/``, so watchers never see it.
"""

from __future__ import annotations

from typing import Any

from aetcd import rpc

_LIVE = "_live/"
"""Reserved first segment under the root: liveness marks, never store keys."""


class EtcdNamespace:
    """The etcd keys of one store."""

    def __init__(self, root: str) -> None:
        self._mark = root.encode()
        self._base = self._mark + b"/"
        self._live = self._base + _LIVE.encode()
        self._tokens = self._mark + b".txn/"

    def _key(self, key: str) -> bytes:
        return self._base + key.encode()

    def _store_key(self, etcd_key: bytes) -> str | None:
        """The store key of an etcd key in our range; None for liveness marks."""
        key = etcd_key[len(self._base) :].decode()
        return None if key.startswith(_LIVE) else key

    def _revision(self, mark_range: Any, header: Any) -> int:
        """The namespace's revision: its last commit's, or etcd's when it never committed."""
        return mark_range.kvs[0].mod_revision if mark_range.kvs else header.revision


def range_end(prefix: bytes) -> bytes:
    """The end of the etcd key range of every key starting with `prefix` (ends with '/')."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


def get_op(key: bytes) -> Any:
    return rpc.RequestOp(request_range=rpc.RangeRequest(key=key))


def write_op(key: bytes, data: bytes | None) -> Any:
    if data is None:
        return rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=key))
    return rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=data))
