"""The web API as one ASGI application: REST v1 and the original VLCP API on one model.

`create_app` takes a ready model and holds no other state, so any number of processes
(`vlcp api`, `vlcp run`) can serve it over one shared store, and tests can mount it
in-process.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp

from vlcp import __version__
from vlcp.model.service import Model

from . import rest, vlcp_compat, vlcp_manager, vlcp_vtep
from .auth import BearerAuth
from .errors import install_error_handlers
from .limits import MAX_BODY, BodyLimit
from .vlcp_names import MODULES

MAX_WAIT = 300.0
"""Longest `?wait=up&timeout=` accepted, in seconds."""


def create_app(model: Model, *, token: str | None = None, max_wait: float = MAX_WAIT) -> FastAPI:
    """The API over `model`; with `token`, every call but the health check needs it."""
    app = VlcpApi(
        title="vlcp",
        version=__version__,
        description=(
            "Virtual networks on Open vSwitch. REST v1 under /v1; the original VLCP API "
            "under /viperflow, /vrouterapi and /manager. Errors: see docs/api.md."
        ),
        max_body_size=MAX_BODY,
        redoc_url=None,
    )
    install_error_handlers(app)
    app.include_router(rest.build_router(model, max_wait=max_wait))
    app.include_router(vlcp_compat.build_router(model))
    app.include_router(vlcp_manager.build_router(model))
    app.include_router(vlcp_vtep.build_router(model))
    app.state.model = model
    app.vlcp_token = token
    if token:
        _document_bearer(app)
    return app


class VlcpApi(FastAPI):
    """FastAPI with the token check and the body limit outermost, in the API's error shapes.

    They wrap the whole stack (FastAPI's own body limit included, whose plain-text 413 the
    limit reshapes), so no request reaches a route without a valid token or with a body
    over the limit.
    """

    vlcp_token: str | None = None

    def build_middleware_stack(self) -> ASGIApp:
        compat_prefixes = tuple(f"/{m}/" for m in MODULES)
        stack: ASGIApp = BodyLimit(super().build_middleware_stack(), MAX_BODY, compat_prefixes)
        if self.vlcp_token:
            stack = BearerAuth(stack, self.vlcp_token, compat_prefixes)
        return stack


def _document_bearer(app: FastAPI) -> None:
    """Declare the bearer token in the OpenAPI document, for clients and generated tools."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
            schema["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
