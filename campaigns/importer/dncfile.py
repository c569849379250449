"""Do-not-call files: ``--dnc FILE`` at import and ``vaani-campaigns dnc import FILE``.

Either a CSV with a phone column (found by the importer's rules, see
:mod:`campaigns.importer.columns`) or a plain list with one number per line. In a plain list,
blank lines and lines starting with ``#`` are ignored, and a first line that is not a number
is taken as a header. Numbers are parsed like contact numbers (``--region`` for those
written without a country code) and compared in E.164. A binary file (random bytes, a
spreadsheet workbook) is refused like a contact file would be, never read as a list of
nothing but rejected lines; a byte that does not decode names its line and offset.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from campaigns.errors import UserError
from campaigns.importer.badbytes import undecodable_error
from campaigns.importer.columns import PHONE_NAMES, _norm
from campaigns.importer.phones import PhoneParser
from campaigns.importer.reader import sniff


@dataclass(frozen=True, kw_only=True)
class DncRejected:
    """A line of a do-not-call file that holds no usable number."""

    line: int
    raw: str
    reason: str


def read_dnc_file(
    path: Path, parser: PhoneParser, *, given_as: str = "--dnc"
) -> tuple[list[str], list[DncRejected]]:
    """The E.164 numbers of ``path`` (first occurrence order, no repeats), and the rows that
    could not be read as a number. An empty file is an empty list. ``given_as`` names where
    the path came from, for the hint of a missing file."""
    try:
        if path.stat().st_size == 0:
            return [], []
    except OSError:
        pass  # sniff() names the problem
    try:
        fmt = sniff(path, given_as=given_as)
    except UserError as exc:
        if "is empty" in str(exc):
            return [], []
        raise
    numbers: dict[str, None] = {}
    rejected: list[DncRejected] = []
    column = 0
    with path.open("r", encoding=fmt.encoding, newline="") as fh:
        reader = csv.reader(fh, delimiter=fmt.delimiter)
        try:
            for row_no, row in enumerate(reader, start=1):
                cells = [c.strip() for c in row]
                if row_no == 1 and cells:
                    cells[0] = cells[0].lstrip("\ufeff")
                    normed = [_norm(c) for c in cells]
                    hits = [i for i, n in enumerate(normed) if n in PHONE_NAMES]
                    if hits:
                        column = min(hits, key=lambda i: PHONE_NAMES.index(normed[i]))
                        continue
                if not cells or not any(cells) or cells[0].startswith("#"):
                    continue
                raw = cells[column] if column < len(cells) else ""
                result = parser.parse(raw)
                if result.e164 is None:
                    if row_no == 1:
                        continue  # a header line such as "Do not call"
                    rejected.append(
                        DncRejected(line=row_no, raw=raw, reason=result.error or "invalid")
                    )
                    continue
                numbers[result.e164] = None
        except UnicodeDecodeError as exc:
            raise undecodable_error(path, fmt, exc) from None
        except csv.Error as exc:
            raise UserError(f"{path}: not a readable list of numbers ({exc}).") from None
    return list(numbers), rejected
