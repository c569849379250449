"""The writes of a contact import: the campaign row, its contacts, its import counts.

An import is ONE transaction (a failure half-way leaves no campaign and no contacts), so this
module hands the importer an :class:`ImportTransaction`, opened with :func:`begin_import`,
whose methods are the only statements an import runs. The importer never sees a connection.

Writing the contacts is the import's hot path (targets: 100,000 rows/s into SQLite, 80,000 into
PostgreSQL): rows come as plain tuples in the order of :data:`CONTACT_COLUMNS`, metadata
already JSON text, because SQLAlchemy's per-row parameter processing (or building a value
object per row) costs more than the database work. Everything else crosses as frozen values.

* PostgreSQL: ``COPY contacts FROM STDIN`` on the transaction's own connection (5x the rows/s
  of ``executemany``). COPY has no ``ON CONFLICT``, and needs none: the importer has already
  decided every row's fate (duplicates, do-not-call) before it writes, exactly as for
  SQLite, so both databases store the same rows. A row the database still refuses (another
  import racing into the same campaign) fails the whole import, as an INSERT would.
* SQLite: ``executemany`` of a multi-row ``INSERT ... VALUES (...), (...)``, which runs the
  statement once per :data:`SQLITE_ROWS_PER_INSERT` rows instead of once per row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import datetime
from itertools import chain
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, func, insert, select, update

from storage import manage, suppressions
from storage.campaigns_repo import CampaignRecord
from storage.contact_copy import ContactCopy
from storage.errors import NotFound, StorageError
from storage.models import Campaign, Contact, utcnow

_campaigns = cast(Table, Campaign.__table__)
_contacts = cast(Table, Contact.__table__)

#: SQLite page cache for the import's transaction: six indexes take random inserts.
SQLITE_IMPORT_CACHE_KB = 64 * 1024
SQLITE_DEFAULT_CACHE = "-2000"
#: Rows per multi-row INSERT on SQLite: 50 x 11 values, far below SQLite's variable limit.
SQLITE_ROWS_PER_INSERT = 50

#: The columns of a contact row given to :meth:`ImportTransaction.insert_contacts`, in order.
CONTACT_COLUMNS = (
    "campaign_id", "row_number", "phone_e164", "raw_phone", "name", "metadata", "timezones",
    "state", "reason", "attempts", "updated_at",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class NewCampaign:
    """The values of a campaign row about to be created. A field left None takes the
    column's default in ``storage.models.Campaign`` (or NULL)."""

    name: str
    agent_id: str
    status: str | None = None  # the column default: draft
    window_start: str = "09:00"
    window_end: str = "20:00"
    days: str = "mon,tue,wed,thu,fri,sat"
    timezone: str | None = None
    region: str | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    max_attempts: int = 3
    retry_delay_s: int = 7200
    retry_delays: dict[str, int] | None = None
    redial_voicemail: bool | None = None
    retry_schedule: list[int] | None = None
    skip_dates: list[str] | None = None
    holidays: str | None = None
    daily_cap_per_number: int | None = None
    outbound_number: str | None = None
    voice: str | None = None
    provider: str | None = None  # the column default: vaani
    call_options: dict[str, Any] | None = None
    opt_out_entities: list[str] | None = None
    columns: list[list[str]] = field(default_factory=list)
    phone_column: str | None = None
    name_column: str | None = None
    source_file: str | None = None
    webhook_url: str | None = None
    webhook_secret_fp: str | None = None  # "sha256:" + 12 hex; never the secret itself
    max_callbacks: int | None = None  # the column default: 2
    callback_keys: list[str] | None = None  # None: the default keys
    breaker_enabled: bool | None = None  # the circuit breaker; None: on, 50 % of 20
    breaker_threshold: int | None = None
    breaker_window: int | None = None


@dataclass(frozen=True, kw_only=True)
class KnownNumbers:
    """The numbers a campaign already holds, with the row each came from (for duplicates)."""

    phones: list[str]
    rows: list[int]


class ImportTransaction:
    """The statements of one import, all in one transaction (see :func:`begin_import`)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        names = ", ".join(CONTACT_COLUMNS)
        self._copy = (
            ContactCopy(conn, _contacts.name, CONTACT_COLUMNS)
            if conn.dialect.name == "postgresql"
            else None
        )
        one = f"({', '.join(['?'] * len(CONTACT_COLUMNS))})"
        self._insert_one = f"INSERT INTO {_contacts.name} ({names}) VALUES {one}"
        self._insert_many = self._insert_one + f", {one}" * (SQLITE_ROWS_PER_INSERT - 1)
        # the dialect's own processor, as SQLAlchemy's statements use it: on SQLite it makes
        # the text SQLAlchemy stores (once a chunk), where a datetime would be adapted by
        # sqlite3 row by row (a tenth of the insert) and lose ".000000" on a whole second
        column_type = _contacts.c.updated_at.type
        processor = column_type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        self._stamp: Callable[[Any], Any] = processor or (lambda v: v)

    def create_campaign(self, campaign: NewCampaign) -> int:
        """Insert the campaign row; its new id."""
        values = {k: v for k, v in asdict(campaign).items() if v is not None}
        stmt = insert(_campaigns).values(**values).returning(_campaigns.c.id)
        return int(self._conn.execute(stmt).scalar_one())

    def campaign(self, campaign_id: int) -> CampaignRecord:
        """The campaign the contacts go into. Raises :class:`NotFound`."""
        row = self._conn.execute(
            select(_campaigns).where(_campaigns.c.id == campaign_id)
        ).one_or_none()
        if row is None:
            raise NotFound(f"no campaign with id {campaign_id}")
        return CampaignRecord.from_row(row)

    def add_campaign_suppressions(
        self, campaign_id: int, phones: Sequence[str], source: str
    ) -> int:
        """Put a ``--dnc`` file's numbers on the campaign's own do-not-call list."""
        return suppressions.add(
            self._conn, phones, campaign_id=campaign_id, reason="--dnc file", source=source
        )

    def suppressed_numbers(self, campaign_id: int) -> set[str]:
        """Every number that may not be called from the campaign (global list and its own)."""
        return suppressions.all_numbers(self._conn, campaign_id)

    def known_numbers(self, campaign_id: int) -> KnownNumbers:
        """The E.164 numbers already in the campaign and their row numbers."""
        c = _contacts.c
        rows = self._conn.execute(
            select(c.phone_e164, c.row_number).where(
                c.campaign_id == campaign_id, c.phone_e164.isnot(None)
            )
        ).all()
        return KnownNumbers(phones=[p for p, _ in rows], rows=[r for _, r in rows])

    def last_row_number(self, campaign_id: int) -> int:
        """The highest row number in the campaign (0 when empty): new rows continue after it."""
        c = _contacts.c
        return int(
            self._conn.execute(
                select(func.coalesce(func.max(c.row_number), 0)).where(c.campaign_id == campaign_id)
            ).scalar_one()
        )

    def now(self) -> Any:
        """The current time as the driver takes it for ``updated_at`` (one per chunk)."""
        return self._stamp(utcnow())

    def insert_contacts(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert contact rows (tuples in :data:`CONTACT_COLUMNS` order, ``updated_at`` from
        :meth:`now`): COPY on PostgreSQL, multi-row INSERTs on SQLite (module docstring)."""
        if not rows:
            return
        if self._copy is not None:
            self._copy.write(rows)
            return
        per = SQLITE_ROWS_PER_INSERT
        whole = len(rows) - len(rows) % per
        if whole:
            flat = list(chain.from_iterable(rows[:whole]))
            step = per * len(CONTACT_COLUMNS)
            groups = [tuple(flat[k : k + step]) for k in range(0, len(flat), step)]
            self._conn.exec_driver_sql(self._insert_many, groups)
        if whole < len(rows):
            self._conn.exec_driver_sql(self._insert_one, list(rows[whole:]))

    def finish_contacts(self) -> None:
        """End the PostgreSQL COPY, if one is open: no other statement may run during it."""
        if self._copy is not None:
            self._copy.finish()

    def abort_contacts(self, exc: BaseException) -> None:
        """Discard an open COPY after ``exc`` stopped the import (the rollback follows; a
        failure to abort must not hide ``exc``, the error the user needs to see)."""
        if self._copy is not None:
            with suppress(StorageError):
                self._copy.close(type(exc), exc, exc.__traceback__)

    def reopen_if_completed(self, campaign_id: int) -> bool:
        """A completed campaign that got new contacts runs again (same transaction)."""
        self.finish_contacts()
        return manage.reopen_completed(self._conn, campaign_id, now=utcnow())

    def record_import_stats(self, campaign_id: int, counts: dict[str, int]) -> None:
        """Keep the import's counts with the campaign (``campaign show`` and reports)."""
        self.finish_contacts()
        self._conn.execute(
            update(_campaigns).where(_campaigns.c.id == campaign_id).values(import_stats=counts)
        )


@contextmanager
def begin_import(engine: Engine) -> Iterator[ImportTransaction]:
    """One transaction for a whole import: committed when the block ends, rolled back (no
    campaign, no contacts) when it raises. On SQLite a bigger page cache is used inside it."""
    with engine.begin() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_IMPORT_CACHE_KB}")
        tx = ImportTransaction(conn)
        try:
            yield tx
            tx.finish_contacts()
        except BaseException as exc:
            tx.abort_contacts(exc)
            raise
        if sqlite:
            conn.exec_driver_sql(f"PRAGMA cache_size={SQLITE_DEFAULT_CACHE}")
