"""One error shape for REST v1: `{"error": {"status", "message", "field"}}`.

Every failure a client can cause ends here with a 4xx and a message that names the field
and the reason, whether it was raised by the model, by the store's input checks, by
FastAPI's request validation, or by routing. The only 5xx is 503 when the store cannot be
reached or stays contended: the request did nothing and may be retried.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from vlcp.api_error import ApiError
from vlcp.model.errors import ModelError
from vlcp.store import (
    ConflictRetriesExhausted,
    InvalidKey,
    InvalidValue,
    StoreError,
    StoreUnavailable,
    TransactionTooLarge,
)

from .limits import too_large_message

log = logging.getLogger(__name__)


def error_body(status: int, message: str, field: str | None = None) -> dict[str, Any]:
    """The JSON document of a REST v1 error."""
    return {"error": {"status": status, "message": message, "field": field}}


def error_response(status: int, message: str, field: str | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(status, message, field), status_code=status, headers=headers)


UNAVAILABLE = (
    "the store is unavailable or too busy; nothing was written, unless the message says the "
    "change may or may not have been made (its answer was lost): then read before retrying"
)
"""What a 503 means, as both APIs document it (the messages of `vlcp.model.errors.Busy`)."""


def describe(exc: Exception) -> tuple[int, str, str | None]:
    """Status, message and field for any error a request may raise (model, store, API)."""
    if isinstance(exc, ApiError):
        return exc.status, exc.message, exc.field
    if isinstance(exc, ModelError):
        status = getattr(exc, "status", 422)
        message = getattr(exc, "message", None) or str(exc)
        return status, message, getattr(exc, "field", None)
    if isinstance(exc, TransactionTooLarge):
        return 413, f"request too large for one transaction: {exc}", None
    if isinstance(exc, InvalidKey):
        return 422, f"invalid identifier: {exc}", "id"
    if isinstance(exc, InvalidValue):
        return 422, f"invalid value: {exc}", None
    if isinstance(exc, StoreUnavailable):
        if exc.maybe_applied:  # the commit was sent and its answer lost for good
            outcome = "the change may or may not have been made: read before retrying"
        else:
            outcome = "nothing was written"
        return 503, f"the store is unavailable ({exc}); {outcome}", None
    if isinstance(exc, ConflictRetriesExhausted):
        return 503, f"the store is too contended right now ({exc}); nothing was written", None
    if isinstance(exc, StoreError):
        return 503, f"store error ({type(exc).__name__}: {exc}); nothing was written", None
    raise TypeError(f"not an API error: {exc!r}")


HANDLED: tuple[type[Exception], ...] = (ApiError, ModelError, StoreError)
"""Exceptions that `describe` knows; anything else is a bug and stays a 500."""


def field_of(loc: Sequence[Any]) -> str | None:
    """`("body", "operations", 3, "kind")` -> `"operations[3].kind"` (None for the whole body)."""
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header") else list(loc)
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or None


def validation_status(errors: Sequence[dict[str, Any]]) -> int:
    """400 for input that is not well-formed (JSON syntax, query string); 422 for bad values."""
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid" or (first.get("loc") or ("",))[0] in ("query", "path"):
        return 400
    return 422


def validation_message(error: dict[str, Any]) -> str:
    """A sentence for one pydantic/FastAPI error: which field, and why."""
    where = field_of(error.get("loc") or ()) or "request body"
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "invalid JSON")
        return f"malformed JSON in the request body: {reason}"
    if error.get("type") == "missing":
        return f"{where}: required"
    if error.get("type") in ("dict_type", "model_attributes_type"):
        return f"{where}: must be a JSON object"
    return f"{where}: {error.get('msg', 'invalid')}"


def install_error_handlers(app: FastAPI) -> None:
    """Shape every REST v1 error the same way."""

    async def on_handled(request: Request, exc: Exception) -> JSONResponse:
        status, message, field = describe(exc)
        if status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, message)
        return error_response(status, message, field)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        status = validation_status(errors)
        first = errors[0] if errors else {}
        message = "; ".join(validation_message(e) for e in errors[:5]) or "invalid request"
        field = None if first.get("type") == "json_invalid" else field_of(first.get("loc") or ())
        return error_response(status, message, field)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        status = exc.status_code
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if status == 404 and message == "Not Found":
            message = f"no such resource: {request.method} {request.url.path}"
        if status == 413:
            message = too_large_message()
        if status == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        return error_response(status, message)

    for exc_type in HANDLED:
        app.add_exception_handler(exc_type, on_handled)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
