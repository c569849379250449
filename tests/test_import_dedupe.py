"""SeenNumbers (numpy duplicate tracking) against the obvious dict."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.importer.dedupe import SeenNumbers

_numbers = st.sampled_from([f"+91984501{i:04d}" for i in range(12)] + ["+999999999999999"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_numbers, max_size=12), max_size=6), st.lists(_numbers, max_size=3))
def test_first_rows_match_a_dict(chunks: list[list[str]], existing: list[str]) -> None:
    import numpy as np

    seen = SeenNumbers()
    reference: dict[str, int] = {}
    existing = list(dict.fromkeys(existing))
    if existing:
        seen.add(
            np.array([int(n[1:]) for n in existing]),
            np.array([-(i + 2) for i in range(len(existing))]),
        )
        reference.update({n: -(i + 2) for i, n in enumerate(existing)})
    row = 2
    for chunk in chunks:
        rows = list(range(row, row + len(chunk)))
        row += len(chunk)
        expected = []
        for n, r in zip(chunk, rows, strict=True):
            expected.append(reference.get(n, 0))
            reference.setdefault(n, r)
        assert seen.first_rows(chunk, rows) == expected
    assert len(seen) == len(reference)
