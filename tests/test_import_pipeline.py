"""The import's mapping pipeline: a worker process, and the main process taking up its slack.

When the worker is behind, the main process maps the next chunks itself
(``ChunkMapper``); the results must be those of a single process, in file order.
"""

from __future__ import annotations

import multiprocessing
import time
from datetime import time as clock
from pathlib import Path

from campaigns.importer.columns import map_columns
from campaigns.importer.rows import ChunkMapper, MappedChunk, RowMapper
from campaigns.policy import CallingPolicy

POLICY = CallingPolicy(window_start=clock(0), window_end=clock(23, 59), days=frozenset(range(7)))


class SlowInWorker(RowMapper):
    """A mapper whose worker copy is slow, so that the main process must step in."""

    def map_chunk(self, first_row: int, columns: list[list[str]]) -> MappedChunk:
        if multiprocessing.current_process().name != "MainProcess":
            time.sleep(0.3)
        return super().map_chunk(first_row, columns)


def _chunks() -> list[tuple[int, list[list[str]]]]:
    phones = ["+91 98450 12345", "0984701234", "12", "", "+1 415 555 2671 x7", "n/a"]
    out = []
    for k in range(10):
        rows = [(phones[(k + i) % len(phones)], f"name {k}.{i}") for i in range(12)]
        out.append((2 + 12 * k, [[p for p, _ in rows], [n for _, n in rows]]))
    return out


def test_main_process_maps_while_the_worker_is_behind() -> None:
    cmap = map_columns(Path("c.csv"), ["phone", "name"], phone_column=None, name_column=None)
    chunks = _chunks()
    alone = list(ChunkMapper(RowMapper(cmap, "IN", POLICY), 0).map(chunks))
    piped = ChunkMapper(SlowInWorker(cmap, "IN", POLICY), 1)
    got = list(piped.map(chunks))
    assert got == alone  # same columns and results, in file order
    assert [m.first_row for _, m in got] == [first for first, _ in chunks]
    assert 0 < piped.mapped_here < len(chunks)  # both sides mapped some
