"""A small HTTP client for REST v1, used by the `vlcp` command's client verbs.

Standard library only (urllib), so the CLI and integrations (CNI, scripts) carry no
HTTP dependency of their own. Errors come back as `ApiError` with the status, message and
field the API sent, so callers can print them as they are.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode

from .api_error import ApiError

DEFAULT_URL = "http://127.0.0.1:8081"


def _segment(value: str) -> str:
    return quote(value, safe="")


class Client:
    """REST v1 over HTTP: one method per call, JSON in and out."""

    def __init__(
        self, url: str = DEFAULT_URL, *, token: str | None = None, timeout: float = 30.0
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, object] | None = None,
        body: object = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one request; the decoded JSON answer (None for 204), or `ApiError`."""
        # imported here: urllib.request pulls in http.client and the email package
        # (~1 MiB), which `vlcp run` (it registers these commands) never uses
        from urllib.request import Request, urlopen

        url = self.url + path
        if query:
            url += "?" + urlencode({k: _text(v) for k, v in query.items() if v is not None})
        data = None if body is None else json.dumps(body).encode()
        request = Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urlopen(request, timeout=timeout or self.timeout) as answer:
                payload = answer.read()
        except HTTPError as exc:
            raise _api_error(exc.code, exc.read()) from None
        except (TimeoutError, URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(0, f"cannot reach the API at {self.url}: {reason}") from None
        return json.loads(payload) if payload else None

    # -- objects -------------------------------------------------------------------------

    def create(self, kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.request("POST", f"/v1/{kind}", body=dict(body))

    def get(
        self, kind: str, id: str, *, wait: str | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        """One object; with `wait="up"` (logical ports), once it is up or `timeout` passed."""
        query = {"wait": wait, "timeout": timeout} if wait else None
        budget = (timeout or 10.0) + self.timeout if wait else None
        return self.request("GET", f"/v1/{kind}/{_segment(id)}", query=query, timeout=budget)

    def list_page(
        self,
        kind: str,
        filters: Mapping[str, object] | None = None,
        *,
        limit: int = 100,
        after: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of objects and the cursor of the next page (None on the last)."""
        query = {**(filters or {}), "limit": limit, "after": after}
        page = self.request("GET", f"/v1/{kind}", query=query)
        return page["items"], page["next"]

    def list(
        self, kind: str, filters: Mapping[str, object] | None = None, *, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every matching object (at most `limit`), following the pages."""
        after: str | None = None
        count = 0
        while True:
            size = min(1000, limit - count) if limit is not None else 1000
            if size <= 0:
                return
            items, after = self.list_page(kind, filters, limit=size, after=after)
            for item in items:
                count += 1
                yield item
            if after is None:
                return

    def update(self, kind: str, id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", f"/v1/{kind}/{_segment(id)}", body=dict(body))

    def delete(self, kind: str, id: str) -> None:
        self.request("DELETE", f"/v1/{kind}/{_segment(id)}")

    # -- router interfaces, batch, health -------------------------------------------------

    def add_interface(self, router: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.request("POST", f"/v1/routers/{_segment(router)}/interfaces", body=dict(body))

    def interfaces(self, router: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/v1/routers/{_segment(router)}/interfaces")["items"]

    def remove_interface(self, router: str, subnet: str) -> None:
        self.request("DELETE", f"/v1/routers/{_segment(router)}/interfaces/{_segment(subnet)}")

    def batch(self, operations: list[Mapping[str, Any]]) -> list[dict[str, Any] | None]:
        return self.request("POST", "/v1/batch", body={"operations": list(operations)})["results"]

    # -- modules ---------------------------------------------------------------------------

    def modules(self, server: str | None = None) -> dict[str, Any]:
        """Every server's modules (or one server's), and the shared wanted set."""
        return self.request("GET", "/v1/modules", query={"server": server})

    def change_modules(
        self,
        action: str,
        modules: list[str],
        *,
        server: str | None = None,
        dependents: bool = False,
    ) -> dict[str, Any]:
        """`load`, `unload` or `reload` modules on `server` (None: every server); the
        wanted sets written."""
        body: dict[str, Any] = {"modules": list(modules), "server": server}
        if dependents:
            body["dependents"] = True
        return self.request("POST", f"/v1/modules/{_segment(action)}", body=body)

    def configure_module(
        self, module: str, settings: dict[str, Any] | None, *, server: str | None = None
    ) -> dict[str, Any]:
        """Give `module` its settings (None: its defaults) on `server` (None: every
        server); the wanted sets written."""
        body = {"module": module, "settings": settings, "server": server}
        return self.request("POST", "/v1/modules/configure", body=body)

    # -- hardware VTEP -----------------------------------------------------------------------

    def vtep_switches(self, switch: str | None = None) -> list[dict[str, Any]]:
        return self.request("GET", "/v1/vtep/switches", query={"switch": switch})

    def vtep_bindings(self, switch: str | None = None) -> list[dict[str, Any]]:
        return self.request("GET", "/v1/vtep/bindings", query={"physicalswitch": switch})

    def vtep_bind(self, switch: str, port: str, vlan: int, network: str) -> dict[str, Any]:
        """Bind VLAN `vlan` (0: untagged) of `port` on `switch` to logical network `network`."""
        body = {
            "physicalswitch": switch,
            "physicalport": port,
            "vlan": vlan,
            "logicalnetwork": network,
        }
        return self.request("POST", "/v1/vtep/bindings", body=body)

    def vtep_unbind(self, switch: str, port: str, vlan: int | None = None) -> Any:
        """Unbind one VLAN of a port, or (`vlan` None) all of them (returned)."""
        path = f"/v1/vtep/bindings/{_segment(switch)}/{_segment(port)}"
        return self.request("DELETE", path if vlan is None else f"{path}/{vlan}")

    def health(self) -> dict[str, Any]:
        return self.request("GET", "/v1/health")


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def _api_error(status: int, payload: bytes) -> ApiError:
    try:
        error = json.loads(payload)["error"]
    except (ValueError, KeyError, TypeError):
        text = payload.decode(errors="replace").strip()[:500]
        return ApiError(status, text or "no details")
    if isinstance(error, dict):
        return ApiError(status, str(error.get("message", "")), error.get("field"))
    return ApiError(status, str(error))
