"""The Neutron driver's writer against a real `vlcp api`: every write may be sent again
(a retried postcommit, a sync racing the driver) and ends the same; vlcp unreachable is
retried and then told apart from vlcp refusing."""

from __future__ import annotations

import pytest

from vlcp.client import ApiError, Client
from vlcp.integrations.neutron.writer import Writer, unavailable

from .server import ApiServer, free_port


def test_every_write_can_be_sent_twice(api: ApiServer):
    writer = Writer(api.client())
    writer.client.create("physical-networks", {"id": "vx", "type": "vxlan", "vnirange": [[1, 9]]})
    network = {"id": "n1", "physicalnetwork": "vx", "vni": 5, "mtu": 1450}
    writer.create("logical-networks", network)
    again = writer.create("logical-networks", network | {"mtu": 1400})
    assert (again["vni"], again["mtu"]) == (5, 1400)
    writer.create("subnets", {"id": "s1", "logicalnetwork": "n1", "cidr": "10.0.0.0/24"})
    writer.create("routers", {"id": "r1", "routes": []})
    for _ in range(2):
        writer.add_interface("r1", {"subnet": "s1", "ip_address": "10.0.0.1"})
    assert [i["subnet"] for i in writer.client.interfaces("r1")] == ["s1"]
    for _ in range(2):
        writer.remove_interface("r1", "s1")
        writer.delete("subnets", "s1")
        writer.delete("logical-networks", "n1")
    assert writer.client.interfaces("r1") == []


def test_refusals_are_raised_at_once_and_not_retried(api: ApiServer):
    writer = Writer(api.client(), attempts=3, backoff=60)  # a retry would time the test out
    with pytest.raises(ApiError) as refused:
        writer.create("logical-networks", {"id": "n1", "physicalnetwork": "missing"})
    assert refused.value.status in (404, 409, 422)
    assert not unavailable(refused.value)


def test_an_unreachable_api_is_retried_then_reported_as_unavailable():
    writer = Writer(Client(f"http://127.0.0.1:{free_port()}", timeout=2), backoff=0.01)
    with pytest.raises(ApiError) as down:
        writer.delete("logical-ports", "p1")
    assert down.value.status == 0 and unavailable(down.value)
