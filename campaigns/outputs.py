"""The one way the product writes a file the user named (reports, rejects, exports).

A mistyped path must never destroy the user's data, so every output goes through
:func:`open_output` (or :class:`OutputFile` when the file must appear only on a later commit),
which applies one rule:

* **Protected paths are refused** before a byte is written: the database and its ``-wal``,
  ``-shm`` and ``-journal`` files, and the inputs of the same command. A target is the same
  file when its resolved real path matches, or when it is the same inode (``st_dev``,
  ``st_ino``), so a symlink or a hard link to the database is refused too. There is no
  escape hatch: an output never needs to share a name with its own input.
* **A regular file** (existing or new) is written to a temporary file in the same directory,
  fsynced, renamed over the target and the directory fsynced: readers see the old content
  or the new, never half of it. An existing file keeps its permission bits (and its owner,
  when the process may set it). A hard link to it elsewhere keeps the old content. A failure or
  Ctrl-C midway leaves the old file intact and no temporary file behind.
* **A symlink is followed**: the link stays, the file it points to gets the new content (by
  the same atomic replacement, in the target's own directory).
* **A FIFO, a character device** (``/dev/null``, a terminal) **or** ``-`` (stdout) is written
  into: it is never replaced, truncated or unlinked.
* A directory, a missing parent directory, or any other kind of file is a clear UserError.

:attr:`OutputFile.regular` says which of these the target is: a writer that marks a file for
a spreadsheet (the report's UTF-8 byte order mark) does so only for a regular file, never
into a pipe or a terminal where the next program would read the mark as data.

Usage::

    with open_output(out, protected=protected_paths(db_url, csv_path)) as binary:
        binary.write(b"...")
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from campaigns.errors import UserError
from storage.engine import Engine, database_file, sqlite_file

__all__ = [
    "OutputFile",
    "Protected",
    "database_files",
    "open_output",
    "open_output_file",
    "protected_for",
    "protected_paths",
    "refuse_protected",
]

DATABASE_SUFFIXES = ("", "-wal", "-shm", "-journal")


@dataclass(frozen=True, kw_only=True)
class Protected:
    """A path no output may replace, and what it is (said in the refusal)."""

    path: Path
    what: str


def database_files(url: str | None) -> tuple[Path, ...]:
    """The files of a SQLite database URL (or bare path): the database itself and its
    ``-wal``, ``-shm`` and ``-journal`` files, existing or not. Nothing for PostgreSQL (or
    for no URL)."""
    if not url:
        return ()
    path = sqlite_file(url)
    if path is None:
        return ()
    return tuple(Path(f"{path}{suffix}") for suffix in DATABASE_SUFFIXES)


def protected_paths(db_url: str | None, *inputs: str | Path | None) -> tuple[Protected, ...]:
    """What a command must not overwrite: the files of its database, and its input files
    (``None`` entries are skipped, so optional inputs can be passed as they are)."""
    out = [Protected(path=p, what="the campaign database") for p in database_files(db_url)]
    out += [
        Protected(path=Path(p), what="an input of this command")
        for p in inputs
        if p is not None and str(p) != "-"
    ]
    return tuple(out)


def protected_for(engine: Engine, *inputs: str | Path | None) -> tuple[Protected, ...]:
    """:func:`protected_paths` for the database ``engine`` is connected to."""
    path = database_file(engine)
    return protected_paths(str(path) if path is not None else None, *inputs)


def _identity(path: Path | str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _refuse_protected(
    target: str,
    real: str,
    ident: tuple[int, int] | None,
    protected: Iterable[Protected],
) -> None:
    for item in protected:
        same = os.path.realpath(item.path) == real
        if not same and ident is not None:
            same = _identity(item.path) == ident
        if same:
            raise UserError(
                f"{target}: refusing to write here: it is {item.what} ({item.path}); "
                "nothing was written. Choose another output file."
            )


def refuse_protected(target: str | Path, protected: Iterable[Protected]) -> None:
    """UserError when ``target`` is (by real path or inode) one of ``protected``: for a writer
    that makes its own files (``campaign recordings`` writes a directory of them), the same
    refusal :class:`OutputFile` applies."""
    _refuse_protected(str(target), os.path.realpath(target), _identity(target), protected)


class OutputFile:
    """An output being written: :attr:`stream` takes the bytes, :meth:`commit` makes them
    the file's content, :meth:`discard` leaves the target as it was.

    Built for writers whose file must appear only when a larger operation succeeds (the
    rejects file appears when the import commits); :func:`open_output` wraps it for the rest.
    """

    def __init__(
        self, target: str | Path, *, protected: Iterable[Protected] = ()
    ) -> None:
        self.target = str(target)
        self._tmp: str | None = None
        self._final: str | None = None
        self._close_stream = True
        self._done = False
        #: True when the bytes land in a regular file (new, replaced, or stdout redirected
        #: to one); False for a pipe, a terminal, a device or a captured stdout.
        self.regular = True
        protected = tuple(protected)
        if self.target == "-":
            self.regular = False
            # stdout may be no file at all (a test's capture, a notebook): nothing to compare
            with contextlib.suppress(OSError, ValueError, AttributeError):
                out_st = os.fstat(sys.stdout.fileno())
                if stat.S_ISREG(out_st.st_mode):
                    self.regular = True
                    out_id = (out_st.st_dev, out_st.st_ino)
                    _refuse_protected("stdout", "", out_id, protected)
            sys.stdout.flush()
            self.stream: BinaryIO = sys.stdout.buffer
            self._close_stream = False
            return
        real = os.path.realpath(self.target)
        st: os.stat_result | None
        try:
            st = os.stat(self.target)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise UserError(f"{self.target}: cannot write here ({exc.strerror}).") from None
        ident = (st.st_dev, st.st_ino) if st is not None else None
        _refuse_protected(self.target, real, ident, protected)
        if st is None:
            self.stream = self._open_temp(real, mode=None)
        elif stat.S_ISREG(st.st_mode):
            self.stream = self._open_temp(real, mode=stat.S_IMODE(st.st_mode), owner=st)
        elif stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode):
            self.regular = False
            self.stream = self._open_in_place()
        elif stat.S_ISDIR(st.st_mode):
            raise UserError(f"{self.target}: is a directory; name a file to write.")
        else:
            raise UserError(
                f"{self.target}: is not a regular file, a FIFO or a character device; "
                "refusing to write into it."
            )

    def _open_temp(
        self, real: str, *, mode: int | None, owner: os.stat_result | None = None
    ) -> BinaryIO:
        directory = os.path.dirname(real) or "."
        if not os.path.isdir(directory):
            raise UserError(
                f"{self.target}: the directory {directory} does not exist; create it first."
            )
        name = os.path.join(directory, f".{os.path.basename(real)}.{secrets.token_hex(4)}.tmp")
        try:
            # a new file gets 0o666 less the umask, as open() would have given it
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise UserError(f"{self.target}: cannot write here ({exc.strerror}).") from None
        self._tmp, self._final = name, real
        try:
            if owner is not None and (owner.st_uid, owner.st_gid) != (os.geteuid(), os.getegid()):
                # keep the owner when allowed (root replacing a user's file); else ours
                with contextlib.suppress(PermissionError):
                    os.fchown(fd, owner.st_uid, owner.st_gid)
            if mode is not None:
                os.fchmod(fd, mode)  # after fchown, which may clear set-id bits
            return cast(BinaryIO, os.fdopen(fd, "wb"))
        except BaseException:
            os.close(fd)
            os.unlink(name)
            raise

    def _open_in_place(self) -> BinaryIO:
        try:
            # no O_TRUNC and no O_CREAT: the node is written into, never replaced
            fd = os.open(self.target, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise UserError(f"{self.target}: cannot be opened ({exc.strerror}).") from None
        return cast(BinaryIO, os.fdopen(fd, "wb"))

    def commit(self) -> None:
        """Make the bytes written the target's content (atomically, for a regular file)."""
        if self._done:
            return
        self._done = True
        if not self._close_stream:
            self.stream.flush()
            return
        if self._tmp is None:
            self.stream.close()
            return
        assert self._final is not None
        try:
            self.stream.flush()
            os.fsync(self.stream.fileno())
            self.stream.close()
            os.replace(self._tmp, self._final)
        except BaseException as exc:
            self._discard_temp()
            if isinstance(exc, OSError):
                raise UserError(
                    f"{self.target}: could not be written ({exc.strerror}); the file was "
                    "left as it was."
                ) from None
            raise
        self._tmp = None
        _fsync_directory(os.path.dirname(self._final) or ".")

    def discard(self) -> None:
        """Drop what was written: a regular file keeps its old content (or stays absent)."""
        if self._done:
            return
        self._done = True
        if not self._close_stream:
            with contextlib.suppress(OSError, ValueError):
                self.stream.flush()
            return
        self._discard_temp()

    def _discard_temp(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.stream.close()
        if self._tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
            self._tmp = None


def _fsync_directory(directory: str) -> None:
    """Make the rename durable; some filesystems refuse to fsync a directory (ignored)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def open_output_file(
    target: str | Path, *, protected: Iterable[Protected] = ()
) -> Iterator[OutputFile]:
    """The :class:`OutputFile` for ``target`` (its ``stream``, and whether it is a
    ``regular`` file), committed when the block ends normally, discarded (the old file
    intact) when it raises, Ctrl-C included."""
    out = OutputFile(target, protected=protected)
    try:
        yield out
    except BaseException:
        out.discard()
        raise
    out.commit()


@contextlib.contextmanager
def open_output(
    target: str | Path, *, protected: Iterable[Protected] = ()
) -> Iterator[BinaryIO]:
    """A binary stream for ``target``, following the module's rule (see
    :func:`open_output_file`)."""
    with open_output_file(target, protected=protected) as out:
        yield out.stream
