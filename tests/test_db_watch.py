"""storage.engine.watch_database: a SQLite file deleted or replaced under a running daemon."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.engine import DatabaseFileWatch, make_engine, sqlite_file, watch_database
from storage.errors import DatabaseUnavailable
from storage.migrate import upgrade


def _engine(path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    return engine


def test_a_present_unchanged_file_passes_every_check(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "t.db")
    watch = watch_database(engine)
    for _ in range(3):
        with engine.begin() as conn:
            conn.execute(text("SELECT count(*) FROM campaigns"))
        watch.check()
    engine.dispose()


def test_a_deleted_file_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    engine = _engine(path)
    watch = watch_database(engine)
    path.unlink()
    with pytest.raises(DatabaseUnavailable) as err:
        watch.check()
    assert str(path) in str(err.value) and "deleted or replaced" in str(err.value)
    assert "stopping" in str(err.value)
    engine.dispose()


def test_a_file_replaced_by_another_is_noticed(tmp_path: Path) -> None:
    path, other = tmp_path / "t.db", tmp_path / "other.db"
    engine = _engine(path)
    watch = watch_database(engine)
    _engine(other).dispose()
    os.replace(other, path)  # same name, another inode
    with pytest.raises(DatabaseUnavailable, match="deleted or replaced"):
        watch.check()
    engine.dispose()


def test_the_watch_is_built_on_a_file_not_yet_created(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    engine = make_engine(f"sqlite:///{path}")
    watch = watch_database(engine)  # opens a connection: the file now exists
    assert path.exists()
    watch.check()
    engine.dispose()


def test_postgresql_is_a_no_op(pg_url: str) -> None:
    engine = make_engine(pg_url)
    watch = watch_database(engine)
    assert watch.path is None
    watch.check()
    engine.dispose()


def test_sqlite_file_of_urls(tmp_path: Path) -> None:
    assert sqlite_file(f"sqlite:///{tmp_path / 'a.db'}") == tmp_path / "a.db"
    assert sqlite_file(str(tmp_path / "b.db")) == tmp_path / "b.db"
    assert sqlite_file("sqlite://") is None
    assert sqlite_file("postgres://u@h/db") is None
    assert DatabaseFileWatch(None).path is None
