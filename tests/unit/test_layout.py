"""The store's key layout has one home, `vlcp.layout`, and the docs show it as it is.

A key prefix spelled as a string literal anywhere else in `vlcp/` fails here: that is how
the API half and the controller half drifted apart before (the agent spelled `lport/`,
`lognet/`, `netports/` and `lport-status/` on its own).
"""

from __future__ import annotations

import ast
from pathlib import Path

from vlcp import layout

VLCP = Path(layout.__file__).parent
ARCHITECTURE = VLCP.parent / "docs" / "architecture.md"


def key_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of each string constant in `source` that starts a store key: one that
    begins with a layout prefix (f-strings included: their leading text is a constant) or
    is one of the single keys (`SINGLE_KEYS`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if text.startswith(layout.PREFIXES) or text in layout.SINGLE_KEYS:
                found.append((node.lineno, text))
    return sorted(found)


def test_the_finder_sees_plain_and_formatted_literals() -> None:
    source = (
        'a = "lport/x"\nb = f"netports/{n}/{p}"\nc = "physnet-vni-ranges"\nd = "lport"\n'
        'e = "modules-all"\n'
    )
    assert key_literals(source) == [
        (1, "lport/x"),
        (2, "netports/"),
        (3, "physnet-vni-ranges"),
        (5, "modules-all"),
    ]


def test_no_key_prefix_is_spelled_outside_the_layout() -> None:
    offenders = {
        str(path.relative_to(VLCP.parent)): found
        for path in sorted(VLCP.rglob("*.py"))
        if path != Path(layout.__file__) and (found := key_literals(path.read_text()))
    }
    assert offenders == {}, "build keys with vlcp.layout, not literals"


def test_every_prefix_is_in_the_table_and_the_docs_show_the_table() -> None:
    doc = layout.__doc__ or ""
    table = [line for line in doc.splitlines() if line.startswith("|")]
    keys = {row.split("|")[1].strip().strip("`") for row in table[2:]}
    for prefix in (*layout.PREFIXES, *layout.SINGLE_KEYS):
        assert any(key.startswith(prefix) for key in keys), f"{prefix} is not in the table"
    assert "\n".join(table) in ARCHITECTURE.read_text(), "docs/architecture.md's key table"
