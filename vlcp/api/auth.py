"""Optional bearer-token authentication for both APIs.

A single shared token is enough for the API's users (operators, integrations, the CLI):
identities and roles belong to the systems in front of it. It is checked in middleware,
before any route runs, so no endpoint can forget it. The health check and the OpenAPI
document stay open: they reveal nothing stored, and load balancers need the first.
"""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

OPEN_PATHS = frozenset({"/v1/health", "/openapi.json", "/docs", "/docs/oauth2-redirect"})


class BearerAuth:
    """Refuse requests without `Authorization: Bearer <token>` with a 401 in the API's shape."""

    def __init__(self, app: ASGIApp, token: str, compat_prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.token = token.encode()
        self.compat_prefixes = compat_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        message = "authentication required: send the header 'Authorization: Bearer <token>'"
        if scope["path"].startswith(self.compat_prefixes):
            body: dict[str, object] = {"error": message}
        else:
            body = {"error": {"status": 401, "message": message, "field": None}}
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _allowed(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, given = value.partition(b" ")
                if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token):
                    return True
        return False
