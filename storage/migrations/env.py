"""Alembic's environment for ``storage``: always run online, on a connection handed in.

``storage.migrate`` builds the Alembic ``Config`` in code (no ``alembic.ini`` on disk) and passes
an open connection in ``config.attributes["connection"]``, already inside the transaction that
holds the migration lock; this file only tells Alembic how to compare and render our schema.
For hand work, ``storage.migrate.alembic_config(url)`` gives a Config usable with
``alembic.command`` (revision --autogenerate, history, ...), in which case this file opens its
own connection from ``sqlalchemy.url``.

SQLite cannot ALTER most things, so operations are rendered in batch mode there
(``render_as_batch``): Alembic copies the table, as SQLite's documentation prescribes.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from storage.engine import make_engine
from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported; run them on a database")
run_migrations_online()
