"""`extra_dhcp_options` through both APIs over the real model: a bad option is a 422 that
names it with the codec's reason, a good one is stored canonical."""

from __future__ import annotations

import json
from typing import Any

import pytest

from vlcp.api import create_app
from vlcp.model import Model
from vlcp.store import Store

from .asgi import call
from .test_rest import assert_error
from .test_vlcp_compat import refused, result

BAD = {"26": 70000}
REASON = "extra_dhcp_options.26: option 26 (interface-mtu): 70000 is not an integer 68..65535"
GOOD = {"26": 1400, "6": ["10.0.0.2"], "119": ["example.com."], "250": "0A"}
STORED = {"26": 1400, "6": ["10.0.0.2"], "119": ["example.com"], "250": "0a"}


@pytest.fixture
async def app(store: Store) -> Any:
    model = Model(store)
    await model.create("physical-networks", {"id": "p1", "type": "vlan", "vlanrange": [[5, 6]]})
    await model.create("logical-networks", {"id": "n1", "physicalnetwork": "p1"})
    await model.create("subnets", {"id": "s1", "logicalnetwork": "n1", "cidr": "10.0.0.0/24"})
    await model.create("logical-ports", {"id": "lp1", "logicalnetwork": "n1", "subnet": "s1"})
    return create_app(model)


REST = [
    ("logical-networks", {"physicalnetwork": "p1"}, "n1"),
    ("subnets", {"logicalnetwork": "n1", "cidr": "10.1.0.0/24"}, "s1"),
    ("logical-ports", {"logicalnetwork": "n1"}, "lp1"),
]


@pytest.mark.parametrize(("kind", "body", "existing"), REST)
async def test_rest_refuses_a_bad_option_with_422_naming_it(
    app: Any, kind: str, body: dict[str, Any], existing: str
) -> None:
    created = await call(app, "POST", f"/v1/{kind}", json={**body, "extra_dhcp_options": BAD})
    assert_error(created, 422, "extra_dhcp_options.26", REASON)
    path = f"/v1/{kind}/{existing}"
    updated = await call(app, "PATCH", path, json={"extra_dhcp_options": BAD})
    assert_error(updated, 422, "extra_dhcp_options.26", REASON)
    reserved = await call(app, "PATCH", path, json={"extra_dhcp_options": {"53": 2}})
    assert_error(reserved, 422, "extra_dhcp_options.53", "option 53 (dhcp-message-type): cannot")


@pytest.mark.parametrize(("kind", "body", "existing"), REST)
async def test_rest_stores_good_options_canonical(
    app: Any, kind: str, body: dict[str, Any], existing: str
) -> None:
    created = await call(app, "POST", f"/v1/{kind}", json={**body, "extra_dhcp_options": GOOD})
    assert created.status == 201, created.body
    assert created.json()["extra_dhcp_options"] == STORED
    path = f"/v1/{kind}/{existing}"
    updated = await call(app, "PATCH", path, json={"extra_dhcp_options": GOOD})
    assert updated.status == 200, updated.body
    assert (await call(app, "GET", path)).json()["extra_dhcp_options"] == STORED


VIPERFLOW = [
    ("logicalnetwork", {"physicalnetwork": "p1"}, "n1"),
    ("subnet", {"logicalnetwork": "n1", "cidr": "10.1.0.0/24"}, "s1"),
    ("logicalport", {"logicalnetwork": "n1"}, "lp1"),
]


def _literal(value: Any) -> str:
    return f"`{json.dumps(value)}`"


@pytest.mark.parametrize(("noun", "params", "existing"), VIPERFLOW)
async def test_original_api_gives_the_same_precise_error(
    app: Any, noun: str, params: dict[str, str], existing: str
) -> None:
    create = {**params, "extra_dhcp_options": _literal(BAD)}
    reply = await call(app, "GET", f"/viperflow/create{noun}", query=create)
    assert refused(reply, 422, REASON).endswith(REASON)
    update = {"id": existing, "extra_dhcp_options": _literal(BAD)}
    refused(await call(app, "GET", f"/viperflow/update{noun}", query=update), 422, REASON)
    good = {"id": existing, "extra_dhcp_options": _literal(GOOD)}
    (updated,) = result(await call(app, "GET", f"/viperflow/update{noun}", query=good))
    assert updated["extra_dhcp_options"] == STORED
