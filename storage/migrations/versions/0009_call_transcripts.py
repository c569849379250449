"""Transcripts are kept: one ``call_transcripts`` row per settled call whose outcome had one.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

A table of its own, keyed by the attempt (deleted with it), so that the attempts rows a report
streams stay as lean as before. Only a new table: nothing existing changes, and calls settled
before this revision simply have no transcript.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# frozen here, as in 0001
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "call_transcripts",
        sa.Column("attempt_id", BigId, nullable=False),
        sa.Column("transcript", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["attempts.id"],
            name="fk_call_transcripts_attempt_id_attempts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("attempt_id", name="pk_call_transcripts"),
    )


def downgrade() -> None:
    op.drop_table("call_transcripts")
