"""Errors of the store contract, shared by every backend.

Callers catch these, never a client library's own exceptions: a backend translates
its library's failures into one of them, so behaviour is the same on every store.
"""


class StoreError(Exception):
    """Base class of every error the store raises."""


class InvalidKey(StoreError, ValueError):
    """A key or prefix does not have the accepted shape."""


class InvalidValue(StoreError, ValueError):
    """A value cannot be stored (not JSON-serialisable, or too large)."""


class TransactionTooLarge(StoreError, ValueError):
    """A transaction writes more keys or bytes than every backend can commit at once."""


class ConflictRetriesExhausted(StoreError):
    """A transaction kept conflicting with concurrent writers and gave up."""


class StoreUnavailable(StoreError):
    """The store could not be reached in the configured time (the store URL's `timeout`).

    `maybe_applied` tells a commit's caller what happened to its writes: False, nothing
    was written; True, the commit was sent and its answer lost, so it may or may not have
    been applied (wholly or not at all, never partially): re-read before retrying a change
    that is not idempotent.
    """

    def __init__(self, message: str, *, maybe_applied: bool = False) -> None:
        super().__init__(message)
        self.maybe_applied = maybe_applied


class SessionLost(StoreError):
    """The liveness session expired; its keys are (or will be) deleted by the store."""


class Conflict(StoreError):
    """A key read by a transaction changed before it committed (retried by `transact`)."""
