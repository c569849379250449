"""Pieces every subcommand shares: the root options, the context object, error handling."""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

from campaigns.config import ConfigSchema, config_key, find_config, load_default_map
from campaigns.errors import CampaignsError

if TYPE_CHECKING:
    from rich.console import Console

    from storage.engine import Engine

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_SERVICE = 0, 1, 2, 3


@dataclass
class AppContext:
    """What the root command learned, handed to every subcommand via ``click.Context.obj``."""

    db_url: str | None = None
    debug: bool = False
    _engine: Engine | None = field(default=None, repr=False)

    def engine(self, *, create: bool = False) -> Engine:
        """The database engine, created on first use, schema brought up to date.

        Only the commands that set a database up (``campaign create``, ``run``) pass
        ``create=True``; for the others a SQLite file that does not exist is
        :class:`~storage.errors.DatabaseMissing` ("no database at ..."), so a typo'd ``--db``
        creates nothing."""
        if self._engine is None:
            from storage.engine import make_engine
            from storage.migrate import upgrade

            self._engine = make_engine(self.db_url, create=create)
            upgrade(self._engine)
            ctx = click.get_current_context(silent=True)
            if ctx is not None:  # release pooled connections when the command ends
                ctx.find_root().call_on_close(self._engine.dispose)
        return self._engine


pass_app = click.make_pass_decorator(AppContext, ensure=True)


def root_options(f: F) -> F:
    """The options of the root command; they fill the ``AppContext``."""
    f = click.option(
        "--config",
        "config_path",
        envvar="VAANI_CONFIG",
        metavar="FILE",
        expose_value=False,
        is_eager=True,
        help="TOML config file [env: VAANI_CONFIG; default: ./vaani-campaigns.toml if present]. "
        "Precedence: flags > environment > config file > defaults.",
    )(f)
    f = click.option(
        "--db",
        "db_url",
        envvar="DATABASE_URL",
        metavar="URL",
        help="Database URL (sqlite:///file.db or postgresql://...) [env: DATABASE_URL; "
        "default: ./vaani-campaigns.db].",
    )(f)
    return click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")(f)


def init_app(ctx: click.Context, db_url: str | None, debug: bool) -> None:
    ctx.obj = AppContext(db_url=db_url, debug=debug)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


#: The width of output that goes to a file or a pipe: wide enough that no line wraps.
UNWRAPPED_WIDTH = 10_000


def output_console(*, stderr: bool = False) -> Console:
    """A rich console for a command's output: the terminal's width on a terminal; off one (a
    pipe, a file, a test), no wrapping at all, so that a line read by a script or grep is
    never broken mid-phrase at rich's default 80 columns (nor at ``$COLUMNS``)."""
    from rich.console import Console

    console = Console(stderr=stderr)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, width=UNWRAPPED_WIDTH, soft_wrap=True)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


#: The root command's options, and whether each takes a value.
GLOBAL_OPTIONS = {"--db": True, "--config": True, "--debug": False}


def hoist_global_options(argv: list[str]) -> list[str]:
    """``argv`` with the root options (``--db``, ``--config``, ``--debug``) moved to the
    front, so ``campaign list --db x.db`` and ``report 1 --debug`` work like
    ``--db x.db campaign list``: people add them at the end, where click alone would refuse
    them as unknown to the subcommand. Nothing after ``--`` moves; an option whose value is
    missing stays where it is, for click to report."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        name = arg.split("=", 1)[0]
        takes_value = GLOBAL_OPTIONS.get(name)
        if takes_value is None:
            rest.append(arg)
        elif not takes_value or "=" in arg:
            front.append(arg)
        elif i + 1 < len(argv):
            front.extend(argv[i : i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv


def config_schema(cli: click.Command) -> Callable[[Mapping[str, Any]], ConfigSchema]:
    """The keys a config file may hold for ``cli``: each command's option names, and a table
    per subcommand. Only the subcommands the file has a table for are loaded (start-up time:
    see :mod:`campaigns.cli.lazy`). At the top level the database is ``db``."""

    def build(cmd: click.Command, table: Mapping[str, Any], ctx: click.Context) -> ConfigSchema:
        out: ConfigSchema = {
            config_key(p.name): None for p in cmd.params if p.name and p.expose_value
        }
        if isinstance(cmd, click.Group):
            names = {config_key(n): n for n in cmd.list_commands(ctx)}
            out.update({key: {} for key in names})
            for key, value in table.items():
                name = names.get(config_key(key), "")
                sub = cmd.get_command(ctx, name) if name and isinstance(value, dict) else None
                if sub is not None:
                    out[config_key(key)] = build(sub, value, ctx)
        return out

    def schema(data: Mapping[str, Any]) -> ConfigSchema:
        out = build(cli, data, click.Context(cli))
        out["db"] = out.pop("db_url", None)
        if "providers" in data:  # loaded only when used: it imports the provider registry
            from campaigns.provider_settings import config_schema as providers_schema

            out["providers"] = providers_schema()
        return out

    return schema


def handle_errors(cli: click.Group, argv: list[str] | None) -> int:
    """Run ``cli`` and map expected failures to exit codes without a traceback."""
    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    try:
        default_map = load_default_map(find_config(args), config_schema(cli))
        rv = cli.main(
            args=args,
            prog_name="vaani-campaigns",
            standalone_mode=False,
            default_map=default_map,
        )
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Exception as exc:
        return _report(exc, debug=_debug_requested(args))
    return rv if isinstance(rv, int) else EXIT_OK


def _report(exc: Exception, *, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    if isinstance(exc, CampaignsError):
        click.echo(f"Error: {exc.user_message()}", err=True)
        return exc.exit_code
    if not debug:
        click.echo(
            f"Error: unexpected {type(exc).__name__}: {exc} (run with --debug for details)",
            err=True,
        )
    return EXIT_USER
