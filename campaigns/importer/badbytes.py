"""Where a file stops decoding: the byte offset and the spreadsheet row, for the error.

The importer reads with pandas, whose decoding error knows only an offset inside its own
buffer. When a read fails, :func:`locate_undecodable` decodes the file again block by block
to find the first bad byte, then counts the CSV records before it the way the importer
numbers rows (header = 1, a quoted line break stays in its row, a blank line is a row), so
the message can say "row 50000, byte offset 1238876". It runs only on that error path.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from campaigns.errors import UserError

if TYPE_CHECKING:
    from campaigns.importer.reader import CsvFormat


@dataclass(frozen=True, kw_only=True)
class BadByte:
    """Where a file stops decoding: its byte ``offset`` (0-based), the ``byte`` there, the
    codec's ``reason``, and the spreadsheet ``row`` holding it (None when the rows before it
    could not be counted)."""

    offset: int
    byte: int
    reason: str
    row: int | None


def locate_undecodable(path: Path, fmt: CsvFormat) -> BadByte | None:
    """The first byte of ``path`` that does not decode as ``fmt.encoding`` (None when the
    whole file decodes). Runs only once a read has failed: it decodes the file again block by
    block, then counts the CSV rows before that byte."""
    encoding, offset = fmt.encoding, 0
    if encoding == "utf-8-sig":  # its decoder hides the BOM from the offsets it reports
        encoding, offset = "utf-8", len(codecs.BOM_UTF8)
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    with path.open("rb") as fh:
        fh.seek(offset)
        while block := fh.read(1 << 20):
            state = decoder.getstate()
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                # exc.object is the decoder's pending bytes followed by this block
                pending = len(state[0])
                bad = offset - pending + exc.start
                return BadByte(
                    offset=bad,
                    byte=exc.object[exc.start],
                    reason=exc.reason,
                    row=_row_at(path, fmt, bad),
                )
            offset += len(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:  # a truncated character at the very end
            bad = offset - len(exc.object) + exc.start
            return BadByte(offset=bad, byte=exc.object[exc.start], reason=exc.reason, row=None)
    return None


def undecodable_error(
    path: Path, fmt: CsvFormat, exc: UnicodeDecodeError | None = None
) -> UserError:
    """The UserError for a file that stops decoding, naming the row and byte offset."""
    where = locate_undecodable(path, fmt)
    if where is None:
        byte = f"byte 0x{exc.object[exc.start]:02x}" if exc is not None else "a byte"
        why = exc.reason if exc is not None else "invalid data"
        return UserError(
            f"{path}: {byte} cannot be decoded as {fmt.encoding} ({why}). Re-save the file "
            "as UTF-8 and try again; nothing was imported."
        )
    row = f"row {where.row}, " if where.row is not None else ""
    return UserError(
        f"{path}: {row}byte offset {where.offset}: byte 0x{where.byte:02x} cannot be decoded "
        f"as {fmt.encoding} ({where.reason}). Re-save the file as UTF-8 and try again; "
        "nothing was imported."
    )


class _Head(io.RawIOBase):
    """The first ``limit`` bytes of a binary file, as a raw stream."""

    def __init__(self, fh: IO[bytes], limit: int) -> None:
        self._fh, self._left = fh, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._left)
        data = self._fh.read(n) if n else b""
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)


def _row_at(path: Path, fmt: CsvFormat, offset: int) -> int | None:
    """The spreadsheet row (header = 1) of the byte at ``offset``: the CSV records before it,
    counted the way the importer counts them (a quoted line break stays in its row, a blank
    line is a row). A sentinel stands in for the byte so that its record always counts."""
    with path.open("rb") as fh:
        text = io.TextIOWrapper(
            io.BufferedReader(_Head(fh, offset)), encoding=fmt.encoding, newline=""
        )
        try:
            return sum(1 for _ in csv.reader(_with_sentinel(text), delimiter=fmt.delimiter))
        except (csv.Error, UnicodeDecodeError):
            return None


def _with_sentinel(lines: Iterator[str] | IO[str]) -> Iterator[str]:
    last: str | None = None
    for line in lines:
        if last is not None:
            yield last
        last = line
    if last is None or last.endswith(("\n", "\r")):
        if last is not None:
            yield last
        yield "?"
    else:
        yield last + "?"
