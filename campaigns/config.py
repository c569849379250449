"""The configuration file: flags > environment > config file (TOML) > defaults.

Click already ranks a flag above its environment variable above ``default_map`` above the
built-in default, so the file is loaded into ``default_map``: top-level keys are the root
command's options, tables are subcommands (dashes or underscores alike)::

    db = "postgresql://scheduler@db.internal/campaigns"

    [run]
    rate-limit = "10/s"
    max-concurrent = 30
    poll-interval = 5

    [campaign.create]
    region = "IN"
    window = "10:00-19:00"

The file is ``--config FILE`` (or ``VAANI_CONFIG``), else ``./vaani-campaigns.toml``, else
``vaani-campaigns/config.toml`` in the user's configuration directory, when they exist.
A default spot that is missing or cannot be read (an unreadable ``$HOME``, a file without
read permission) is simply no config file; a file named explicitly that cannot be read is
an error, since the user asked for it.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from platformdirs import user_config_dir

from campaigns.errors import UserError

ENV_VAR = "VAANI_CONFIG"
LOCAL_FILE = "vaani-campaigns.toml"


def find_config(argv: list[str]) -> Path | None:
    """The config file named by ``--config`` in ``argv``, the environment, or a default spot."""
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--config="):
            return Path(arg.split("=", 1)[1])
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    for candidate in (
        Path.cwd() / LOCAL_FILE,
        Path(user_config_dir("vaani-campaigns")) / "config.toml",
    ):
        if _readable_file(candidate):
            return candidate
    return None


def _readable_file(path: Path) -> bool:
    """True when ``path`` is a regular file this process can open for reading; any error on
    the way (no such directory, no permission to look in it) means no."""
    try:
        if not path.is_file():
            return False
        with path.open("rb"):
            return True
    except OSError:
        return False


def _normalise(table: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        out[key.replace("-", "_")] = _normalise(value) if isinstance(value, dict) else value
    return out


def load_default_map(path: Path | None) -> dict[str, Any]:
    """Read ``path`` into a click ``default_map`` (empty when there is no file)."""
    if path is None:
        return {}
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise UserError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise UserError(f"cannot read config file {path}: {exc.strerror}") from None
    default_map = _normalise(data)
    # db is the root option's name in the file; the parameter is called db_url
    if "db" in default_map:
        default_map["db_url"] = default_map.pop("db")
    return default_map
