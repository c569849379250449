"""What a raw call status means: status classification (pure), and the result a final outcome
is stored with (:func:`outcome_result`).

The API reports a raw call status (``completed``, ``no-answer``, ``voicemail``, ...). Here it
becomes an :class:`~storage.states.Outcome`; the raw status is always kept beside it (attempt
``call_status``), so nothing the API said is lost when a status we do not know maps to
``failed``. Statuses of calls still going on (``queued``, ``ringing``, ``in_progress``, ...)
classify as ``None``: not final yet.

What an outcome then means for the contact is the calling policy's
(``campaigns.dialing.OutcomeRules``), and it is applied by ``storage.outcomes.apply_outcomes``
in one compare-and-set transaction:

==========================  ==================================================================
answered                    contact ``done``
no_answer, busy, failed,    ``retry_wait`` at now + the campaign's delay for that outcome;
voicemail, no_outcome       ``exhausted`` when the attempt cap is reached; ``done`` when the
                            outcome is not re-dialled (voicemail with re-dial off)
an opt-out entity           the number joins the global do-not-call list; contact ``done``
campaign stopped/cancelled  a re-diallable outcome closes the contact ``cancelled`` instead
==========================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from storage.outcomes import CallResult
from storage.states import Outcome

if TYPE_CHECKING:
    from scheduler.providers.base import CallOutcome

#: Raw statuses (normalised: lower case, "-" and " " as "_") and the outcome they mean.
STATUS_OUTCOMES: Mapping[str, Outcome] = {
    **dict.fromkeys(
        ("completed", "complete", "answered", "success", "successful"), Outcome.ANSWERED
    ),
    **dict.fromkeys(
        ("no_answer", "noanswer", "not_answered", "unanswered", "missed", "no_response"),
        Outcome.NO_ANSWER,
    ),
    **dict.fromkeys(("busy", "user_busy", "line_busy"), Outcome.BUSY),
    **dict.fromkeys(
        ("failed", "failure", "error", "cancelled", "canceled", "rejected", "declined"),
        Outcome.FAILED,
    ),
    **dict.fromkeys(
        ("voicemail", "voice_mail", "machine", "answering_machine", "machine_detected"),
        Outcome.VOICEMAIL,
    ),
}

#: Raw statuses of calls that have not ended yet.
NON_FINAL_STATUSES = frozenset(
    {
        "queued",
        "initiated",
        "initiating",
        "created",
        "scheduled",
        "pending",
        "dialing",
        "calling",
        "connecting",
        "ringing",
        "in_progress",
        "inprogress",
        "ongoing",
        "active",
        "connected",
        "started",
        "live",
        "processing",
    }
)


def normalise_status(status: str | None) -> str | None:
    """``"No-Answer "`` -> ``"no_answer"``; None or blank -> None."""
    if status is None:
        return None
    text = status.strip().lower().replace("-", "_").replace(" ", "_")
    return text or None


def classify(status: str | None) -> Outcome | None:
    """The outcome a raw call status means, or None while the call has not ended.

    A status we do not know and that does not look like a call still in progress is taken as
    final and ``failed`` (the raw status is stored beside it): re-dialling a call we cannot
    read is safer than waiting for it forever.
    """
    key = normalise_status(status)
    if key is None or key in NON_FINAL_STATUSES:
        return None
    return STATUS_OUTCOMES.get(key, Outcome.FAILED)


def outcome_result(details: CallOutcome) -> CallResult | None:
    """The result a final outcome read from the provider (the poller's direct look-up, or an
    event it pushed: ``scheduler.inbox``) settles its attempt with; None while the call goes on."""
    outcome = classify(details.status)
    if outcome is None:
        return None
    return CallResult(
        outcome=outcome,
        call_status=details.raw_status,
        duration_ms=details.duration_ms,
        summary=details.summary,
        entity=dict(details.entities),
        raw={k: v for k, v in details.raw.items() if k != "transcript"},
        details_fetched=True,
        transcript=details.transcript,  # kept apart from the attempt (call_transcripts)
    )
