"""The circuit breaker: per-campaign settings, the start of its window, the errors it saw.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

Every campaign, old ones included, gets the breaker on with the defaults (more than 50 % of
the last 20 calls failed: the campaign pauses); ``breaker_since`` NULL means the window starts
at the campaign's first call, ``breaker_errors`` NULL that it has not tripped. The index
``ix_attempts_settled`` serves the window's query: a campaign's newest settled attempts,
read from the end of the index (``storage/breaker.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(
            sa.Column("breaker_enabled", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(
            sa.Column("breaker_threshold", sa.Integer(), nullable=False, server_default="50")
        )
        batch.add_column(
            sa.Column("breaker_window", sa.Integer(), nullable=False, server_default="20")
        )
        batch.add_column(sa.Column("breaker_since", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("breaker_errors", sa.JSON(), nullable=True))
    op.create_index(
        "ix_attempts_settled", "attempts", ["campaign_id", "finished_at", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_attempts_settled", table_name="attempts")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("breaker_errors")
        batch.drop_column("breaker_since")
        batch.drop_column("breaker_window")
        batch.drop_column("breaker_threshold")
        batch.drop_column("breaker_enabled")
