"""Request body size limit, answered in the API's own error shapes.

FastAPI's `max_body_size` enforces the limit while a body streams in (chunked uploads
included) but answers in plain text. This middleware answers a declared Content-Length
over the limit before reading anything, and rewrites the plain-text 413 of a streamed
body into the JSON error the client expects: REST v1's object or the original API's text.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 1 << 20
"""Largest request body accepted (1 MiB): a batch of 500 operations fits comfortably."""


def too_large_message(limit: int = MAX_BODY) -> str:
    return f"request body too large (at most {limit} bytes)"


def _payload(path: str, compat_prefixes: tuple[str, ...], limit: int) -> bytes:
    message = too_large_message(limit)
    if path.startswith(compat_prefixes):
        return json.dumps({"error": message}).encode()
    return json.dumps({"error": {"status": 413, "message": message, "field": None}}).encode()


async def _send_413(send: Send, payload: bytes) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class BodyLimit:
    """Refuse bodies over `limit` bytes with a JSON 413."""

    def __init__(self, app: ASGIApp, limit: int, compat_prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.limit = limit
        self.compat_prefixes = compat_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        payload = _payload(scope["path"], self.compat_prefixes, self.limit)
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _send_413(send, payload)
                return
        replacing = False

        async def shaped_send(message: Message) -> None:
            nonlocal replacing
            if message["type"] == "http.response.start" and message["status"] == 413:
                content_type = dict(message.get("headers", ())).get(b"content-type", b"")
                replacing = content_type.startswith(b"text/plain")
            if not replacing:
                await send(message)
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                await _send_413(send, payload)

        await self.app(scope, receive, shaped_send)
