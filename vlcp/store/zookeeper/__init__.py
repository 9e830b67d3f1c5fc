"""The ZooKeeper store: an ensemble shared by every controller and agent of a deployment.

URL: ``zookeeper://host:port,host:port/root?timeout=5&session_timeout=10``
(the root path defaults to ``/vlcp``; see docs/store-backends.md for every parameter).

A commit is one ZooKeeper multi: a version check per key read, the writes, and the log
entry. kazoo runs its own threads; its ``*_async`` calls are bridged to asyncio futures,
so the event loop never blocks on the network.

Modules, from the bottom up:

- `url`: the store URL and the configuration it makes.
- `layout`: the znodes under the root, and store versions from znode versions.
- `kazoo_bridge`: kazoo's requests run from the event loop.
- `core`: the connection, paths and hints every part shares.
- `log`: the segmented change log: reading, watching, rotation and compaction.
- `reads`: fetches, and snapshots consistent at one revision.
- `in_doubt`: commits whose answer was lost, settled from the change log.
- `commit`: commits as one multi each.
- `liveness`: sessions as ephemeral znodes.
- `backend`: `ZooKeeperBackend`, assembled from the above, and `open_zookeeper`.
"""

from .backend import ZooKeeperBackend, open_zookeeper
from .layout import SEGMENT_SPAN
from .url import DEFAULT_ROOT, ZooKeeperConfig, parse_url

__all__ = [
    "DEFAULT_ROOT",
    "SEGMENT_SPAN",
    "ZooKeeperBackend",
    "ZooKeeperConfig",
    "open_zookeeper",
    "parse_url",
]
