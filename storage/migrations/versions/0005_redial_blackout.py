"""Campaigns get an escalating re-dial schedule, blackout dates and observed public holidays.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Three nullable columns on ``campaigns`` (NULL: none, which is what every existing campaign
had): ``retry_schedule`` (JSON list of seconds), ``skip_dates`` (JSON list of ISO dates) and
``holidays`` (``"IN,US"`` or ``"auto"``). Only additions: nothing existing changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("retry_schedule", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("skip_dates", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("holidays", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("holidays")
        batch.drop_column("skip_dates")
        batch.drop_column("retry_schedule")
