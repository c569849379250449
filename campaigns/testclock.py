"""A test hook: the calling policy's view of the calendar, shifted by a fixed offset.

Whether a contact may be called today depends on the contact's local DATE (a weekday, a
blackout date, a public holiday of their country). An end-to-end test of "no call on Christmas"
cannot wait for Christmas, so ``VAANI_TEST_CLOCK_OFFSET`` (seconds, e.g. ``2073600`` or
``-3600``; or a duration such as ``24d``, ``-2h``) makes the POLICY believe it is that much
later, like ``VAANI_MIN_RETRY_DELAY`` lowers the re-dial floor: a knob for test rigs, read from
the environment, never set in production. ``run`` warns at start while it is set.

Only the policy's questions are shifted: "is the window open now?", "when does it open next?",
"has the campaign ended?" (:class:`campaigns.dialing.Decider`) and the outlook that ``campaign
show`` and the daemon print (:func:`campaigns.services.outlook.outlook`). Their answers are
shifted back (:func:`to_real`) before they are stored, so ``next_attempt_at`` stays an instant
of the real clock that the claim queries compare with the real "now". Everything else keeps
real time: attempts' timestamps (``sent_at``, ``created_at``), leases, the rolling daily cap,
re-dial delays, pacing, and every timestamp compared with a provider's. A callback time a
contact asks for is planned on the real clock too.
"""

from __future__ import annotations

import functools
import os
from datetime import datetime, timedelta

from campaigns.errors import UserError
from campaigns.parsing import parse_duration

#: The environment variable of the hook (see the module doc).
TEST_CLOCK_OFFSET_ENV = "VAANI_TEST_CLOCK_OFFSET"


def parse_offset(text: str | None) -> timedelta:
    """``"2073600"``, ``"24d"``, ``"-2h"`` -> the offset; zero for empty. UserError names the
    variable for anything else."""
    text = (text or "").strip()
    if not text:
        return timedelta(0)
    sign = -1 if text.startswith("-") else 1
    try:
        return sign * parse_duration(text.lstrip("+-").strip())
    except ValueError as exc:
        raise UserError(f"{TEST_CLOCK_OFFSET_ENV}: {exc} (a signed offset)") from None


@functools.cache
def policy_offset() -> timedelta:
    """The offset this process runs with (read once: a daemon does not change it midway)."""
    return parse_offset(os.environ.get(TEST_CLOCK_OFFSET_ENV))


def policy_now(real: datetime, offset: timedelta | None = None) -> datetime:
    """The instant the calling policy believes ``real`` is."""
    return real + (policy_offset() if offset is None else offset)


def to_real(view: datetime, offset: timedelta | None = None) -> datetime:
    """The real instant of one the policy named (a window opening, a deferral)."""
    return view - (policy_offset() if offset is None else offset)
