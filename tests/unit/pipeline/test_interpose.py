"""Tables declared `before` others: ordering, and gotos that land on interposed tables."""

from __future__ import annotations

import pytest

from vlcp.pipeline import Pipeline, PipelineError, Table


def ids(p: Pipeline) -> dict[str, int]:
    return {t.name: t.id for t in p}


def test_before_places_a_table_between_two_others() -> None:
    p = Pipeline(
        [Table("a"), Table("b", after=("a",)), Table("x", after=("a",), before=("b",), miss="b")]
    )
    assert ids(p) == {"a": 0, "x": 1, "b": 2}
    assert "b" in p["x"].successors


def test_a_goto_to_the_target_lands_on_the_interposed_table() -> None:
    p = Pipeline(
        [
            Table("a"),
            Table("b", after=("a",)),
            Table("c", after=("a", "b")),
            Table("x", after=("a",), before=("b",), miss="b"),
        ]
    )
    a, b, c, x = (p[n] for n in "abcx")
    assert a.flow(1, goto=b).goto == x.id
    assert a.flow(1, goto=c).goto == c.id  # another edge of a: not interposed
    assert x.flow(1, goto=b).goto == b.id
    assert x.miss_flow().goto == b.id


def test_an_edge_that_does_not_exist_is_only_ordered() -> None:
    """x after a and before b, but a never goes to b: nothing is routed through x."""
    p = Pipeline([Table("a"), Table("m", after=("a",)), Table("b", after=("m",))])
    q = Pipeline([*[p[n].decl for n in "amb"], Table("x", after=("a",), before=("b",))])
    assert q["a"].flow(1, goto=q["m"]).goto == q["m"].id
    assert q["x"].id < q["b"].id


def test_interposed_tables_declared_in_turn_form_a_chain() -> None:
    p = Pipeline(
        [
            Table("a"),
            Table("b", after=("a",)),
            Table("x1", after=("a",), before=("b",), miss="b"),
            Table("x2", after=("a", "x1"), before=("b",), miss="b"),
        ]
    )
    a, b, x1, x2 = (p[n] for n in ("a", "b", "x1", "x2"))
    assert (a.flow(1, goto=b).goto, x1.miss_flow().goto, x2.miss_flow().goto) == (
        x1.id,
        x2.id,
        b.id,
    )


def test_interposed_tables_that_are_not_in_turn_are_refused() -> None:
    with pytest.raises(PipelineError, match=r"\['x2'\] would be skipped between a and b"):
        Pipeline(
            [
                Table("a"),
                Table("b", after=("a",)),
                Table("x1", after=("a",), before=("b",), miss="b"),
                Table("x2", after=("a",), before=("b",), miss="b"),
            ]
        )


@pytest.mark.parametrize("miss", [None, "c"])
def test_an_interposed_table_must_pass_on_to_its_target(miss: str | None) -> None:
    """Its miss is all that is left of it when its module is unloaded."""
    with pytest.raises(PipelineError, match="interposed between a and b, its miss must go to b"):
        Pipeline(
            [
                Table("a"),
                Table("b", after=("a",)),
                Table("c", after=("b",)),
                Table("x", after=("a",), before=("b", "c"), miss=miss),
            ]
        )


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ([Table("a", before=("nope",))], "before undeclared"),
        ([Table("a", before=("b",)), Table("b", before=("a",))], "cycle"),
        ([Table("a", before=("b",)), Table("b", after=("a",)), Table("c", after=("b",))], None),
    ],
)
def test_before_declarations(tables: list[Table], message: str | None) -> None:
    if message is None:
        assert ids(Pipeline(tables)) == {"a": 0, "b": 1, "c": 2}
        return
    with pytest.raises(PipelineError, match=message):
        Pipeline(tables)
