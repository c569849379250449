"""Pieces every subcommand shares: the root options, the context object, error handling."""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

from campaigns.config import find_config, load_default_map
from campaigns.errors import CampaignsError

if TYPE_CHECKING:
    from storage.engine import Engine

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_SERVICE = 0, 1, 2, 3


@dataclass
class AppContext:
    """What the root command learned, handed to every subcommand via ``click.Context.obj``."""

    db_url: str | None = None
    debug: bool = False
    _engine: Engine | None = field(default=None, repr=False)

    def engine(self) -> Engine:
        """The database engine, created on first use, schema brought up to date."""
        if self._engine is None:
            from storage.engine import make_engine
            from storage.migrate import upgrade

            self._engine = make_engine(self.db_url)
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


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv


def handle_errors(cli: click.Group, argv: list[str] | None) -> int:
    """Run ``cli`` and map expected failures to exit codes without a traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        default_map = load_default_map(find_config(args))
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
