"""The circuit breaker's settings as a person types them: ``--breaker 50%/20`` (pause the
campaign when more than 50 % of its last 20 calls failed) and ``--no-breaker``.

:func:`check_breaker` turns them into the campaign row's values or raises
:class:`~campaigns.errors.UserError` naming the option, for ``campaign create`` and
``campaign edit`` alike. The rule itself, and what counts as a failed call, are
:mod:`storage.breaker`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from campaigns.errors import UserError
from storage.breaker import DEFAULT_THRESHOLD, DEFAULT_WINDOW, MAX_WINDOW

#: ``50%/20``, ``50/20``, ``50 % / 20``
_SPEC = re.compile(r"^\s*(\d+)\s*%?\s*/\s*(\d+)\s*$")
EXAMPLE = f"{DEFAULT_THRESHOLD}%/{DEFAULT_WINDOW}"


@dataclass(frozen=True, kw_only=True)
class BreakerValues:
    """The breaker as stored: on or off, the threshold (a whole %) and the window (calls)."""

    enabled: bool
    threshold: int
    window: int

    def __str__(self) -> str:
        return f"{self.threshold}%/{self.window}" if self.enabled else "off"


def parse_breaker(text: str) -> tuple[int, int]:
    """``"50%/20"`` -> ``(50, 20)``; UserError names ``--breaker`` and says what is valid."""
    m = _SPEC.match(text)
    if m is None:
        raise UserError(
            f"--breaker: expected PERCENT%/CALLS, e.g. {EXAMPLE} (pause when more than "
            f"{DEFAULT_THRESHOLD} % of the last {DEFAULT_WINDOW} calls failed), not {text!r}"
        )
    threshold, window = int(m.group(1)), int(m.group(2))
    if threshold > 99:
        raise UserError(
            f"--breaker: the percentage must be 0 to 99 (more than 100 % of the calls can never fail), "
            f"not {threshold} in {text!r}"
        )
    if not 1 <= window <= MAX_WINDOW:
        raise UserError(
            f"--breaker: the number of calls must be 1 to {MAX_WINDOW}, not {window} in {text!r}"
        )
    return threshold, window


def check_breaker(
    text: str | None,
    off: bool,
    *,
    current: BreakerValues | None = None,
) -> BreakerValues:
    """The breaker a campaign gets from ``--breaker`` / ``--no-breaker`` (neither: ``current``,
    or the defaults for a new campaign). ``--no-breaker`` keeps the numbers, for a later
    ``--breaker`` to replace."""
    base = current or BreakerValues(
        enabled=True, threshold=DEFAULT_THRESHOLD, window=DEFAULT_WINDOW
    )
    if text is not None and off:
        raise UserError("--breaker and --no-breaker: give one of them, not both")
    if off:
        return BreakerValues(enabled=False, threshold=base.threshold, window=base.window)
    if text is None:
        return base
    threshold, window = parse_breaker(text)
    return BreakerValues(enabled=True, threshold=threshold, window=window)
