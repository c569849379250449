"""The rejects file (``--rejects FILE.csv``): every row that will not be dialled, and why.

Columns: ``row`` (the spreadsheet row number: header = 1, first contact = 2), ``reason``,
then the file's own columns with the row's values as written. Cells that a spreadsheet would
run as a formula are prefixed with ``'`` (see :mod:`campaigns.csvsafe`); nothing else is
changed. The file appears only when the import commits (:func:`open_rejects` is entered
around the import's transaction), so a failed import leaves no rejects file behind.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from campaigns.csvsafe import safe_row
from campaigns.importer.rows import REASON_MISSING, REASON_NO_ZONE
from campaigns.outputs import Protected, open_output


class _Utf8Text:
    """The text side of a binary stream, for the csv module."""

    def __init__(self, binary: BinaryIO) -> None:
        self._binary = binary

    def write(self, s: str) -> int:
        return self._binary.write(s.encode("utf-8"))


class RejectsWriter:
    """Writes rejected rows, under a header of the file's own columns, to a binary stream."""

    def __init__(self, stream: BinaryIO, headers: list[str]) -> None:
        self.count = 0
        self._writer = csv.writer(_Utf8Text(stream))
        self._writer.writerow(safe_row(["row", "reason", *headers]))

    def add(self, row_number: int, reason: str, values: list[str]) -> None:
        """One rejected row: its spreadsheet row number, why, and its cells as written."""
        self.count += 1
        self._writer.writerow(safe_row([str(row_number), reason, *values]))


@contextlib.contextmanager
def open_rejects(
    path: Path | None, headers: list[str], *, protected: Iterable[Protected] = ()
) -> Iterator[RejectsWriter | None]:
    """The rejects file at ``path`` (None: no file asked for), written whole when the block
    ends without an error and not at all otherwise, through :func:`campaigns.outputs.open_output`
    (which refuses the ``protected`` paths: the database and the command's inputs). This is the
    one place that opens the rejects destination."""
    if path is None:
        yield None
        return
    with open_output(path, protected=protected) as stream:
        yield RejectsWriter(stream, headers)


def reason_bucket(reason: str) -> str:
    """A short category of a reject reason, for the summary counts of an import."""
    if reason.startswith("duplicate"):
        return "duplicate"
    if reason == REASON_MISSING:
        return "missing number"
    if reason.startswith("invalid phone number"):
        return "invalid number"
    if reason.startswith("unknown time zone"):
        return "unknown time zone"
    if reason == REASON_NO_ZONE:
        return "no time zone"
    if "never opens" in reason:
        return "outside calling window"
    return reason
