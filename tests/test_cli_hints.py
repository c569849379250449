"""The command line never leaves an operator guessing (issue 12): the real CLI in a subprocess.

Each test is the regression test of one item of the issue's "Broken or misleading today":
the hint it prints names the right command, flag, key or scheme, and nothing is created or
written that the operator did not ask for.
"""

from __future__ import annotations

import codecs
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from campaigns.cli import build_cli
from campaigns.cli.common import hoist_global_options
from campaigns.wording import plural
from tests.cli_helpers import cli_env, run_cli, write_contacts_csv

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
INDIAN = ["+919845012345", "+919820011223", "+919847012345"]


def _create(db: str, csv_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "campaign", "create", "Hints", "--csv", str(csv_path), "--agent-id", "a", *options,
        db_url=db,
    )  # fmt: skip


def _campaign_id(res: subprocess.CompletedProcess[str]) -> int:
    assert res.returncode == 0, res.stderr
    match = re.search(r"Created campaign (\d+)", res.stdout)
    assert match, res.stdout
    return int(match.group(1))


# --- 3. wrong hints ------------------------------------------------------------------------


def test_draft_hint_names_the_command_that_starts_it(sqlite_url: str, tmp_path: Path) -> None:
    csv_path = write_contacts_csv(tmp_path / "c.csv", [{"phone": p} for p in INDIAN])
    res = _create(sqlite_url, csv_path, "--draft")
    cid = _campaign_id(res)
    assert f"Start it with: vaani-campaigns campaign start {cid}" in res.stdout
    assert "resume" not in res.stdout
    started = run_cli("campaign", "start", str(cid), db_url=sqlite_url)  # the hint works
    assert started.returncode == 0, started.stderr
    assert "is now running (was draft)" in started.stdout
    helptext = " ".join(run_cli("campaign", "create", "--help").stdout.split())
    assert "`campaign start` starts it" in helptext and "`campaign resume`" not in helptext


def test_missing_dnc_file_names_dnc_not_csv(sqlite_url: str, tmp_path: Path) -> None:
    csv_path = write_contacts_csv(tmp_path / "c.csv", [{"phone": p} for p in INDIAN])
    res = _create(sqlite_url, csv_path, "--dnc", str(tmp_path / "no-such-dnc.txt"))
    assert res.returncode == 1
    assert "no-such-dnc.txt: no such file. Check the path given to --dnc." in res.stderr
    assert "--csv" not in res.stderr
    missing_csv = _create(sqlite_url, tmp_path / "no-such.csv")
    assert "Check the path given to --csv." in missing_csv.stderr
    _campaign_id(_create(sqlite_url, csv_path))  # a database for `dnc import` to open
    imported = run_cli("dnc", "import", str(tmp_path / "gone.txt"), db_url=sqlite_url)
    assert imported.returncode == 1
    assert "gone.txt: no such file. Check the path given to `dnc import FILE`." in imported.stderr


# --- 4. a typo'd --db creates nothing ------------------------------------------------------

READ_ONLY = [
    ("campaign", "list"),
    ("campaign", "show", "1"),
    ("campaign", "pause", "1"),
    ("report", "1", "--out", "-"),
    ("dnc", "list"),
    ("dnc", "add", "+919845012345"),
    ("db", "current"),
    ("campaign", "test-call", "1", "--to", "+919845012345", "--api-key", "k-1"),
]


@pytest.mark.parametrize("args", READ_ONLY, ids=lambda a: " ".join(a[:2]))
def test_commands_that_only_read_never_create_a_database(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    db = tmp_path / "nonexistent" / "dir" / "x.db"
    res = run_cli(*args, db_url=f"sqlite:///{db}")
    assert res.returncode == 1, res.stdout
    assert f"no database at {db}" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "nonexistent").exists()


def test_create_and_db_upgrade_still_create_the_database(tmp_path: Path) -> None:
    csv_path = write_contacts_csv(tmp_path / "c.csv", [{"phone": p} for p in INDIAN])
    created = tmp_path / "new" / "a.db"
    _campaign_id(_create(f"sqlite:///{created}", csv_path))
    assert created.exists()
    upgraded = tmp_path / "other" / "b.db"
    res = run_cli("db", "upgrade", db_url=str(upgraded))  # a bare path, as people type it
    assert res.returncode == 0, res.stderr
    assert upgraded.exists()
    listed = run_cli("campaign", "list", db_url=str(upgraded))  # exists now: opens fine
    assert listed.returncode == 0 and "No campaigns yet" in listed.stdout


# --- 5. config typos -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('dbb = "x.db"\n', "unknown key 'dbb' at the top level; did you mean 'db'?"),
        ('[run]\nrate-limt = "1/s"\n', "unknown key 'rate-limt' at [run]; did you mean 'rate-limit'?"),
        (
            '[campaign.create]\nregionn = "IN"\n',
            "unknown key 'regionn' at [campaign.create]; did you mean 'region'?",
        ),
        ('[rn]\nrate-limit = "1/s"\n', "unknown key 'rn' at the top level; did you mean 'run'?"),
        ('[campaign.craete]\nregion = "IN"\n', "unknown key 'craete' at [campaign]; did you mean 'create'?"),
        ('run = 3\n', "'run' at the top level is a command: write its options in a table [run]"),
    ],
)  # fmt: skip
def test_config_typos_are_errors_naming_the_nearest_key(
    tmp_path: Path, toml: str, message: str
) -> None:
    config = tmp_path / "vaani-campaigns.toml"
    config.write_text(toml, encoding="utf-8")
    db = tmp_path / "x.db"
    res = run_cli("--db", str(db), "campaign", "list", cwd=tmp_path)  # found in the cwd
    assert res.returncode == 1
    assert f"Error: config file {config}: {message}" in res.stderr
    assert "Traceback" not in res.stderr
    assert not db.exists()


def test_a_valid_config_still_applies(tmp_path: Path) -> None:
    csv_path = write_contacts_csv(tmp_path / "c.csv", [{"phone": "98450 12345"}])
    db = tmp_path / "from-config.db"
    config = tmp_path / "my.toml"
    config.write_text(
        f'db = "{db}"\n[campaign.create]\nregion = "IN"\nagent-id = "from-file"\n'
        '[run]\nrate-limit = "2/s"\nmax_concurrent = 3\n',
        encoding="utf-8",
    )
    res = run_cli(
        "--config", str(config), "campaign", "create", "Cfg", "--csv", str(csv_path), "--json"
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["imported"] == 1  # --region IN came from the file
    assert db.exists()


# --- 6. a missing --region ----------------------------------------------------------------


def test_numbers_without_country_code_suggest_region(tmp_path: Path) -> None:
    local = [f"98450 1234{i}" for i in range(7)]
    csv_path = write_contacts_csv(
        tmp_path / "c.csv", [{"phone": p} for p in [*local, "+919820011223"]]
    )
    db = f"sqlite:///{tmp_path / 'x.db'}"
    res = _create(db, csv_path)
    assert res.returncode == 0, res.stderr
    assert "7 numbers have no country code: pass --region (e.g. --region IN)" in res.stdout
    as_json = _create(db, csv_path, "--json")
    assert json.loads(as_json.stdout)["no_country_code"] == 7
    one = write_contacts_csv(tmp_path / "one.csv", [{"phone": "98450 12345"}, {"phone": INDIAN[1]}])
    assert "1 number has no country code: pass --region" in _create(db, one).stdout
    with_region = _create(db, csv_path, "--region", "IN")
    assert with_region.returncode == 0 and "country code" not in with_region.stdout


# --- 8. counts that agree ------------------------------------------------------------------


def test_create_breakdown_includes_the_do_not_call_rows(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    res = _create(db, SAMPLE / "contacts.csv", "--region", "IN", "--dnc", str(SAMPLE / "dnc.txt"))
    assert res.returncode == 0, res.stderr
    head = re.search(r"Not called: (\d+) duplicates?, (\d+) invalid, (\d+) on the", res.stdout)
    assert head, res.stdout
    breakdown = re.findall(r"^\s+(\d+)  (.+)$", res.stdout, flags=re.M)
    assert ("2", "on the do-not-call list") in breakdown
    assert sum(int(n) for n, _ in breakdown) == sum(int(g) for g in head.groups()) == 5
    assert "Not called: 1 duplicate, 2 invalid, 2 on the do-not-call list." in res.stdout


def test_show_and_list_count_rejected_rows_the_same_way(db_url: str, tmp_path: Path) -> None:
    rows = [{"phone": p} for p in [*INDIAN, "12", "not a number", INDIAN[0]]]
    cid = _campaign_id(_create(db_url, write_contacts_csv(tmp_path / "c.csv", rows)))
    listed = run_cli("campaign", "list", db_url=db_url)
    assert listed.returncode == 0, listed.stderr
    line = next(ln for ln in listed.stdout.splitlines() if ln.strip().startswith(str(cid)))
    total, waiting, in_flight, done = (int(x) for x in re.findall(r"│\s+(\d+)\s", line)[:4])
    assert (total, waiting, in_flight, done) == (6, 3, 0, 0)
    shown = run_cli("campaign", "show", str(cid), db_url=db_url)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout  # one line each: off a terminal nothing wraps (item 12)
    assert (
        "6 contacts: 3 waiting, 0 in flight, 0 done · 3 not to be called (invalid, suppressed) "
        "· 0 closed without an outcome (exhausted, expired, cancelled)"
    ) in text
    assert "finished" not in text  # rejected rows are not "finished" before any call


def test_counts_read_as_english(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    rows = [{"phone": p} for p in [INDIAN[0], INDIAN[0]]]
    res = _create(db, write_contacts_csv(tmp_path / "c.csv", rows))
    assert "1 of 2 contacts to call" in res.stdout
    assert "Not called: 1 duplicate, 0 invalid" in res.stdout and "duplicates" not in res.stdout
    cid = _campaign_id(res)
    out = tmp_path / "r.csv"
    report = run_cli("report", str(cid), "--out", str(out), "--state", "pending", db_url=db)
    assert report.returncode == 0, report.stderr
    assert f"Wrote 1 row to {out}" in report.stderr
    report = run_cli("report", str(cid), "--out", str(out), db_url=db)
    assert f"Wrote 2 rows to {out}" in report.stderr


def test_counts_of_one_in_show_the_exhausted_reason_and_the_progress_line(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from campaigns.calling import CallingPolicy
    from campaigns.dialing import next_contact_state
    from scheduler.progress import ProgressLine
    from storage.progress import Progress
    from storage.states import Outcome
    from tests.factories import campaign_record

    db = f"sqlite:///{tmp_path / 'x.db'}"
    rows = [{"phone": INDIAN[0]}]
    cid = _campaign_id(
        _create(db, write_contacts_csv(tmp_path / "c.csv", rows), "--max-attempts", "1")
    )
    shown = " ".join(run_cli("campaign", "show", str(cid), db_url=db).stdout.split())
    assert "1 contact: 1 waiting" in shown and "max 1 attempt · retry after" in shown
    policy = CallingPolicy.from_campaign(campaign_record(max_attempts=1))
    now = datetime(2026, 11, 25, 6, 30, tzinfo=UTC)
    capped = next_contact_state(Outcome.NO_ANSWER, 1, policy, "running", now)
    assert capped.reason == "attempt cap reached (1 call)"
    line = ProgressLine.render(Progress(work_left=True, live_attempts=1)).plain
    assert line == "no running campaign  |  1 live call"


def test_plural() -> None:
    assert [plural(n, "row") for n in (0, 1, 2)] == ["0 rows", "1 row", "2 rows"]
    assert plural(1, "number has", "numbers have") == "1 number has"
    assert plural(7, "number has", "numbers have") == "7 numbers have"


def test_no_count_is_printed_with_a_guessed_plural() -> None:
    """No hand-made "row(s)" or "{n} rows": every count goes through plural()."""
    sources = [p for p in (ROOT / "campaigns" / "cli").glob("*.py")]
    offenders = [
        f"{p.name}: {m.group(0)}"
        for p in sources
        for m in re.finditer(
            r"\w\(s\)|\{[\w.\[\]']+\} (?:rows|duplicates|contacts)\b", p.read_text()
        )
    ]
    assert offenders == []


# --- 9. global options anywhere ------------------------------------------------------------


def test_global_options_work_after_the_subcommand(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    csv_path = write_contacts_csv(tmp_path / "c.csv", [{"phone": p} for p in INDIAN])
    cid = _campaign_id(
        run_cli("campaign", "create", "Late", "--csv", str(csv_path), "--agent-id", "a",
                "--db", str(db))
    )  # fmt: skip
    listed = run_cli("campaign", "list", "--db", str(db))
    assert listed.returncode == 0, listed.stderr
    assert "Late" in listed.stdout
    listed = run_cli("campaign", "list", f"--db={db}")
    assert listed.returncode == 0 and "Late" in listed.stdout
    failing = run_cli("report", str(cid), "--out", str(tmp_path), "--db", str(db), "--debug")
    assert failing.returncode == 1
    assert "Traceback" in failing.stderr  # --debug was understood after the subcommand
    config = tmp_path / "c.toml"
    config.write_text(f'db = "{db}"\n', encoding="utf-8")
    via_config = run_cli("campaign", "show", str(cid), "--json", "--config", str(config))
    assert via_config.returncode == 0, via_config.stderr
    assert json.loads(via_config.stdout)["name"] == "Late"


def test_root_help_says_global_options_go_anywhere() -> None:
    helptext = " ".join(run_cli("--help").stdout.split())
    assert "--db, --config and --debug may be given anywhere on the command line" in helptext


def test_hoist_global_options() -> None:
    assert hoist_global_options(["campaign", "list", "--db", "x", "--debug"]) == [
        "--db", "x", "--debug", "campaign", "list",
    ]  # fmt: skip
    assert hoist_global_options(["report", "1", "--config=c.toml", "--out", "-"]) == [
        "--config=c.toml", "report", "1", "--out", "-",
    ]  # fmt: skip
    # nothing after "--" moves; an option without its value stays for click to report
    assert hoist_global_options(["x", "--", "--db", "y"]) == ["x", "--", "--db", "y"]
    assert hoist_global_options(["campaign", "list", "--db"]) == ["campaign", "list", "--db"]


# --- 10. unsupported database URLs ---------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["mysql://ops:s3cret-pw@db.internal/campaigns", "postgresql+psycopg2://ops:s3cret-pw@h/d"],
)
def test_unsupported_database_urls_name_the_supported_schemes(url: str) -> None:
    res = run_cli("campaign", "list", db_url=url)
    assert res.returncode == 1
    assert "the supported schemes are sqlite and postgresql" in res.stderr
    assert "unexpected" not in res.stderr and "ModuleNotFoundError" not in res.stderr
    assert "s3cret-pw" not in res.stderr  # the URL's password is never echoed


# --- 13. no BOM into a pipe ---------------------------------------------------------------


def test_report_to_a_pipe_has_no_bom_but_a_file_has(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    csv_path = write_contacts_csv(tmp_path / "c.csv", [{"phone": p} for p in INDIAN])
    cid = _campaign_id(_create(db, csv_path))
    cmd = [sys.executable, "-m", "campaigns", "--db", db, "report", str(cid), "--out", "-"]
    piped = subprocess.run(cmd, capture_output=True, env=cli_env(), timeout=120)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.split(b",", 1)[0] == b"phone"  # no byte order mark before it
    redirected = tmp_path / "redirected.csv"
    with redirected.open("wb") as f:  # `> file.csv`: a regular file, for a spreadsheet
        subprocess.run(cmd, stdout=f, env=cli_env(), timeout=120, check=True)
    assert redirected.read_bytes().startswith(codecs.BOM_UTF8 + b"phone,")
    out = tmp_path / "r.csv"
    assert run_cli("report", str(cid), "--out", str(out), db_url=db).returncode == 0
    assert out.read_bytes().startswith(codecs.BOM_UTF8)
    assert run_cli("report", str(cid), "--out", str(out), "--no-bom", db_url=db).returncode == 0
    assert out.read_bytes().startswith(b"phone,")


# --- 14. help that names every environment variable the same way ---------------------------


def _all_commands(cmd: click.Command, ctx: click.Context) -> Iterator[click.Command]:
    yield cmd
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            assert sub is not None
            yield from _all_commands(sub, ctx)


def test_every_environment_variable_is_named_env_in_help() -> None:
    cli = build_cli()
    ctx = click.Context(cli)
    seen: set[str] = set()
    for cmd in _all_commands(cli, ctx):
        for param in cmd.params:
            if isinstance(param, click.Option) and param.envvar:
                assert isinstance(param.envvar, str)
                assert f"[env: {param.envvar}" in (param.help or ""), (cmd.name, param.name)
                assert not param.show_envvar, (cmd.name, param.name)  # click's "[env var: X]"
                seen.add(param.envvar)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| what | flag | environment |") :].split("\n\n", 1)[0]
    documented = set(re.findall(r"`((?:VAANI|DATABASE)_[A-Z_]+)`", table))
    assert documented and documented <= seen


@pytest.mark.parametrize(
    "args",
    [("--help",), ("run", "--help"), ("campaign", "create", "--help"), ("dnc", "add", "--help")],
)
def test_help_says_env_not_env_var(args: tuple[str, ...]) -> None:
    res = run_cli(*args)
    assert res.returncode == 0
    assert "[env:" in res.stdout and "env var" not in res.stdout


def test_days_weekend_is_documented_and_accepted(tmp_path: Path) -> None:
    helptext = " ".join(run_cli("campaign", "create", "--help").stdout.split())
    assert "weekend (sat,sun)" in helptext
    csv_path = write_contacts_csv(tmp_path / "c.csv", [{"phone": p} for p in INDIAN])
    db = f"sqlite:///{tmp_path / 'x.db'}"
    cid = _campaign_id(_create(db, csv_path, "--days", "weekend"))
    shown = run_cli("campaign", "show", str(cid), "--json", db_url=db)
    assert json.loads(shown.stdout)["settings"]["days"] == "sat,sun"
