"""``campaigns.atomic_output``: a file is replaced whole, or left as it was."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from campaigns.atomic_output import atomic_output


def test_replaces_whole_and_keeps_permissions(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    with atomic_output(path) as out:
        out.write(b"new ")
        assert path.read_bytes() == b"old"  # nobody sees a half-written file
        out.write(b"bytes")
    assert path.read_bytes() == b"new bytes"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]


def test_new_file_gets_the_umask_default(tmp_path: Path) -> None:
    path = tmp_path / "new.csv"
    old = os.umask(0o022)
    try:
        with atomic_output(path) as out:
            out.write(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600


def test_failure_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="half-way"), atomic_output(path) as out:
        out.write(b"partial")
        raise RuntimeError("half-way")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]


def test_missing_directory_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), atomic_output(tmp_path / "nope" / "r.csv"):
        pass
