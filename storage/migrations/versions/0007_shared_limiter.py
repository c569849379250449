"""Slots count only calls that may be live; a rate limit shared by the daemons of a database.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

* ``attempts.slot_freed_at``: when a live attempt stopped counting against the concurrency
  cap (its call was seen ended in the history, or a lost answer was not in a history read past
  its time). NULL for every existing row: each keeps its slot as before.
* ``rate_buckets``: one row per (provider, SHA-256 fingerprint of the API key -- never the
  key) holding the theoretical arrival time of a GCRA shared by every daemon on the database,
  from which daemons take small batches of requests (``storage.ratebuckets``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("slot_freed_at", sa.DateTime(), nullable=True))
    op.create_table(
        "rate_buckets",
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("key_fp", sa.String(length=64), nullable=False),
        sa.Column("tat", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("provider", "key_fp", name="pk_rate_buckets"),
    )


def downgrade() -> None:
    op.drop_table("rate_buckets")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("slot_freed_at")
