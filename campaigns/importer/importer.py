"""Turning a contact CSV into a campaign: one transaction, every row accounted for.

:func:`create_campaign` inserts the campaign row and all its contacts in ONE database
transaction, so a failure half-way (a byte that does not decode deep in the file, a full
disk, Ctrl-C) leaves no campaign and no contacts behind, and no rejects file either (that
is renamed into place only after the commit). :func:`add_contacts` adds a file to an
existing campaign, in one transaction too. The statements are in :mod:`storage.imports`.

Every data row becomes a contact, in one of these states:

* ``pending``: a valid number, not seen before, not on the do-not-call list, with a time
  zone in which the calling window opens on some allowed day;
* ``suppressed``: on the global list or the campaign's (``--dnc``);
* ``invalid`` with a reason: missing or invalid number, a duplicate (same E.164 number as an
  earlier row, or already in the campaign), an unknown or unusable time zone, or a time zone
  where the window never opens (reported now rather than discovered at 3 a.m.).

Blank rows (every cell empty) are counted and skipped. Rows that will not be dialled go to
the rejects file with their row number, reason and values. The column mapping rules are in
:mod:`campaigns.importer.columns`; reading and row numbering in
:mod:`campaigns.importer.reader`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from campaigns.errors import UserError
from campaigns.importer.columns import ColumnMap, map_columns
from campaigns.importer.dedupe import SeenNumbers
from campaigns.importer.dncfile import DncRejected, read_dnc_file
from campaigns.importer.phones import REASON_NO_COUNTRY_CODE, PhoneParser
from campaigns.importer.reader import (
    DEFAULT_CHUNK_ROWS,
    ChunkReader,
    CsvFormat,
    read_header,
    sniff,
)
from campaigns.importer.rejects import RejectsWriter, open_rejects, reason_bucket
from campaigns.importer.rows import ChunkMapper, MappedChunk, RowMapper
from campaigns.outputs import protected_for
from campaigns.policy import CallingPolicy
from storage.campaigns_repo import CampaignRecord
from storage.engine import Engine
from storage.imports import ImportTransaction, NewCampaign, begin_import
from storage.states import ContactState

Progress = Callable[[int, int], None]  # (bytes read, file size)

PARALLEL_MIN_BYTES = 8 * 1024 * 1024  # smaller files are mapped in-process
REASON_SUPPRESSED = "on the do-not-call list"


@dataclass(frozen=True, kw_only=True)
class ImportOptions:
    """How to read the file (everything but the campaign's own settings)."""

    phone_column: str | None = None
    name_column: str | None = None
    region: str | None = None
    dnc_file: Path | None = None
    rejects_path: Path | None = None
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    workers: int | None = None  # processes for the per-row work; None: decide by file size


@dataclass(frozen=True, kw_only=True)
class ImportStats:
    """What became of the rows, and where the time went (seconds)."""

    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    invalid: int = 0
    suppressed: int = 0
    blank: int = 0
    no_country_code: int = 0  # invalid for want of --region: the summary says to pass it
    dnc_numbers: int = 0
    dnc_rejected: list[DncRejected] = field(default_factory=list)  # unreadable --dnc lines
    rejects_written: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self, campaign_id: int) -> dict[str, Any]:
        """The ``--json`` output of ``campaign create``."""
        return {
            "campaign_id": campaign_id,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "invalid": self.invalid,
            "suppressed": self.suppressed,
            "rows": self.rows,
            "blank_rows": self.blank,
            "no_country_code": self.no_country_code,
            "dnc_unreadable": len(self.dnc_rejected),
        }

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "invalid": self.invalid,
            "suppressed": self.suppressed,
            "blank_rows": self.blank,
        }


@dataclass(kw_only=True)
class _Tally:
    """The counts while the rows go by (mutable; frozen into :class:`ImportStats`)."""

    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    invalid: int = 0
    suppressed: int = 0
    blank: int = 0
    no_country_code: int = 0
    dnc_numbers: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def freeze(self, dnc_rejected: list[DncRejected]) -> ImportStats:
        return ImportStats(
            rows=self.rows,
            imported=self.imported,
            duplicates=self.duplicates,
            invalid=self.invalid,
            suppressed=self.suppressed,
            blank=self.blank,
            no_country_code=self.no_country_code,
            dnc_numbers=self.dnc_numbers,
            dnc_rejected=dnc_rejected,
            by_reason=self.by_reason,
            timings=self.timings,
        )


@dataclass(frozen=True, kw_only=True)
class _Source:
    """A contact file, checked as a whole before anything is written: its format, its column
    map, the phone parser of the campaign's region and the numbers of its ``--dnc`` file."""

    path: Path
    fmt: CsvFormat
    cmap: ColumnMap
    parser: PhoneParser
    dnc: list[str]
    dnc_rejected: list[DncRejected]

    @classmethod
    def read(cls, csv_path: Path, options: ImportOptions) -> _Source:
        fmt = sniff(csv_path)  # whole-file problems surface before anything is written
        headers = read_header(csv_path, fmt)
        cmap = map_columns(
            csv_path, headers, phone_column=options.phone_column, name_column=options.name_column
        )
        parser = _parser(options.region)
        dnc, dnc_rejected = _dnc_numbers(options.dnc_file, parser)
        return cls(
            path=csv_path, fmt=fmt, cmap=cmap, parser=parser, dnc=dnc, dnc_rejected=dnc_rejected
        )


def create_campaign(
    engine: Engine,
    csv_path: Path,
    campaign: NewCampaign | Mapping[str, Any],
    options: ImportOptions,
    *,
    progress: Progress | None = None,
) -> tuple[int, ImportStats]:
    """Create a campaign from ``campaign`` (its settings, already checked: see
    :mod:`campaigns.services.create`) and import ``csv_path`` into it, atomically. Returns the
    new campaign's id and the import's stats."""
    source = _Source.read(csv_path, options)
    cmap = source.cmap
    settings = campaign if isinstance(campaign, NewCampaign) else NewCampaign(**campaign)
    new = replace(
        settings,
        region=source.parser.region,
        columns=cmap.columns_for_campaign(),
        phone_column=cmap.headers[cmap.phone],
        name_column=_name_column(cmap),
        source_file=str(csv_path),
    )
    protected = protected_for(engine, csv_path, options.dnc_file)
    with (
        open_rejects(options.rejects_path, cmap.headers, protected=protected) as rejects,
        begin_import(engine) as tx,
    ):
        campaign_id = tx.create_campaign(new)
        tally = _import(tx, campaign_id, source, options, progress, rejects)
        stats = tally.freeze(source.dnc_rejected)
        tx.record_import_stats(campaign_id, stats.counts())
    return campaign_id, replace(stats, rejects_written=rejects.count if rejects is not None else 0)


def add_contacts(
    engine: Engine,
    campaign_id: int,
    csv_path: Path,
    options: ImportOptions,
    *,
    progress: Progress | None = None,
) -> ImportStats:
    """Add the contacts of ``csv_path`` to an existing campaign, in one transaction.

    The same checks as :func:`create_campaign`; numbers already in the campaign are
    duplicates. A completed campaign that gets contacts to call is running again. Row numbers continue after the campaign's highest (the rejects file still
    shows the file's own row numbers). Raises :class:`~storage.errors.NotFound`.
    """
    source = _Source.read(csv_path, options)
    protected = protected_for(engine, csv_path, options.dnc_file)
    with (
        open_rejects(options.rejects_path, source.cmap.headers, protected=protected) as rejects,
        begin_import(engine) as tx,
    ):
        tally = _import(tx, campaign_id, source, options, progress, rejects)
        if tally.imported:  # people to call: a completed campaign runs again
            tx.reopen_if_completed(campaign_id)
    stats = tally.freeze(source.dnc_rejected)
    return replace(stats, rejects_written=rejects.count if rejects is not None else 0)


def _parser(region: str | None) -> PhoneParser:
    try:
        return PhoneParser(region)
    except ValueError as exc:
        raise UserError(f"--region: {exc}") from None


def _dnc_numbers(path: Path | None, parser: PhoneParser) -> tuple[list[str], list[DncRejected]]:
    if path is None:
        return [], []
    return read_dnc_file(path, parser)


def _name_column(cmap: ColumnMap) -> str | None:
    if cmap.name is not None:
        return cmap.headers[cmap.name]
    parts = [cmap.headers[i] for i in (cmap.first_name, cmap.last_name) if i is not None]
    return "+".join(parts) or None


def _campaign_policy(campaign: CampaignRecord) -> CallingPolicy:
    try:
        return CallingPolicy.from_campaign(campaign)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _workers(options: ImportOptions, csv_path: Path) -> int:
    """Worker processes for the per-row work: none for small files (starting one costs
    more than it saves) or on one core, else one."""
    if options.workers is not None:
        return options.workers
    cores = os.cpu_count() or 1
    if cores < 2 or csv_path.stat().st_size < PARALLEL_MIN_BYTES:
        return 0
    # one is enough: the main process (dedupe, insert) is the slower half of the pipeline
    return 1


def _import(
    tx: ImportTransaction,
    campaign_id: int,
    source: _Source,
    options: ImportOptions,
    progress: Progress | None,
    rejects: RejectsWriter | None,
) -> _Tally:
    csv_path, fmt, cmap, parser, dnc = (
        source.path,
        source.fmt,
        source.cmap,
        source.parser,
        source.dnc,
    )
    stats = _Tally()
    timings = {"read+map": 0.0, "rows": 0.0, "insert": 0.0}
    policy = _campaign_policy(tx.campaign(campaign_id))
    if dnc:
        stats.dnc_numbers = len(dnc)
        tx.add_campaign_suppressions(campaign_id, dnc, str(options.dnc_file))
    suppressed = tx.suppressed_numbers(campaign_id)
    mapper = RowMapper(cmap, parser.region, policy)
    seen = SeenNumbers()  # E.164 number -> row of its first occurrence
    existing = tx.known_numbers(campaign_id)
    if existing.phones:  # negative rows: already in the campaign before this file
        seen.add(
            np.array([int(p[1:]) for p in existing.phones], dtype=np.int64),
            -np.array(existing.rows, dtype=np.int32),
        )
    del existing
    offset = tx.last_row_number(campaign_id)

    reader = ChunkReader(csv_path, fmt, len(cmap.headers), options.chunk_rows)
    total = max(csv_path.stat().st_size, 1)
    mapped_chunks = ChunkMapper(mapper, _workers(options, csv_path)).map(reader)
    t_read = time.perf_counter()
    for columns, m in mapped_chunks:
        t0 = time.perf_counter()
        timings["read+map"] += t0 - t_read
        batch = _chunk_rows(campaign_id, offset, columns, m, cmap.phone, tx.now(), seen,
                            suppressed, stats, rejects)  # fmt: skip
        stats.rows += len(batch)
        t1 = time.perf_counter()
        timings["rows"] += t1 - t0
        tx.insert_contacts(batch)
        t_read = time.perf_counter()
        timings["insert"] += t_read - t1
        if progress is not None:
            progress(min(reader.position, total), total)
    if stats.rows == 0:
        raise UserError(
            f"{csv_path}: the file has a header but no contact rows. Nothing was imported."
        )
    stats.timings = timings
    return stats


_PENDING, _INVALID = str(ContactState.PENDING), str(ContactState.INVALID)
_SUPPRESSED = str(ContactState.SUPPRESSED)


def _chunk_rows(
    campaign_id: int,
    offset: int,
    columns: list[list[str]],
    m: MappedChunk,
    phone: int,
    now: Any,
    seen: SeenNumbers,
    suppressed: set[str],
    stats: _Tally,
    rejects: RejectsWriter | None,
) -> list[tuple[Any, ...]]:
    """One mapped chunk's contact rows, as stored, with the file-wide decisions made
    (duplicates, the do-not-call list) and the counts and rejects kept. Whole-column list
    operations for the common case; a Python loop only over the rows not to be called
    (a few percent), since this runs in the main process, the slower half of the pipeline."""
    n = len(m.metadata)
    e164s, reasons = list(m.e164), list(m.reasons)
    states: list[str | None] = [_PENDING if r is None else _INVALID for r in reasons]
    numbered = [(j, e) for j, (e, meta) in enumerate(zip(e164s, m.metadata, strict=True))
                if e and meta]  # fmt: skip
    firsts = seen.first_rows([e for _, e in numbered], [m.first_row + j for j, _ in numbered])
    duplicate = {j: first for (j, _), first in zip(numbered, firsts, strict=True) if first}
    for j, first_seen in duplicate.items():
        states[j] = _INVALID
        reasons[j] = (
            f"duplicate: same number as row {first_seen}"
            if first_seen > 0
            else f"duplicate: {e164s[j]} is already in the campaign"
        )
        e164s[j] = None
    stats.duplicates += len(duplicate)
    if suppressed:
        for j, e in numbered:
            if e in suppressed and j not in duplicate:
                states[j], reasons[j] = _SUPPRESSED, REASON_SUPPRESSED
    blank = m.metadata.count(None)
    if blank:
        stats.blank += blank
        for j, meta in enumerate(m.metadata):
            if meta is None:
                states[j] = None
    stats.imported += states.count(_PENDING)
    by_reason = stats.by_reason
    for j in [j for j, state in enumerate(states) if state != _PENDING and state is not None]:
        state, reason = states[j], reasons[j]
        if state == _SUPPRESSED:
            stats.suppressed += 1
            by_reason[REASON_SUPPRESSED] = by_reason.get(REASON_SUPPRESSED, 0) + 1
        else:
            bucket = reason_bucket(reason or "")
            by_reason[bucket] = by_reason.get(bucket, 0) + 1
            if bucket != "duplicate":
                stats.invalid += 1
            if reason == REASON_NO_COUNTRY_CODE:
                stats.no_country_code += 1
        if rejects is not None:
            rejects.add(m.first_row + j, reason or state or "", [col[j] for col in columns])
    first = offset + m.first_row
    rows = list(
        zip(repeat(campaign_id, n), range(first, first + n), e164s, columns[phone], m.names,
            m.metadata, m.zones, states, reasons, repeat(0, n), repeat(now, n), strict=True)
    )  # fmt: skip
    return [r for r in rows if r[5] is not None] if blank else rows
