"""The client side: FIELD=VALUE parsing, tables, API errors as the CLI prints them."""

from __future__ import annotations

import click
import pytest

from vlcp.api.errors import field_of, validation_message, validation_status
from vlcp.cli_client import (
    module_rows,
    parse_fields,
    readable_port,
    status_text,
    table,
    wanted_rows,
)
from vlcp.client import ApiError, _api_error
from vlcp.config import parse_listen


def test_fields_are_json_when_they_parse_and_text_otherwise() -> None:
    fields = parse_fields(
        ["mtu=1500", "vlanrange=[[1,2]]", "name=eth0", 'hostname="42"', "isexternal=true", "x="]
    )
    assert fields == {
        "mtu": 1500,
        "vlanrange": [[1, 2]],
        "name": "eth0",
        "hostname": "42",
        "isexternal": True,
        "x": "",
    }
    with pytest.raises(click.BadParameter, match="FIELD=VALUE"):
        parse_fields(["mtu"])
    with pytest.raises(click.BadParameter, match="twice"):
        parse_fields(["a=1", "a=2"])


def test_table_puts_id_first_and_aligns() -> None:
    text = table([{"name": "a", "id": "1"}, {"id": "22", "mtu": 1500, "name": None}])
    lines = text.splitlines()
    assert lines[0].split() == ["id", "name", "mtu"]
    assert lines[2].split() == ["1", "a"] and lines[3].split() == ["22", "1500"]
    assert lines[0].index("name") == lines[2].index("a")


def test_a_port_status_reads_as_words_last() -> None:
    up = {"state": "up", "host": "hv1", "since": 1764756263.25}
    assert status_text(up) == "up on hv1 since 2025-12-03 10:04:23 UTC"
    assert status_text(None) == "not reported"
    assert status_text({"state": "up"}) == '{"state":"up"}', "an unknown shape as it came"
    port = {"id": "p", "status": None, "mac_address": "02:00:00:00:00:01"}
    assert list(readable_port(port).items())[-1] == ("status", "not reported")
    created = {"id": "p", "mac_address": "02:00:00:00:00:01"}
    assert readable_port(created) == created, "no status read: none shown"


def test_api_errors_read_both_shapes() -> None:
    rest = _api_error(422, b'{"error": {"status": 422, "message": "bad", "field": "mtu"}}')
    assert (rest.status, rest.message, rest.field) == (422, "bad", "mtu")
    assert str(rest) == "error 422: bad (field mtu)"
    compat = _api_error(409, b'{"error": "in use"}')
    assert str(compat) == "error 409: in use"
    plain = _api_error(502, b"<html>bad gateway</html>")
    assert plain.status == 502 and "bad gateway" in plain.message
    assert str(ApiError(0, "cannot reach the API")) == "cannot reach the API"


def test_validation_errors_name_the_field() -> None:
    assert field_of(("body", "operations", 3, "kind")) == "operations[3].kind"
    assert field_of(("query", "limit")) == "limit"
    assert field_of(("body",)) is None
    assert validation_status([{"type": "json_invalid", "loc": ("body", 3)}]) == 400
    assert validation_status([{"type": "int_parsing", "loc": ("query", "limit")}]) == 400
    assert validation_status([{"type": "missing", "loc": ("body", "operations")}]) == 422
    error = {"type": "missing", "loc": ("body", "operations"), "msg": "Field required"}
    assert validation_message(error) == "operations: required"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8081", ("127.0.0.1", 8081)),
        ("[::1]:80", ("::1", 80)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["8081", "host", ":80", "h:99999", "h:-1", "h:x"])
def test_bad_listen_addresses(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(text)


def test_the_api_listens_on_loopback_by_default() -> None:
    from vlcp.config import ApiSettings

    assert ApiSettings().listen == "127.0.0.1:8081"
    assert ApiSettings().url == "http://127.0.0.1:8081" and ApiSettings().token is None


def test_module_rows_show_each_server_and_module_and_what_is_pending() -> None:
    known = {"ingress": {}, "vxlan": {}}
    reported = {
        "server": "hv1",
        "running": True,
        "wanted_from": "all",
        "reported": True,
        "known": known,
        "loaded": ["ingress"],
        "wanted": ["ingress", "vxlan"],
        "errors": {"vxlan": "boom"},
        "pending": {"load": ["vxlan"], "unload": [], "reload": ["ingress"]},
    }
    silent = {"server": "hv2", "running": False, "wanted_from": "default", "reported": False}
    rows = module_rows({"all": None, "servers": [reported, silent]})
    assert [(r["module"], r.get("loaded"), r.get("pending"), r["error"]) for r in rows] == [
        ("ingress", "yes", "reload", ""),
        ("vxlan", "no", "load", "boom"),
        ("", None, None, "its controller has not reported"),
    ]
    assert rows[0]["running"] == "yes" and rows[2]["set"] == "default"
    sets = {
        "all": {"modules": ["a"], "reload": {}},
        "servers": {
            "hv1": {"modules": ["a", "b"], "reload": {"a": 2}, "settings": {"b": {"x": 1}}}
        },
    }
    assert wanted_rows(sets) == [
        {"set": "all", "modules": "a", "reload": "", "settings": ""},
        {"set": "hv1", "modules": "a, b", "reload": {"a": 2}, "settings": {"b": {"x": 1}}},
    ]
