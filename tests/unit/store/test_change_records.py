"""Change-log records: commits carry an id, and records written before ids existed still read."""

from __future__ import annotations

from vlcp.store.backend import decode_changes, decode_record, encode_changes

CHANGES = {"port/1": b'{"up":true}', "port/2": None, "net/é": b'"x"'}
PAIRS = (("port/1", b'{"up":true}'), ("port/2", None), ("net/é", b'"x"'))


def test_a_record_with_an_id_round_trips() -> None:
    record = encode_changes(CHANGES, "c0ffee")
    assert decode_record(record) == ("c0ffee", PAIRS)
    assert decode_changes(record) == PAIRS


def test_a_record_written_before_ids_existed_still_decodes() -> None:
    old = b'[["port/1","{\\"up\\":true}"],["port/2",null],["net/\xc3\xa9","\\"x\\""]]'
    assert encode_changes(CHANGES) == old  # without an id the format is unchanged
    assert decode_record(old) == (None, PAIRS)
    assert decode_changes(old) == PAIRS
