"""What the daemon says when a campaign's circuit breaker trips (the rule and the pause are
:mod:`storage.breaker`'s, in the transaction of the outcome that tripped it).

One ``breaker_tripped`` log line per trip, at error level: the campaign, the reason and the
last errors as one text field (so that the log's redaction filter sees it; the error texts
are the attempts' own, which never hold the API key). The poller and the webhook inbox call
:func:`report_trip` for the trips their batches caused; the daemon adds its exit code.
"""

from __future__ import annotations

import logging

from storage.breaker import Trip, describe_error

log = logging.getLogger("vaani.breaker")


def report_trip(trip: Trip, *, source: str = "poll") -> None:
    """Log ``trip`` once (the compare-and-set of the pause made it happen once)."""
    log.error(
        "campaign %s paused: %s",
        trip.campaign_id,
        trip.reason,
        extra={
            "event": "breaker_tripped",
            "campaign_id": trip.campaign_id,
            "failed": trip.failed,
            "window": trip.window,
            "threshold_pct": trip.threshold,
            "source": source,
            "last_errors": "; ".join(describe_error(e) for e in trip.errors),
        },
    )
