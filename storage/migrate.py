"""Bring a database to the current schema with Alembic, safely and cheaply.

:func:`upgrade` runs on every CLI start and every daemon start, so it is built for three cases:

* **already at head** (the usual case): one short query reads ``alembic_version`` and compares
  it with the newest script in ``storage/migrations/versions`` (file names start with the
  revision: ``0001_initial.py``); Alembic itself is not even imported (that alone costs a few
  hundred milliseconds of start-up).
* **behind**: the upgrade runs in ONE transaction that first takes a lock, then re-reads the
  revision (another process may have just finished the same upgrade), then migrates. On
  PostgreSQL the lock is ``pg_advisory_xact_lock`` and DDL is transactional; on SQLite every
  transaction starts with ``BEGIN IMMEDIATE`` (see ``storage.engine``), which takes the write
  lock, so two daemons starting at once simply run one after the other and the second finds
  the work done. SQLite foreign keys are switched off around that transaction (and checked
  with ``PRAGMA foreign_key_check`` before it commits), because the table copies of Alembic's
  batch mode would otherwise fire ``ON DELETE CASCADE`` and empty the child tables.
* **a database made before migrations existed** (``metadata.create_all``: same tables, no
  ``alembic_version``): it is stamped at the revision whose schema it has (the baseline,
  ``0002`` when its campaigns already name a ``provider``, ``0003`` when it has the
  ``outbox``, ``0004`` when it also has the webhook inbox, ``0005`` when campaigns have
  ``skip_dates``, ``0006`` when its contacts count callbacks, ``0007`` when it has the shared
  ``rate_buckets``, ``0008`` when campaigns have ``archived_at``, ``0009`` when it has
  ``call_transcripts``, as ``create_all`` of today's models makes it), and then upgraded normally.

The Alembic ``Config`` is built in code from the package's own ``migrations`` directory, so no
``alembic.ini`` is needed on disk (an installed wheel carries the scripts as package data).

Usage::

    engine = make_engine(url)
    upgrade(engine)                 # idempotent
    current_revision(engine)        # e.g. "0001"
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from storage.errors import MigrationError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: The first revision: exactly the schema ``Base.metadata.create_all`` produces for it.
BASELINE_REVISION = "0001"
#: The revision that added ``campaigns.provider`` (and call ids unique per provider).
PROVIDER_REVISION = "0002"
#: The revision that added the ``outbox`` table (and campaigns' webhooks).
OUTBOX_REVISION = "0003"
#: The revision that added the webhook inbox (``inbox_events``).
INBOX_REVISION = "0004"
#: The revision that added callbacks (``contacts.callbacks`` and friends).
CALLBACK_REVISION = "0006"

#: The revision that added campaigns' re-dial schedule, blackout dates and holidays.
REDIAL_REVISION = "0005"
#: The revision that added the shared rate buckets and ``attempts.slot_freed_at``.
SHARED_LIMITER_REVISION = "0007"

#: The revision that added ``campaigns.archived_at``.
ARCHIVE_REVISION = "0008"
#: The revision that added ``call_transcripts``.
TRANSCRIPTS_REVISION = "0009"
#: The revision that added the circuit breaker (``campaigns.breaker_*``).
BREAKER_REVISION = "0010"

#: Key of the PostgreSQL advisory lock held while migrating ("VAANIMIG").
_PG_MIGRATION_LOCK = 0x5641414E494D4947

_SCRIPT_NAME = re.compile(r"^(\d{4})_\w+\.py$")


def alembic_config(url: str | None = None) -> Config:
    """An Alembic ``Config`` for our migrations, built without an ``alembic.ini``.

    ``url`` is only needed for hand use with ``alembic.command`` (e.g. ``revision
    --autogenerate``); :func:`upgrade` passes its own connection instead.
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@cache
def head_revision() -> str:
    """The newest revision shipped in ``storage/migrations``, as Alembic reads it."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise MigrationError(f"no migration scripts found in {MIGRATIONS_DIR}")
    return head


@cache
def shipped_head() -> str | None:
    """The newest revision by file name (``NNNN_name.py``), without importing Alembic.

    Only the fast path uses it: if it ever disagreed with :func:`head_revision`, ``upgrade``
    would just take the slow, always-correct path (a test keeps the two equal)."""
    names = [
        m.group(1)
        for p in (MIGRATIONS_DIR / "versions").iterdir()
        if (m := _SCRIPT_NAME.match(p.name))
    ]
    return max(names, default=None)


def _revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty (never migrated) database."""
    with engine.connect() as conn:
        return _revision(conn)


def _quick_revision(engine: Engine) -> str | None:
    """``alembic_version``'s single row read with plain SQL (None if absent or ambiguous)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def upgrade(engine: Engine) -> None:
    """Create the schema of ``engine``'s database or migrate it to head (idempotent).

    Safe when several processes call it at once; costs one query when already at head.
    Raises :class:`~storage.errors.MigrationError` when the database is at a revision this
    version of the program does not know (a newer program migrated it).
    """
    head = shipped_head()
    if head is not None and _quick_revision(engine) == head:
        return
    head = head_revision()
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # Batch migrations copy and DROP tables; with foreign keys on, SQLite's DROP TABLE
            # runs the ON DELETE CASCADE of every child table. The pragma is a no-op inside a
            # transaction, so it is set before BEGIN and checked before COMMIT.
            _sqlite_pragma(conn, "PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():  # SQLite: BEGIN IMMEDIATE holds the write lock from here
                _upgrade_locked(conn, head)
                if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise MigrationError(
                        "the migration would leave rows pointing at missing parents; "
                        "nothing was changed"
                    )
        finally:
            if sqlite:
                _sqlite_pragma(conn, "PRAGMA foreign_keys=ON")


def _sqlite_pragma(conn: Connection, pragma: str) -> None:
    """Run ``pragma`` outside any transaction, on the driver connection itself."""
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(pragma)
    finally:
        cur.close()


def _unversioned_revision(conn: Connection) -> str:
    """The revision a schema made by ``create_all`` (no ``alembic_version``) matches."""
    insp = inspect(conn)
    columns = {c["name"] for c in insp.get_columns("campaigns")}
    if "breaker_enabled" in columns:
        return BREAKER_REVISION
    if insp.has_table("call_transcripts"):
        return TRANSCRIPTS_REVISION
    if "archived_at" in columns:
        return ARCHIVE_REVISION
    if insp.has_table("rate_buckets"):
        return SHARED_LIMITER_REVISION
    if "callbacks" in {c["name"] for c in insp.get_columns("contacts")}:
        return CALLBACK_REVISION
    if "skip_dates" in columns:
        return REDIAL_REVISION
    if insp.has_table("inbox_events"):
        return INBOX_REVISION
    if insp.has_table("outbox"):
        return OUTBOX_REVISION
    return PROVIDER_REVISION if "provider" in columns else BASELINE_REVISION


def _upgrade_locked(conn: Connection, head: str) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
    current = _revision(conn)
    if current == head:  # another process finished it while we waited for the lock
        return
    from alembic import command
    from alembic.script import ScriptDirectory

    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    if current is None and inspect(conn).has_table("campaigns"):
        current = _unversioned_revision(conn)
        command.stamp(cfg, current)
    script = ScriptDirectory.from_config(cfg)
    if current is not None and current not in {s.revision for s in script.walk_revisions()}:
        raise MigrationError(
            f"the database is at schema revision {current!r}, which this version of "
            f"vaani-campaigns does not know (newest known: {head!r}); upgrade the program"
        )
    command.upgrade(cfg, "head")
