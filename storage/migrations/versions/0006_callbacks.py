"""Callbacks the contact asks for: the campaign's cap and entity keys, the contact's count and
pending time, and on each attempt the callback its outcome scheduled (or why it was ignored).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Every column is nullable or has a server default, so existing rows need no backfill: a campaign
made before callbacks gets ``max_callbacks = 2`` and the default entity keys (an empty list
means ``campaigns.callbacks.DEFAULT_KEYS``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(
            sa.Column("max_callbacks", sa.Integer(), nullable=False, server_default="2")
        )
        batch.add_column(sa.Column("callback_keys", sa.JSON(), nullable=True))
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("callbacks", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("callback_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("callback_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("callback_note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("callback_note")
        batch.drop_column("callback_at")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("callback_at")
        batch.drop_column("callbacks")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("callback_keys")
        batch.drop_column("max_callbacks")
