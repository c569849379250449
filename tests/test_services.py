"""The use cases of ``campaigns.services``, called as a web console would: no click, real
databases (SQLite and PostgreSQL through ``db_url``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from campaigns.errors import UserError
from campaigns.importer.importer import ImportOptions
from campaigns.report import ReportOptions, export_report, write_report
from campaigns.services import dnc, lifecycle
from campaigns.services.create import (
    MIN_RETRY_DELAY,
    CampaignSpec,
    check_campaign,
    create_from_csv,
)
from campaigns.services.imports import import_contacts
from campaigns.stats import campaign_stats
from storage import campaigns_repo
from storage.engine import make_engine
from storage.errors import InvalidTransition, NotFound
from storage.migrate import upgrade
from storage.models import Campaign, Contact

A, B, C = "+919845012345", "+919847012345", "+919900021234"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


def _csv(path: Path, phones: list[str]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["phone", "name"])
        w.writerows([p, f"n{i}"] for i, p in enumerate(phones))
    return path


def _count(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def _create(engine: Engine, tmp_path: Path, phones: list[str], **spec: object) -> int:
    values: dict[str, object] = {"name": "svc", "agent_id": "agent-1", **spec}
    created = create_from_csv(
        engine,
        _csv(tmp_path / f"c{len(phones)}.csv", phones),
        CampaignSpec(**values),  # type: ignore[arg-type]
        ImportOptions(region="IN"),
    )
    return created.campaign_id


# ----------------------------------------------------------------------------- create


def test_create_from_csv_checks_then_imports(engine: Engine, tmp_path: Path) -> None:
    spec = CampaignSpec(
        name="  Diwali  ",
        agent_id="agent-1",
        window="10:00-19:00",
        days="weekdays",
        retry_delay="90m",
        timezone="Asia/Kolkata",
        start_at="2026-12-01T09:00",
        caller_id="+918000000000",
        draft=True,
    )
    created = create_from_csv(
        engine, _csv(tmp_path / "c.csv", [A, B, A]), spec, ImportOptions(region="IN")
    )
    assert (created.name, created.status) == ("Diwali", "draft")
    assert (created.stats.imported, created.stats.duplicates) == (2, 1)
    rec = campaigns_repo.get_campaign(engine, created.campaign_id)
    assert (rec.window_start, rec.window_end, rec.days) == ("10:00", "19:00", "mon,tue,wed,thu,fri")
    assert rec.retry_delay_s == 5400
    assert rec.start_at is not None and rec.start_at.utcoffset() == timedelta(0)
    assert rec.start_at.hour == 3 and rec.start_at.minute == 30  # 09:00 in Kolkata
    assert (rec.outbound_number, rec.region, rec.phone_column) == ("+918000000000", "IN", "phone")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": " "}, "NAME: the campaign needs a name"),
        ({"agent_id": ""}, "--agent-id: give the Vaani agent"),
        ({"name": "n" * 201}, "NAME: at most 200 characters, not 201"),
        ({"agent_id": "a" * 300}, "--agent-id: at most 200 characters, not 300"),
        ({"caller_id": "+91" + "9" * 40}, "--caller-id: at most 32 characters"),
        ({"voice": "v" * 101}, "--voice: at most 100 characters, not 101"),
        ({"window": "9-5pm"}, "--window:"),
        ({"days": "funday"}, "--days:"),
        ({"retry_delay": "soon"}, "--retry-delay:"),
        ({"retry_delay": "0s"}, "--retry-delay: at least 120 s, not '0s'"),
        ({"retry_delay": "119s"}, "--retry-delay: at least 120 s"),
        ({"max_attempts": 0}, "--max-attempts: must be at least 1, not 0"),
        ({"timezone": "Mars/Olympus"}, "--timezone:"),
        ({"start_at": "tomorrow"}, "--start-at: 'tomorrow' is not an ISO 8601"),
        (
            {"start_at": "2026-12-02T00:00", "end_at": "2026-12-01T00:00"},
            "--end-at: must be after --start-at",
        ),
    ],
)
def test_bad_settings_name_the_option_and_write_nothing(
    engine: Engine, tmp_path: Path, change: dict[str, object], message: str
) -> None:
    """The same message on SQLite (which would store an over-long name) and PostgreSQL
    (which would refuse it with a raw SQL error): nothing reaches the database."""
    values: dict[str, object] = {"name": "ok", "agent_id": "agent-1", **change}
    with pytest.raises(UserError) as exc:
        create_from_csv(
            engine,
            _csv(tmp_path / "c.csv", [A]),
            CampaignSpec(**values),  # type: ignore[arg-type]
            ImportOptions(region="IN"),
        )
    assert message in str(exc.value)
    assert "SQL" not in str(exc.value)
    assert _count(engine, Campaign) == 0


def test_longest_accepted_values_are_stored_whole(engine: Engine, tmp_path: Path) -> None:
    cid = _create(engine, tmp_path, [A], name="n" * 200, agent_id="a" * 200, voice="v" * 100)
    rec = campaigns_repo.get_campaign(engine, cid)
    assert (len(rec.name), len(rec.agent_id), len(rec.voice or "")) == (200, 200, 100)


def test_retry_delay_floor() -> None:
    assert timedelta(seconds=120) == MIN_RETRY_DELAY
    assert (
        check_campaign(CampaignSpec(name="n", agent_id="a", retry_delay="2m")).retry_delay_s == 120
    )
    with pytest.raises(UserError, match="at least 120 s"):
        check_campaign(CampaignSpec(name="n", agent_id="a", retry_delay="1m"))
    low = check_campaign(
        CampaignSpec(name="n", agent_id="a", retry_delay="1s"), min_retry_delay=timedelta(0)
    )
    assert low.retry_delay_s == 1


# ----------------------------------------------------------------------------- import more


def test_import_more_contacts(engine: Engine, tmp_path: Path) -> None:
    cid = _create(engine, tmp_path, [A, B])
    dnc_file = tmp_path / "dnc.txt"
    dnc_file.write_text("+91 99000 21235\n", encoding="utf-8")
    more = _csv(tmp_path / "more.csv", ["98470 12345", C, "+919900021235", "12"])
    stats = import_contacts(
        engine,
        cid,
        more,
        ImportOptions(region="IN", dnc_file=dnc_file, rejects_path=tmp_path / "r.csv"),
    )
    assert (stats.rows, stats.imported, stats.duplicates, stats.suppressed, stats.invalid) == (
        4,
        1,
        1,
        1,
        1,
    )
    with engine.connect() as conn:
        rows = conn.execute(
            select(Contact.row_number, Contact.phone_e164, Contact.state, Contact.reason)
            .where(Contact.campaign_id == cid)
            .order_by(Contact.row_number)
        ).all()
    assert [tuple(r[:3]) for r in rows] == [
        (2, A, "pending"),
        (3, B, "pending"),
        (5, None, "invalid"),  # rows continue after the campaign's highest
        (6, C, "pending"),
        (7, "+919900021235", "suppressed"),
        (8, None, "invalid"),
    ]
    assert rows[2][3] == f"duplicate: {B} is already in the campaign"
    rejects = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text("utf-8"))))
    assert [r["row"] for r in rejects] == ["2", "4", "5"]  # the file's own row numbers


def test_import_more_is_all_or_nothing(engine: Engine, tmp_path: Path) -> None:
    cid = _create(engine, tmp_path, [A])
    bad = tmp_path / "bad.csv"  # the bad byte comes after several chunks were inserted
    good = b"".join(b"+9198450%05d\n" % i for i in range(6000))
    bad.write_bytes(b"phone\n" + good + b"+919847012345 caf\xe9\n")
    with pytest.raises(UserError, match="cannot be decoded as utf-8"):
        import_contacts(
            engine,
            cid,
            bad,
            ImportOptions(region="IN", chunk_rows=1000, rejects_path=tmp_path / "r.csv"),
        )
    assert _count(engine, Contact) == 1
    assert not (tmp_path / "r.csv").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_import_more_refuses_unknown_and_final_campaigns(engine: Engine, tmp_path: Path) -> None:
    more = _csv(tmp_path / "more.csv", [C])
    with pytest.raises(NotFound, match=r"no campaign with id 999 \(see: vaani-campaigns"):
        import_contacts(engine, 999, more, ImportOptions(region="IN"))
    cid = _create(engine, tmp_path, [A])
    campaigns_repo.stop_campaign(engine, cid)
    with pytest.raises(UserError, match="is stopped: it will not dial again"):
        import_contacts(engine, cid, more, ImportOptions(region="IN"))
    assert _count(engine, Contact) == 1


# ----------------------------------------------------------------------------- lifecycle


def test_transitions_with_hints(engine: Engine, tmp_path: Path) -> None:
    cid = _create(engine, tmp_path, [A, B], draft=True)
    with pytest.raises(InvalidTransition, match="it is draft; start it instead"):
        lifecycle.transition(engine, "resume", cid)
    done = lifecycle.transition(engine, "start", cid)
    assert (done.result.campaign.status, done.result.previous_status) == ("running", "draft")
    assert (done.progress.waiting, done.progress.total, done.progress.in_flight) == (2, 2, 0)
    paused = lifecycle.transition(engine, "pause", cid, reason="lunch")
    assert paused.result.campaign.status_reason == "lunch"
    stopped = lifecycle.transition(engine, "stop", cid, reason="enough")
    assert stopped.result.contacts_cancelled == 2
    assert stopped.progress.counts["cancelled"] == 2
    with pytest.raises(
        NotFound, match=r"^no campaign with id 404 \(see: vaani-campaigns campaign list\)$"
    ):
        lifecycle.transition(engine, "pause", 404)
    listed = lifecycle.list_campaigns(engine)
    assert [(c.campaign.id, c.campaign.status, c.progress.summary()) for c in listed] == [
        (cid, "stopped", {"total": 2, "waiting": 0, "in_flight": 0, "done": 0})
    ]
    assert lifecycle.list_campaigns(engine, statuses=["running"]) == []


# ----------------------------------------------------------------------------- DNC, stats


def test_dnc_use_cases(engine: Engine, tmp_path: Path) -> None:
    live = _create(engine, tmp_path, [A, B])
    change = dnc.add_numbers(engine, ["98450 12345", "+919845012345"], reason="asked", region="IN")
    assert (change.added, change.suppressed_contacts) == (1, 1)
    with pytest.raises(UserError, match=r"'12': .*Nothing was changed"):
        dnc.add_numbers(engine, [B, "12"], region="IN")
    assert [e.phone_e164 for e in dnc.dnc_entries(engine)] == [A]  # B was not added
    listing = tmp_path / "dnc.txt"
    listing.write_text(f"{B}\nnope\n", encoding="utf-8")
    imported = dnc.import_file(engine, listing)
    assert (imported.numbers, imported.change.added, imported.change.suppressed_contacts) == (
        1,
        1,
        1,
    )
    assert [r.line for r in imported.rejected] == [2]
    assert campaign_stats(engine, live).counts["suppressed"] == 2
    gone = dnc.remove_numbers(engine, [A, C])
    assert (gone.removed, gone.missing) == (1, 1)
    assert dnc.apply_list(engine) == 0  # nothing left waiting on the list


def test_stats_of_an_unknown_campaign(engine: Engine) -> None:
    with pytest.raises(
        NotFound, match=r"no campaign with id 77 \(see `vaani-campaigns campaign list`\)"
    ):
        campaign_stats(engine, 77)


# ----------------------------------------------------------------------------- report


def test_report_to_any_binary_stream(engine: Engine, tmp_path: Path) -> None:
    cid = _create(engine, tmp_path, [A, B])
    buf = io.BytesIO()
    done = write_report(engine, cid, buf, ReportOptions(bom=False))
    assert done.rows == 2
    rows = list(csv.reader(io.StringIO(buf.getvalue().decode("utf-8"))))
    assert rows[0] == done.columns
    assert [r[done.columns.index("phone_e164")] for r in rows[1:]] == [A, B]
    # the same bytes as a file written through export_report
    path = tmp_path / "r.csv"
    assert export_report(engine, cid, path, ReportOptions(bom=False)).rows == 2
    assert path.read_bytes() == buf.getvalue()
    untouched = io.BytesIO()
    with pytest.raises(UserError, match="no campaign with id 5"):
        write_report(engine, 5, untouched)
    assert untouched.getvalue() == b""  # refused before a byte was written


def test_settings_left_out_take_the_columns_defaults(engine: Engine, tmp_path: Path) -> None:
    from campaigns.importer.importer import create_campaign

    cid, _ = create_campaign(
        engine,
        _csv(tmp_path / "c.csv", [A]),
        {"name": "raw", "agent_id": "a", "retry_delays": {"busy": 900}},
        ImportOptions(region="IN"),
    )
    rec = campaigns_repo.get_campaign(engine, cid)
    assert rec.retry_delays == {"busy": 900}
    assert (rec.redial_voicemail, rec.opt_out_entities, rec.call_options) == (
        True,
        ["opt_out", "do_not_call"],
        {},
    )
    assert (rec.timezone, rec.daily_cap_per_number, rec.max_attempts) == (None, None, 3)
    assert rec.status == "draft"  # the column's default, as before the value object
