"""The README's first command: ``vaani-campaigns demo`` on nothing configured."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from tests.cli_helpers import run_cli

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "contacts.csv"
FINAL = {"done", "exhausted", "invalid", "suppressed", "expired", "cancelled"}


def test_demo_runs_end_to_end_and_writes_a_clean_report(tmp_path: Path) -> None:
    res = run_cli("demo", "--out-dir", str(tmp_path / "out"), cwd=tmp_path, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    report = tmp_path / "out" / "report.csv"
    assert "pickup rate" in res.stdout

    with SAMPLE.open(newline="", encoding="utf-8-sig") as f:
        source = list(csv.DictReader(f))
    frame = pd.read_csv(report, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    with report.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    # one row per source row, in import order, original cells as written
    assert len(rows) == len(frame) == len(source)
    phone_header = next(h for h in source[0] if h.strip().lower() == "phone")
    assert [r[phone_header] for r in rows] == [s[phone_header] for s in source]
    assert list(frame.columns) == list(rows[0].keys())
    # every contact finished, with a reason where it was never called
    assert {r["state"] for r in rows} <= FINAL
    for r in rows:
        if r["state"] in {"invalid", "suppressed"}:
            assert r["reason"], r
        if r["outcome"] == "answered":
            assert r["phone_e164"].startswith("+") and r["summary"]
            assert any(r[k] for k in r if k.startswith("entity."))
    assert any(r["outcome"] == "answered" for r in rows)
