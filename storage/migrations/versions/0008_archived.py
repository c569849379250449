"""Campaigns can be archived: hidden from ``campaign list`` (``--all`` shows them).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

``campaigns.archived_at`` is NULL for every existing campaign (none is archived) and set to the
instant of ``campaign archive``. Nothing else changes: an archived campaign keeps its contacts,
attempts and report.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("archived_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("archived_at")
