"""A file written whole or not at all: temp file beside the target, then one rename.

The report and the rejects file are written through :func:`atomic_output`, so that a failed
export or import never leaves a half-written file behind, and a reader never sees one. The
temporary file lives in the target's directory (a rename across file systems is a copy),
is flushed and fsynced before the rename, and an existing file's permissions are kept.

This is the one place that decides how a path is written; ``campaigns.cli.report_cmd`` and
``campaigns.importer.rejects`` each open their destination in one small function built on it,
so a stricter writer (one that refuses to overwrite the database or an input) swaps in there.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def _mode_for(path: Path) -> int:
    """The permissions the new file gets: the old file's, else the umask's default."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[BinaryIO]:
    """Yield a binary stream; when the block ends, it replaces ``path`` in one rename. When
    the block raises, the temporary file is removed and ``path`` is left as it was.

    Raises ``OSError`` when the directory cannot take the temporary file (the caller names
    the option in its message).
    """
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
