"""Importing contact files into campaigns, on SQLite and PostgreSQL (``db_url``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from campaigns.errors import UserError
from campaigns.importer.importer import ImportOptions, create_campaign
from campaigns.services.imports import import_contacts
from storage import suppressions
from storage.engine import make_engine
from storage.models import Campaign, Contact

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
RUNNING = {"name": "t", "agent_id": "agent-1", "status": "running"}


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def write_csv(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, delimiter=delimiter).writerows(rows)
    return path


def contacts(engine: Engine, campaign_id: int) -> list[Contact]:
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        return list(
            s.scalars(
                select(Contact)
                .where(Contact.campaign_id == campaign_id)
                .order_by(Contact.row_number)
            )
        )


def count(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def read_rejects(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


# ----------------------------------------------------------------------------- sample data


def test_sample_data_import(engine: Engine, tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.csv"
    cid, stats = create_campaign(
        engine,
        SAMPLE / "contacts.csv",
        {**RUNNING, "max_attempts": 2},
        ImportOptions(region="IN", dnc_file=SAMPLE / "dnc.txt", rejects_path=rejects),
    )
    assert stats.summary(cid) == {
        "campaign_id": cid,
        "imported": 29,
        "duplicates": 1,
        "invalid": 2,
        "suppressed": 2,
        "rows": 34,
        "blank_rows": 0,
        "no_country_code": 0,
        "dnc_unreadable": 0,
    }
    rows = contacts(engine, cid)
    assert [c.row_number for c in rows] == list(range(2, 36))
    first = rows[0]
    assert (first.phone_e164, first.raw_phone, first.name, first.timezones, first.state) == (
        "+919845012345",
        "+91 98450 12345",
        "Aarav Sharma",
        "Asia/Calcutta",
        "pending",
    )
    assert first.attributes == {
        "customer_name": "Aarav Sharma",
        "property_name": "Prestige Lakeside Habitat",
        "city": "Bengaluru",
        "preferred_language": "Hindi",
        "budget": "₹1.2 Cr",
        "notes": "Wants a 3BHK, east facing",
    }
    multiline = rows[3]  # quoted line break inside a cell: still one row (row 5)
    assert multiline.attributes["notes"] == "Asked about EMI options\nand the possession date"
    assert "notes" not in rows[1].attributes  # empty cells are omitted
    by_state: dict[str, int] = {}
    for c in rows:
        by_state[c.state] = by_state.get(c.state, 0) + 1
    assert by_state == {"pending": 29, "invalid": 3, "suppressed": 2}
    got = read_rejects(rejects)
    assert [(r["row"], r["reason"]) for r in got] == [
        ("13", "on the do-not-call list"),
        ("20", "on the do-not-call list"),
        ("30", "duplicate: same number as row 2"),
        ("31", "invalid phone number: not a valid IN (+91) number"),
        ("32", "missing phone number"),
    ]
    assert got[2]["customer_name"] == "Ritu Agarwal" and got[2]["phone"] == "+91 98450 12345"
    with engine.connect() as conn:
        camp = conn.execute(select(Campaign.__table__).where(Campaign.id == cid)).one()
    assert camp.columns[:2] == [["customer_name", "customer_name"], ["phone", "phone"]]
    assert (camp.phone_column, camp.name_column, camp.region) == ("phone", "customer_name", "IN")
    assert camp.import_stats["imported"] == 29 and camp.max_attempts == 2


# ----------------------------------------------------------------------------- each reason


def _one(engine: Engine, tmp_path: Path, rows: list[list[str]], **opts: Any) -> tuple[int, Any]:
    path = write_csv(tmp_path / "c.csv", rows)
    campaign = {**RUNNING, **opts.pop("campaign", {})}
    return create_campaign(
        engine, path, campaign, ImportOptions(rejects_path=tmp_path / "r.csv", **opts)
    )


@pytest.mark.parametrize(
    ("cell", "campaign", "reason"),
    [
        ("12345", {}, "invalid phone number: not a valid IN (+91) number"),
        ("", {}, "missing phone number"),
        ("+80012345678", {}, "no time zone known"),
        ("+7 912 345 6789", {"window_start": "09:00", "window_end": "12:00"}, "never opens"),
    ],
)
def test_each_invalid_reason(
    engine: Engine, tmp_path: Path, cell: str, campaign: dict[str, str], reason: str
) -> None:
    cid, stats = _one(
        engine,
        tmp_path,
        [["phone", "name"], ["+919845012345", "ok"], [cell, "bad"]],
        region="IN",
        campaign=campaign,
    )
    assert (stats.imported, stats.invalid) == (1, 1)
    bad = contacts(engine, cid)[1]
    assert bad.state == "invalid" and reason in (bad.reason or "")
    assert bad.raw_phone == cell
    rejected = read_rejects(tmp_path / "r.csv")
    assert len(rejected) == 1 and rejected[0]["row"] == "3" and reason in rejected[0]["reason"]
    assert rejected[0]["phone"] == cell and rejected[0]["name"] == "bad"


def test_campaign_timezone_makes_unknown_zones_callable(engine: Engine, tmp_path: Path) -> None:
    cid, stats = _one(
        engine, tmp_path, [["phone"], ["+80012345678"]], campaign={"timezone": "Asia/Kolkata"}
    )
    assert stats.imported == 1
    assert contacts(engine, cid)[0].state == "pending"


def test_timezone_column_overrides_per_row(engine: Engine, tmp_path: Path) -> None:
    rows = [
        ["phone", "Time Zone"],
        ["+80012345678", "Europe/Berlin"],
        ["+80012345679", "Mars/Olympus"],
        ["+80012345670", "Asia/Kolkata, America/Los_Angeles"],
        ["+919845012345", ""],
    ]
    cid, stats = _one(engine, tmp_path, rows, campaign={"window_start": "09:00",
                                                         "window_end": "17:00"})  # fmt: skip
    got = contacts(engine, cid)
    assert [(c.state, c.timezones) for c in got] == [
        ("pending", "Europe/Berlin"),
        ("invalid", None),
        ("invalid", "Asia/Kolkata,America/Los_Angeles"),
        ("pending", "Asia/Calcutta"),
    ]
    assert "unknown time zone 'Mars/Olympus' in column 'Time Zone'" in (got[1].reason or "")
    assert "never opens" in (got[2].reason or "")
    assert got[0].attributes == {"time_zone": "Europe/Berlin"}  # still metadata
    assert stats.invalid == 2


def test_duplicates_in_file_and_in_campaign(engine: Engine, tmp_path: Path) -> None:
    cid, stats = _one(
        engine,
        tmp_path,
        [["phone"], ["+919845012345"], ["098450 12345"], ["+919847012345"]],
        region="IN",
    )
    assert (stats.imported, stats.duplicates, stats.invalid) == (2, 1, 0)
    dup = contacts(engine, cid)[1]
    assert (dup.state, dup.reason, dup.phone_e164, dup.raw_phone) == (
        "invalid",
        "duplicate: same number as row 2",
        None,
        "098450 12345",
    )
    more = write_csv(tmp_path / "more.csv", [["mobile"], ["9847012345"], ["+919900021234"]])
    stats2 = import_contacts(
        engine, cid, more, ImportOptions(region="IN", rejects_path=tmp_path / "r2.csv")
    )
    assert (stats2.imported, stats2.duplicates) == (1, 1)
    rejected = read_rejects(tmp_path / "r2.csv")
    assert [(r["row"], r["reason"]) for r in rejected] == [
        ("2", "duplicate: +919847012345 is already in the campaign")
    ]
    rows = contacts(engine, cid)
    assert [c.row_number for c in rows] == [2, 3, 4, 6, 7]  # continued after the first file


def test_suppressed_by_global_list_and_dnc_file(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        suppressions.add(conn, ["+919845012345"], reason="asked", source="cli")
    dnc = tmp_path / "dnc.csv"
    write_csv(dnc, [["Mobile No", "note"], ["98470 12345", "x"], ["not a number", ""]])
    cid, stats = _one(
        engine,
        tmp_path,
        [["phone"], ["+919845012345"], ["+919847012345"], ["+919900021234"]],
        region="IN",
        dnc_file=dnc,
    )
    assert (stats.imported, stats.suppressed, stats.invalid) == (1, 2, 0)
    assert [(r.line, r.raw) for r in stats.dnc_rejected] == [(3, "not a number")]
    assert [c.state for c in contacts(engine, cid)] == ["suppressed", "suppressed", "pending"]
    with engine.connect() as conn:
        assert "+919847012345" in suppressions.all_numbers(conn, cid)
        assert "+919847012345" not in suppressions.all_numbers(conn, None)  # per campaign only
    assert [r["reason"] for r in read_rejects(tmp_path / "r.csv")] == [
        "on the do-not-call list"
    ] * 2


def test_blank_rows_are_counted_not_imported(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("phone,name\n+919845012345,a\n\n,\n+919847012345,b\n", encoding="utf-8")
    cid, stats = create_campaign(engine, path, RUNNING, ImportOptions())
    assert (stats.rows, stats.blank, stats.imported) == (2, 2, 2)
    assert [c.row_number for c in contacts(engine, cid)] == [2, 5]


def test_first_and_last_name_make_the_name(engine: Engine, tmp_path: Path) -> None:
    cid, _ = _one(
        engine, tmp_path, [["First Name", "Last Name", "Tel"], ["Asha", "Rao", "+919845012345"]]
    )
    c = contacts(engine, cid)[0]
    assert c.name == "Asha Rao"
    assert c.attributes == {"first_name": "Asha", "last_name": "Rao"}


# ----------------------------------------------------------------------------- atomicity


def _nothing_written(engine: Engine, tmp_path: Path) -> None:
    assert count(engine, Campaign) == 0
    assert count(engine, Contact) == 0
    assert not (tmp_path / "r.csv").exists()
    assert not list(tmp_path.glob(".r.csv.*"))


def test_bad_byte_deep_inside_leaves_nothing(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    good = b"".join(b"+9198450%05d,name %d\n" % (i, i) for i in range(6000))
    path.write_bytes(b"phone,name\n" + good + b"+919847012345,caf\xe9\n")
    with pytest.raises(UserError, match="cannot be decoded as utf-8"):
        create_campaign(
            engine,
            path,
            RUNNING,
            ImportOptions(region="IN", chunk_rows=1000, rejects_path=tmp_path / "r.csv"),
        )
    _nothing_written(engine, tmp_path)


def test_interrupt_half_way_leaves_nothing(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", [["phone"]] + [[f"+9198450{i:05d}"] for i in range(3000)])
    calls = []

    def progress(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        create_campaign(
            engine,
            path,
            RUNNING,
            ImportOptions(chunk_rows=1000, rejects_path=tmp_path / "r.csv"),
            progress=progress,
        )
    _nothing_written(engine, tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"name,city\nAsha,Pune\n", "no phone number column found"),
        (b"phone,name\n", "no contact rows"),
        (b"PK\x03\x04\x14\x00", "not a CSV"),
    ],
)
def test_whole_file_problems_write_nothing(
    engine: Engine, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message) as err:
        create_campaign(engine, path, RUNNING, ImportOptions(rejects_path=tmp_path / "r.csv"))
    assert str(path) in str(err.value)
    _nothing_written(engine, tmp_path)


def test_worker_processes_give_the_same_result(engine: Engine, tmp_path: Path) -> None:
    rows = [["phone", "name"]] + [
        [p, f"n{i}"]
        for i, p in enumerate(
            ["+91 98450 12345", "0984701234", "12", "", "+1 415 555 2671", "+919845012345"] * 50
        )
    ]
    path = write_csv(tmp_path / "c.csv", rows)
    results = []
    for workers in (0, 2):
        cid, stats = create_campaign(
            engine, path, RUNNING, ImportOptions(region="IN", chunk_rows=40, workers=workers)
        )
        results.append(
            (
                stats.summary(0),
                [
                    (c.row_number, c.phone_e164, c.state, c.reason, c.attributes)
                    for c in contacts(engine, cid)
                ],
            )
        )
    assert results[0] == results[1]


def test_json_summary_is_plain_json(engine: Engine, tmp_path: Path) -> None:
    cid, stats = _one(engine, tmp_path, [["phone"], ["+919845012345"]])
    assert json.loads(json.dumps(stats.summary(cid)))["campaign_id"] == cid
