"""The SQLAlchemy 2.0 schema: campaigns, contacts, attempts, the do-not-call list, daemons,
the outbox of events for the user's CRM.

Times are stored as naive UTC (``UTCDateTime`` converts on the way in and out) so that SQLite
and PostgreSQL compare them the same way. Alembic migrations in ``storage/migrations`` create
this schema; ``metadata.create_all`` is used only by tests that want a throwaway database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from storage.states import ATTEMPT_LIVE

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT primary keys that still autoincrement on SQLite (where only INTEGER PRIMARY KEY does).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in Python, naive UTC in the database (same on SQLite and PostgreSQL)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


#: The provider of campaigns that do not name one (every campaign made before providers).
DEFAULT_PROVIDER = "vaani"


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    # the voice-AI platform that places this campaign's calls
    provider: Mapped[str] = mapped_column(
        String(40), default=DEFAULT_PROVIDER, server_default=DEFAULT_PROVIDER
    )
    agent_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    status_reason: Mapped[str | None] = mapped_column(Text)  # why paused/stopped (e.g. 402)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # calling policy (times of day are "HH:MM" in the contact's local time)
    window_start: Mapped[str] = mapped_column(String(5), default="09:00")
    window_end: Mapped[str] = mapped_column(String(5), default="20:00")
    days: Mapped[str] = mapped_column(String(40), default="mon,tue,wed,thu,fri,sat")
    timezone: Mapped[str | None] = mapped_column(String(64))  # campaign-wide override
    region: Mapped[str | None] = mapped_column(String(2))  # default region for parsing
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    retry_delay_s: Mapped[int] = mapped_column(Integer, default=7200)
    # per-outcome delays in seconds, e.g. {"no_answer": 7200, "busy": 900, "failed": 3600}
    retry_delays: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    redial_voicemail: Mapped[bool] = mapped_column(Boolean, default=True)
    # escalating re-dial delays in seconds ([1800, 7200, 86400]: the Nth re-dial waits the Nth,
    # the last repeats); NULL: none, every re-dial waits its outcome's delay
    retry_schedule: Mapped[list[int] | None] = mapped_column(JSON)
    # no calls on these local dates (["2026-12-25", ...]) nor on the public holidays of these
    # countries ("IN,US", or "auto": each contact's own), in the contact's zone and country
    skip_dates: Mapped[list[str] | None] = mapped_column(JSON)
    holidays: Mapped[str | None] = mapped_column(String(200))
    daily_cap_per_number: Mapped[int | None] = mapped_column(Integer)
    # trigger-call pass-through: caller id, voice, and any other optional fields
    outbound_number: Mapped[str | None] = mapped_column(String(32))
    voice: Mapped[str | None] = mapped_column(String(100))
    call_options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    opt_out_entities: Mapped[list[str]] = mapped_column(
        JSON, default=lambda: ["opt_out", "do_not_call"]
    )
    # import bookkeeping: [[original header, metadata key], ...] in file order, the columns
    # that held the phone and the name, and the counts of the import
    columns: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    phone_column: Mapped[str | None] = mapped_column(String(200))
    name_column: Mapped[str | None] = mapped_column(String(200))
    source_file: Mapped[str | None] = mapped_column(Text)
    import_stats: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    # events out (storage/outbox.py): where to POST them, and the FINGERPRINT of the secret
    # that signs them ("sha256:" + 12 hex); the secret itself is never stored
    webhook_url: Mapped[str | None] = mapped_column(Text)
    webhook_secret_fp: Mapped[str | None] = mapped_column(String(40))
    # callbacks the contact asks for (campaigns/callbacks.py): at most this many per contact,
    # read from these entity keys (NULL: the default keys)
    max_callbacks: Mapped[int] = mapped_column(Integer, default=2, server_default="2")
    callback_keys: Mapped[list[str] | None] = mapped_column(JSON)
    # set by `campaign archive`: hidden from `campaign list` (unless --all), nothing else changes
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the circuit breaker (storage/breaker.py): pause when more than breaker_threshold % of
    # the last breaker_window calls settled since breaker_since (the last resume) failed;
    # breaker_errors: the last errors seen when it tripped (NULL once resumed)
    breaker_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    breaker_threshold: Mapped[int] = mapped_column(Integer, default=50, server_default="50")
    breaker_window: Mapped[int] = mapped_column(Integer, default=20, server_default="20")
    breaker_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breaker_errors: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("campaign_id", "phone_e164", name="uq_contacts_campaign_phone"),
        UniqueConstraint("campaign_id", "row_number", name="uq_contacts_campaign_row"),
        # the dispatcher's scan: due contacts of a campaign, oldest first, without a sort
        Index("ix_contacts_due", "campaign_id", "state", "next_attempt_at", "id"),
        Index("ix_contacts_phone", "phone_e164"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=False
    )
    row_number: Mapped[int] = mapped_column(Integer)  # 1-based data row in the source file
    phone_e164: Mapped[str | None] = mapped_column(String(20))  # NULL when invalid
    raw_phone: Mapped[str | None] = mapped_column(Text)  # the cell as written
    name: Mapped[str | None] = mapped_column(Text)
    # every column but the phone one: snake_case header -> value exactly as written
    attributes: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    timezones: Mapped[str | None] = mapped_column(Text)  # IANA zones, comma-separated
    state: Mapped[str] = mapped_column(String(20), default="pending")
    reason: Mapped[str | None] = mapped_column(Text)  # why invalid/suppressed/expired/...
    outcome: Mapped[str | None] = mapped_column(String(20))  # last known outcome
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # callbacks scheduled so far, and the one waiting (NULL once the next outcome arrives)
    callbacks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    callback_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


_live = ", ".join(f"'{s.value}'" for s in sorted(ATTEMPT_LIVE))


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (
        # never two attempts with the same number for a contact: with attempt_no <= cap this
        # bounds the attempts per contact (invariant 1)
        UniqueConstraint("contact_id", "attempt_no", name="uq_attempts_contact_no"),
        # a call id names one call of one provider; two providers may hand out the same id
        UniqueConstraint("provider", "call_id", name="uq_attempts_provider_call_id"),
        # at most one live attempt per contact, enforced by the database itself
        Index(
            "uq_attempts_one_live",
            "contact_id",
            unique=True,
            sqlite_where=text(f"state IN ({_live})"),
            postgresql_where=text(f"state IN ({_live})"),
        ),
        Index("ix_attempts_state", "state", "created_at"),
        Index("ix_attempts_phone_time", "phone_e164", "created_at"),
        Index("ix_attempts_campaign", "campaign_id", "contact_id"),
        # the circuit breaker's window: a campaign's most recently settled calls, newest first
        Index("ix_attempts_settled", "campaign_id", "finished_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    attempt_no: Mapped[int] = mapped_column(Integer)  # 1..campaign.max_attempts
    phone_e164: Mapped[str] = mapped_column(String(20))
    # the campaign's provider when the attempt was claimed: where its call_id comes from
    provider: Mapped[str] = mapped_column(
        String(40), default=DEFAULT_PROVIDER, server_default=DEFAULT_PROVIDER
    )
    state: Mapped[str] = mapped_column(String(20), default="reserved")
    daemon_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)  # reserved at
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    call_id: Mapped[str | None] = mapped_column(String(200))
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)  # never contains the API key
    call_status: Mapped[str | None] = mapped_column(String(50))  # raw status from the API
    outcome: Mapped[str | None] = mapped_column(String(20))
    duration_s: Mapped[float | None] = mapped_column(Float)
    summary: Mapped[str | None] = mapped_column(Text)
    entity: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the history record as received
    call_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome_deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    details_fetched: Mapped[bool] = mapped_column(Boolean, default=False)
    # the callback this call's outcome scheduled, or why the one asked for was ignored
    callback_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    callback_note: Mapped[str | None] = mapped_column(Text)
    # set when the attempt stopped counting against the concurrency cap while still live:
    # its call was seen ended, or a lost answer is not in a history read past its time
    slot_freed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OutboxEvent(Base):
    """An event for the user's CRM, written in the transaction of the change that causes it
    and delivered (at least once, in order per contact) by ``scheduler/webhooks_out.py``."""

    __tablename__ = "outbox"
    __table_args__ = (
        # "is an earlier event of this contact (NULL: of the campaign) still undelivered?"
        Index("ix_outbox_order", "campaign_id", "contact_id", "id"),
        # the delivery scan: undelivered events, soonest due first
        Index(
            "ix_outbox_due",
            "next_attempt_at",
            "id",
            sqlite_where=text("delivered_at IS NULL AND dead_at IS NULL"),
            postgresql_where=text("delivered_at IS NULL AND dead_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    # NULL: an event of the campaign itself (completed, paused)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str] = mapped_column(String(36), unique=True)  # stable across retries
    payload: Mapped[str] = mapped_column(Text)  # the exact body sent (and signed)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(300))  # never holds a secret


class RateBucket(Base):
    """A GCRA shared by the daemons of one database, per (provider, key fingerprint): the
    theoretical arrival time (seconds, the database's clock). Never the key itself."""

    __tablename__ = "rate_buckets"

    provider: Mapped[str] = mapped_column(String(40), primary_key=True)
    key_fp: Mapped[str] = mapped_column(String(64), primary_key=True)
    tat: Mapped[float] = mapped_column(Float)


class Suppression(Base):
    """A do-not-call entry: global (campaign_id NULL) or for one campaign."""

    __tablename__ = "suppressions"
    __table_args__ = (
        Index("ix_suppressions_phone", "phone_e164"),
        Index(
            "uq_suppressions_global",
            "phone_e164",
            unique=True,
            sqlite_where=text("campaign_id IS NULL"),
            postgresql_where=text("campaign_id IS NULL"),
        ),
        Index(
            "uq_suppressions_campaign",
            "phone_e164",
            "campaign_id",
            unique=True,
            sqlite_where=text("campaign_id IS NOT NULL"),
            postgresql_where=text("campaign_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    phone_e164: Mapped[str] = mapped_column(String(20))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    reason: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(200))  # file name, "cli", "opt_out:<call>"
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Daemon(Base):
    """A running (or dead) scheduler daemon; claims of a daemon that stopped heartbeating are
    reconciled, never re-dialled blindly."""

    __tablename__ = "daemons"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ServiceState(Base):
    """Account-wide facts every daemon must respect, e.g. a 401/402 that paused dispatch."""

    __tablename__ = "service_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class InboxEvent(Base):
    """A verified event a provider pushed to ``run --listen`` (a webhook), kept for good.

    Stored before the receiver answers 200, then applied (the attempt with this provider's
    ``call_id`` settled) as soon as that call id is on an attempt; ``applied_at`` NULL means
    not applied yet. ``event_id`` is the provider's dedupe key: a re-delivery is not stored
    twice.
    """

    __tablename__ = "inbox_events"
    __table_args__ = (
        UniqueConstraint("provider", "event_id", name="uq_inbox_events_provider_event"),
        # the sweep's scan: pending events of a provider, oldest first
        Index("ix_inbox_events_pending", "provider", "applied_at", "id"),
        Index("ix_inbox_events_call", "provider", "call_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str] = mapped_column(String(200))
    call_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # the event as received
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CallTranscript(Base):
    """What was said on a call, as its provider sent it, stored beside its attempt rather
    than on it: transcripts are long, and the attempts rows that reports of a million contacts
    stream stay lean. Written in the transaction that settles the call; absent when the
    provider's outcome carries none."""

    __tablename__ = "call_transcripts"

    attempt_id: Mapped[int] = mapped_column(
        ForeignKey("attempts.id", ondelete="CASCADE"), primary_key=True
    )
    transcript: Mapped[Any] = mapped_column(JSON)
