"""The webhook inbox: every verified event a provider pushed to ``run --listen``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

One row per event (unique per provider and event id, so a re-delivery is stored once), kept
with its payload; ``applied_at`` stays NULL until the event has settled its call (an event may
arrive before dispatch has recorded the call id). Only a new table: nothing existing changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# frozen here, as in 0001: UTCDateTime is a plain DateTime (naive UTC) in the database
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "inbox_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("call_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("applied_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inbox_events"),
        sa.UniqueConstraint("provider", "event_id", name="uq_inbox_events_provider_event"),
    )
    op.create_index("ix_inbox_events_pending", "inbox_events", ["provider", "applied_at", "id"])
    op.create_index("ix_inbox_events_call", "inbox_events", ["provider", "call_id"])


def downgrade() -> None:
    op.drop_index("ix_inbox_events_call", table_name="inbox_events")
    op.drop_index("ix_inbox_events_pending", table_name="inbox_events")
    op.drop_table("inbox_events")
