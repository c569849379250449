"""Engine and session factories: SQLite by default, PostgreSQL from a URL.

SQLite gets WAL, a busy timeout, foreign keys, and ``BEGIN IMMEDIATE`` for every transaction
(SQLAlchemy's documented pysqlite recipe), so that a claim takes the write lock at its start
and two processes never both read the same due contacts. PostgreSQL claims use
``FOR UPDATE SKIP LOCKED`` instead (see ``storage.claims``).

:class:`DatabaseFileWatch` notices a SQLite file deleted or replaced under a running daemon
(SQLite keeps writing into the unlinked inode, so every record after that is lost): the
daemon calls :meth:`~DatabaseFileWatch.check` once per tick.

Nothing here runs at import time: callers build the engine they need.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, exc
from sqlalchemy.engine import ExceptionContext, make_url

from storage.errors import (
    DatabaseError,
    DatabaseMissing,
    DatabaseUnavailable,
    IntegrityConflict,
    UnsupportedDatabase,
)

__all__ = [
    "DatabaseFileWatch",
    "Engine",
    "default_url",
    "is_sqlite",
    "make_engine",
    "normalise_url",
    "parse_url",
    "reading",
    "sqlite_file",
    "watch_database",
]

DEFAULT_DB_FILE = "vaani-campaigns.db"
#: URL schemes we ship a driver for (``postgres://`` is accepted as ``postgresql://``).
SUPPORTED_DRIVERS = {"sqlite": ("pysqlite",), "postgresql": ("psycopg",)}
SUPPORTED_HINT = "use sqlite:///FILE.db or postgresql://USER@HOST/DBNAME"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def default_url() -> str:
    """``DATABASE_URL`` when set, else a SQLite file in the working directory."""
    env = os.environ.get("DATABASE_URL")
    if env:
        return env
    return f"sqlite:///{Path.cwd() / DEFAULT_DB_FILE}"


def normalise_url(url: str) -> str:
    """Accept the URL forms people paste (``postgres://``, ``postgresql://``, a bare file path)
    and name the driver we ship (psycopg 3)."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def parse_url(url: str) -> URL:
    """``url`` (any form :func:`normalise_url` accepts) as a SQLAlchemy URL of a database we
    support. Raises :class:`~storage.errors.UnsupportedDatabase` naming the supported schemes
    otherwise (``mysql://`` would end in a missing driver module deep inside SQLAlchemy). The
    message names the scheme only: the URL may hold a password."""
    try:
        sa_url = make_url(normalise_url(url))
    except exc.ArgumentError:
        raise UnsupportedDatabase(f"the database URL is not a URL: {SUPPORTED_HINT}") from None
    backend, driver = sa_url.get_backend_name(), sa_url.get_driver_name()
    if backend not in SUPPORTED_DRIVERS:
        raise UnsupportedDatabase(
            f"unsupported database {backend!r} in the database URL: the supported schemes are "
            f"sqlite and postgresql ({SUPPORTED_HINT})"
        )
    if driver not in SUPPORTED_DRIVERS[backend]:
        raise UnsupportedDatabase(
            f"unsupported driver {backend}+{driver} in the database URL: the supported "
            f"schemes are sqlite and postgresql ({SUPPORTED_HINT})"
        )
    return sa_url


def make_engine(url: str | None = None, *, create: bool = True, **kwargs: Any) -> Engine:
    """Build an engine for ``url`` (default: :func:`default_url`).

    With ``create=False`` a SQLite file that does not exist is an error
    (:class:`~storage.errors.DatabaseMissing`) instead of a new empty database and its parent
    directories: read-only commands pass it, so a typo'd ``--db`` leaves nothing behind."""
    url = normalise_url(url or default_url())
    sa_url = parse_url(url)
    if sa_url.get_backend_name() == "sqlite":
        path = sqlite_file(url)
        if path is not None and not create and not path.exists():
            raise DatabaseMissing(
                f"no database at {path}: check --db / DATABASE_URL (a new database is made "
                "only by `campaign create`, `db upgrade`, `run` and `demo`)"
            )
        if path is not None and create:
            path.parent.mkdir(parents=True, exist_ok=True)
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        _sqlite_setup(engine)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        engine = create_engine(url, **kwargs)
    event.listen(engine, "handle_error", _wrap_driver_error)
    return engine


def _wrap_driver_error(context: ExceptionContext) -> None:
    """Raise the driver's error as a :class:`~storage.errors.DatabaseError` (the one place
    where library exceptions enter our tree). The message is the database's own words, never
    the statement or its parameters. Errors that are not the driver's (a value our own column
    type refused) stay as they are: they are bugs, not database trouble."""
    if context.is_pre_ping:  # a dead pooled connection: SQLAlchemy reconnects by itself
        return
    if not isinstance(context.sqlalchemy_exception, exc.DBAPIError):
        return  # our own bug (e.g. a naive datetime bound to a UTC column): left as it is
    orig = context.original_exception
    words = " ".join(str(orig).split()) or type(orig).__name__
    if isinstance(context.sqlalchemy_exception, exc.IntegrityError):
        raise IntegrityConflict(f"the database refused the write: {words}") from orig
    if isinstance(context.sqlalchemy_exception, exc.OperationalError):
        raise DatabaseUnavailable(
            f"the database is unavailable or unusable ({words}). Check --db / DATABASE_URL "
            "and retry."
        ) from orig
    raise DatabaseError(f"database error: {type(orig).__name__}: {words}") from orig


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # let SQLAlchemy, not pysqlite, decide where transactions begin
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _enable_wal(cur)
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # writers take the write lock at BEGIN so claims serialise; readers opt out with
        # reading(engine) and, under WAL, neither wait for writers nor block them
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _enable_wal(cur: Any) -> None:
    """Switch to WAL. When several processes open a brand-new file at once, this pragma can
    fail with "database is locked" at once, whatever the busy timeout: retry until it says."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def reading(engine: Engine) -> Engine:
    """The same engine for read-only work: on SQLite its transactions begin DEFERRED, so a
    long write (a big import) does not make a status query wait."""
    if is_sqlite(engine):
        return engine.execution_options(sqlite_begin="DEFERRED")
    return engine


def sqlite_file(url: str) -> Path | None:
    """The database file a URL (or a bare path) names: an absolute path for a SQLite file,
    None for PostgreSQL and for an in-memory SQLite database."""
    sa_url = parse_url(url)
    if sa_url.get_backend_name() != "sqlite":
        return None
    database = sa_url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser().absolute()


class DatabaseFileWatch:
    """Remembers the SQLite file's identity (``st_dev``, ``st_ino``) when built, and
    :meth:`check` raises when the path no longer names that file.

    Why: deleting (or replacing) the file of a live SQLite database goes unnoticed by SQLite;
    the open connections keep writing into the unlinked inode, and every call placed after
    that leaves no record. A ``stat`` is cheap enough to run on every daemon tick. For
    PostgreSQL (``path`` None) it does nothing.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._identity: tuple[int, int] | None = None
        if path is not None:
            self._identity = self._stat()
            if self._identity is None:
                raise DatabaseUnavailable(
                    f"the database file {path} does not exist or cannot be read."
                )

    def _stat(self) -> tuple[int, int] | None:
        assert self.path is not None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def check(self) -> None:
        """Raise :class:`~storage.errors.DatabaseUnavailable` when the database file vanished
        or its inode changed since the watch was built; return quietly otherwise."""
        if self.path is None:
            return
        if self._stat() != self._identity:
            raise DatabaseUnavailable(
                f"the database file {self.path} was deleted or replaced while the daemon "
                "ran: stopping"
            )


def database_file(engine: Engine) -> Path | None:
    """The file of ``engine``'s SQLite database; None for PostgreSQL and in-memory SQLite."""
    if not is_sqlite(engine):
        return None
    return sqlite_file(engine.url.render_as_string(hide_password=False))


def watch_database(engine: Engine) -> DatabaseFileWatch:
    """A :class:`DatabaseFileWatch` of ``engine``'s SQLite file (a no-op watch for
    PostgreSQL). Opens one connection first, so the file exists when its identity is taken."""
    path = database_file(engine)
    if path is None:
        return DatabaseFileWatch(None)
    with engine.connect():
        pass
    return DatabaseFileWatch(path)
