"""The etcd v3 store: one etcd cluster shared by every controller and agent.

A commit is one etcd Txn; the change log is etcd's own history, read with a watch.
Every call has a deadline (URL ``timeout=``) and fails over between the members until
then; a commit that may thus be sent twice applies at most once.

Modules, from the bottom up:

- `url`: the store URL and the options it makes.
- `members`: one member's gRPC channel and stubs, and what etcd's errors mean.
- `namespace`: the store's keys in etcd's key space.
- `connection`: calls with a deadline that fail over between members.
- `changes`: the change log (watches) and history compaction.
- `leases`: the lease of commit tokens, and liveness sessions.
- `commit`: commits applied at most once.
- `backend`: `EtcdBackend`, assembled from the above, and `open_etcd`.
"""

from .backend import EtcdBackend, open_etcd
from .url import DEFAULT_ROOT, EtcdOptions, parse_url

__all__ = ["DEFAULT_ROOT", "EtcdBackend", "EtcdOptions", "open_etcd", "parse_url"]
