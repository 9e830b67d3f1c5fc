"""Rebuilding a view and diffing it gives the same flows as compiling it from scratch."""

from __future__ import annotations

from hypothesis import given, settings

from tests.unit.pipeline.test_incremental import views
from vlcp.agent.view_diff import diff_views
from vlcp.pipeline.changes import apply_all
from vlcp.pipeline.compile import compile_all, compile_owner
from vlcp.pipeline.view import View


@settings(max_examples=300, deadline=None)
@given(views, views)
def test_applying_the_diff_and_recompiling_touched_owners_equals_compile_all(
    old: View, new: View
) -> None:
    flows = dict(compile_all(old))
    view, touched = apply_all(old, diff_views(old, new))
    for owner in touched:
        owned = compile_owner(view, owner)
        if owned:
            flows[owner] = owned
        else:
            flows.pop(owner, None)
    assert flows == compile_all(new)


@given(views)
def test_an_unchanged_view_has_no_changes(view: View) -> None:
    assert diff_views(view, view) == []
