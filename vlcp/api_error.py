"""`ApiError`: the one error type both sides of REST v1 use.

The API raises it for a request it refuses by itself (bad query, unknown filter, wait
timeout) and turns it into the `{"error": {"status", "message", "field"}}` document; the
HTTP client (`vlcp.client`) raises it from that same document. One class, so a status,
message and field mean the same thing on both sides. It lives in this module, which
imports nothing, because the client is standard-library only and must not pull in the
API package (FastAPI, the model, the store) to get it.
"""

from __future__ import annotations


class ApiError(Exception):
    """A REST v1 request refused with ``status`` (0: the API could not be reached),
    ``message`` and the ``field`` it concerns, if one."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def __str__(self) -> str:
        where = f" (field {self.field})" if self.field and self.field not in self.message else ""
        prefix = f"error {self.status}: " if self.status else ""
        return f"{prefix}{self.message}{where}"
