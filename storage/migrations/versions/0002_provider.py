"""Campaigns and attempts name their voice-AI provider; call ids are unique per provider.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Every campaign gets ``provider`` (``'vaani'`` for every existing row and by default), and every
attempt the provider of its campaign at claim time (``'vaani'`` for existing ones), so that a
call id is looked up where it came from. Two providers may well hand out the same call id, so
the unique constraint on ``attempts.call_id`` becomes one on ``(provider, call_id)``. On SQLite
the attempts table is rebuilt (batch mode); ``storage.migrate`` runs that with foreign keys off.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_PROVIDER = "vaani"


def _provider_column() -> sa.Column[str]:
    return sa.Column(
        "provider", sa.String(length=40), nullable=False, server_default=DEFAULT_PROVIDER
    )


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(_provider_column())
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(_provider_column())
        batch.drop_constraint("uq_attempts_call_id", type_="unique")
        batch.create_unique_constraint("uq_attempts_provider_call_id", ["provider", "call_id"])


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_constraint("uq_attempts_provider_call_id", type_="unique")
        batch.create_unique_constraint("uq_attempts_call_id", ["call_id"])
        batch.drop_column("provider")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("provider")
