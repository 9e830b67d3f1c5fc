"""The monitor's row cache: update/update2 application and the resync diff, without I/O."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vlcp.southbound.ovsdb.cache import ChangeKind, RowCache, diff_tables
from vlcp.southbound.ovsdb.errors import ProtocolError
from vlcp.southbound.ovsdb.schema import DatabaseSchema

SCHEMA = DatabaseSchema.from_json(
    {
        "name": "Test",
        "version": "1.0.0",
        "tables": {
            "Port": {
                "columns": {
                    "name": {"type": "string"},
                    "tag": {"type": {"key": "integer", "min": 0, "max": 1}},
                    "interfaces": {
                        "type": {
                            "key": {"type": "uuid", "refTable": "Interface"},
                            "min": 0,
                            "max": "unlimited",
                        }
                    },
                    "external_ids": {
                        "type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}
                    },
                }
            },
            "Interface": {"columns": {"name": {"type": "string"}}},
        },
    }
)
COLUMNS = {"Port": ["name", "tag", "interfaces", "external_ids"], "Interface": ["name"]}
P1 = uuid.UUID(int=1)
P2 = uuid.UUID(int=2)
I1 = uuid.UUID(int=101)


def port(name: str, **extra: Any) -> dict[str, Any]:
    """A full decoded Port row with defaults."""
    return {"name": name, "tag": None, "interfaces": frozenset(), "external_ids": {}, **extra}


def fresh_cache() -> RowCache:
    return RowCache(SCHEMA, COLUMNS)


def synced_cache() -> RowCache:
    """A cache that has seen p1 (with one interface and an iface-id) and i1."""
    cache = fresh_cache()
    initial = {
        "Port": {
            str(P1): {
                "initial": {
                    "name": "p1",
                    "interfaces": ["uuid", str(I1)],
                    "external_ids": ["map", [["iface-id", "lp1"]]],
                }
            }
        },
        "Interface": {str(I1): {"initial": {"name": "p1"}}},
    }
    cache.resync(cache.decode_initial2(initial))
    return cache


# ---------------------------------------------------------------- update2


def test_initial_rows_get_defaults_for_omitted_columns() -> None:
    cache = synced_cache()
    assert cache.tables["Port"][P1] == port(
        "p1", interfaces=frozenset({I1}), external_ids={"iface-id": "lp1"}
    )
    assert cache.tables["Interface"][I1] == {"name": "p1"}


def test_update2_insert_modify_delete() -> None:
    cache = synced_cache()
    changes = cache.apply_update2(
        {
            "Port": {
                str(P2): {"insert": {"name": "p2", "tag": 5}},
                str(P1): {
                    "modify": {
                        "external_ids": ["map", [["iface-id", "lp9"], ["k", "v"]]],
                        "interfaces": ["uuid", str(I1)],
                        "tag": 7,
                    }
                },
            },
            "Interface": {str(I1): {"delete": None}},
        }
    )
    by_uuid = {c.uuid: c for c in changes.changes}
    assert by_uuid[P2].kind is ChangeKind.INSERT
    assert by_uuid[P2].new == port("p2", tag=5)
    assert by_uuid[P1].kind is ChangeKind.MODIFY
    assert by_uuid[P1].changed_columns == {"external_ids", "interfaces", "tag"}
    assert by_uuid[P1].old["external_ids"] == {"iface-id": "lp1"}  # type: ignore[index]
    assert by_uuid[P1].new == port("p1", tag=7, external_ids={"iface-id": "lp9", "k": "v"})
    assert by_uuid[I1].kind is ChangeKind.DELETE
    assert by_uuid[I1].row == {"name": "p1"}
    assert set(cache.tables["Port"]) == {P1, P2}
    assert cache.tables["Interface"] == {}
    assert not changes.resync


@pytest.mark.parametrize(
    "update",
    [
        {"Port": {str(P2): {"modify": {"tag": 1}}}},  # unknown row
        {"Port": {str(P1): {"insert": {"name": "again"}}}},  # existing row
        {"Port": {str(P2): {"delete": None}}},
        {"Port": {str(P2): {"insert": {"name": 3}}}},  # wrong type
        {"Port": {str(P2): {"frobnicate": {}}}},
        {"Port": {str(P2): {"insert": {}, "delete": None}}},
        {"Port": {"not-a-uuid": {"delete": None}}},
        {"Bridge": {}},  # not monitored
        {"Port": []},
        [],
    ],
)
def test_a_malformed_update_leaves_the_cache_untouched(update: Any) -> None:
    cache = synced_cache()
    # a valid change first in the same message, to prove nothing is half-applied
    message = {"Interface": {str(uuid.UUID(int=999)): {"insert": {"name": "x"}}}}
    if isinstance(update, dict):
        message.update(update)
    else:
        message = update
    before = copy.deepcopy(cache.tables)
    with pytest.raises(ProtocolError):
        cache.apply_update2(message)
    assert cache.tables == before


def test_columns_we_do_not_monitor_are_ignored() -> None:
    cache = synced_cache()
    changes = cache.apply_update2({"Port": {str(P2): {"insert": {"name": "p2", "other": 1}}}})
    assert changes.changes[0].new == port("p2")


# ---------------------------------------------------------------- plain update (monitor)


def test_update1_insert_modify_delete() -> None:
    cache = fresh_cache()
    cache.resync(cache.decode_initial1({"Port": {str(P1): {"new": {"name": "p1", "tag": 3}}}}))
    assert cache.tables["Port"][P1] == port("p1", tag=3)
    modify = cache.apply_update1(
        {"Port": {str(P1): {"old": {"tag": 3}, "new": {"name": "p1", "tag": ["set", []]}}}}
    )
    assert modify.changes[0].kind is ChangeKind.MODIFY
    assert modify.changes[0].changed_columns == {"tag"}
    assert cache.tables["Port"][P1]["tag"] is None
    delete = cache.apply_update1({"Port": {str(P1): {"old": {"name": "p1"}}}})
    assert delete.changes[0].kind is ChangeKind.DELETE
    assert cache.tables["Port"] == {}


# ---------------------------------------------------------------- resync


def test_resync_emits_exactly_what_changed_while_away() -> None:
    cache = synced_cache()
    p3 = uuid.UUID(int=3)
    fresh = {
        "Port": {
            P1: port("p1", interfaces=frozenset({I1}), external_ids={"iface-id": "lp2"}),
            p3: port("p3"),
        },
        "Interface": {I1: {"name": "p1"}},
    }
    changes = cache.resync(fresh)
    assert changes.resync
    summary = [(c.kind, c.table, c.uuid) for c in changes.changes]
    assert summary == [(ChangeKind.MODIFY, "Port", P1), (ChangeKind.INSERT, "Port", p3)]
    assert changes.changes[0].changed_columns == {"external_ids"}
    assert cache.tables == fresh


def test_resync_with_nothing_changed_is_silent() -> None:
    cache = synced_cache()
    assert not cache.resync(copy.deepcopy(cache.tables))


def test_resync_orders_deletes_before_inserts() -> None:
    """A port renamed while away: the old row goes before the new one with the same name."""
    old = {"Port": {P2: port("p")}}
    new = {"Port": {P1: port("p")}}
    kinds = [c.kind for c in diff_tables(old, new)]
    assert kinds == [ChangeKind.DELETE, ChangeKind.INSERT]


rows = st.dictionaries(
    st.integers(0, 8).map(lambda i: uuid.UUID(int=i)),
    st.builds(
        lambda name, tag, ids: port(name, tag=tag, external_ids=ids),
        st.sampled_from(["a", "b"]),
        st.none() | st.integers(0, 2),
        st.dictionaries(st.sampled_from(["iface-id", "x"]), st.sampled_from(["1", "2"])),
    ),
    max_size=6,
)
states = st.fixed_dictionaries({"Port": rows, "Interface": st.just({})})


@given(states, states)
def test_replaying_the_resync_diff_on_the_old_state_gives_the_new_state(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    state = copy.deepcopy(old)
    changes = diff_tables(old, new)
    for change in changes:
        assert (change.old is None) == (change.kind is ChangeKind.INSERT)
        assert (change.new is None) == (change.kind is ChangeKind.DELETE)
        if change.new is None:
            del state[change.table][change.uuid]
        else:
            state[change.table][change.uuid] = change.new
    assert state == new
    # and no change is reported for a row that did not change
    unchanged = {
        (t, u) for t in old for u in old[t] if u in new.get(t, {}) and old[t][u] == new[t][u]
    }
    assert not unchanged & {(c.table, c.uuid) for c in changes}
