"""The per-row work of an import that needs no shared state: phone, zones, name, metadata.

:class:`RowMapper` turns a chunk of CSV columns into a :class:`MappedChunk` (one list per
field, aligned with the chunk's rows). It is pure and picklable, so large files are mapped
by a pool of worker processes (:class:`ChunkMapper`: the numbers, zones and names) while
the main process reads ahead, builds the metadata JSON and inserts; what needs the whole file (duplicates, the do-not-call list) stays in the main
process (:mod:`campaigns.importer.importer`).

A phone extension (``+1 415 555 0100 ext 12``) is kept in the contact's metadata as
``phone_extension`` (``phone_extension_2`` when the file has a column of that name); the
call goes to the main number, and the agent's prompt can read the extension.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import islice
from json.encoder import encode_basestring
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from campaigns.importer.columns import ColumnMap
from campaigns.importer.phones import PhoneParser
from campaigns.policy import CallingPolicy, format_days, format_window

REASON_MISSING = "missing phone number"
EXTENSION_KEY = "phone_extension"
REASON_NO_ZONE = "no time zone known for this number: add a 'timezone' column or pass --timezone"


@dataclass(frozen=True, kw_only=True)
class MappedChunk:
    """One chunk's rows, field by field. ``metadata[i]`` is None for a blank row; ``e164[i]``
    is None for an invalid number (``reasons[i]`` says why); a valid number with a reason
    cannot be called for a time zone reason."""

    first_row: int
    e164: list[str | None]
    zones: list[str | None]
    reasons: list[str | None]
    names: list[str | None]
    metadata: list[str | None]  # JSON objects, as stored ("" until :meth:`with_metadata`)
    extensions: dict[int, str] = field(default_factory=dict)  # row index -> extension,
    # until :meth:`RowMapper.with_metadata` puts them into the metadata


class RowMapper:
    """Maps chunks of one file: built once per import (and once per worker process)."""

    def __init__(self, cmap: ColumnMap, region: str | None, policy: CallingPolicy) -> None:
        self.cmap = cmap
        self.parser = PhoneParser(region)
        self.policy = policy
        self._override: dict[str, tuple[str | None, str | None]] = {}
        self._verdict: dict[str | None, str | None] = {}
        # a number's zones, as stored: one string object per distinct tuple (few), which
        # also makes the chunk's pickle to the main process smaller
        self._zones_text: dict[tuple[str, ...], str] = {}
        self.extension_key = _free_key(EXTENSION_KEY, cmap.keys)
        self._extension_json = encode_basestring(self.extension_key) + ":"
        where = format_window(policy.window_start, policy.window_end)
        self._window_text = f"{where} on {format_days(policy.days)}"

    def __getstate__(self) -> dict[str, object]:
        return {"cmap": self.cmap, "region": self.parser.region, "policy": self.policy}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(state["cmap"], state["region"], state["policy"])  # type: ignore[misc]

    # -- time zones ---------------------------------------------------------------------

    def zone_override(self, cell: str) -> tuple[str | None, str | None]:
        """A per-row time zone cell -> (zones text, error)."""
        hit = self._override.get(cell)
        if hit is None:
            zones = [z.strip() for z in cell.split(",") if z.strip()]
            bad = [z for z in zones if not _zone_exists(z)]
            column = self.cmap.headers[self.cmap.timezone or 0]
            if bad:
                hit = (None, f"unknown time zone {bad[0]!r} in column {column!r}")
            else:
                hit = (",".join(zones), None)
            self._override[cell] = hit
        return hit

    def zone_problem(self, zones_text: str | None) -> str | None:
        """Why a contact with these zones can never be called, or None (memoised)."""
        if zones_text in self._verdict:
            return self._verdict[zones_text]
        zones = self.policy.zones_for(zones_text)
        if not zones:
            verdict: str | None = REASON_NO_ZONE
        elif not self.policy.feasible(zones):
            verdict = (
                f"the calling window {self._window_text} never opens in all of its time "
                f"zones at once ({', '.join(zones)})"
            )
        else:
            verdict = None
        self._verdict[zones_text] = verdict
        return verdict

    # -- rows ---------------------------------------------------------------------------

    def map_chunk(self, first_row: int, columns: list[list[str]]) -> MappedChunk:
        """Map one chunk: :meth:`map_phones`, then :meth:`with_metadata`."""
        return self.with_metadata(columns, self.map_phones(first_row, columns))

    def map_phones(self, first_row: int, columns: list[list[str]]) -> MappedChunk:
        """Everything but the metadata JSON: numbers, zones, reasons, names, blank rows
        (``metadata[i]`` None; ``""`` for the others). It is what a worker process runs;
        the main process, which holds the columns anyway, adds the metadata
        (:meth:`with_metadata`), so that the two halves of the pipeline take about as long
        and the JSON need not cross between processes."""
        cmap = self.cmap
        phones = columns[cmap.phone]
        n = len(phones)
        meta_cols = [columns[i] for i in cmap.metadata_columns]
        blank = [False] * n
        for j in [j for j, raw in enumerate(phones) if not raw]:
            blank[j] = not any(col[j] for col in meta_cols)
        out_meta: list[str | None] = [None if b else "" for b in blank]
        out_names = self._names(columns, blank, n)
        out_e164: list[str | None] = [None] * n
        out_zones: list[str | None] = [None] * n
        out_reasons: list[str | None] = [None] * n
        extensions: dict[int, str] = {}
        parse, problem = self.parser.parse, self.zone_problem
        zones_text = self._zones_text
        tz_cells = columns[cmap.timezone] if cmap.timezone is not None else None
        for j, raw in enumerate(phones):
            if blank[j]:
                continue
            result = parse(raw)
            e164 = result.e164
            if e164 is None:
                out_reasons[j] = REASON_MISSING if not raw.strip() else result.error
                continue
            tz = result.timezones
            text = zones_text.get(tz)
            if text is None:
                text = zones_text[tz] = ",".join(tz)
            zones: str | None = text or None
            reason = None
            if tz_cells is not None and tz_cells[j].strip():
                zones, reason = self.zone_override(tz_cells[j])
            if result.extension:  # rare: a number written with "ext 12", "x12", "#12"
                extensions[j] = result.extension
            out_e164[j] = e164
            out_zones[j] = zones
            out_reasons[j] = reason if reason is not None else problem(zones)
        return MappedChunk(
            first_row=first_row,
            e164=out_e164,
            zones=out_zones,
            reasons=out_reasons,
            names=out_names,
            metadata=out_meta,
            extensions=extensions,
        )

    def with_metadata(self, columns: list[list[str]], chunk: MappedChunk) -> MappedChunk:
        """``chunk`` with each non-blank row's metadata JSON, its extension included."""
        built = self._metadata([columns[i] for i in self.cmap.metadata_columns], len(chunk.e164))
        out_meta = [None if m is None else b for m, b in zip(chunk.metadata, built, strict=True)]
        for j, extension in chunk.extensions.items():
            meta = out_meta[j] or "{}"
            sep = "," if len(meta) > 2 else ""
            out_meta[j] = (
                meta[:-1] + sep + self._extension_json + encode_basestring(extension) + "}"
            )
        return replace(chunk, metadata=out_meta, extensions={})

    def _metadata(self, meta_cols: list[list[str]], n: int) -> list[str | None]:
        """Each row's metadata JSON object (``{}`` when its metadata cells are all empty),
        built a column at a time: one ``"key":"value"`` piece per non-empty cell."""
        if not meta_cols:
            return ["{}"] * n
        pieces = []
        for i, col in zip(self.cmap.metadata_columns, meta_cols, strict=True):
            key = encode_basestring(self.cmap.keys[i]) + ":"
            pieces.append(
                [
                    key + e if v else ""
                    for v, e in zip(col, map(encode_basestring, col), strict=True)
                ]
            )
        return ["{" + ",".join(filter(None, row)) + "}" for row in zip(*pieces, strict=True)]

    def _names(self, columns: list[list[str]], blank: list[bool], n: int) -> list[str | None]:
        cmap = self.cmap
        if cmap.name is not None:
            names: list[str | None] = [v or None for v in columns[cmap.name]]
        elif cmap.first_name is not None or cmap.last_name is not None:
            parts = [columns[i] for i in (cmap.first_name, cmap.last_name) if i is not None]
            names = [
                " ".join(p for p in (v.strip() for v in row) if p) or None
                for row in zip(*parts, strict=True)
            ]
        else:
            return [None] * n
        return [None if b else v for v, b in zip(names, blank, strict=True)]


def _free_key(base: str, keys: list[str]) -> str:
    """``base``, or ``base_2``, ``base_3``... when the file already has a column of that key."""
    key, n = base, 1
    while key in keys:
        n += 1
        key = f"{base}_{n}"
    return key


def _zone_exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


# ----------------------------------------------------------------------------- the pool

_worker_mapper: RowMapper | None = None


def _init_worker(mapper: RowMapper) -> None:
    global _worker_mapper
    _worker_mapper = mapper


def _map_in_worker(first_row: int, columns: list[list[str]]) -> MappedChunk:
    assert _worker_mapper is not None
    return _worker_mapper.map_phones(first_row, columns)


#: Chunks the main process maps itself at the start, while the worker process starts up
#: (spawning an interpreter and importing the mapper's modules takes about as long as
#: mapping two chunks; the main process would otherwise wait for it, idle).
LOCAL_FIRST = 2


class ChunkMapper:
    """Maps chunks in order, in ``workers`` processes (0: in this process).

    Reads ahead at most ``2 * workers`` chunks, so memory stays bounded. Worker processes
    are started with ``spawn`` (no fork of a process holding a database connection). The
    first :data:`LOCAL_FIRST` chunks are mapped here while the workers start: the chunks
    after them are submitted first, so the workers begin as soon as they are up. A
    worker's chunk gets its metadata JSON here (:meth:`RowMapper.with_metadata`).
    """

    def __init__(self, mapper: RowMapper, workers: int) -> None:
        self.mapper = mapper
        self.workers = workers

    def map(
        self, chunks: Iterable[tuple[int, list[list[str]]]]
    ) -> Iterator[tuple[list[list[str]], MappedChunk]]:
        if self.workers <= 0:
            for first_row, columns in chunks:
                yield columns, self.mapper.map_chunk(first_row, columns)
            return
        it = iter(chunks)
        local = list(islice(it, LOCAL_FIRST))
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            self.workers, mp_context=ctx, initializer=_init_worker, initargs=(self.mapper,)
        ) as pool:
            pending: deque[tuple[list[list[str]], Future[MappedChunk]]] = deque()
            try:
                for first_row, columns in islice(it, 2 * self.workers - 1):
                    pending.append((columns, pool.submit(_map_in_worker, first_row, columns)))
                while local:
                    first_row, columns = local.pop(0)
                    yield columns, self.mapper.map_chunk(first_row, columns)
                for first_row, columns in it:
                    pending.append((columns, pool.submit(_map_in_worker, first_row, columns)))
                    if len(pending) >= 2 * self.workers:
                        columns_done, fut = pending.popleft()
                        yield columns_done, self.mapper.with_metadata(columns_done, fut.result())
                while pending:
                    columns_done, fut = pending.popleft()
                    yield columns_done, self.mapper.with_metadata(columns_done, fut.result())
            finally:
                for _, fut in pending:
                    fut.cancel()
