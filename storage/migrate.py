"""Bring a database to the current schema."""

from __future__ import annotations

from sqlalchemy import Engine

from storage.models import Base


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema of ``engine``'s database (idempotent)."""
    Base.metadata.create_all(engine)
