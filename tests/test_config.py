"""Configuration precedence: flags > environment > config file (TOML) > defaults."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from tests.cli_helpers import run_cli


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "vaani-campaigns.toml"
    path.write_text(body)
    return path


def test_config_file_supplies_the_database(tmp_path: Path) -> None:
    cfg = _config(tmp_path, f'db = "sqlite:///{tmp_path / "from-file.db"}"\n')
    res = run_cli("--config", str(cfg), "db", "upgrade")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "from-file.db").exists()


def test_environment_beats_config_file_and_flag_beats_both(tmp_path: Path) -> None:
    cfg = _config(tmp_path, f'db = "sqlite:///{tmp_path / "from-file.db"}"\n')
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'from-env.db'}", "VAANI_CONFIG": str(cfg)}
    assert run_cli("db", "upgrade", env=env).returncode == 0
    assert (tmp_path / "from-env.db").exists()
    assert not (tmp_path / "from-file.db").exists()
    res = run_cli("--db", f"sqlite:///{tmp_path / 'from-flag.db'}", "db", "upgrade", env=env)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "from-flag.db").exists()
    assert not (tmp_path / "from-file.db").exists()


def test_config_tables_set_subcommand_defaults(tmp_path: Path) -> None:
    """A [campaign.create] table fills options of that subcommand (here: a bad window, so
    the error proves the value was read from the file)."""
    cfg = _config(tmp_path, '[campaign.create]\nwindow = "21:00-08:00"\n')
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("phone,name\n+919800000001,A\n")
    res = run_cli(
        "--config",
        str(cfg),
        "--db",
        f"sqlite:///{tmp_path / 'x.db'}",
        "campaign",
        "create",
        "c",
        "--csv",
        str(csv_path),
        "--agent-id",
        "a",
    )
    assert res.returncode != 0
    assert "overnight" in res.stderr
    assert "Traceback" not in res.stderr


def test_broken_config_file_is_a_clear_error(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "db = [unclosed\n")
    res = run_cli("--config", str(cfg), "db", "upgrade")
    assert res.returncode == 1
    assert str(cfg) in res.stderr and "TOML" in res.stderr
    assert "Traceback" not in res.stderr
    missing = run_cli("--config", str(tmp_path / "nope.toml"), "db", "upgrade")
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def _run_unprivileged(work: Path, home: Path, argv: list[str]) -> tuple[int, str]:
    """Run the command line's entry point (``handle_errors``) in a forked child that drops
    root first (permission bits mean nothing to root; the interpreter under /root is out of
    reach of other users, so a subprocess as another user cannot start). Returns the exit
    code and what it printed on stderr."""
    # imported here: the child, as another user, cannot reach the stdlib under /root
    import zoneinfo  # noqa: F401

    import campaigns.cli.campaign_cmd  # noqa: F401
    from campaigns.cli import build_cli
    from campaigns.cli.common import handle_errors

    cli = build_cli()

    err = work / "stderr.txt"
    err.write_text("")
    err.chmod(0o666)
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 70
        try:
            sys.stderr = open(err, "w", buffering=1)  # noqa: SIM115  (pytest replaced it)
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            os.chdir(work)
            os.environ["HOME"] = str(home)
            os.environ.pop("XDG_CONFIG_HOME", None)
            os.environ.pop("VAANI_CONFIG", None)
            code = handle_errors(cli, argv)
        except BaseException as exc:  # reported to the parent, which fails the test
            print(f"child failed: {exc!r}", file=sys.stderr)
        finally:
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), err.read_text()


def _open_dir() -> Path:
    """A working directory every user may enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="vaani-cfg-"))
    path.chmod(0o755)
    return path


def test_an_unreadable_home_is_no_config_file() -> None:
    """issue 13: every command failed with 'unexpected PermissionError: .../config.toml'."""
    work = _open_dir()
    home = work / "home"
    (home / ".config" / "vaani-campaigns").mkdir(parents=True)
    (home / ".config" / "vaani-campaigns" / "config.toml").write_text('db = "x"\n')
    home.chmod(0o000)
    try:
        code, err = _run_unprivileged(work, home, ["campaign", "--help"])
    finally:
        home.chmod(0o755)
        shutil.rmtree(work)
    assert code == 0, err
    assert "PermissionError" not in err


def test_an_unreadable_default_file_is_absent_but_an_explicit_one_is_an_error() -> None:
    work = _open_dir()
    try:
        cfg = work / "vaani-campaigns.toml"
        cfg.write_text('db = "x"\n')
        cfg.chmod(0o000)
        default = _run_unprivileged(work, work, ["campaign", "--help"])
        explicit = _run_unprivileged(work, work, ["--config", str(cfg), "campaign", "--help"])
    finally:
        shutil.rmtree(work)
    assert default[0] == 0, default[1]
    assert explicit[0] == 1
    assert f"cannot read config file {cfg}" in explicit[1] and "Traceback" not in explicit[1]
