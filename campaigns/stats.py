"""The campaign summary people ask for: counts, pickup rate, durations, attempts, time to finish.

:func:`campaign_stats` reads it with a handful of aggregate queries (no row is loaded; see
:mod:`storage.stats`) and returns a plain frozen value, so that ``campaign show``, the daemon's progress display and the
demo all show the same figures. :meth:`CampaignStats.to_dict` is the ``--json`` form.

Definitions (also in ``campaign show --help``):

* ``counts``: contacts per state, every state present (zeros included).
* ``outcomes``: contacts per last known outcome (every outcome present, plus ``none`` for
  contacts never called); ``call_outcomes``: calls per outcome.
* ``pickup_rate``: answered calls / placed calls with an outcome, voicemail excluded from both
  (a machine picking up is neither a person answering nor a failed attempt to reach one).
  ``None`` until a call has an outcome. A placed call is an attempt the API accepted;
  ``placed_calls`` and ``answered_calls`` are the rate's denominator and numerator.
* ``avg_answered_duration_s``: mean duration of answered calls.
* ``attempts``: mean attempts over contacts called at least once, and a histogram from 1 to the
  larger of the campaign's cap and the most attempts seen.
* ``placed_last_10min`` and ``eta_s``: calls accepted in the last 10 minutes, and the time to
  dial the contacts still waiting (pending, retry_wait, dialing) at that rate, counting the
  calling windows (the wait until a window opens, and dialling only while one is open; see
  :meth:`campaigns.services.outlook.Outlook.dialling_eta`); 0 when none is waiting, ``None``
  when some are waiting but nothing was placed in the last 10 minutes. While every waiting
  contact is outside its window, the rate is that of the 10 minutes up to the last call
  placed (``eta_from_last_dialling``), so that the estimate survives the night.
* ``next_window_at``, ``next_window_zone`` and ``next_window``: when every waiting contact is
  outside its calling window, the first opening, its zone, and the sentence people read
  ("next window opens 10:00 Asia/Kolkata (in 13h56m)"); ``None`` otherwise.
* ``progress`` (JSON only): the sums ``campaign list`` shows (waiting, in flight, done, not
  called, closed), by the same definition, so the two never disagree.
* ``callbacks_scheduled`` and ``next_callback_at``: contacts waiting for a callback they asked
  for on a call (``campaigns.callbacks``), and the soonest of those.
* ``breaker_errors``: when the circuit breaker paused the campaign (``status_reason`` says
  why: "circuit breaker: 14 of the last 20 calls failed (70% > 50%)"), the last failed calls
  it saw, newest first (attempt id, call id, status, error text, time); ``None`` otherwise.
  ``settings.breaker`` is the rule (on or off, the %, the calls) and the start of its window.
* ``outbox`` (campaigns with a webhook only): events waiting to be delivered, delivered, and
  dead (given up after the retries), with the newest dead event's id and error.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from campaigns.services.lifecycle import Progress
from campaigns.services.outlook import outlook
from campaigns.webhooks import display_url
from storage.campaigns_repo import CampaignRecord
from storage.engine import Engine
from storage.errors import NotFound
from storage.models import utcnow
from storage.outbox import OutboxCounts, outbox_counts
from storage.states import ContactState, Outcome
from storage.stats import campaign_aggregates

RATE_WINDOW = timedelta(minutes=10)
#: Contacts that still need a call placed.
TO_DIAL = (ContactState.PENDING, ContactState.RETRY_WAIT, ContactState.DIALING)


@dataclass(frozen=True, kw_only=True)
class CampaignStats:
    """A snapshot of one campaign's progress and results (see the module docstring)."""

    id: int
    name: str
    agent_id: str
    status: str
    status_reason: str | None
    created_at: datetime
    settings: dict[str, Any]
    total: int
    counts: dict[str, int]
    outcomes: dict[str, int]
    call_outcomes: dict[str, int]
    placed_calls: int
    answered_calls: int
    pickup_rate: float | None
    avg_answered_duration_s: float | None
    attempts_mean: float | None
    attempts_histogram: dict[int, int]
    placed_last_10min: int
    waiting: int
    eta_s: float | None
    as_of: datetime
    webhook_url: str | None = None  # as shown: no query string (it may hold a token)
    outbox: OutboxCounts | None = None  # events out, for a campaign with a webhook
    callbacks_scheduled: int = 0
    next_callback_at: datetime | None = None
    eta_from_last_dialling: bool = False  # eta_s at the rate dialled before windows closed
    next_window_at: datetime | None = None  # set when every waiting contact is closed
    next_window_zone: str | None = None
    next_window: str | None = None
    #: what the circuit breaker saw when it paused the campaign (storage.breaker), newest
    #: first; None unless it tripped (a resume clears them)
    breaker_errors: list[dict[str, Any]] | None = None

    @property
    def finished(self) -> int:
        """Contacts in a state that will not change again."""
        live = {s.value for s in (*TO_DIAL, ContactState.AWAITING_OUTCOME)}
        return sum(n for s, n in self.counts.items() if s not in live)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO 8601 UTC, histogram keys as strings."""
        d = asdict(self)
        d["created_at"] = _iso(self.created_at)
        d["as_of"] = _iso(self.as_of)
        d["next_callback_at"] = _iso(self.next_callback_at)
        d["next_window_at"] = _iso(self.next_window_at)
        p = Progress(counts=self.counts)
        d["progress"] = p.summary() | {"not_called": p.not_called, "closed": p.closed}
        d["finished"] = self.finished
        d["attempts_histogram"] = {str(k): v for k, v in self.attempts_histogram.items()}
        if self.outbox is not None:
            d["outbox"]["last_dead_at"] = _iso(self.outbox.last_dead_at)
        d["settings"] = {
            k: _iso(v) if isinstance(v, datetime) else v for k, v in self.settings.items()
        }
        if "breaker" in d["settings"]:
            d["settings"]["breaker"]["since"] = _iso(self.settings["breaker"]["since"])
        return d


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def campaign_settings(c: CampaignRecord) -> dict[str, Any]:
    """The calling policy stored with the campaign, as shown to people."""
    return {
        "window": f"{c.window_start}-{c.window_end}",
        "days": c.days,
        "timezone": c.timezone,
        "start_at": c.start_at,
        "end_at": c.end_at,
        "max_attempts": c.max_attempts,
        "retry_delay_s": c.retry_delay_s,
        "retry_delays_s": dict(c.retry_delays or {}),
        "max_callbacks": c.max_callbacks,
        "redial_voicemail": c.redial_voicemail,
        "retry_schedule_s": list(c.retry_schedule or []),
        "skip_dates": list(c.skip_dates or []),
        "holidays": c.holidays,
        "daily_cap_per_number": c.daily_cap_per_number,
        "outbound_number": c.outbound_number,
        "voice": c.voice,
        "breaker": {
            "enabled": c.breaker_enabled,
            "threshold_pct": c.breaker_threshold,
            "window_calls": c.breaker_window,
            "since": c.breaker_since,
        },
    }


def campaign_stats(
    engine: Engine, campaign_id: int, *, now: datetime | None = None
) -> CampaignStats:
    """Compute the summary of ``campaign_id``. Raises :class:`~storage.errors.NotFound` (its
    message says where to find the ids) when there is no such campaign."""
    now = now or utcnow()
    try:
        agg = campaign_aggregates(engine, campaign_id, since=now - RATE_WINDOW, span=RATE_WINDOW)
    except NotFound as exc:
        raise NotFound(f"{exc} (see `vaani-campaigns campaign list`)") from None
    c = agg.campaign
    by_state, by_outcome, call_outcomes = agg.by_state, agg.by_outcome, agg.call_outcomes
    histogram, recent, avg_dur = (
        agg.attempts_histogram,
        agg.placed_since,
        agg.avg_answered_duration_s,
    )

    counts = {s.value: int(by_state.get(s.value, 0)) for s in ContactState}
    for s, n in by_state.items():  # a state this code does not know still shows
        counts.setdefault(str(s), int(n))
    outcomes = {o.value: int(by_outcome.get(o.value, 0)) for o in Outcome}
    outcomes["none"] = int(by_outcome.get(None, 0))
    calls = {o.value: int(call_outcomes.get(o.value, 0)) for o in Outcome}
    for o, n in call_outcomes.items():
        calls.setdefault(str(o), int(n))
    answered = calls[Outcome.ANSWERED.value]
    placed_n = sum(n for o, n in calls.items() if o != Outcome.VOICEMAIL.value)
    called = sum(histogram.values())
    top = max([c.max_attempts or 0, *histogram])
    waiting = sum(counts[s.value] for s in TO_DIAL)
    look = outlook(engine, campaign_id, now=now)
    # calls a second; while every window is closed, the rate of the last 10 minutes of dialling
    last_rate = look.all_closed and not recent and agg.placed_before_last > 0
    rate = (agg.placed_before_last if last_rate else recent) / RATE_WINDOW.total_seconds()
    eta = 0.0 if waiting == 0 else None
    if waiting and rate:
        eta = look.dialling_eta(rate)
        if eta is not None:  # those being dialled now go on top
            eta += counts[ContactState.DIALING.value] / rate
    return CampaignStats(
        id=c.id,
        name=c.name,
        agent_id=c.agent_id,
        status=c.status,
        status_reason=c.status_reason,
        created_at=c.created_at,
        settings=campaign_settings(c),
        total=sum(counts.values()),
        counts=counts,
        outcomes=outcomes,
        call_outcomes=calls,
        placed_calls=placed_n,
        answered_calls=answered,
        pickup_rate=answered / placed_n if placed_n else None,
        avg_answered_duration_s=avg_dur,
        attempts_mean=(sum(k * n for k, n in histogram.items()) / called) if called else None,
        attempts_histogram={k: int(histogram.get(k, 0)) for k in range(1, top + 1)},
        placed_last_10min=int(recent),
        waiting=waiting,
        eta_s=eta,
        eta_from_last_dialling=bool(last_rate and eta is not None),
        as_of=now,
        webhook_url=display_url(c.webhook_url) if c.webhook_url else None,
        outbox=outbox_counts(engine, campaign_id) if c.webhook_url else None,
        callbacks_scheduled=agg.callbacks_scheduled,
        next_callback_at=agg.next_callback_at,
        next_window_at=look.next_window_at if look.all_closed else None,
        next_window_zone=look.next_window_zone if look.all_closed else None,
        next_window=look.next_window_text(),
        breaker_errors=list(c.breaker_errors) if c.breaker_errors else None,
    )
