"""Transaction bounds common to every backend.

They are the smallest of what the backends accept in one atomic commit, so that a
transaction that commits on the embedded store commits everywhere. ZooKeeper is the
tightest: a multi-op request must fit in `jute.maxbuffer` (1 MiB by default), and the
ZooKeeper backend writes each change twice (the key and the change log).
"""

MAX_TXN_WRITES = 1000
MAX_TXN_READS = 1000
MAX_TXN_BYTES = 400 * 1024
"""Encoded keys plus values written by one transaction."""
