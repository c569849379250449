"""Reading contact CSVs the way people actually save them.

* Encoding, from the first bytes: a byte-order mark says UTF-8, UTF-16 LE or UTF-16 BE;
  without one, UTF-16 is recognised by its zero bytes, otherwise the sample must be valid
  UTF-8, else the file is read as Windows-1252 (or Latin-1 when it uses bytes Windows-1252
  leaves undefined). A byte that does not decode further down the file stops the import
  with the file, the spreadsheet row and the byte offset named (nothing is written).
* Binary files are refused up front: known signatures (xlsx, xls, PDF, images, gzip), NUL
  bytes that are not UTF-16, or, in a file that is not valid UTF-8, a high share of control
  characters in the first KB (random or encrypted bytes, which would otherwise read as one
  enormous cp1252 header). Valid UTF-8 stays text, control characters in cells included.
* Delimiter: comma, semicolon or tab, whichever splits the header into the most columns
  (ties go to the one that splits the first rows alike; comma when in doubt).
* Rows: pandas in chunks (``dtype=str``, ``keep_default_na=False``), so memory does not grow
  with the file and every value stays exactly as written; CRLF, quoted delimiters and
  quoted line breaks are handled by the CSV parser.
* Row numbers are spreadsheet row numbers: the header is row 1, the first contact row 2
  (a quoted line break does not start a new row, a blank line counts as a row).
* Headers: surrounding whitespace dropped (metadata keys: :mod:`campaigns.importer.columns`).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd

from campaigns.errors import UserError
from campaigns.importer.badbytes import undecodable_error

SAMPLE_BYTES = 64 * 1024
DEFAULT_CHUNK_ROWS = 20_000
DELIMITERS = (",", ";", "\t")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
_BINARY_SIGNATURES = {
    b"PK\x03\x04": "a ZIP archive (an Excel .xlsx workbook?)",
    b"\xd0\xcf\x11\xe0": "an old Excel/Office document (.xls)",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"\x1f\x8b": "a gzip archive",
}
# the five bytes Windows-1252 leaves undefined
_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
# control bytes that never appear in text (tab, LF, CR, VT and FF do: VT is a line break
# inside cells in some exports); more than this share of the first KB means binary
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")
BINARY_PROBE_BYTES = 1024
BINARY_CONTROL_SHARE = 0.03
_NOT_TEXT = "Export it as CSV (UTF-8) and try again."


@dataclass(frozen=True, kw_only=True)
class CsvFormat:
    """How a file is to be read: its encoding (a Python codec name) and delimiter."""

    encoding: str
    delimiter: str

    def describe(self) -> str:
        return f"{self.encoding}, {_DELIMITER_NAMES.get(self.delimiter, self.delimiter)}-separated"


def _detect_encoding(path: Path, sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # the codec reads the BOM and picks the byte order
    for signature, what in _BINARY_SIGNATURES.items():
        if sample.startswith(signature):
            raise UserError(
                f"{path}: this is {what}, not a CSV file. Save or export it as CSV "
                "(UTF-8) and try again."
            )
    if b"\x00" in sample:
        even, odd = sample[0::2], sample[1::2]
        # UTF-16 without a BOM: mostly-ASCII text has a zero in every other byte
        if odd.count(0) > 0.7 * len(odd) and even.count(0) == 0:
            return "utf-16-le"
        if even.count(0) > 0.7 * len(even) and odd.count(0) == 0:
            return "utf-16-be"
        raise UserError(
            f"{path}: this looks like a binary file (it contains NUL bytes), not a CSV. "
            + _NOT_TEXT
        )
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"  # valid UTF-8 is text, whatever control characters its cells hold
    except UnicodeDecodeError:
        pass
    # the 8-bit fallbacks decode any byte, random or encrypted ones too: look for control
    # characters, which text in those encodings does not have
    probe = sample[:BINARY_PROBE_BYTES]
    if len(_CONTROL_BYTES.findall(probe)) > BINARY_CONTROL_SHARE * len(probe):
        raise UserError(
            f"{path}: this looks like a binary file (control characters in its first "
            f"{len(probe)} bytes), not a CSV. " + _NOT_TEXT
        )
    return "latin-1" if _CP1252_UNDEFINED.search(sample) else "cp1252"


def _decode_sample(sample: bytes, encoding: str) -> str:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    return decoder.decode(sample, final=False)


def _detect_delimiter(text: str) -> str:
    """The delimiter that splits the header into the most columns (ties: the one that splits
    the first rows like the header most often; comma when nothing splits)."""
    best, best_score = ",", (0, 0)
    for delim in DELIMITERS:
        try:
            rows = list(_first_rows(text, delim, 20))
        except csv.Error:
            continue
        if not rows:
            continue
        width = len(rows[0])
        consistent = sum(1 for r in rows[1:] if len(r) == width or not any(r))
        score = (width, consistent)
        if score > best_score:
            best, best_score = delim, score
    return best


def _first_rows(text: str, delim: str, n: int) -> Iterator[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    for i, row in enumerate(reader):
        if i >= n:
            return
        yield row


def sniff(path: Path, *, given_as: str = "--csv") -> CsvFormat:
    """Detect the encoding and delimiter of ``path``; whole-file problems raise UserError.
    ``given_as`` names where the path came from (``--csv``, ``--dnc``), for the hint."""
    try:
        with path.open("rb") as fh:
            sample = fh.read(SAMPLE_BYTES)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file. Check the path given to {given_as}.") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a CSV file.") from None
    except OSError as exc:
        raise UserError(
            f"{path}: cannot be read ({exc.strerror}). Check its permissions."
        ) from None
    if not sample.strip():
        raise UserError(f"{path}: the file is empty. Export the contact list with a header row.")
    encoding = _detect_encoding(path, sample)
    try:
        text = _decode_sample(sample, encoding)
    except UnicodeDecodeError:
        raise undecodable_error(path, CsvFormat(encoding=encoding, delimiter=",")) from None
    if not text.strip("\ufeff \r\n\t"):
        raise UserError(f"{path}: the file is empty. Export the contact list with a header row.")
    return CsvFormat(encoding=encoding, delimiter=_detect_delimiter(text.lstrip("\ufeff")))


def read_header(path: Path, fmt: CsvFormat) -> list[str]:
    """The header row as written, each cell stripped of surrounding whitespace."""
    with path.open("r", encoding=fmt.encoding, newline="", errors="replace") as fh:
        reader = csv.reader(fh, delimiter=fmt.delimiter)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise UserError(f"{path}: the header row is not valid CSV ({exc}).") from None
    if header is None or not any(h.strip() for h in header):
        raise UserError(
            f"{path}: the first row is empty; the first row must hold the column names "
            "(e.g. phone,name)."
        )
    return [h.strip().lstrip("\ufeff").strip() for h in header]


class ChunkReader:
    """Iterates a CSV as lists of column values, ``chunk_rows`` rows at a time.

    ``position`` is the number of bytes consumed so far (for a progress bar).
    """

    def __init__(
        self, path: Path, fmt: CsvFormat, width: int, chunk_rows: int = DEFAULT_CHUNK_ROWS
    ) -> None:
        self.path, self.fmt, self.width, self.chunk_rows = path, fmt, width, chunk_rows
        self._fh: IO[bytes] | None = None
        self._size = path.stat().st_size
        self._last = 0

    @property
    def position(self) -> int:
        if self._fh is None:
            return 0
        with contextlib.suppress(OSError, ValueError):
            self._last = self._fh.tell() if not self._fh.closed else self._size
        return self._last

    def __iter__(self) -> Iterator[tuple[int, list[list[str]]]]:
        """Yield ``(first_row_number, columns)``; ``columns[i]`` holds column i's cells."""
        row_number = 2
        with self.path.open("rb") as fh:
            self._fh = fh
            reader = pd.read_csv(
                fh,
                sep=self.fmt.delimiter,
                encoding=self.fmt.encoding,
                header=0,
                names=list(range(self.width)),
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                skip_blank_lines=False,
                chunksize=self.chunk_rows,
                engine="c",
                index_col=False,
                quotechar='"',
                doublequote=True,
            )
            chunks = _guarded(reader, self.path, self.fmt)
            for frame in chunks:
                columns = [_as_text(frame[c].tolist()) for c in range(self.width)]
                yield row_number, columns
                row_number += len(frame)


def _as_text(values: list[Any]) -> list[str]:
    """Cells pandas left as NaN (a short row) become empty strings. ``str.join`` is the
    check: it refuses anything but strings, at C speed (a generator over every cell of
    every column cost a tenth of the import)."""
    try:
        "".join(values)
    except TypeError:
        return [v if isinstance(v, str) else "" for v in values]
    return values


def _guarded(reader: Any, path: Path, fmt: CsvFormat) -> Iterator[pd.DataFrame]:
    """Turn decoding and parsing failures deep in the file into UserErrors."""
    it = iter(reader)
    while True:
        try:
            frame = next(it)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise undecodable_error(path, fmt, exc) from None
        except pd.errors.ParserError as exc:
            detail = str(exc).strip().removeprefix("Error tokenizing data. C error: ")
            raise UserError(
                f"{path}: not a well-formed CSV ({fmt.describe()}): {detail}. A cell that "
                "contains the delimiter or a line break must be quoted; nothing was imported."
            ) from None
        except pd.errors.EmptyDataError:
            return
        yield frame
