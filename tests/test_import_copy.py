"""The bulk write of an import: COPY on PostgreSQL, multi-row INSERTs on SQLite.

The two databases take different paths (``storage.imports``), so these tests hold them to
the same result on a file with every awkward thing at once, through the real command line,
and check that a failure while the COPY is open stores nothing.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from storage.engine import make_engine
from storage.errors import IntegrityConflict
from storage.imports import NewCampaign, begin_import
from storage.models import Campaign, Contact
from tests.cli_helpers import run_cli

#: Cells COPY's text format must escape (tab, backslash, its NULL marker, line breaks), a
#: quoted line break, quotes, unicode; duplicates written differently; bad numbers; a blank
#: row; a number on the --dnc list; an extension.
TRICKY_ROWS = [
    ["+91 98450 12345", "Asha\tRao", 'said "call\nafter 6"'],
    ["098450 12345", "Asha again", "duplicate of row 2, national form"],
    ["919845012346", "Back\\slash", r"\N is COPY's NULL, not ours"],
    ["12345", "Too Short", "invalid"],
    ["", "No Phone", "missing"],
    ["n/a", "Placeholder", "invalid"],
    ["9.19876543210E+11", "Excel", "scientific notation"],
    ["", "", ""],
    ["+91 98450 12399", "On DNC", "suppressed"],
    ["+1 415 555 2671 ext 12", "Extension", "₹1.2 Cr, east facing 🏠"],
    ["+44 7911 123456", "UK\r\nline", "carriage\rreturn"],
    ["+919845012346", "Dup Of Row 4", "duplicate, E.164 form"],
]


def tricky_csv(tmp_path: Path) -> tuple[Path, Path]:
    """The tricky rows, then enough plain ones that SQLite's multi-row INSERT runs whole
    groups of 50 and a remainder; a BOM and CRLF line ends, as Excel saves them."""
    lines = ["phone,name,notes"]
    for phone, name, notes in TRICKY_ROWS:
        cells = [phone, name, notes]
        lines.append(",".join('"' + c.replace('"', '""') + '"' for c in cells))
    lines += [f"+9198470{i:05d},Plain {i},row {i}" for i in range(125)]
    csv_path = tmp_path / "tricky.csv"
    csv_path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf-8") + b"\r\n")
    dnc = tmp_path / "dnc.txt"
    dnc.write_text("+919845012399\n", encoding="utf-8")
    return csv_path, dnc


EXPECTED = {
    "rows": 136,
    "blank_rows": 1,
    "imported": 129,
    "duplicates": 2,
    "invalid": 4,
    "suppressed": 1,
}
STORED = ("row_number", "phone_e164", "raw_phone", "name", "attributes", "timezones", "state",
          "reason", "attempts")  # fmt: skip


def import_tricky(db_url: str, tmp_path: Path) -> tuple[dict[str, Any], str, list[tuple[Any, ...]]]:
    """Create a campaign from the tricky file with the real CLI: its JSON summary, its
    rejects file and the stored contacts (every column that does not vary by run)."""
    csv_path, dnc = tricky_csv(tmp_path)
    rejects = tmp_path / "rejects.csv"
    res = run_cli(
        "campaign", "create", "tricky", "--csv", str(csv_path), "--dnc", str(dnc),
        "--region", "IN", "--agent-id", "agent-1", "--rejects", str(rejects), "--json",
        "--window", "00:00-24:00", "--days", "all",
        db_url=db_url,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            cols = [getattr(Contact, c) for c in STORED]
            stored = [tuple(r) for r in conn.execute(select(*cols).order_by(Contact.row_number))]
    finally:
        engine.dispose()
    return summary, rejects.read_text(encoding="utf-8"), stored


def test_tricky_file_counts_and_rows(db_url: str, tmp_path: Path) -> None:
    summary, rejects, stored = import_tricky(db_url, tmp_path)
    assert {k: summary[k] for k in EXPECTED} == EXPECTED
    by_row = {r[0]: dict(zip(STORED, r, strict=True)) for r in stored}
    assert len(stored) == EXPECTED["rows"]  # every row but the blank one is stored
    first = by_row[2]
    assert (first["phone_e164"], first["name"], first["state"]) == (
        "+919845012345", "Asha\tRao", "pending"
    )  # fmt: skip
    assert first["attributes"] == {"name": "Asha\tRao", "notes": 'said "call\nafter 6"'}
    assert by_row[4]["name"] == "Back\\slash"
    assert by_row[4]["attributes"]["notes"] == r"\N is COPY's NULL, not ours"
    assert by_row[3]["reason"] == "duplicate: same number as row 2"
    assert by_row[13]["reason"] == "duplicate: same number as row 4"
    assert by_row[10]["state"] == "suppressed"
    assert by_row[11]["attributes"]["phone_extension"] == "12"
    assert by_row[11]["attributes"]["notes"] == "₹1.2 Cr, east facing 🏠"
    assert by_row[12]["name"] == "UK\r\nline"
    assert 9 not in by_row  # the blank row
    assert by_row[138]["name"] == "Plain 124"  # the last of the remainder after groups of 50
    rejected = list(csv.DictReader(io.StringIO(rejects)))
    assert [int(r["row"]) for r in rejected] == [3, 5, 6, 7, 8, 10, 13]
    assert rejected[0]["notes"] == "duplicate of row 2, national form"


def test_tricky_file_identical_on_sqlite_and_postgresql(
    sqlite_url: str, pg_url: str, tmp_path: Path
) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "p").mkdir()
    on_sqlite = import_tricky(sqlite_url, tmp_path / "s")
    on_pg = import_tricky(pg_url, tmp_path / "p")
    assert on_sqlite[0] == on_pg[0]  # the summaries
    assert on_sqlite[1] == on_pg[1]  # the rejects files, byte for byte
    assert on_sqlite[2] == on_pg[2]  # every stored contact, column by column


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _count(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def test_a_row_refused_mid_copy_stores_nothing(engine: Engine) -> None:
    """Two chunks, the second repeating a number of the first: the database refuses it (on
    PostgreSQL when the COPY ends, on SQLite at the INSERT), the import stores nothing, and
    the message carries no contact data (COPY's error context quotes the row)."""

    def rows(campaign_id: int, start: int, now: Any) -> list[tuple[Any, ...]]:
        return [
            (campaign_id, start + i, f"+9198450{i:05d}", f"098450{i:05d}", f"Secret Name {i}",
             '{"k":"v"}', "Asia/Kolkata", "pending", None, 0, now)
            for i in range(120)
        ]  # fmt: skip

    with pytest.raises(IntegrityConflict) as err, begin_import(engine) as tx:
        campaign_id = tx.create_campaign(NewCampaign(name="c", agent_id="a"))
        tx.insert_contacts(rows(campaign_id, 2, tx.now()))
        tx.insert_contacts(rows(campaign_id, 1000, tx.now()))  # same numbers, new rows
        tx.record_import_stats(campaign_id, {"rows": 240})
    message = str(err.value)
    assert "Secret Name" not in message and "+9198450" not in message, message
    assert _count(engine, Campaign) == 0
    assert _count(engine, Contact) == 0


def test_bad_byte_after_the_first_chunk_via_cli_stores_nothing(db_url: str, tmp_path: Path) -> None:
    """A byte that does not decode in the second chunk (20,000 rows a chunk): the first
    chunk has been sent (COPY open on PostgreSQL), the command fails with one line, and the
    database holds no campaign and no contact."""
    path = tmp_path / "c.csv"
    good = b"".join(b"+9198450%05d,name %d\n" % (i, i) for i in range(25_000))
    path.write_bytes(b"phone,name\n" + good + b"+919847012345,caf\xe9\n")
    res = run_cli(
        "campaign", "create", "bad", "--csv", str(path), "--region", "IN", "--agent-id", "a",
        db_url=db_url,
    )  # fmt: skip
    assert res.returncode == 1, res.stderr
    assert "cannot be decoded as utf-8" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    engine = make_engine(db_url)
    try:
        assert _count(engine, Campaign) == 0
        assert _count(engine, Contact) == 0
    finally:
        engine.dispose()
