"""Issue 12, item 12: output read by a script is whole lines, and says nothing it need not.

A subprocess's stdout is not a terminal: rich would wrap it at 80 columns (or ``$COLUMNS``),
breaking phrases a person greps for. Also: a completed campaign has no "time to finish: 0s",
and the outcome row of contacts without an outcome is named in words, not ``none``.
"""

from __future__ import annotations

from pathlib import Path

from campaigns.cli.show_cmd import NO_OUTCOME_YET
from tests.cli_helpers import ALL_DAY, DAEMON_FAST, create_campaign, run_cli, write_contacts_csv
from tests.conftest import Sandbox

PHONES = ["+919845012345", "+919820011223", "+919847012345"]
LONG_NAME = "Diwali follow-up for every buyer of the Whitefield towers, second round, north wing"
SUMMARY = (
    "agent agent-e2e · 4 contacts: 3 waiting, 0 in flight, 0 done · 1 not to be called "
    "(invalid, suppressed) · 0 closed without an outcome (exhausted, expired, cancelled)"
)


def _campaign(db_url: str, tmp_path: Path) -> int:
    rows = [{"phone": p, "name": f"Customer {i}"} for i, p in enumerate([*PHONES, "12"])]
    csv_path = write_contacts_csv(tmp_path / "c.csv", rows)
    return create_campaign(db_url, csv_path, *ALL_DAY, name=LONG_NAME)


def test_show_and_list_lines_are_whole_in_a_pipe(sqlite_url: str, tmp_path: Path) -> None:
    cid = _campaign(sqlite_url, tmp_path)
    for columns in (None, "40"):  # $COLUMNS is no terminal either
        env = {"COLUMNS": columns} if columns else None
        shown = run_cli("campaign", "show", str(cid), db_url=sqlite_url, env=env)
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert f"Campaign {cid}: {LONG_NAME}  status: running" in lines, shown.stdout
        assert SUMMARY in lines, shown.stdout
        window = next(ln for ln in lines if ln.startswith("window 00:00-24:00 on "))
        assert "(contact's local time) · max 3 attempts · retry after 2h00m" in window
        assert window.endswith("up to 2 callbacks asked for")  # one line, not wrapped
        listed = run_cli("campaign", "list", db_url=sqlite_url, env=env)
        assert any(LONG_NAME in ln for ln in listed.stdout.splitlines()), listed.stdout


def test_dnc_list_rows_are_whole_in_a_pipe(sqlite_url: str, tmp_path: Path) -> None:
    reason = "asked on the phone never to be called again about any of the projects, 2026-11-20"
    added = run_cli("dnc", "add", PHONES[0], "--reason", reason, db_url=sqlite_url)
    assert added.returncode == 0, added.stderr
    listed = run_cli("dnc", "list", db_url=sqlite_url)
    assert listed.returncode == 0, listed.stderr
    row = next(ln for ln in listed.stdout.splitlines() if PHONES[0] in ln)
    assert reason in row, listed.stdout


def test_completed_campaign_has_no_time_to_finish_and_names_the_none_row(
    sandbox_factory: object, sqlite_url: str, tmp_path: Path
) -> None:
    sb: Sandbox = sandbox_factory("--answer-rate", "1")  # type: ignore[operator]
    cid = _campaign(sqlite_url, tmp_path)
    before = run_cli("campaign", "show", str(cid), db_url=sqlite_url).stdout
    none_row = next(ln for ln in before.splitlines() if NO_OUTCOME_YET in ln)
    assert none_row.split("│")[2].strip() == "4", before  # 3 not called yet + 1 never
    assert "│ none " not in before
    done = run_cli(
        "run", "--until-done", "--api-key", sb.api_key, "--base-url", sb.base_url,
        *DAEMON_FAST, db_url=sqlite_url, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = run_cli("campaign", "show", str(cid), db_url=sqlite_url)
    assert "status: completed" in shown.stdout, shown.stdout
    assert "time to finish" not in shown.stdout
    assert "placed in the last 10 min: 3 · nothing left to dial" in shown.stdout.splitlines()
    none_row = next(ln for ln in shown.stdout.splitlines() if NO_OUTCOME_YET in ln)
    assert none_row.split("│")[2].strip() == "1", shown.stdout  # the rejected row only
