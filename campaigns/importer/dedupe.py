"""Duplicate numbers across a whole file, in bounded memory.

A million distinct numbers in a Python ``dict`` cost ~120 MB; here they are two sorted
``int64``/``int32`` numpy arrays (12 bytes a number), checked a chunk at a time with
``searchsorted``. An E.164 number without its ``+`` has at most 15 digits, so it fits.
"""

from __future__ import annotations

import numpy as np


class SeenNumbers:
    """E.164 numbers seen so far, each with the row of its first occurrence.

    A row number may be negative to mark a number that was in the campaign before this file.
    """

    def __init__(self) -> None:
        self._keys = np.empty(0, dtype=np.int64)
        self._rows = np.empty(0, dtype=np.int32)

    def __len__(self) -> int:
        return len(self._keys)

    def first_rows(self, numbers: list[str], rows: list[int]) -> list[int]:
        """For each E.164 number (in row order), the row where it was first seen, or 0 when
        this is its first occurrence; the first occurrences are remembered."""
        if not numbers:
            return []
        keys = np.fromiter((int(n[1:]) for n in numbers), dtype=np.int64, count=len(numbers))
        row_arr = np.asarray(rows, dtype=np.int32)
        # seen in earlier chunks?
        pos = np.searchsorted(self._keys, keys)
        in_range = pos < len(self._keys)
        earlier = np.zeros(len(keys), dtype=np.int32)
        hit = np.zeros(len(keys), dtype=bool)
        if len(self._keys):
            clipped = np.minimum(pos, len(self._keys) - 1)
            hit = in_range & (self._keys[clipped] == keys)
            earlier[hit] = self._rows[clipped[hit]]
        # repeated within this chunk? (a stable sort keeps row order inside each group)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.ones(len(keys), dtype=bool)
        starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
        group_start = np.maximum.accumulate(np.where(starts, np.arange(len(keys)), 0))
        first_in_chunk = np.empty(len(keys), dtype=np.int32)
        first_in_chunk[order] = row_arr[order[group_start]]
        is_first = np.empty(len(keys), dtype=bool)
        is_first[order] = starts
        result = np.where(hit, earlier, np.where(is_first, 0, first_in_chunk))
        new = ~hit & is_first
        if new.any():
            self.add(keys[new], row_arr[new])
        return result.tolist()

    def add(self, keys: np.ndarray, rows: np.ndarray) -> None:
        """Remember ``keys`` (not yet present) with their first ``rows``."""
        keys = np.asarray(keys, dtype=np.int64)
        rows = np.asarray(rows, dtype=np.int32)
        order = np.argsort(keys)
        keys, rows = keys[order], rows[order]
        at = np.searchsorted(self._keys, keys)
        self._keys = np.insert(self._keys, at, keys)
        self._rows = np.insert(self._rows, at, rows)
