"""DHCP options are checked with the responder's codec when written, and stored canonical."""

from __future__ import annotations

from typing import Any

import pytest

from vlcp.dhcp_options import MAX_PAYLOAD
from vlcp.model import Invalid, Model

OWNERS = [
    ("logical-networks", "n1"),
    ("subnets", "s1"),
    ("logical-ports", "lp1"),
]


@pytest.fixture
async def world(net: Model) -> Model:
    await net.create("logical-ports", {"id": "lp1", "logicalnetwork": "n1", "subnet": "s1"})
    return net


@pytest.mark.parametrize(("kind", "id"), OWNERS)
async def test_good_options_are_stored_in_the_codec_canonical_form(
    world: Model, kind: str, id: str
) -> None:
    options = {
        "26": 1400,
        "6": ["8.8.8.8", "1.1.1.1"],
        "119": ["eng.example.com.", "example.com"],
        "121": [["10.9.0.0/16", "10.0.0.1"]],
        "43": "0A0B",
        "200": "",
        "19": False,
    }
    updated = await world.update(kind, id, {"extra_dhcp_options": options})
    stored = {**options, "119": ["eng.example.com", "example.com"], "43": "0a0b"}
    assert updated["extra_dhcp_options"] == stored
    assert (await world.get(kind, id))["extra_dhcp_options"] == stored
    # the canonical form is accepted again as it is (an update of another field rechecks it)
    again = await world.update(kind, id, {"extra_dhcp_options": stored})
    assert again["extra_dhcp_options"] == stored


@pytest.mark.parametrize(("kind", "id"), OWNERS)
@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        (
            {"26": 70000},
            "extra_dhcp_options.26",
            "extra_dhcp_options.26: option 26 (interface-mtu): 70000 is not an integer 68..65535",
        ),
        (
            {"6": ["8.8.8.8", "dns.example"]},
            "extra_dhcp_options.6",
            "option 6 (domain-name-servers): [1]: 'dns.example' is not an IPv4 address",
        ),
        (
            {"121": [["10.9.0.1/16", "10.0.0.1"]]},
            "extra_dhcp_options.121",
            "option 121 (classless-static-routes): [0]: '10.9.0.1/16' is not an IPv4 network",
        ),
        (
            {"200": [1, 2]},
            "extra_dhcp_options.200",
            "extra_dhcp_options.200: option 200: [1, 2] is not a hex string of whole bytes",
        ),
        (
            {"54": "10.0.0.1"},
            "extra_dhcp_options.54",
            "option 54 (dhcp-server-identifier): cannot be set: the server identifier is",
        ),
        ({"0": "00"}, "extra_dhcp_options.0", "extra_dhcp_options.0: 0 is not in 1..254"),
        ({"026": 1400}, "extra_dhcp_options.026", "option codes are decimal numbers"),
    ],
)
async def test_a_bad_option_is_refused_naming_it(
    world: Model, kind: str, id: str, options: dict[str, Any], field: str, message: str
) -> None:
    before = (await world.store.read_prefix("")).values
    with pytest.raises(Invalid) as refused:
        await world.update(kind, id, {"extra_dhcp_options": {"15": "example.com", **options}})
    assert refused.value.field == field
    assert message in refused.value.message, refused.value.message
    assert refused.value.status == 422
    assert (await world.store.read_prefix("")).values == before


async def test_a_bad_option_is_refused_at_creation_too(world: Model) -> None:
    with pytest.raises(Invalid, match=r"option 12 \(host-name\): '' is not a non-empty"):
        await world.create(
            "logical-ports", {"logicalnetwork": "n1", "extra_dhcp_options": {"12": ""}}
        )


async def test_host_routes_are_of_the_subnet_version(world: Model) -> None:
    with pytest.raises(Invalid) as refused:
        await world.update("subnets", "s1", {"host_routes": [["fd00::/8", "fd00::1"]]})
    assert refused.value.field == "host_routes[0][0]"
    assert refused.value.message == (
        "host_routes[0][0]: fd00::/8 is not an IPv4 network like the subnet (10.0.0.0/24)"
    )
    v6 = {"logicalnetwork": "n1", "cidr": "fd00::/64", "host_routes": [["::/0", "fd00::1"]]}
    assert (await world.create("subnets", v6))["host_routes"] == [["::/0", "fd00::1"]]


async def test_host_routes_fit_one_classless_routes_option(world: Model) -> None:
    many = [[f"10.{i // 256}.{i % 256}.1/32", "10.0.0.1"] for i in range(MAX_PAYLOAD // 9 + 1)]
    with pytest.raises(Invalid) as refused:
        await world.update("subnets", "s1", {"host_routes": many})
    assert refused.value.field == "host_routes"
    assert refused.value.message.startswith(
        "host_routes: with the default route, option 121 (classless-static-routes): "
    )
    assert f"more than the {MAX_PAYLOAD} an option may carry" in refused.value.message
    fits = many[: (MAX_PAYLOAD - 5) // 9]
    assert (await world.update("subnets", "s1", {"host_routes": fits}))["host_routes"] == fits
