"""The import's mapping pipeline: the first chunks in the main process while the worker
starts, the rest in the worker; the results must be a single process's, in file order."""

from __future__ import annotations

from datetime import time as clock
from pathlib import Path

import pytest

from campaigns.importer.columns import map_columns
from campaigns.importer.rows import LOCAL_FIRST, ChunkMapper, RowMapper
from campaigns.policy import CallingPolicy

POLICY = CallingPolicy(window_start=clock(0), window_end=clock(23, 59), days=frozenset(range(7)))
PHONES = ["+91 98450 12345", "0984701234", "12", "", "+1 415 555 2671 x7", "n/a", "+447911123456"]


def _chunks(count: int) -> list[tuple[int, list[list[str]]]]:
    out = []
    for k in range(count):
        rows = [(PHONES[(k + i) % len(PHONES)], f"name {k}.{i}") for i in range(9)]
        out.append((2 + 9 * k, [[p for p, _ in rows], [n for _, n in rows]]))
    return out


@pytest.mark.parametrize("count", [1, LOCAL_FIRST, LOCAL_FIRST + 1, LOCAL_FIRST + 5])
def test_the_worker_pipeline_gives_one_process_results_in_order(count: int) -> None:
    cmap = map_columns(Path("c.csv"), ["phone", "name"], phone_column=None, name_column=None)
    mapper = RowMapper(cmap, "IN", POLICY)
    chunks = _chunks(count)
    alone = list(ChunkMapper(mapper, 0).map(chunks))
    piped = list(ChunkMapper(RowMapper(cmap, "IN", POLICY), 1).map(chunks))
    assert piped == alone  # same columns and mapped rows
    assert [m.first_row for _, m in piped] == [first for first, _ in chunks]
