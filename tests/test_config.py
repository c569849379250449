"""Configuration precedence: flags > environment > config file (TOML) > defaults."""

from __future__ import annotations

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
