"""What a report holds: :class:`ReportOptions`, built from the values a person types.

The options cross from a shell (the command line, the web console) into
:func:`campaigns.report.write_report`; :func:`report_options` parses the typed forms
(``--state done,exhausted``, ``--columns A,B``, ``--since 2026-11-23``) and
:func:`check_filters` refuses unknown states and outcomes before a byte is written, naming the
option and the valid values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from campaigns.errors import UserError
from storage.states import AttemptState, ContactState, Outcome

PAGE_SIZE = 5000
PARALLEL_MIN_CONTACTS = 200_000


@dataclass(frozen=True, kw_only=True)
class ReportOptions:
    """What to export. Filters apply to the rows written: contact states and outcomes for the
    contact report, attempt states and outcomes for ``attempts=True``."""

    attempts: bool = False
    states: frozenset[str] = frozenset()
    outcomes: frozenset[str] = frozenset()
    columns: tuple[str, ...] | None = None  # choose and order; None = all
    since: datetime | None = None  # aware; rows updated or attempted at or after
    bom: bool = True
    #: add a ``transcript`` column: what was said on the (last) call, one line per turn
    transcripts: bool = False
    page_size: int = PAGE_SIZE
    #: processes that format rows; None: 2 on a multi-core machine (one if a single core)
    workers: int | None = None
    #: below this many contacts in the campaign, one process does it all
    parallel_min_contacts: int = PARALLEL_MIN_CONTACTS


def _split(values: Sequence[str]) -> frozenset[str]:
    """Repeatable options that also accept comma-separated lists."""
    return frozenset(v.strip() for value in values for v in value.split(",") if v.strip())


def parse_since(value: str) -> datetime:
    """An ISO 8601 date or time; without an offset it is taken as UTC."""
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UserError(
            f"--since {value!r} is not an ISO 8601 date or time "
            "(e.g. 2026-11-23, 2026-11-23T14:00, 2026-11-23T14:00:00+05:30)"
        ) from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def report_options(
    *,
    attempts: bool = False,
    states: Sequence[str] = (),
    outcomes: Sequence[str] = (),
    columns: str | None = None,
    since: str | None = None,
    bom: bool = True,
    transcripts: bool = False,
) -> ReportOptions:
    """:class:`ReportOptions` from the values a person types (``--state done,exhausted``,
    ``--columns A,B``, ``--since 2026-11-23``); the filters themselves are checked when the
    report is written. UserError names the option."""
    return ReportOptions(
        attempts=attempts,
        states=_split(states),
        outcomes=_split(outcomes),
        columns=tuple(c.strip() for c in columns.split(",") if c.strip()) if columns else None,
        since=parse_since(since) if since else None,
        bom=bom,
        transcripts=transcripts,
    )


def check_filters(options: ReportOptions) -> None:
    """Refuse states and outcomes that do not exist (UserError naming the option)."""
    valid_states = {s.value for s in (AttemptState if options.attempts else ContactState)}
    what = "attempt" if options.attempts else "contact"
    bad = sorted(options.states - valid_states)
    if bad:
        raise UserError(
            f"unknown {what} state(s) for --state: {', '.join(bad)}. "
            f"Valid: {', '.join(sorted(valid_states))}"
        )
    valid_outcomes = {o.value for o in Outcome}
    bad = sorted(options.outcomes - valid_outcomes)
    if bad:
        raise UserError(
            f"unknown outcome(s) for --outcome: {', '.join(bad)}. "
            f"Valid: {', '.join(sorted(valid_outcomes))}"
        )
