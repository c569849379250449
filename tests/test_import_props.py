"""Property tests of the import, on SQLite and PostgreSQL: what goes in comes back out."""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from sqlalchemy import Engine, select

from campaigns.importer.importer import ImportOptions, create_campaign
from storage.engine import make_engine
from storage.models import Contact

_PROPS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_counter = itertools.count()


def _valid_examples() -> list[str]:
    """Every region's example numbers of the common types, in E.164."""
    out = set()
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.VOIP):
            num = phonenumbers.example_number_for_type(region, kind)
            if num is not None and phonenumbers.is_valid_number(num):
                out.add(phonenumbers.format_number(num, PhoneNumberFormat.E164))
    return sorted(out)


EXAMPLES = _valid_examples()


@st.composite
def valid_e164(draw: st.DrawFn) -> str:
    """An example number, or a random valid number near one (digits changed, still valid)."""
    base = draw(st.sampled_from(EXAMPLES))
    if draw(st.booleans()):
        cc = str(phonenumbers.parse(base).country_code)
        digits = list(base[1 + len(cc) :])
        for i in draw(st.lists(st.integers(0, len(digits) - 1), max_size=3)):
            digits[i] = draw(st.sampled_from("0123456789"))
        candidate = f"+{cc}{''.join(digits)}"
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
                return phonenumbers.format_number(
                    phonenumbers.parse(candidate), PhoneNumberFormat.E164
                )
        except phonenumbers.NumberParseException:
            pass
    return base


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _import(engine: Engine, tmp_path: Path, rows: list[list[str]]) -> list[Contact]:
    from sqlalchemy.orm import Session

    path = tmp_path / f"c{next(_counter)}.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    cid, _ = create_campaign(
        engine,
        path,
        {"name": "p", "agent_id": "a", "status": "running", "timezone": "UTC"},
        ImportOptions(),
    )
    with Session(engine) as s:
        return list(
            s.scalars(
                select(Contact).where(Contact.campaign_id == cid).order_by(Contact.row_number)
            )
        )


@_PROPS
@given(numbers=st.lists(valid_e164(), min_size=1, max_size=40, unique=True))
def test_valid_e164_numbers_survive_import(
    engine: Engine, tmp_path: Path, numbers: list[str]
) -> None:
    got = _import(engine, tmp_path, [["phone"]] + [[n] for n in numbers])
    assert [c.phone_e164 for c in got] == numbers
    assert [c.raw_phone for c in got] == numbers
    assert {c.state for c in got} == {"pending"}


_cell_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    max_size=60,
)


@_PROPS
@given(values=st.lists(st.tuples(_cell_text, _cell_text, _cell_text), min_size=1, max_size=20))
def test_metadata_round_trips_exactly(
    engine: Engine, tmp_path: Path, values: list[tuple[str, str, str]]
) -> None:
    header = ["phone", "Customer Name", "notes", "Ünïcode Col"]
    rows = [[f"+9198450{i:05d}", *v] for i, v in enumerate(values)]
    got = _import(engine, tmp_path, [header, *rows])
    # a row whose every cell is empty is a blank row; ours always have a phone
    assert len(got) == len(rows)
    for contact, (a, b, c) in zip(got, values, strict=True):
        expected = {k: v for k, v in (("customer_name", a), ("notes", b), ("ünïcode_col", c)) if v}
        assert contact.attributes == expected
        assert contact.name == (a or None)


_CELL = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.lists(_CELL, max_size=4), min_size=1, max_size=30),
    data=st.data(),
    terminator=st.sampled_from(["\r\n", "\n"]),
)
def test_a_bad_byte_is_placed_in_its_spreadsheet_row(
    rows: list[list[str]], data: st.DataObject, terminator: str
) -> None:
    """Wherever a file stops decoding, the row named is the CSV record holding that byte,
    counted as the importer counts rows (header 1; quoted line breaks and blank lines)."""
    import io
    import tempfile

    from campaigns.importer.badbytes import locate_undecodable
    from campaigns.importer.reader import CsvFormat

    k = data.draw(st.integers(0, len(rows)))
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator=terminator, quoting=csv.QUOTE_ALL).writerows(rows[:k])
    head = buf.getvalue().encode("utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.csv"
        path.write_bytes(head + b"\xff" + b"tail,cell\n")
        found = locate_undecodable(path, CsvFormat(encoding="utf-8", delimiter=","))
    assert found is not None
    assert (found.offset, found.byte, found.row) == (len(head), 0xFF, k + 1)


@settings(max_examples=200, deadline=None)
@given(
    number=valid_e164(),
    marker=st.sampled_from([" ext ", " ext. ", " x", " x ", " #", ";ext=", " extension "]),
    extension=st.from_regex(r"\A[1-9][0-9]{0,5}\Z"),
)
def test_an_extension_never_changes_the_number_dialled(
    number: str, marker: str, extension: str
) -> None:
    """Whatever the marker, the main number is the E.164 one and the extension is kept."""
    from campaigns.importer.phones import PhoneParser

    result = PhoneParser(None).parse(number + marker + extension)
    assert (result.e164, result.extension) == (number, extension)


@settings(max_examples=200, deadline=None)
@given(mantissa=st.from_regex(r"\A[1-9][.,][0-9]{1,12}\Z"), exponent=st.integers(5, 15))
def test_scientific_notation_is_always_explained(mantissa: str, exponent: int) -> None:
    from campaigns.importer.phones import REASON_SCIENTIFIC, PhoneParser

    for cell in (f"{mantissa}E+{exponent}", f"{mantissa}e{exponent}"):
        assert PhoneParser("IN").parse(cell).error == REASON_SCIENTIFIC
