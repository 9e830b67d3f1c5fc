"""The DHCPv4 option codec the model checks with and the responder encodes with."""

from __future__ import annotations

import contextlib
import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vlcp.dhcp_options import (
    MAX_PAYLOAD,
    OPTIONS,
    RESERVED,
    Kind,
    OptionError,
    check_extra,
    classless_routes,
    decode,
    encode,
    frame,
    label,
    parse_options,
)

# -- encoding known types ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "value", "payload"),
    [
        (1, "255.255.255.0", "ffffff00"),
        (2, -3600, "fffff1f0"),
        (3, ["10.0.0.1"], "0a000001"),
        (6, ["8.8.8.8", "1.1.1.1"], "0808080801010101"),
        (12, "vm-1", "766d2d31"),
        (19, True, "01"),
        (19, False, "00"),
        (23, 64, "40"),
        (26, 1450, "05aa"),
        (51, 86400, "00015180"),
        (43, "0A0b", "0a0b"),
        (119, ["example.com"], "076578616d706c6503636f6d00"),
        (121, [["10.0.0.0/8", "10.1.0.1"]], "080a0a010001"),
        (200, "", ""),
        (200, "ff00", "ff00"),
    ],
)
def test_encode_gives_the_payload_of_each_type(code: int, value: Any, payload: str) -> None:
    assert encode(code, value).hex() == payload


@pytest.mark.parametrize(
    ("code", "value", "message"),
    [
        (26, 70000, "option 26 (interface-mtu): 70000 is not an integer 68..65535"),
        (26, 67, "option 26 (interface-mtu): 67 is not an integer 68..65535"),
        (26, "1400", "option 26 (interface-mtu): '1400' is not an integer 68..65535"),
        (26, True, "option 26 (interface-mtu): True is not an integer 68..65535"),
        (26, 1400.0, "option 26 (interface-mtu): 1400.0 is not an integer 68..65535"),
        (23, 0, "option 23 (default-ip-ttl): 0 is not an integer 1..255"),
        (13, -1, "option 13 (boot-size): -1 is not an integer 0..65535"),
        (51, 1 << 32, "option 51 (dhcp-lease-time): 4294967296 is not an integer 1..4294967295"),
        (2, 1 << 31, "option 2 (time-offset): 2147483648 is not an integer -2147483648.."),
        (1, "255.255.255.256", "option 1 (subnet-mask): '255.255.255.256' is not an IPv4 addr"),
        (1, "::1", "option 1 (subnet-mask): '::1' is not an IPv4 address"),
        (1, 4, "option 1 (subnet-mask): 4 is not an IPv4 address"),
        (6, "8.8.8.8", "option 6 (domain-name-servers): '8.8.8.8' is not a non-empty list"),
        (6, [], "option 6 (domain-name-servers): [] is not a non-empty list of IPv4 addresses"),
        (6, ["8.8.8.8", "x"], "option 6 (domain-name-servers): [1]: 'x' is not an IPv4 address"),
        (15, "", "option 15 (domain-name): '' is not a non-empty string of printable ASCII"),
        (15, "caf\u00e9", "option 15 (domain-name): 'café' is not a non-empty string of"),
        (15, "a\nb", "option 15 (domain-name): 'a\\nb' is not a non-empty string of"),
        (15, ["x"], "option 15 (domain-name): ['x'] is not a non-empty string"),
        (19, 1, "option 19 (ip-forwarding): 1 is not true or false"),
        (55, [1, 256], "option 55 (dhcp-parameter-request-list): [1, 256] is not a non-empty"),
        (55, [], "option 55 (dhcp-parameter-request-list): [] is not a non-empty list of int"),
        (43, "abc", "option 43 (vendor-encapsulated-options): 'abc' is not a hex string of "),
        (200, "0x0a", "option 200: '0x0a' is not a hex string of whole bytes"),
        (200, [10, 11], "option 200: [10, 11] is not a hex string of whole bytes"),
        (119, [], "option 119 (domain-search): [] is not a non-empty list of domain names"),
        (119, ["-x.com"], "option 119 (domain-search): [0]: '-x.com' is not a domain name"),
        (119, ["a..b"], "[0]: 'a..b' is not a domain name"),
        (119, [("a" * 63 + ".") * 4], "is longer than a domain name may be (255 bytes)"),
        (121, [], "option 121 (classless-static-routes): [] is not a non-empty list of"),
        (121, [["10.0.0.0/8"]], "option 121 (classless-static-routes): [0]: ['10.0.0.0/8'] is"),
        (121, [["10.0.0.5/8", "10.0.0.1"]], "[0]: '10.0.0.5/8' is not an IPv4 network (10."),
        (121, [["fd00::/8", "10.0.0.1"]], "[0]: 'fd00::/8' is not an IPv4 network"),
        (249, [["10.0.0.0/8", "fd00::1"]], "option 249 (ms-classless-static-routes): [0]: 'fd00"),
        (200, "00" * (MAX_PAYLOAD + 1), f"option 200: {MAX_PAYLOAD + 1} bytes, more than the"),
    ],
)
def test_encode_refuses_a_bad_value_naming_option_value_and_rule(
    code: int, value: Any, message: str
) -> None:
    with pytest.raises(OptionError) as refused:
        encode(code, value)
    assert message in str(refused.value)


@pytest.mark.parametrize("code", [0, 255, -1, 256, True, "26"])
def test_codes_outside_1_to_254_are_not_options(code: Any) -> None:
    with pytest.raises(OptionError, match=r"option codes are 1\.\.254, not"):
        encode(code, "")
    with pytest.raises(OptionError, match=r"option codes are 1\.\.254"):
        decode(code, b"")
    with pytest.raises(OptionError, match=r"option codes are 1\.\.254"):
        frame(code, b"")


def test_label_names_known_codes_and_numbers_others() -> None:
    assert label(121) == "option 121 (classless-static-routes)"
    assert label(200) == "option 200"


# -- extra options: what an operator may set --------------------------------------------


@pytest.mark.parametrize("code", sorted(RESERVED))
def test_check_extra_refuses_each_reserved_code_saying_why(code: int) -> None:
    with pytest.raises(OptionError) as refused:
        check_extra(code, "00")
    assert str(refused.value) == f"{label(code)}: cannot be set: {RESERVED[code]}"


def test_check_extra_encodes_the_others() -> None:
    assert check_extra(26, 1400) == encode(26, 1400)
    assert check_extra(200, "0a") == b"\n"
    with pytest.raises(OptionError, match="option 26"):
        check_extra(26, 0)


def test_reserved_codes_still_encode_and_decode_for_the_responder() -> None:
    assert encode(53, 5) == b"\x05"
    assert decode(54, encode(54, "10.0.0.1")) == "10.0.0.1"
    assert decode(55, b"\x01\x03\x79") == [1, 3, 121]
    assert decode(57, b"\x05\xdc") == 1500
    assert encode(61, "01020000000001") == bytes.fromhex("01020000000001")


def test_the_table_names_each_code_once_and_knows_each_reserved_option() -> None:
    names = [option.name for option in OPTIONS.values()]
    assert len(names) == len(set(names))
    assert set(RESERVED) <= set(OPTIONS)
    assert all(1 <= code <= 254 for code in OPTIONS)


# -- RFC 3442 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("destination", "descriptor"),
    [  # the table of RFC 3442, section "Classless Route Option Format"
        ("0.0.0.0/0", [0]),
        ("10.0.0.0/8", [8, 10]),
        ("10.0.0.0/16", [16, 10, 0]),
        ("10.17.0.0/16", [16, 10, 17]),
        ("10.27.129.0/24", [24, 10, 27, 129]),
        ("10.229.0.128/25", [25, 10, 229, 0, 128]),
        ("10.198.122.47/32", [32, 10, 198, 122, 47]),
    ],
)
def test_classless_routes_follow_the_rfc_3442_examples(
    destination: str, descriptor: list[int]
) -> None:
    payload = classless_routes([(destination, "192.0.2.1")])
    assert payload == bytes([*descriptor, 192, 0, 2, 1])
    assert decode(121, payload) == [[destination, "192.0.2.1"]]


def test_classless_routes_chain_routes_and_take_on_link_next_hops() -> None:
    payload = classless_routes([("0.0.0.0/0", "10.0.0.1"), ("172.16.0.0/12", "0.0.0.0")])
    assert payload.hex() == "000a000001" + "0cac10" + "00000000"
    assert classless_routes([]) == b""
    assert encode(121, [["0.0.0.0/0", "10.0.0.1"]]) == encode(249, [["0.0.0.0/0", "10.0.0.1"]])


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("", "option 121 (classless-static-routes): no routes"),
        ("210a000001", "route at byte 0 is truncated or has a prefix length > 32"),
        ("180a0000", "route at byte 0 is truncated"),
        ("080a0a000001" + "08", "route at byte 6 is truncated"),
        ("100a110a0000", "route at byte 0 is truncated"),
        ("100a11" + "0a000001" + "ff", "route at byte 7 is truncated"),
        ("080aff0a000001", "route at byte 6 is truncated"),
        ("070b0a000001", "route at byte 0: 11.0.0.0/7 has host bits set"),
    ],
)
def test_decode_refuses_a_malformed_route_list(payload: str, message: str) -> None:
    with pytest.raises(OptionError, match=re.escape(message)):
        decode(121, bytes.fromhex(payload))


# -- RFC 3397 ---------------------------------------------------------------------------

_RFC_3397 = (
    b"\x03eng\x05apple\x03com\x00"  # eng.apple.com.
    b"\x09marketing\xc0\x04"  # marketing + pointer to "apple.com." at offset 4
)


def test_domain_search_decodes_the_rfc_3397_example_with_its_pointer() -> None:
    assert decode(119, _RFC_3397) == ["eng.apple.com", "marketing.apple.com"]


def test_domain_search_decodes_the_rfc_3397_example_split_in_two_instances() -> None:
    """The RFC's example sends the list as two options 119: joined, they are one list."""
    wire = frame(119, _RFC_3397[:9]) + frame(119, _RFC_3397[9:]) + b"\xff"
    assert decode(119, parse_options(wire)[119]) == ["eng.apple.com", "marketing.apple.com"]


def test_domain_search_encodes_uncompressed_and_drops_a_final_dot() -> None:
    assert encode(119, ["eng.apple.com.", "marketing.apple.com"]) == (
        b"\x03eng\x05apple\x03com\x00\x09marketing\x05apple\x03com\x00"
    )
    assert decode(119, encode(119, ["Example.COM."])) == ["Example.COM"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "no domain names"),
        (b"\x03com", "domain name at byte 0 is truncated"),
        (b"\x03com\x00\xc0", "domain name at byte 5 is truncated"),
        (b"\xc0\x00", "domain name at byte 0 points forwards"),
        (b"\x03com\x00\xc0\x05", "domain name at byte 5 points forwards"),
        (b"\x03com\x00\x01a\xc0\x05", "domain name at byte 5 points forwards"),
        (b"\x00", "domain name at byte 0 is empty"),
        (b"\x43abc\x00", "domain name at byte 0: bad label length 67"),
    ],
)
def test_decode_refuses_malformed_names_and_pointer_loops(payload: bytes, message: str) -> None:
    with pytest.raises(OptionError, match=f"option 119 \\(domain-search\\): {message}"):
        decode(119, payload)


# -- decoding other types ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "payload", "message"),
    [
        (1, "0a0000", "option 1 (subnet-mask): 3 bytes is not an IPv4 address"),
        (6, "", "option 6 (domain-name-servers): 0 bytes is not a list of IPv4 addresses"),
        (6, "0a00000102", "5 bytes is not a list of IPv4 addresses"),
        (26, "05", "option 26 (interface-mtu): 1 bytes is not a uint16"),
        (26, "0020", "option 26 (interface-mtu): 32 is not an integer 68..65535"),
        (2, "000000", "option 2 (time-offset): 3 bytes is not a int32"),
        (55, "", "option 55 (dhcp-parameter-request-list): no values"),
        (19, "02", "option 19 (ip-forwarding): '02' is not a boolean (one byte, 0 or 1)"),
        (15, "", "option 15 (domain-name): b'' is not a non-empty string"),
        (15, "6100", "option 15 (domain-name): b'a\\x00' is not a non-empty string"),
    ],
)
def test_decode_refuses_a_payload_of_the_wrong_shape(code: int, payload: str, message: str) -> None:
    with pytest.raises(OptionError) as refused:
        decode(code, bytes.fromhex(payload))
    assert message in str(refused.value)


# -- framing (RFC 3396) -----------------------------------------------------------------


def test_frame_is_code_length_payload() -> None:
    assert frame(26, b"\x05\xdc") == b"\x1a\x02\x05\xdc"
    assert frame(80, b"") == b"\x50\x00"


def test_frame_splits_a_long_payload_into_instances_of_at_most_255_bytes() -> None:
    payload = bytes(range(256)) * 2  # 512 bytes
    wire = frame(121, payload)
    assert wire[:2] == b"\x79\xff" and wire[257:259] == b"\x79\xff"
    assert wire[514:516] == b"\x79\x02" and len(wire) == 512 + 3 * 2
    assert parse_options(wire) == {121: payload}


def test_parse_options_skips_pads_stops_at_end_and_joins_instances() -> None:
    wire = b"\x00\x35\x01\x05\x00\x03\x02ab\x03\x01c\xff\x06\x04junk"
    assert parse_options(wire) == {53: b"\x05", 3: b"abc"}
    assert parse_options(b"") == {}


@pytest.mark.parametrize("wire", [b"\x35", b"\x35\x02\x05", b"\x03\x01a\x06\x04\x01\x02"])
def test_parse_options_refuses_an_option_running_past_the_data(wire: bytes) -> None:
    with pytest.raises(OptionError, match=r"option \d+ at byte \d+ runs past the end"):
        parse_options(wire)


# -- round trips ------------------------------------------------------------------------

_ipv4 = st.ip_addresses(v=4).map(str)
_label = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,10}[A-Za-z0-9])?", fullmatch=True)
_domain = st.lists(_label, min_size=1, max_size=4).map(".".join)
_network = st.builds(
    lambda address, width: str(ipaddress.IPv4Network((address, width), strict=False)),
    st.ip_addresses(v=4),
    st.integers(0, 32),
)
_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=80)
_VALUES = {
    Kind.IP: _ipv4,
    Kind.IP_LIST: st.lists(_ipv4, min_size=1, max_size=8),
    Kind.STRING: _text,
    Kind.BOOL: st.booleans(),
    Kind.UINT8_LIST: st.lists(st.integers(0, 255), min_size=1, max_size=40),
    Kind.ROUTES: st.lists(st.tuples(_network, _ipv4).map(list), min_size=1, max_size=8),
    Kind.DOMAINS: st.lists(_domain, min_size=1, max_size=6),
    Kind.HEX: st.binary(max_size=300).map(bytes.hex),
}


@st.composite
def _known_option(draw: st.DrawFn) -> tuple[int, Any]:
    code = draw(st.sampled_from(sorted(OPTIONS)))
    option = OPTIONS[code]
    if option.kind in _VALUES:
        return code, draw(_VALUES[option.kind])
    low, high = option.bounds
    return code, draw(st.integers(low, high))


@given(_known_option())
def test_decode_inverts_encode_on_every_known_option(option: tuple[int, Any]) -> None:
    code, value = option
    payload = encode(code, value)
    canonical = decode(code, payload)
    assert canonical == value
    assert encode(code, canonical) == payload


@given(st.integers(1, 254).filter(lambda code: code not in OPTIONS), st.binary(max_size=600))
def test_unknown_codes_carry_hex_both_ways(code: int, payload: bytes) -> None:
    assert encode(code, payload.hex().upper()) == payload
    assert decode(code, payload) == payload.hex()


@given(st.dictionaries(st.integers(1, 254), st.binary(max_size=MAX_PAYLOAD), max_size=6))
def test_parse_options_inverts_frame(options: dict[int, bytes]) -> None:
    wire = b"".join(frame(code, payload) for code, payload in options.items()) + b"\xff"
    assert parse_options(wire) == options


@given(st.binary(max_size=64))
def test_decode_of_any_bytes_gives_a_value_or_an_option_error(payload: bytes) -> None:
    for code in (1, 3, 15, 19, 26, 119, 121):
        with contextlib.suppress(OptionError):
            decode(code, payload)


# -- the documented table ---------------------------------------------------------------

API_DOC = Path(__file__).parents[2] / "docs" / "api.md"


def _doc_row(code: int) -> str:
    option = OPTIONS[code]
    if code in RESERVED:
        return f"| {code} | {option.name} | refused: {RESERVED[code]} |"
    narrowed = option.low is not None or option.high is not None
    bounds = " {}..{}".format(*option.bounds) if narrowed else ""
    return f"| {code} | {option.name} | {option.kind}{bounds} |"


def test_docs_api_lists_every_option_as_the_codec_knows_it() -> None:
    table = "\n".join(["| code | name | type |", "|---|---|---|", *map(_doc_row, sorted(OPTIONS))])
    text = API_DOC.read_text()
    assert table in text, "docs/api.md's DHCP option table"
    types = text.split("| type | JSON value | example |\n|---|---|---|\n")[1].split("\n\n")[0]
    documented = {
        kind for line in types.splitlines() for kind in line.split(" | ")[0][2:].split(", ")
    }
    assert documented == set(Kind), "docs/api.md's DHCP option types"
