"""Use case: download the audio of a campaign's answered calls (``campaign recordings``).

Operators review calls by ear. Every attempt of the campaign whose outcome is ``answered``
has its recording fetched from the provider (a :class:`~scheduler.providers.base.
RecordingSource`: Vaani's ``GET /api/stream/{call_id}``), streamed to
``DIR/<attempt_id>-<call_id>.ogg``. The command is resumable and safe to run again:

* a file is written to ``NAME.part`` first and appears under its name only once complete,
  by a hard link that fails rather than replace anything (then the ``.part`` is removed), so
  a file under a final name is always a whole recording;
* a final file already there is skipped (downloaded by an earlier run); a ``.part`` left by
  a run that stopped resumes with ``Range: bytes=<its size>-`` (a server that answers 200
  instead sends the whole recording again, and the ``.part`` starts over);
* nothing that is not ours is ever replaced: a name taken by a directory, a symlink or
  anything but a regular file is skipped with a warning, and no target may be the database
  or the command's input (:func:`campaigns.outputs.refuse_protected`, checked for every
  target before the first request).

A call the provider has no recording for (404) is counted and skipped; an account problem
(401/402/403) or an API that cannot be reached raises, ending the command (exit 3), with the
``.part`` of the file in progress kept for the next run. A connection lost midway through a
recording resumes at once, up to :data:`MAX_RESUMES` times.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from campaigns.errors import UserError
from campaigns.outputs import Protected, refuse_protected
from scheduler.errors import AnswerLostError, APIStatusError, NotFoundError
from scheduler.providers.base import RecordingSource
from storage.recordings import AnsweredCall

FILE_SUFFIX = ".ogg"
PART_SUFFIX = ".part"
#: how many times a recording whose connection broke midway is resumed within one run
MAX_RESUMES = 2
#: a call id in a file name: letters, digits, dot, dash and underscore, at most this long
MAX_ID_CHARS = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def recording_name(attempt_id: int, call_id: str) -> str:
    """``<attempt_id>-<call_id>.ogg`` with the call id made safe for any file system (no
    separator, no leading dot, bounded length); the attempt id keeps names unique."""
    safe = _UNSAFE.sub("_", call_id).strip("._")[:MAX_ID_CHARS] or "call"
    return f"{attempt_id}-{safe}{FILE_SUFFIX}"


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where one answered call's recording goes."""

    call: AnsweredCall
    path: Path

    @property
    def part(self) -> Path:
        return self.path.with_name(self.path.name + PART_SUFFIX)


@dataclass(kw_only=True)
class FileDone:
    """What became of one call's recording."""

    name: str
    #: downloaded, resumed, present (already there), unavailable (404), skipped (not ours)
    status: str
    bytes: int = 0
    note: str | None = None


@dataclass(kw_only=True)
class RecordingsSummary:
    """What one run did, for the summary line and ``--json``."""

    directory: str
    files: list[FileDone] = field(default_factory=list)

    def count(self, *statuses: str) -> int:
        return sum(1 for f in self.files if f.status in statuses)

    @property
    def downloaded_bytes(self) -> int:
        return sum(f.bytes for f in self.files if f.status in ("downloaded", "resumed"))

    def as_dict(self) -> dict[str, object]:
        return {
            "directory": self.directory,
            "downloaded": self.count("downloaded", "resumed"),
            "resumed": self.count("resumed"),
            "bytes": self.downloaded_bytes,
            "already_there": self.count("present"),
            "not_available": self.count("unavailable"),
            "skipped": self.count("skipped"),
            "files": [
                {"name": f.name, "status": f.status, "bytes": f.bytes, "note": f.note}
                for f in self.files
            ],
        }


def size_text(n: int) -> str:
    """``"3.4 MB"``, ``"12.0 KB"``, ``"512 B"`` (decimal units, as file managers show)."""
    if n < 1000:
        return f"{n} B"
    exp = min(3, (len(str(n)) - 1) // 3)  # 1000s: 4-6 digits KB, 7-9 MB, more GB
    return f"{n / 1000**exp:.1f} {('KB', 'MB', 'GB')[exp - 1]}"


def prepare(
    calls: Sequence[AnsweredCall], out_dir: str | Path, protected: Sequence[Protected]
) -> list[Target]:
    """The targets in ``out_dir`` (created when missing), each checked against
    ``protected`` before anything is fetched. UserError naming the path otherwise."""
    directory = Path(out_dir)
    refuse_protected(directory, protected)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"--out {directory}: is not a directory; name a directory.") from None
    except OSError as exc:
        raise UserError(f"--out {directory}: cannot create it ({exc.strerror or exc}).") from None
    if not directory.is_dir():
        raise UserError(f"--out {directory}: is not a directory; name a directory.")
    targets = [
        Target(call=c, path=directory / recording_name(c.attempt_id, c.call_id)) for c in calls
    ]
    for t in targets:
        refuse_protected(t.path, protected)
        refuse_protected(t.part, protected)
    return targets


def _kind(path: Path) -> str | None:
    """None when nothing is at ``path``, "file" for a regular file, else what it is."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISREG(st.st_mode):
        return "file"
    return "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"


async def download_all(
    source: RecordingSource,
    targets: Sequence[Target],
    directory: str,
    *,
    on_file: Callable[[FileDone], None] | None = None,
) -> RecordingsSummary:
    """Fetch every target's recording in turn (see the module docstring); account and
    connection failures propagate, 404s and names that are not ours are counted."""
    summary = RecordingsSummary(directory=directory)
    for target in targets:
        done = await _one(source, target)
        summary.files.append(done)
        if on_file is not None:
            on_file(done)
    return summary


async def _one(source: RecordingSource, target: Target) -> FileDone:
    name = target.path.name
    final = _kind(target.path)
    if final == "file":
        return FileDone(name=name, status="present")
    if final is not None:
        return FileDone(name=name, status="skipped", note=f"{name} exists and is {final}")
    part = _kind(target.part)
    if part not in (None, "file"):
        return FileDone(
            name=name, status="skipped", note=f"{target.part.name} exists and is {part}"
        )
    resumed = part == "file" and target.part.stat().st_size > 0
    try:
        written = await _fetch(source, target)
    except NotFoundError:
        return FileDone(name=name, status="unavailable", note="no recording (404)")
    try:
        os.link(target.part, target.path)  # never replaces: fails if the name was taken
    except FileExistsError:
        return FileDone(
            name=name,
            status="skipped",
            note=f"{name} appeared while downloading; left as it is ({target.part.name} kept)",
        )
    os.unlink(target.part)
    return FileDone(name=name, status="resumed" if resumed else "downloaded", bytes=written)


async def _fetch(source: RecordingSource, target: Target) -> int:
    """Fill ``target.part`` with the whole recording; return how many bytes this run wrote."""
    written = 0
    restarted = False
    for attempt in range(MAX_RESUMES + 1):
        offset = target.part.stat().st_size if target.part.exists() else 0
        try:
            async with source.stream_recording(target.call.call_id, offset=offset) as rec:
                with open(target.part, "ab" if rec.offset else "wb") as f:
                    if rec.offset and rec.offset != offset:  # the server chose where to start
                        if rec.offset > offset:
                            raise UserError(
                                f"{target.path.name}: the server resumed at byte {rec.offset}, "
                                f"past the {offset} already downloaded"
                            )
                        f.truncate(rec.offset)
                    async for chunk in rec.chunks:
                        f.write(chunk)
                        written += len(chunk)
                    f.flush()
                    os.fsync(f.fileno())
                    size = os.fstat(f.fileno()).st_size
                if rec.total is not None and size != rec.total:
                    raise AnswerLostError(
                        f"the recording ended after {size} of {rec.total} bytes",
                        method="GET",
                        path=f"recording of {target.call.call_id}",
                    )
            return written
        except APIStatusError as exc:
            if exc.status_code == 416 and offset and not restarted:  # the .part is not ours
                restarted = True
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(target.part)
                continue
            raise
        except AnswerLostError:
            if attempt == MAX_RESUMES:
                raise
    raise AssertionError("unreachable")
