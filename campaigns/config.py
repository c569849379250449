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

A key or table no command has (``dbb = ...``, ``[run] rate-limt = ...``) is an error that
names it and the nearest valid one: a typo silently ignored is a setting silently not applied.

The file is ``--config FILE`` (or ``VAANI_CONFIG``), else ``./vaani-campaigns.toml``, else
``vaani-campaigns/config.toml`` in the user's configuration directory, when they exist.
A default spot that is missing or cannot be read (an unreadable ``$HOME``, a file without
read permission) is simply no config file; a file named explicitly that cannot be read is
an error, since the user asked for it.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeAlias

from platformdirs import user_config_dir

from campaigns.errors import UserError

ENV_VAR = "VAANI_CONFIG"
LOCAL_FILE = "vaani-campaigns.toml"

#: The keys a config table may hold: an option's name -> None, a subcommand's name -> its
#: own schema. Names are in :func:`config_key` form (underscores).
ConfigSchema: TypeAlias = dict[str, "ConfigSchema | None"]


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


def config_key(name: str) -> str:
    """The form a key is compared in: dashes and underscores alike (``rate-limit``)."""
    return name.replace("-", "_")


def _shown(name: str) -> str:
    return name.replace("_", "-")


def check_keys(path: Path, table: Mapping[str, Any], schema: ConfigSchema, where: str = "") -> None:
    """Raise :class:`UserError` for the first key of ``table`` that ``schema`` lacks, naming
    it, its table and the nearest valid key (difflib); tables are checked recursively."""
    for key, value in table.items():
        name = config_key(key)
        place = f"[{where}]" if where else "the top level"
        if name not in schema:
            hint = difflib.get_close_matches(name, list(schema), n=1, cutoff=0.6)
            also = f"; did you mean {_shown(hint[0])!r}?" if hint else ""
            valid = ", ".join(sorted(_shown(k) for k in schema))
            raise UserError(
                f"config file {path}: unknown key {key!r} at {place}{also} (valid: {valid})"
            )
        sub = schema[name]
        if sub is None and isinstance(value, dict):
            raise UserError(f"config file {path}: {key!r} at {place} is an option, not a table")
        if sub is not None:
            inner = f"{where}.{key}" if where else key
            if not isinstance(value, dict):
                raise UserError(
                    f"config file {path}: {key!r} at {place} is a command: write its options "
                    f"in a table [{inner}]"
                )
            check_keys(path, value, sub, inner)


def _normalise(table: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        out[config_key(key)] = _normalise(value) if isinstance(value, dict) else value
    return out


def load_default_map(
    path: Path | None, schema: Callable[[Mapping[str, Any]], ConfigSchema] | None = None
) -> dict[str, Any]:
    """Read ``path`` into a click ``default_map`` (empty when there is no file). ``schema``
    gives the valid keys for the file's tables (it is called with the file's contents, so
    that only the commands the file names need be loaded); every key is checked against it."""
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
    if schema is not None:
        check_keys(path, data, schema(data))
    default_map = _normalise(data)
    # db is the root option's name in the file; the parameter is called db_url
    if "db" in default_map:
        default_map["db_url"] = default_map.pop("db")
    return default_map
