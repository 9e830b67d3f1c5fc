"""Commits whose answer was lost with the connection: settled from the change log.

When the connection fails after a commit's multi was sent, the multi may or may not have
been applied. Guessing either way is wrong (a commit reported failed that happened, or
one applied twice), so the backend finds out: every commit's log entry carries a unique
id (`encode_changes`), and once kazoo has reconnected (to the same ZooKeeper session, on
the members left) the backend looks for that id among the entries logged after the multi
was sent. Found: the commit was applied and that entry gives its revision. Not found: it
was not applied and never will be, so it can be sent again. This is what ZooKeeper's own
error-handling advice says for a create whose answer was lost: put a unique id in it and
look for it after reconnecting.

Why "not found" is final:

- ZooKeeper applies the requests of a session in the order the client sent them, and
  kazoo keeps sending them in order across reconnections of the session; the lookup is
  sent after the multi.
- A request still on its way through a member the client has left is refused by the
  leader once the session has reconnected elsewhere (ZooKeeper's SessionMoved check) or
  has expired, so it cannot be applied after the lookup either.
- The lookup starts with a `sync`, which the leader answers only after every write it
  proposed before, so the member read from has applied the multi if the ensemble did.
"""

from __future__ import annotations

from functools import partial

from kazoo.exceptions import NoNodeError

from ..backend import decode_record
from ..errors import StoreUnavailable
from .log import ChangeLog

_LOOKUP_BATCH = 32
"""Log entries read at once while looking for a commit, newest first."""


class Unanswered(Exception):
    """A commit's multi was sent and its answer lost: what is needed to look it up."""

    def __init__(self, segment: int, last_zxid: int, cause: str) -> None:
        super().__init__(cause)
        self.segment = segment
        """The log segment the multi would have written its entry in."""
        self.last_zxid = last_zxid
        """The newest zxid this client had seen before sending it."""


class InDoubt(ChangeLog):
    """Settles commits whose answer was lost, within the running operation's deadline."""

    async def _settle(self, lost: Unanswered, commit_id: str) -> int | None:
        """The log position of commit `commit_id` if its multi was applied, else None.

        Raises StoreUnavailable (maybe_applied) when the store stays unreachable until
        the deadline: then nobody can tell.
        """
        zk, _client = self._require()
        try:
            return await zk.retrying(partial(self._find_commit, lost, commit_id))
        except StoreUnavailable as exc:
            raise zk.unavailable(
                f"the connection was lost after a commit was sent ({lost}), and the commit "
                f"could not be looked up in time ({exc}): it may or may not have been "
                "applied (wholly or not at all); read before retrying",
                maybe_applied=True,
            ) from None

    async def _find_commit(self, lost: Unanswered, commit_id: str) -> int | None:
        """The sequence of the entry holding `commit_id` in `lost.segment`, if any.

        The multi checks the log head's version, so an applied one logged in the segment
        that was current when it was planned. Entries are only ever appended there, in
        zxid order, and the multi's zxid is above every zxid seen before it was sent: the
        search goes backwards from the segment's end and stops at the first older entry.
        """
        zk, client = self._require()
        _synced, segment = await zk.run(
            [
                partial(client.sync_async, self.config.root),
                partial(client.exists_async, self._segment_path(lost.segment)),
            ]
        )
        if segment is None:
            raise zk.unavailable(f"change-log segment {lost.segment} was removed")
        end = segment.cversion  # entries are never deleted one by one: this many exist
        while end > 0:
            start = max(0, end - _LOOKUP_BATCH)
            calls = [
                partial(client.get_async, self._entry_path(lost.segment, sequence))
                for sequence in range(start, end)
            ]
            entries = await zk.run(calls)
            for sequence in reversed(range(start, end)):
                entry = entries[sequence - start]
                if isinstance(entry, NoNodeError):
                    raise zk.unavailable(f"change-log segment {lost.segment} was removed")
                data, stat = entry
                if stat.czxid <= lost.last_zxid:
                    return None
                if data and decode_record(data)[0] == commit_id:
                    return sequence
            end = start
        return None
