"""The outcome report: what happened to each contact (or each call), as a spreadsheet-safe CSV.

One row per contact in import order: the original columns under their original headers (the
phone column shows the cell as written), then ``phone_e164, state, outcome, reason, attempts,
last_call_id, last_call_at, duration_s, summary, callback_at, callback_note`` and one
``entity.<key>`` column for every key the agent extracted on any call of the campaign.
``callback_at`` is the callback the (last) call's outcome scheduled, in UTC;
``callback_note`` says why a callback asked for was ignored (already past, cap, campaign end)
or that it was moved into the calling window (``campaigns.callbacks``). With ``attempts=True``, one row per attempt
instead. With ``transcripts=True`` a last ``transcript`` column holds what was said on the
row's call, one line per turn (``campaigns.transcripts``; kept in ``call_transcripts``, read
by an outer join on the same pages); without it the report is exactly as before. Contacts that were never called (invalid, suppressed, expired, cancelled) are present
with their reason.

Streaming: :func:`write_report` writes to any binary stream (a file, stdout, an HTTP
response); where the bytes go is the caller's choice. Rows are read in pages by keyset
(``storage.reports``: every statement of the report is there), each page in its own short
transaction, and written with the ``csv`` module as they come, so memory stays flat whatever
the campaign's size, and an export never holds a SQLite write lock (every transaction there
is ``BEGIN IMMEDIATE``) for longer than one page. Pages are consistent on their own; a
contact the daemon updates during an export shows whichever state it had when its page was
read.

Formatting rows is CPU-bound Python, so a large campaign (``report_options.PARALLEL_MIN_CONTACTS``) is cut
into equal spans of row numbers, each written to a part file by its own forked process, and
the parts are appended in order: two cores, about twice the rate, the same bytes.

The entity columns: the set of keys is found before the first row is written, inside the
database (``storage.reports.entity_keys``), over all attempts of the campaign whatever the
filters, so that every export of a campaign has the same columns. Keys are sorted.

Every cell that holds outside data (the original columns and headers, the phone, reason, call
id, call status, summary, errors and entities) goes through :func:`campaigns.csvsafe.safe_cell`;
the cells this module makes itself (states, outcomes, counts, durations, ISO 8601 UTC times
such as ``2026-11-23T19:54:24Z``) cannot start with a formula character.
"""

from __future__ import annotations

import codecs
import csv
import json
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from campaigns.csvsafe import safe_row
from campaigns.errors import UserError
from campaigns.outputs import open_output, protected_for
from campaigns.report_options import ReportOptions, check_filters, report_options
from campaigns.report_pages import attempt_cells, contact_cells
from campaigns.transcripts import transcript_cell
from storage import reports
from storage.engine import Engine, make_engine, reading
from storage.reports import WHOLE, PageFilter, Span

#: The columns that follow the original ones in the contact report.
CONTACT_COLUMNS = (
    "phone_e164",
    "state",
    "outcome",
    "reason",
    "attempts",
    "last_call_id",
    "last_call_at",
    "duration_s",
    "summary",
    "callback_at",
    "callback_note",
)
#: The columns that follow the original ones in the attempts report.
ATTEMPT_COLUMNS = (
    "phone_e164",
    "attempt_no",
    "state",
    "call_id",
    "created_at",
    "accepted_at",
    "finished_at",
    "call_status",
    "outcome",
    "error",
    "duration_s",
    "summary",
    "callback_at",
    "callback_note",
)
__all__ = [
    "ReportOptions",
    "ReportResult",
    "ReportWritten",
    "export_report",
    "report_columns",
    "report_options",
    "write_report",
]
ENTITY_PREFIX = "entity."
#: The last column with ``--transcripts``: the (last) call's transcript, one line per turn.
TRANSCRIPT_COLUMN = "transcript"
#: Prefix given to one of our columns whose name an original header already uses.
CLASH_PREFIX = "vaani_"


@dataclass(frozen=True, kw_only=True)
class ReportWritten:
    """What :func:`write_report` wrote: how many data rows, under which header."""

    rows: int
    columns: list[str]


@dataclass(frozen=True, kw_only=True)
class ReportResult:
    """What :func:`export_report` wrote, and where (``"-"`` for stdout)."""

    path: str
    rows: int
    columns: list[str]


@dataclass(frozen=True, kw_only=True)
class _Layout:
    """The campaign's column layout: original headers, metadata keys, entity keys."""

    originals: list[str]  # original headers in file order
    keys: list[str | None]  # metadata key per original column; None for the phone column
    entity_keys: list[str]
    fixed: list[str]  # our columns, renamed on a clash with an original header
    tail: tuple[str, ...] = ()  # after the entities: the transcript column, when asked for

    @property
    def headers(self) -> list[str]:
        return [
            *self.originals,
            *self.fixed,
            *(ENTITY_PREFIX + k for k in self.entity_keys),
            *self.tail,
        ]


def write_report(
    engine: Engine,
    campaign_id: int,
    stream: BinaryIO,
    options: ReportOptions | None = None,
    *,
    scratch: Path | None = None,
) -> ReportWritten:
    """Write the report of ``campaign_id`` to the binary ``stream`` (the header first).

    Filters and the campaign id are checked before a byte is written (:class:`UserError`).
    A large campaign is formatted by worker processes into part files in ``scratch``
    (default: the system's temporary directory), appended to ``stream`` in order.
    """
    engine = reading(engine)  # never take the write lock a running daemon needs
    options = options or ReportOptions()
    scratch = scratch or Path(tempfile.gettempdir())
    rows, headers = _export(engine, campaign_id, stream, options, scratch)
    return ReportWritten(rows=rows, columns=headers)


def export_report(
    engine: Engine, campaign_id: int, out: str | Path, options: ReportOptions | None = None
) -> ReportResult:
    """:func:`write_report` to ``out`` through :func:`campaigns.outputs.open_output` (a file
    written whole or not at all, ``-`` for stdout, never the database): the convenience the
    demo and the benchmarks use. The command line opens its destination itself."""
    with open_output(out, protected=protected_for(engine)) as stream:
        done = write_report(engine, campaign_id, stream, options)
    return ReportResult(path=str(out), rows=done.rows, columns=done.columns)


class _Utf8Writer:
    """The text side of a binary stream, for the csv module. A plain object rather than an
    ``io.TextIOWrapper`` so that wrapping stdout never closes it."""

    def __init__(self, binary: BinaryIO) -> None:
        self._binary = binary

    def write(self, s: str) -> int:
        return self._binary.write(s.encode("utf-8"))


def _export(
    engine: Engine, campaign_id: int, binary: BinaryIO, options: ReportOptions, scratch: Path
) -> tuple[int, list[str]]:
    """Header, then the rows: in this process, or in parts by worker processes."""
    check_filters(options)
    layout = _layout(
        engine, campaign_id, attempts=options.attempts, transcripts=options.transcripts
    )
    spans = _spans(engine, campaign_id, options)
    idx = _pick(layout.headers, options.columns)
    headers = layout.headers if idx is None else [layout.headers[i] for i in idx]
    if options.bom:
        binary.write(codecs.BOM_UTF8)
    out = _Utf8Writer(binary)
    csv.writer(out).writerow(safe_row(headers))
    if len(spans) == 1:
        n = write_rows(engine, campaign_id, options, layout.keys, layout.entity_keys, idx, out)
    else:
        n = _write_parts(engine, campaign_id, options, layout, idx, spans, binary, scratch)
    return n, headers


def write_rows(
    engine: Engine,
    campaign_id: int,
    options: ReportOptions,
    keys: list[str | None],
    entity_keys: list[str],
    idx: list[int] | None,
    stream: Any,
    span: Span = WHOLE,
) -> int:
    """Write the data rows of ``span`` to a text stream; return how many."""
    pages, cells = (
        (reports.attempt_pages, attempt_cells)
        if options.attempts
        else (reports.contact_pages, contact_cells)
    )
    filt = PageFilter(
        states=options.states,
        outcomes=options.outcomes,
        since=options.since,
        page_size=options.page_size,
        transcripts=options.transcripts,
    )
    writer = csv.writer(stream)
    n = 0
    for page in pages(engine, campaign_id, filt, span):
        if options.transcripts:  # the transcript is each row's last column
            rows = cells([r[:-1] for r in page], keys, entity_keys)
            for row, r in zip(rows, page, strict=True):
                row.append(transcript_cell(_json_value(r[-1])))
        else:
            rows = cells(page, keys, entity_keys)
        writer.writerows(rows if idx is None else ([r[i] for i in idx] for r in rows))
        n += len(rows)
    return n


def _spans(engine: Engine, campaign_id: int, options: ReportOptions) -> list[Span]:
    """One span of row numbers per worker process (see ``ReportOptions.workers``)."""
    workers = options.workers
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    return reports.spans(
        engine, campaign_id, parts=workers, min_contacts=options.parallel_min_contacts
    )


def _write_parts(
    engine: Engine,
    campaign_id: int,
    options: ReportOptions,
    layout: _Layout,
    idx: list[int] | None,
    spans: list[Span],
    binary: BinaryIO,
    scratch: Path,
) -> int:
    """Each span written to a part file by its own process (formatting is CPU-bound Python,
    so threads would share one core), then the parts appended in order."""
    url = reports.engine_url(engine)
    parts = [scratch / f".report-{os.getpid()}-{i}.part" for i in range(len(spans))]
    # fork: the children need nothing re-imported (spawn would re-run `python -m campaigns`)
    context = multiprocessing.get_context("fork")
    try:
        with ProcessPoolExecutor(max_workers=len(spans), mp_context=context) as pool:
            futures = [
                pool.submit(_write_part, url, campaign_id, options, layout, idx, span, str(part))
                for span, part in zip(spans, parts, strict=True)
            ]
            n = sum(f.result() for f in futures)
        binary.flush()
        for part in parts:
            with part.open("rb") as f:
                shutil.copyfileobj(f, binary, 1 << 20)
        return n
    finally:
        for part in parts:
            part.unlink(missing_ok=True)


def _write_part(
    url: str,
    campaign_id: int,
    options: ReportOptions,
    layout: _Layout,
    idx: list[int] | None,
    span: Span,
    path: str,
) -> int:
    """In a worker process: its own engine, one span of rows into one part file."""
    engine = reading(make_engine(url))
    try:
        with open(path, "wb") as f:
            return write_rows(
                engine,
                campaign_id,
                options,
                layout.keys,
                layout.entity_keys,
                idx,
                _Utf8Writer(f),
                span,
            )
    finally:
        engine.dispose()


def _json_value(v: Any) -> Any:
    """A JSON column read raw: text on SQLite, already decoded on PostgreSQL."""
    return json.loads(v) if isinstance(v, str) else v


def report_columns(
    engine: Engine, campaign_id: int, *, attempts: bool = False, transcripts: bool = False
) -> list[str]:
    """The headers a full report of the campaign would have (for ``--columns`` help)."""
    return _layout(engine, campaign_id, attempts=attempts, transcripts=transcripts).headers


# --------------------------------------------------------------------------- layout


def _layout(
    engine: Engine, campaign_id: int, *, attempts: bool, transcripts: bool = False
) -> _Layout:
    recorded = reports.campaign_columns(engine, campaign_id)
    if recorded is None:
        raise UserError(f"no campaign with id {campaign_id} (see `vaani-campaigns campaign list`)")
    columns, phone_column = recorded.columns, recorded.phone_column
    originals = [str(h) for h, _ in columns]
    keys: list[str | None] = [None if h == phone_column else str(k) for h, k in columns]
    if phone_column is not None and phone_column not in originals:
        # the phone column is recorded by its metadata key
        keys = [None if k == phone_column else k for k in keys]
    taken = set(originals)
    fixed = [_ours(c, taken) for c in (ATTEMPT_COLUMNS if attempts else CONTACT_COLUMNS)]
    return _Layout(
        originals=originals,
        keys=keys,
        entity_keys=reports.entity_keys(engine, campaign_id),
        fixed=fixed,
        tail=(_ours(TRANSCRIPT_COLUMN, taken),) if transcripts else (),
    )


def _ours(column: str, taken: set[str]) -> str:
    """Our column's header, prefixed when an original header already has its name."""
    return CLASH_PREFIX + column if column in taken else column


def _pick(headers: list[str], wanted: Sequence[str] | None) -> list[int] | None:
    """The positions of the ``--columns`` asked for, in their order (None: every column)."""
    if not wanted:
        return None
    index: dict[str, int] = {}
    for i, h in enumerate(headers):
        index.setdefault(h, i)
    unknown = [w for w in wanted if w not in index]
    if unknown:
        raise UserError(
            f"unknown column(s) for --columns: {', '.join(unknown)}. "
            f"Available: {', '.join(headers)}"
        )
    return [index[w] for w in wanted]
