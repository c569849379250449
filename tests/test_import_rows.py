"""Per-row mapping of an import: phone extensions kept, spreadsheet-mangled numbers explained."""

from __future__ import annotations

import csv
import json
from datetime import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.importer.columns import map_columns
from campaigns.importer.importer import ImportOptions, create_campaign
from campaigns.importer.phones import REASON_SCIENTIFIC, PhoneParser
from campaigns.importer.rows import RowMapper
from campaigns.policy import CallingPolicy
from storage.engine import make_engine
from storage.models import Contact

POLICY = CallingPolicy(
    window_start=time(0, 0), window_end=time(23, 59), days=frozenset(range(7)), timezone="UTC"
)


def _map(headers: list[str], rows: list[list[str]]) -> tuple[RowMapper, list[dict[str, str]]]:
    cmap = map_columns(Path("c.csv"), headers, phone_column=None, name_column=None)
    mapper = RowMapper(cmap, "IN", POLICY)
    columns = [list(col) for col in zip(*rows, strict=True)]
    chunk = mapper.map_chunk(2, columns)
    return mapper, [json.loads(m) if m else {} for m in chunk.metadata]


@pytest.mark.parametrize(
    ("cell", "extension"),
    [
        ("+1 415 555 0100 ext 12", "12"),
        ("+1 415 555 0100 ext. 12", "12"),
        ("+1 (415) 555-0100 x 345", "345"),
        ("+1 415 555 0100 #7", "7"),
        ("+91 98450 12345 extension 9", "9"),
    ],
)
def test_an_extension_is_kept_and_the_main_number_dialled(cell: str, extension: str) -> None:
    result = PhoneParser("IN").parse(cell)
    assert result.valid and result.extension == extension
    assert "ext" not in (result.e164 or "") and (result.e164 or "").isascii()


def test_a_number_without_extension_has_none() -> None:
    assert PhoneParser("IN").parse("+14155550100").extension is None
    assert PhoneParser("IN").parse("+1 415 555 0100").extension is None


def test_the_extension_goes_into_the_metadata() -> None:
    _, metas = _map(
        ["phone", "name"],
        [["+1 415 555 0100 ext 12", "Ann"], ["+14155550101", "Bo"], ["+1 415 555 0102 x9", ""]],
    )
    assert metas == [
        {"name": "Ann", "phone_extension": "12"},
        {"name": "Bo"},
        {"phone_extension": "9"},
    ]


def test_a_file_column_named_phone_extension_is_kept_beside_it() -> None:
    mapper, metas = _map(
        ["phone", "Phone Extension"], [["+1 415 555 0100 ext 12", "from the file"]]
    )
    assert mapper.extension_key == "phone_extension_2"
    assert metas == [{"phone_extension": "from the file", "phone_extension_2": "12"}]


@pytest.mark.parametrize("cell", ["9.19876543210E+11", "9,19876543210E+11", "9.1987654321e11"])
def test_scientific_notation_says_a_spreadsheet_mangled_it(cell: str) -> None:
    result = PhoneParser("IN").parse(cell)
    assert result.e164 is None and result.error == REASON_SCIENTIFIC
    assert "spreadsheet" in REASON_SCIENTIFIC and "Text" in REASON_SCIENTIFIC


def test_import_keeps_the_extension_in_the_stored_metadata(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(
            [["phone", "name"], ["+1 415 555 0100 ext 12", "Ann"], ["9.19876543210E+11", "Bo"]]
        )
    engine = make_engine(f"sqlite:///{tmp_path / 't.db'}")
    from storage.migrate import upgrade

    upgrade(engine)
    cid, _ = create_campaign(
        engine,
        path,
        {"name": "x", "agent_id": "a", "status": "running", "timezone": "UTC"},
        ImportOptions(),
    )
    with Session(engine) as s:
        rows = list(s.scalars(select(Contact).where(Contact.campaign_id == cid)))
    by_row = {c.row_number: c for c in rows}
    assert by_row[2].phone_e164 == "+14155550100"
    assert by_row[2].attributes == {"name": "Ann", "phone_extension": "12"}
    assert by_row[3].phone_e164 is None and by_row[3].reason == REASON_SCIENTIFIC
    engine.dispose()
