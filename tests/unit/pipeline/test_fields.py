"""The register registry: one declaration per use, no raw registers elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import vlcp.pipeline
from vlcp.pipeline import fields
from vlcp.pipeline.fields import IN_KIND, NETWORK, InKind, RegField

RAW_REGISTER = re.compile(r"\breg(1[0-5]|[0-9])\b")


def test_no_raw_register_outside_the_registry() -> None:
    package = Path(vlcp.pipeline.__file__).parent
    offenders = [
        f"{path.name}:{n}: {line.strip()}"
        for path in sorted(package.glob("*.py"))
        if path.name != "fields.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if RAW_REGISTER.search(line)
    ]
    assert offenders == []


def test_overlapping_fields_are_refused() -> None:
    a, b = RegField("A", "reg1", 0, 8), RegField("B", "reg1", 4, 8)
    fields._check_disjoint((a, RegField("C", "reg1", 8, 8)))
    with pytest.raises(ValueError, match="B overlaps"):
        fields._check_disjoint((a, b))


@pytest.mark.parametrize(
    ("reg", "ofs", "n_bits"), [("reg16", 0, 8), ("r1", 0, 8), ("reg1", 30, 4), ("reg1", 0, 0)]
)
def test_bad_fields(reg: str, ofs: int, n_bits: int) -> None:
    with pytest.raises(ValueError):
        RegField("X", reg, ofs, n_bits)


def test_match_load_extract() -> None:
    assert NETWORK.match(7) == 7
    assert IN_KIND.match(InKind.TUNNEL) == (2, 3)
    shifted = RegField("S", "reg2", 8, 4)
    assert shifted.match(5) == (0x500, 0xF00)
    assert shifted.load(5).args == (
        ("field", "reg2"),
        ("n_bits", 4),
        ("ofs", 8),
        ("value", 5),
    )
    assert shifted.extract(0x1234) == 2
    with pytest.raises(ValueError, match="does not fit"):
        shifted.load(16)
