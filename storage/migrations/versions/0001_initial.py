"""The initial schema: campaigns, contacts, attempts, suppressions, daemons, service state.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Written from ``storage.models`` with Alembic's autogenerate and reviewed by hand. Types are
frozen here rather than imported from the models (a migration must keep meaning what it meant
when it was written): ``UTCDateTime`` is a plain ``DateTime`` (naive UTC) in the database. The
partial unique indexes are the database's own guard for invariant 1 (at most one live attempt
per contact) and for the do-not-call list (one global entry, one per campaign per number).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT keys that still autoincrement on SQLite (where only INTEGER PRIMARY KEY does)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# the live attempt states (storage.states.ATTEMPT_LIVE) at the time of this revision
LIVE_ATTEMPT = "state IN ('accepted', 'reserved', 'unknown')"


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("agent_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("window_start", sa.String(length=5), nullable=False),
        sa.Column("window_end", sa.String(length=5), nullable=False),
        sa.Column("days", sa.String(length=40), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=2), nullable=True),
        sa.Column("start_at", sa.DateTime(), nullable=True),
        sa.Column("end_at", sa.DateTime(), nullable=True),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("retry_delay_s", sa.Integer(), nullable=False),
        sa.Column("retry_delays", sa.JSON(), nullable=False),
        sa.Column("redial_voicemail", sa.Boolean(), nullable=False),
        sa.Column("daily_cap_per_number", sa.Integer(), nullable=True),
        sa.Column("outbound_number", sa.String(length=32), nullable=True),
        sa.Column("voice", sa.String(length=100), nullable=True),
        sa.Column("call_options", sa.JSON(), nullable=False),
        sa.Column("opt_out_entities", sa.JSON(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("phone_column", sa.String(length=200), nullable=True),
        sa.Column("name_column", sa.String(length=200), nullable=True),
        sa.Column("source_file", sa.Text(), nullable=True),
        sa.Column("import_stats", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_index(op.f("ix_campaigns_status"), "campaigns", ["status"], unique=False)
    op.create_table(
        "daemons",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daemons")),
    )
    op.create_table(
        "service_state",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_service_state")),
    )
    op.create_table(
        "contacts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("campaign_id", BigId, nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("phone_e164", sa.String(length=20), nullable=True),
        sa.Column("raw_phone", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("timezones", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claim_expires_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_contacts_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.UniqueConstraint("campaign_id", "phone_e164", name="uq_contacts_campaign_phone"),
        sa.UniqueConstraint("campaign_id", "row_number", name="uq_contacts_campaign_row"),
    )
    op.create_index(
        "ix_contacts_due",
        "contacts",
        ["campaign_id", "state", "next_attempt_at", "id"],
        unique=False,
    )
    op.create_index("ix_contacts_phone", "contacts", ["phone_e164"], unique=False)
    op.create_table(
        "suppressions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("phone_e164", sa.String(length=20), nullable=False),
        sa.Column("campaign_id", BigId, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_suppressions_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
    )
    op.create_index("ix_suppressions_phone", "suppressions", ["phone_e164"], unique=False)
    op.create_index(
        "uq_suppressions_campaign",
        "suppressions",
        ["phone_e164", "campaign_id"],
        unique=True,
        sqlite_where=sa.text("campaign_id IS NOT NULL"),
        postgresql_where=sa.text("campaign_id IS NOT NULL"),
    )
    op.create_index(
        "uq_suppressions_global",
        "suppressions",
        ["phone_e164"],
        unique=True,
        sqlite_where=sa.text("campaign_id IS NULL"),
        postgresql_where=sa.text("campaign_id IS NULL"),
    )
    op.create_table(
        "attempts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("contact_id", BigId, nullable=False),
        sa.Column("campaign_id", BigId, nullable=False),
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.Column("phone_e164", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("daemon_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("accepted_at", sa.DateTime(), nullable=True),
        sa.Column("call_id", sa.String(length=200), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("call_status", sa.String(length=50), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("entity", sa.JSON(), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=True),
        sa.Column("call_started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("outcome_deadline_at", sa.DateTime(), nullable=True),
        sa.Column("details_fetched", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_attempts_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_attempts_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempts")),
        sa.UniqueConstraint("call_id", name=op.f("uq_attempts_call_id")),
        sa.UniqueConstraint("contact_id", "attempt_no", name="uq_attempts_contact_no"),
    )
    op.create_index("ix_attempts_campaign", "attempts", ["campaign_id", "contact_id"], unique=False)
    op.create_index(
        "ix_attempts_phone_time", "attempts", ["phone_e164", "created_at"], unique=False
    )
    op.create_index("ix_attempts_state", "attempts", ["state", "created_at"], unique=False)
    op.create_index(
        "uq_attempts_one_live",
        "attempts",
        ["contact_id"],
        unique=True,
        sqlite_where=sa.text(LIVE_ATTEMPT),
        postgresql_where=sa.text(LIVE_ATTEMPT),
    )


def downgrade() -> None:
    for table in ("attempts", "suppressions", "contacts", "service_state", "daemons", "campaigns"):
        op.drop_table(table)
