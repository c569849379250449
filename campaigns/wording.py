"""Counts as people read them: "1 row", "2 rows", never "1 rows" or "row(s)".

Every count the command line prints goes through :func:`plural`, so the grammar is right in
one place instead of guessed in each message.
"""

from __future__ import annotations


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``n`` and ``noun`` in the number ``n`` asks for: ``plural(1, "row") == "1 row"``,
    ``plural(3, "row") == "3 rows"``; ``nouns`` gives a plural that is not ``noun + "s"``
    (``plural(2, "number has", "numbers have")`` -> ``"2 numbers have"``)."""
    return f"{n} {noun if n == 1 else (nouns or noun + 's')}"
