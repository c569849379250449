"""PostgreSQL's side of an import's contacts: one ``COPY ... FROM STDIN`` for the whole file.

Why one COPY, kept open from the first chunk to the last: the server's work (five indexes to
maintain per row) is the slower half of a PostgreSQL import, and a COPY per chunk would make
the importer wait for the server at the end of every chunk. Open across the whole file, the
server stores rows while the importer reads, maps and de-duplicates the next ones; psycopg's
queued writer sends the data from its own thread (a bounded queue, so memory stays flat).

The COPY runs on the import transaction's own connection, so it commits or rolls back with
the campaign row: an error half-way (a refused row, a broken file, Ctrl-C) aborts the COPY
and the transaction stores nothing. While it is open no other statement may run on that
connection: :class:`~storage.imports.ImportTransaction` finishes it before any other.

COPY does not go through SQLAlchemy, so its driver errors are turned into ours here, with
the database's primary message only: COPY's own error context quotes the offending row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from types import TracebackType
from typing import Any

from sqlalchemy import Connection

from storage.errors import DatabaseError, DatabaseUnavailable, IntegrityConflict


@contextmanager
def driver_errors() -> Iterator[None]:
    """Raise psycopg's errors as :mod:`storage.errors` ones, without the rows they quote."""
    import psycopg  # PostgreSQL only: psycopg is its driver

    try:
        yield
    except psycopg.Error as exc:
        diag = getattr(exc, "diag", None)
        primary = diag.message_primary if diag is not None else None
        words = " ".join((primary or str(exc).splitlines()[0]).split()) or type(exc).__name__
        if isinstance(exc, psycopg.IntegrityError):
            raise IntegrityConflict(f"the database refused the contacts: {words}") from None
        if isinstance(exc, psycopg.OperationalError):
            raise DatabaseUnavailable(
                f"the database is unavailable or unusable ({words}). Check --db / "
                "DATABASE_URL and retry."
            ) from None
        raise DatabaseError(f"database error: {type(exc).__name__}: {words}") from None


class ContactCopy:
    """``COPY table (columns) FROM STDIN``, opened on the first :meth:`write`."""

    def __init__(self, conn: Connection, table: str, columns: Sequence[str]) -> None:
        self._conn = conn
        self._sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        self._stack = ExitStack()
        self._write_row: Callable[[Sequence[Any]], None] | None = None

    @property
    def open(self) -> bool:
        return self._write_row is not None

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Send rows (tuples in the COPY's column order); psycopg adapts each value."""
        with driver_errors():
            write_row = self._write_row or self._begin()
            for row in rows:
                write_row(row)

    def _begin(self) -> Callable[[Sequence[Any]], None]:
        from psycopg.copy import QueuedLibpqWriter

        raw = self._conn.connection.driver_connection
        assert raw is not None, "a COPY needs the connection of a live transaction"
        cur = self._stack.enter_context(raw.cursor())
        copy = self._stack.enter_context(cur.copy(self._sql, writer=QueuedLibpqWriter(cur)))
        self._write_row = copy.write_row
        return self._write_row

    def finish(self) -> None:
        """End the COPY; when this returns the server holds every row sent (uncommitted)."""
        self.close(None, None, None)

    def close(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """End the COPY: normally, or, given the error that stopped the import, by telling
        the server to discard it (the transaction is then rolled back by its owner)."""
        if self._write_row is None:
            return
        self._write_row = None
        with driver_errors():
            self._stack.__exit__(exc_type, exc, tb)
