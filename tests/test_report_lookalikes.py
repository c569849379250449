"""Reports neutralise full-width and other lookalike formula triggers (issue 13), on both
databases, while E.164 numbers stay exactly as they are."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from test_report_builder import Builder

from campaigns.csvsafe import LOOKALIKE_TRIGGERS
from campaigns.report import export_report
from storage.engine import make_engine

PAYLOADS = ["＝1+1", "＋cmd|' /C calc'!A0", "－2+3", "＠SUM(A1)", "﹦1+1", "−A1"]


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def test_lookalike_formulas_are_neutralised_in_every_column(engine: Engine, tmp_path: Path) -> None:
    b = Builder(engine)
    cid = b.campaign([["＝HYPERLINK(1)", "h"], ["Phone", "phone"]])
    for p in PAYLOADS:
        k = b.contact(
            cid,
            raw_phone="+919876543210",
            attributes={"h": p},
            state="done",
            outcome="answered",
        )
        b.attempt(k, summary=p, entity={"evil": p})
    out = tmp_path / "r.csv"
    export_report(engine, cid, out)
    with out.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    assert header[0] == "'＝HYPERLINK(1)"
    for row, p in zip(rows[1:], PAYLOADS, strict=True):
        cell = dict(zip(header, row, strict=True))
        assert cell["'＝HYPERLINK(1)"] == cell["summary"] == cell["entity.evil"] == "'" + p
        assert cell["Phone"] == "+919876543210"
        assert cell["phone_e164"].startswith("+9198") and cell["phone_e164"][1:].isdigit()
        for value in row:
            assert not value or value[0] not in LOOKALIKE_TRIGGERS
