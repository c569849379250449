"""The circuit breaker's settings through the real CLI: ``campaign create/edit --breaker
PCT%/N`` and ``--no-breaker``, shown by ``campaign show --json``; bad values are one line
naming the flag, exit 1, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import create_campaign, run_cli, write_contacts_csv


def _csv(tmp_path: Path) -> Path:
    return write_contacts_csv(tmp_path / "c.csv", [{"phone": "+919845012345", "name": "A"}])


def _breaker(db_url: str, cid: int) -> dict:  # type: ignore[type-arg]
    res = run_cli("campaign", "show", str(cid), "--json", db_url=db_url)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["settings"]["breaker"]  # type: ignore[no-any-return]


def test_create_and_edit_set_the_breaker(sqlite_url: str, tmp_path: Path) -> None:
    plain = create_campaign(sqlite_url, _csv(tmp_path))
    assert _breaker(sqlite_url, plain) == {
        "enabled": True, "threshold_pct": 50, "window_calls": 20, "since": None,
    }  # fmt: skip
    shown = run_cli("campaign", "show", str(plain), db_url=sqlite_url)
    assert "circuit breaker: pause when more than 50% of the last 20 calls fail" in shown.stdout
    cid = create_campaign(sqlite_url, _csv(tmp_path), "--breaker", "30%/50", name="strict")
    assert _breaker(sqlite_url, cid)["threshold_pct"] == 30
    assert _breaker(sqlite_url, cid)["window_calls"] == 50

    off = run_cli("campaign", "edit", str(cid), "--no-breaker", "--json", db_url=sqlite_url)
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout)["changed"] == {"breaker_enabled": ["True", "False"]}
    assert _breaker(sqlite_url, cid)["enabled"] is False
    shown = run_cli("campaign", "show", str(cid), db_url=sqlite_url)
    assert "circuit breaker off" in shown.stdout

    on = run_cli("campaign", "edit", str(cid), "--breaker", "60/10", db_url=sqlite_url)
    assert on.returncode == 0, on.stderr
    assert "breaker_threshold: 30 -> 60" in on.stdout
    assert _breaker(sqlite_url, cid) | {"since": None} == {
        "enabled": True, "threshold_pct": 60, "window_calls": 10, "since": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--breaker", "50"), "--breaker: expected PERCENT%/CALLS, e.g. 50%/20"),
        (("--breaker", "100%/20"), "--breaker: the percentage must be 0 to 99"),
        (("--breaker", "50%/0"), "--breaker: the number of calls must be 1 to 1000"),
        (("--breaker", "50%/20", "--no-breaker"), "give one of them, not both"),
    ],
)
def test_bad_breaker_settings_are_one_clear_line(
    sqlite_url: str, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    csv_path = _csv(tmp_path)
    res = run_cli(
        "campaign", "create", "x", "--csv", str(csv_path), "--agent-id", "a", *args,
        db_url=sqlite_url,
    )  # fmt: skip
    assert res.returncode == 1
    assert message in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    listed = run_cli("campaign", "list", "--json", db_url=sqlite_url)
    assert json.loads(listed.stdout) == []  # nothing was created
    cid = create_campaign(sqlite_url, csv_path)
    edited = run_cli("campaign", "edit", str(cid), *args, db_url=sqlite_url)
    assert edited.returncode == 1 and message in edited.stderr, edited.stderr
    assert _breaker(sqlite_url, cid)["threshold_pct"] == 50  # unchanged
