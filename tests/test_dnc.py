"""The do-not-call list: storage queries (SQLite and PostgreSQL), files, and the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from campaigns.cli import main
from campaigns.cli.common import AppContext
from campaigns.importer.dncfile import read_dnc_file
from campaigns.importer.importer import ImportOptions, create_campaign
from campaigns.importer.phones import PhoneParser
from storage import suppressions
from storage.engine import make_engine
from storage.models import Contact

A, B, C = "+919845012345", "+919847012345", "+14155552671"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _campaign(engine: Engine, tmp_path: Path, phones: list[str], status: str = "running") -> int:
    path = tmp_path / f"c{len(phones)}{status}.csv"
    path.write_text("phone\n" + "\n".join(phones) + "\n", encoding="utf-8")
    cid, _ = create_campaign(
        engine, path, {"name": "d", "agent_id": "a", "status": status}, ImportOptions()
    )
    return cid


def test_global_and_campaign_entries(engine: Engine, tmp_path: Path) -> None:
    cid = _campaign(engine, tmp_path, [C])
    other = _campaign(engine, tmp_path, [A, B])
    with engine.begin() as conn:
        assert suppressions.add(conn, [A, A, B], reason="asked", source="cli") == 2
        assert suppressions.add(conn, [A], reason="again") == 0  # already there: kept
        assert suppressions.add(conn, [C], campaign_id=cid, source="dnc.txt") == 1
    with engine.connect() as conn:
        assert A in suppressions.all_numbers(conn, None)
        assert A in suppressions.all_numbers(conn, cid)  # global applies everywhere
        assert C in suppressions.all_numbers(conn, cid)
        assert C not in suppressions.all_numbers(conn, other)  # campaign entry stays there
        assert C not in suppressions.all_numbers(conn, None)
        assert suppressions.all_numbers(conn, other) & {A, B, C} == {A, B}
        listed = list(suppressions.entries(conn))
        assert [(e.phone_e164, e.reason, e.source) for e in listed] == [
            (A, "asked", "cli"),
            (B, "asked", "cli"),
        ]
        assert [e.phone_e164 for e in suppressions.entries(conn, campaign_id=cid)] == [C]
    with engine.begin() as conn:
        assert suppressions.remove(conn, [A, C]) == 1  # C is not on the global list
    with engine.connect() as conn:
        assert A not in suppressions.all_numbers(conn, other)
        assert C in suppressions.all_numbers(conn, cid)


def test_mark_suppressed_only_touches_waiting_contacts(engine: Engine, tmp_path: Path) -> None:
    cid = _campaign(engine, tmp_path, [A, B, C])
    with engine.begin() as conn:
        conn.execute(
            Contact.__table__.update()
            .where(Contact.phone_e164 == B)
            .values(state="awaiting_outcome")
        )
        suppressions.add(conn, [A, B])
        assert suppressions.mark_suppressed(conn, cid) == 1
    with engine.connect() as conn:
        states = dict(
            conn.execute(
                select(Contact.phone_e164, Contact.state).where(Contact.campaign_id == cid)
            ).all()
        )
    assert states == {A: "suppressed", B: "awaiting_outcome", C: "pending"}


def test_dnc_files_plain_and_csv(tmp_path: Path) -> None:
    parser = PhoneParser("IN")
    plain = tmp_path / "dnc.txt"
    plain.write_text(
        "Do not call\n# comment\n\n+91 98450 12345\n09847012345\n9845012345\nbogus\n",
        encoding="utf-8",
    )
    numbers, rejected = read_dnc_file(plain, parser)
    assert numbers == [A, B]
    assert [(r.line, r.raw) for r in rejected] == [(7, "bogus")]
    table = tmp_path / "dnc.csv"
    table.write_text("name;Mobile Number\nAsha;+1 415 555 2671\nRavi;98450 12345\n", "utf-8")
    assert read_dnc_file(table, parser) == ([C, A], [])
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert read_dnc_file(empty, parser) == ([], [])


def _main(*args: str) -> int:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    return int(exc.value.code or 0)


def test_dnc_cli(
    engine: Engine,
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the CLI in-process, on the test's engine (so that it is disposed at the end)
    monkeypatch.setattr(AppContext, "engine", lambda self: engine)
    cid = _campaign(engine, tmp_path, [A, B, C])
    done = _campaign(engine, tmp_path, [A], status="completed")
    db = ["--db", db_url]
    assert _main(*db, "dnc", "add", "98450 12345", "--region", "IN", "--reason", "asked") == 0
    assert "1 waiting contact suppressed." in capsys.readouterr().out
    listing = tmp_path / "more.txt"
    listing.write_text("+1 415 555 2671\nnope\n", encoding="utf-8")
    assert _main(*db, "dnc", "import", str(listing), "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["added"], out["suppressed_contacts"]) == (1, 1)
    assert out["rejected"][0]["line"] == 2
    assert _main(*db, "dnc", "list", "--json") == 0
    entries = json.loads(capsys.readouterr().out)
    assert [(e["phone"], e["source"]) for e in entries] == [(C, "more.txt"), (A, "cli")]
    assert _main(*db, "dnc", "remove", C, "+14155550000") == 0
    assert "Removed 1 number from the do-not-call list; 1 was not on it." in capsys.readouterr().out
    assert _main(*db, "dnc", "add", "12") == 1
    assert "Nothing was changed" in capsys.readouterr().err
    with engine.connect() as conn:
        states = conn.execute(
            select(Contact.campaign_id, Contact.phone_e164, Contact.state).order_by(
                Contact.campaign_id, Contact.phone_e164
            )
        ).all()
    assert [tuple(r) for r in states] == [
        (cid, C, "suppressed"),  # stays suppressed after removal from the list
        (cid, A, "suppressed"),
        (cid, B, "pending"),
        (done, A, "pending"),  # a finished campaign is left alone
    ]
