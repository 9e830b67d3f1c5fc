"""A minimal in-process HTTP caller for an ASGI app, so unit tests need no server or client."""

from __future__ import annotations

import json as jsonlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    raw_headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def json(self) -> Any:
        return jsonlib.loads(self.body)


async def call(
    app: Any,
    method: str,
    path: str,
    *,
    json: Any = None,
    body: bytes | None = None,
    content_type: str | None = None,
    query: dict[str, str] | list[tuple[str, str]] | str | None = None,
    headers: dict[str, str] | None = None,
    chunks: list[bytes] | None = None,
) -> Reply:
    """Send one request to `app` and collect the whole response.

    With `chunks`, the body streams in those pieces without a Content-Length.
    """
    sent_headers = dict(headers or {})
    if json is not None:
        body = jsonlib.dumps(json).encode()
        content_type = content_type or "application/json"
    if content_type:
        sent_headers["content-type"] = content_type
    body = body or b""
    if chunks is None:
        sent_headers.setdefault("content-length", str(len(body)))
    query_string = query if isinstance(query, str) else urlencode(query or {})
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query_string.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in sent_headers.items()],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    pieces = chunks if chunks is not None else [body]
    pending = [
        {"type": "http.request", "body": piece, "more_body": index < len(pieces) - 1}
        for index, piece in enumerate(pieces)
    ]
    reply = Reply(0, {})

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            reply.status = message["status"]
            reply.raw_headers = list(message.get("headers", []))
            reply.headers = {k.decode(): v.decode() for k, v in reply.raw_headers}
        elif message["type"] == "http.response.body":
            reply.body += message.get("body", b"")

    await app(scope, receive, send)
    return reply
