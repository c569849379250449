"""The rejects file (``--rejects FILE.csv``): every row that will not be dialled, and why.

Columns: ``row`` (the spreadsheet row number: header = 1, first contact = 2), ``reason``,
then the file's own columns with the row's values as written. Cells that a spreadsheet would
run as a formula are prefixed with ``'`` (see :mod:`campaigns.csvsafe`); nothing else is
changed. The file is written to a temporary name beside the target and renamed into place
only when the import commits, so a failed import leaves no rejects file behind.
"""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO

from campaigns.csvsafe import safe_row
from campaigns.errors import UserError


class RejectsWriter:
    """Collects rejected rows into ``path``; :meth:`commit` makes the file appear."""

    def __init__(self, path: Path, headers: list[str]) -> None:
        self.path = path
        self.count = 0
        directory = path.parent if str(path.parent) else Path(".")
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        except OSError as exc:
            raise UserError(
                f"{path}: cannot write the rejects file here ({exc.strerror})."
            ) from None
        self._tmp = Path(tmp)
        self._fh: IO[str] = os.fdopen(fd, "w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._fh)
        self._writer.writerow(safe_row(["row", "reason", *headers]))

    def add(self, row_number: int, reason: str, values: list[str]) -> None:
        self.count += 1
        self._writer.writerow(safe_row([str(row_number), reason, *values]))

    def commit(self) -> None:
        """Flush and move the file into place."""
        self._fh.close()
        os.replace(self._tmp, self.path)

    def discard(self) -> None:
        """Drop the temporary file (the import failed)."""
        with contextlib.suppress(OSError):
            self._fh.close()
        with contextlib.suppress(OSError):
            self._tmp.unlink()

    def __enter__(self) -> RejectsWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None or not self._fh.closed:
            self.discard()
