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


def duration(seconds: float) -> str:
    """A wait as people read it: ``45s``, ``3m05s``, ``13h56m``, ``2d03h``."""
    s = round(seconds)
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    if d:
        return f"{d}d{h:02d}h"
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")
