"""Errors of the model: each carries the HTTP status the API answers with.

The API maps them one to one, so the model decides what a failure means (a wrong value,
a missing object, something in the way, a store that cannot answer) and says precisely
which field and why; the API never has to guess from a message.
"""

from __future__ import annotations


class ModelError(Exception):
    """Base of every model error: `status` (HTTP), `message`, and the `field` at fault."""

    status: int = 400

    def __init__(self, message: str, *, field: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if status is not None:
            self.status = status

    def within(self, prefix: str, field_prefix: str | None = None) -> ModelError:
        """The same error, said about one element of a batch ("operation 3: ...")."""
        field = self.field
        if field_prefix is not None:
            field = field_prefix if field is None else f"{field_prefix}.{field}"
        copy = type(self)(f"{prefix}: {self.message}", field=field, status=self.status)
        copy.__cause__ = self.__cause__
        return copy

    def __str__(self) -> str:
        return self.message


class Invalid(ModelError):
    """A value is wrong (type, range, format, unknown reference); names the field and why."""

    status = 422


class NotFound(ModelError):
    """The object addressed by the request does not exist; names its kind and id."""

    status = 404


class Conflict(ModelError):
    """Something in the way: a duplicate, a value in use, an exhausted range, a guard."""

    status = 409


class Busy(ModelError):
    """The store is unreachable or contention did not settle; nothing was written, unless
    the message says that a commit's answer was lost (then it may have been)."""

    status = 503


class TimedOut(ModelError):
    """A wait (e.g. for a port to come up) ended before the condition held."""

    status = 408
