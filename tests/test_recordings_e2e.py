"""Transcripts and recordings end to end: the real command line in subprocesses, the real
sandbox over loopback, a real database. A small campaign runs to completion; then
``report --transcripts`` must show what the sandbox says was said on each call, and
``campaign recordings`` must download exactly the answered calls' audio, byte for byte as the
sandbox serves it, resume a cut-off download with a Range request, and fetch nothing twice."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from campaigns.csvsafe import safe_cell
from tests.cli_helpers import ALL_DAY, DAEMON_FAST, create_campaign, run_cli, write_contacts_csv
from tests.conftest import Sandbox

pytestmark = pytest.mark.slow

CONTACTS = [
    {"Phone": "+919800000101", "Name": "Asha", "sandbox_outcome": ""},
    {"Phone": "+919800000102", "Name": "=cmd|' /C calc'!A0", "sandbox_outcome": ""},
    {"Phone": "+919800000103", "Name": "Ravi", "sandbox_outcome": "no_answer"},
    {"Phone": "+919800000104", "Name": "Meera", "sandbox_outcome": "voicemail"},
    {"Phone": "+919800000105", "Name": "Dev", "sandbox_outcome": ""},
]


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))


def _said(turns: list[dict[str, str]]) -> str:
    """The sandbox's transcript as the report must write it."""
    return "\n".join(f"{t['role']}: {t['text']}" for t in turns)


def _recordings(sb: Sandbox, db: str, out: Path, *extra: str) -> Any:
    res = run_cli(
        *("campaign", "recordings", *extra, "--out", str(out), "--base-url", sb.base_url),
        *("--json", "--rate-limit", "50/s"),
        db_url=db,
        env={"VAANI_API_KEY": sb.api_key},
    )
    assert res.returncode == 0, res.stderr
    assert sb.api_key not in res.stdout + res.stderr
    return json.loads(res.stdout)


def test_transcripts_and_recordings_after_a_real_run(
    sqlite_url: str, sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sb = sandbox_factory("--answer-rate", "1", "--call-seconds", "1-3", "--seed", "5")
    src = write_contacts_csv(tmp_path / "contacts.csv", CONTACTS)
    cid = create_campaign(sqlite_url, src, *ALL_DAY, "--region", "IN", "--max-attempts", "1")
    done = run_cli(
        *("run", "--until-done", "--base-url", sb.base_url, "--rate-limit", "50/s"),
        *DAEMON_FAST,
        db_url=sqlite_url,
        env={"VAANI_API_KEY": sb.api_key},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    truth = httpx.get(f"{sb.base_url}/sandbox/calls?transcripts=1", timeout=10).json()["calls"]
    by_id = {c["call_id"]: c for c in truth}
    assert len(by_id) == 5 and all(c["final"] for c in truth)

    # report --transcripts: the sandbox's words, one line per turn, formula-safe
    plain = run_cli("report", str(cid), "--out", "-", db_url=sqlite_url)
    full = run_cli("report", str(cid), "--out", "-", "--transcripts", db_url=sqlite_url)
    assert plain.returncode == 0 and full.returncode == 0, full.stderr
    rows = _csv(full.stdout)
    assert list(rows[0])[-1] == "transcript"
    for row in rows:
        said = _said(by_id[row["last_call_id"]]["transcript"])
        assert row["transcript"] == safe_cell(said)
    answered = {r["last_call_id"] for r in rows if r["outcome"] == "answered"}
    assert len(answered) == 3
    assert all(rows[i]["transcript"].count("\n") == 3 for i in (0, 1, 4))  # four turns each
    assert rows[2]["transcript"] == ""  # nobody answered: nothing was said
    assert "Hello =cmd" in rows[1]["transcript"]  # the name inside, not at the start: as is
    # without the flag: the very report of before, which is the full one minus its last column
    assert [dict(list(r.items())[:-1]) for r in rows] == _csv(plain.stdout)
    assert "transcript" not in plain.stdout.splitlines()[0]
    attempts = run_cli(
        *("report", str(cid), "--out", "-", "--attempts", "--transcripts"), db_url=sqlite_url
    )
    assert [r["transcript"] for r in _csv(attempts.stdout)] == [r["transcript"] for r in rows]

    # campaign recordings: exactly the answered calls, as the sandbox serves them
    out = tmp_path / "audio" / "new"
    first = _recordings(sb, sqlite_url, out, str(cid))
    assert (first["downloaded"], first["already_there"], first["not_available"]) == (3, 0, 0)
    files = sorted(out.iterdir())
    expected = {}
    for name in (f["name"] for f in first["files"]):
        call_id = name.split("-", 1)[1].removesuffix(".ogg")
        assert call_id in answered
        wire = httpx.get(f"{sb.base_url}/sandbox/recording/{call_id}", timeout=10)
        assert wire.status_code == 200
        expected[name] = wire.content
    assert [f.name for f in files] == sorted(expected)
    for f in files:
        assert f.read_bytes() == expected[f.name] and f.read_bytes().startswith(b"OggS")
    assert first["bytes"] == sum(len(b) for b in expected.values())
    served = sb.stats()["recordings"]
    assert (served["full"], served["partial"]) == (3, 0)

    # a second run fetches nothing
    again = _recordings(sb, sqlite_url, out, str(cid))
    assert (again["downloaded"], again["already_there"]) == (0, 3)
    assert sb.stats()["recordings"]["full"] == 3

    # a download cut off midway: its .part resumes with a Range request (a 206)
    cut = files[1]
    whole = cut.read_bytes()
    cut.unlink()
    cut.with_name(cut.name + ".part").write_bytes(whole[: len(whole) // 3])
    resumed = _recordings(sb, sqlite_url, out, str(cid))
    assert (resumed["downloaded"], resumed["resumed"], resumed["already_there"]) == (1, 1, 2)
    assert resumed["bytes"] == len(whole) - len(whole) // 3
    assert cut.read_bytes() == whole and not list(out.glob("*.part"))
    served = sb.stats()["recordings"]
    assert (served["full"], served["partial"]) == (3, 1)
    assert sb.stats()["responses_by_status"].get("206") == 1


def test_recordings_errors_are_one_line(sqlite_url: str, sandbox: Sandbox, tmp_path: Path) -> None:
    src = write_contacts_csv(tmp_path / "c.csv", CONTACTS[:1])
    cid = create_campaign(sqlite_url, src, *ALL_DAY, "--region", "IN")
    env = {"VAANI_API_KEY": sandbox.api_key}
    base = ("--base-url", sandbox.base_url)

    def fails(*args: str, code: int, says: str, **kw: Any) -> None:
        res = run_cli(*args, db_url=sqlite_url, **kw)
        assert res.returncode == code, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], res.stderr
        assert "Traceback" not in res.stderr and sandbox.api_key not in res.stderr

    out = str(tmp_path / "out")
    fails(
        "campaign",
        "recordings",
        "99",
        "--out",
        out,
        *base,
        code=1,
        says="no campaign with id 99",
        env=env,
    )
    db = sqlite_url.removeprefix("sqlite:///")
    fails(
        "campaign",
        "recordings",
        str(cid),
        "--out",
        db,
        *base,
        code=1,
        says="the campaign database",
        env=env,
    )
    fails("campaign", "recordings", str(cid), "--out", out, *base, code=1, says="VAANI_API_KEY")
    # a campaign with no answered call asks nothing of the API, so a bad key shows on a real
    # download only: place one through the daemon first
    done = run_cli("run", "--until-done", *base, *DAEMON_FAST, db_url=sqlite_url, env=env)
    assert done.returncode == 0, done.stderr
    bad = {"VAANI_API_KEY": "sk-wrong-3f9a1c"}
    res = run_cli(
        "campaign", "recordings", str(cid), "--out", out, *base, db_url=sqlite_url, env=bad
    )
    assert res.returncode == 3 and "401" in res.stderr and "sk-wrong-3f9a1c" not in res.stderr
    assert "Traceback" not in res.stderr

    vs = create_campaign(
        sqlite_url, src, *ALL_DAY, "--region", "IN", "--provider", "voisnap", name="v"
    )
    fails(
        "campaign",
        "recordings",
        str(vs),
        "--out",
        out,
        code=1,
        says="provider Voisnap does not offer recording downloads",
    )
