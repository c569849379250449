"""``vaani-campaigns db upgrade|current``: the database schema's version.

Every command already brings the schema up to date when it opens the database; ``db upgrade``
does only that (useful before starting several daemons, or in a deploy step), and ``db
current`` reports the revision without changing anything.
"""

from __future__ import annotations

import click

from campaigns.cli.common import AppContext, pass_app, print_json
from storage.engine import Engine


@click.group()
def db() -> None:
    """Database maintenance."""


def _raw_engine(app: AppContext, *, create: bool) -> Engine:
    """An engine that does NOT migrate on open (``app.engine()`` would); ``create`` as in
    :func:`storage.engine.make_engine` (only ``upgrade`` may make a new database)."""
    from storage.engine import make_engine

    return make_engine(app.db_url, create=create)


@db.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_app
def upgrade(app: AppContext, as_json: bool) -> None:
    """Create the schema or migrate it to the current version."""
    from storage.migrate import current_revision, head_revision
    from storage.migrate import upgrade as run_upgrade

    engine = _raw_engine(app, create=True)
    try:
        before = current_revision(engine)
        run_upgrade(engine)  # a MigrationError says what is wrong; the root handler prints it
        after = current_revision(engine)
    finally:
        engine.dispose()
    if as_json:
        print_json({"from": before, "to": after, "head": head_revision()})
    elif before == after:
        click.echo(f"database is up to date (revision {after})")
    else:
        click.echo(f"database upgraded from revision {before or 'none (empty)'} to {after}")


@db.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_app
def current(app: AppContext, as_json: bool) -> None:
    """Show the database's schema revision and the newest one this program knows."""
    from storage.migrate import current_revision, head_revision

    engine = _raw_engine(app, create=False)
    try:
        rev = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    if as_json:
        print_json({"current": rev, "head": head, "up_to_date": rev == head})
    elif rev is None:
        click.echo(
            f"empty database (no schema yet); run `vaani-campaigns db upgrade` to create it at {head}"
        )
    elif rev == head:
        click.echo(f"revision {rev} (head): up to date")
    else:
        click.echo(
            f"revision {rev}; this program's newest is {head}: run `vaani-campaigns db upgrade`"
        )
