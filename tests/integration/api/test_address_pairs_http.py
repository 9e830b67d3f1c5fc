"""Allowed address pairs through both APIs over HTTP: set, read, updated, refused precisely."""

from __future__ import annotations

import pytest

from vlcp.client import ApiError

from .server import ApiServer
from .test_rest_http import build_topology
from .test_vlcp_http import Vlcp, literal

PAIRS = "allowed_address_pairs"
VRRP = "00:00:5e:00:01:01"


def test_rest_creates_reads_patches_and_refuses_pairs(api: ApiServer) -> None:
    client = api.client()
    build_topology(client)
    pairs = [{"ip_address": "10.0.0.200/32"}, {"ip_address": "10.9.0.0/16", "mac_address": VRRP}]
    created = client.create("logical-ports", {"id": "p", "logicalnetwork": "ln", PAIRS: pairs})
    stored = [{"ip_address": "10.0.0.200"}, pairs[1]]
    assert created[PAIRS] == stored
    assert client.get("logical-ports", "p")[PAIRS] == stored
    assert client.update("logical-ports", "p", {PAIRS: pairs[1:]})[PAIRS] == pairs[1:]
    assert client.get("logical-ports", "p")[PAIRS] == pairs[1:]
    with pytest.raises(ApiError) as info:
        client.update("logical-ports", "p", {PAIRS: [{"ip_address": "10.9.0.1/16"}]})
    assert (info.value.status, info.value.field) == (422, f"{PAIRS}[0].ip_address")
    assert "host bits" in info.value.message
    with pytest.raises(ApiError) as info:
        client.update(
            "logical-ports", "p", {PAIRS: [{"ip_address": f"10.1.0.{i}"} for i in range(11)]}
        )
    assert (info.value.status, info.value.field) == (422, PAIRS)
    assert "at most 10" in info.value.message
    assert client.get("logical-ports", "p")[PAIRS] == pairs[1:]


def test_the_original_api_takes_pairs_as_a_literal(api: ApiServer) -> None:
    build_topology(api.client())
    v = Vlcp(api)
    pairs = [{"ip_address": "10.0.0.200"}]
    made = v.ok(
        "viperflow/createlogicalport", id="p", logicalnetwork="ln", **{PAIRS: literal(pairs)}
    )
    assert made[0][PAIRS] == pairs
    moved = [{"ip_address": "10.0.0.0/24", "mac_address": VRRP}]
    v.ok("viperflow/updatelogicalport", "form", id="p", **{PAIRS: literal(moved)})
    assert v.ok("viperflow/listlogicalports", id="p")[0][PAIRS] == moved
    v.ok("viperflow/updatelogicalport", "json", id="p", **{PAIRS: []})
    assert v.ok("viperflow/listlogicalports", id="p")[0][PAIRS] == []
    bad = literal([{"ip_address": "10.0.0.0/24", "mac_address": "01:00:00:00:00:01"}])
    error = v.fails(422, "viperflow/updatelogicalport", "multicast", id="p", **{PAIRS: bad})
    assert error.startswith(f"{PAIRS}[0].mac_address")
