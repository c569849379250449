"""campaigns.outputs: every output file the product writes, on real files, links and FIFOs."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from campaigns.errors import UserError
from campaigns.outputs import (
    OutputFile,
    Protected,
    database_files,
    open_output,
    protected_paths,
)
from storage.engine import make_engine, reading
from storage.migrate import upgrade


@pytest.fixture
def live_db(tmp_path: Path) -> Iterator[Path]:
    """A real SQLite database in WAL mode, with a connection open (so -wal and -shm exist)."""
    path = tmp_path / "t.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with reading(engine).connect() as conn:  # a reader: holds no write lock
        conn.execute(text("SELECT count(*) FROM campaigns"))
        assert Path(f"{path}-wal").exists() and Path(f"{path}-shm").exists()
        yield path
    engine.dispose()


def _unchanged_db(path: Path) -> None:
    engine = make_engine(f"sqlite:///{path}")
    with reading(engine).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM campaigns")).scalar() == 0
    engine.dispose()


def _listing(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def test_database_files_of_sqlite_urls_and_none_for_postgresql(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    expected = (db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}-journal"))
    assert database_files(f"sqlite:///{db}") == expected
    assert database_files(str(db)) == expected  # a bare path is a SQLite file
    assert database_files("postgresql://u@localhost/campaigns") == ()
    assert database_files("sqlite:///:memory:") == ()
    assert database_files(None) == ()


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", "-journal"])
def test_the_database_and_its_side_files_are_refused(live_db: Path, suffix: str) -> None:
    target = Path(f"{live_db}{suffix}")
    before = target.read_bytes() if target.exists() else None
    protected = protected_paths(f"sqlite:///{live_db}")
    with pytest.raises(UserError) as err, open_output(target, protected=protected) as fh:
        fh.write(b"phone\n")
    assert str(target) in str(err.value) and "the campaign database" in str(err.value)
    assert (target.read_bytes() if target.exists() else None) == before
    _unchanged_db(live_db)


def test_a_symlink_and_a_hard_link_to_the_database_are_refused(
    live_db: Path, tmp_path: Path
) -> None:
    soft, hard = tmp_path / "report.csv", tmp_path / "other-name.csv"
    soft.symlink_to(live_db)
    os.link(live_db, hard)
    protected = protected_paths(f"sqlite:///{live_db}")
    for target in (soft, hard):
        with (
            pytest.raises(UserError, match="refusing to write"),
            open_output(target, protected=protected) as fh,
        ):
            fh.write(b"x")
    assert soft.is_symlink()
    _unchanged_db(live_db)


def test_an_input_of_the_command_is_refused(tmp_path: Path) -> None:
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("phone\n+919800000001\n" * 100)
    original = contacts.read_bytes()
    protected = protected_paths(None, contacts, None)
    with (
        pytest.raises(UserError, match=r"an input of this command.*Choose another output"),
        open_output(tmp_path / "." / "contacts.csv", protected=protected) as fh,
    ):
        fh.write(b"row,reason\n")
    assert contacts.read_bytes() == original


def test_a_new_file_is_created_with_the_usual_permissions(tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    old = os.umask(0o022)
    try:
        with open_output(target) as fh:
            fh.write(b"a,b\n1,2\n")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"a,b\n1,2\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert _listing(tmp_path) == {"report.csv"}


def test_an_existing_file_is_replaced_and_keeps_its_permission_bits(tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    target.write_bytes(b"old content\n")
    target.chmod(0o640)
    inode = target.stat().st_ino
    with open_output(target) as fh:
        fh.write(b"new content\n")
    assert target.read_bytes() == b"new content\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert target.stat().st_ino != inode  # replaced by rename, not rewritten in place
    assert _listing(tmp_path) == {"report.csv"}


def test_root_replacing_a_users_file_keeps_its_owner(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give a file to another user")  # the CI runs as root
    target = tmp_path / "report.csv"
    target.write_bytes(b"old\n")
    os.chown(target, 65534, 65534)
    with open_output(target) as fh:
        fh.write(b"new\n")
    st = target.stat()
    assert (st.st_uid, st.st_gid, target.read_bytes()) == (65534, 65534, b"new\n")


@pytest.mark.parametrize("failure", [RuntimeError("boom"), KeyboardInterrupt()])
def test_a_failure_midway_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, failure: BaseException
) -> None:
    target = tmp_path / "report.csv"
    target.write_bytes(b"old content\n")
    with pytest.raises(type(failure)), open_output(target) as fh:
        fh.write(b"half of the new")
        raise failure
    assert target.read_bytes() == b"old content\n"
    assert _listing(tmp_path) == {"report.csv"}
    missing = tmp_path / "new.csv"
    with pytest.raises(RuntimeError), open_output(missing) as fh:
        fh.write(b"x")
        raise RuntimeError("boom")
    assert _listing(tmp_path) == {"report.csv"}


def test_output_file_appears_only_on_commit(tmp_path: Path) -> None:
    target = tmp_path / "rejects.csv"
    out = OutputFile(target)
    out.stream.write(b"row,reason\n")
    out.stream.flush()
    assert not target.exists()
    out.commit()
    assert target.read_bytes() == b"row,reason\n"
    out2 = OutputFile(target)
    out2.stream.write(b"other")
    out2.discard()
    assert target.read_bytes() == b"row,reason\n"
    assert _listing(tmp_path) == {"rejects.csv"}


def test_a_symlink_is_followed_and_stays_a_symlink(tmp_path: Path) -> None:
    real_dir = tmp_path / "reports"
    real_dir.mkdir()
    real = real_dir / "march.csv"
    real.write_bytes(b"old\n")
    real.chmod(0o600)
    link = tmp_path / "latest.csv"
    link.symlink_to(real)
    with open_output(link) as fh:
        fh.write(b"new\n")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == b"new\n"
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert _listing(real_dir) == {"march.csv"}
    dangling = tmp_path / "next.csv"
    dangling.symlink_to(real_dir / "next-real.csv")
    with open_output(dangling) as fh:
        fh.write(b"created\n")
    assert dangling.is_symlink() and (real_dir / "next-real.csv").read_bytes() == b"created\n"


def test_a_fifo_is_written_into_and_its_reader_gets_every_byte(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    payload = b"".join(b"+9198%08d,name %d\n" % (i, i) for i in range(50_000))
    received: list[bytes] = []

    def reader() -> None:
        with open(fifo, "rb") as fh:
            received.append(fh.read())

    thread = threading.Thread(target=reader)
    thread.start()
    with open_output(fifo) as fh:
        for start in range(0, len(payload), 65536):
            fh.write(payload[start : start + 65536])
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert received == [payload]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert _listing(tmp_path) == {"pipe"}


def test_a_character_device_is_written_into_never_replaced() -> None:
    before = os.stat("/dev/null")
    with open_output("/dev/null") as fh:
        fh.write(b"discarded\n")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


def test_dash_is_stdout(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    with open_output("-") as fh:
        fh.write(b"to stdout\n")
    assert capfdbinary.readouterr().out == b"to stdout\n"


def test_a_directory_or_a_missing_parent_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is a directory"):
        OutputFile(tmp_path)
    missing = tmp_path / "no-such-dir" / "report.csv"
    with pytest.raises(UserError, match="does not exist"):
        OutputFile(missing)
    assert not missing.parent.exists()


def test_refusal_names_what_is_protected(tmp_path: Path) -> None:
    keep = tmp_path / "keep.txt"
    keep.write_text("x")
    with pytest.raises(UserError) as err:
        OutputFile(keep, protected=[Protected(path=keep, what="the do-not-call list")])
    assert "the do-not-call list" in str(err.value) and "--force" not in str(err.value)
    assert keep.read_text() == "x"


def test_stdout_redirected_onto_the_database_is_refused(live_db: Path) -> None:
    """``report 1 --out - >> t.db``: the shell opened the database as stdout."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from campaigns.errors import UserError\n"
        "from campaigns.outputs import open_output, protected_paths\n"
        "try:\n"
        f"    with open_output('-', protected=protected_paths({str(live_db)!r})) as fh:\n"
        "        fh.write(b'phone\\n')\n"
        "except UserError as exc:\n"
        "    sys.stderr.write(str(exc))\n"
        "    sys.exit(1)\n"
    )
    before = live_db.read_bytes()
    with live_db.open("ab") as stdout:
        res = subprocess.run(
            [sys.executable, "-c", code], stdout=stdout, stderr=subprocess.PIPE, timeout=60
        )
    assert res.returncode == 1 and b"the campaign database" in res.stderr
    assert live_db.read_bytes() == before
    _unchanged_db(live_db)
