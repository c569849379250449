"""The states of campaigns, contacts and call attempts (DESIGN.md, "States").

Plain string enums so that they read well in SQL, in reports and in JSON output.
"""

from __future__ import annotations

from enum import StrEnum


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    STOPPED = "stopped"
    CANCELLED = "cancelled"


#: Campaign statuses in which nothing more will ever be dialled.
CAMPAIGN_FINAL = frozenset(
    {CampaignStatus.COMPLETED, CampaignStatus.STOPPED, CampaignStatus.CANCELLED}
)


class ContactState(StrEnum):
    PENDING = "pending"  # due now or at next_attempt_at
    DIALING = "dialing"  # claimed by a daemon, attempt reserved, POST in flight
    AWAITING_OUTCOME = "awaiting_outcome"  # the call was placed, no outcome yet
    RETRY_WAIT = "retry_wait"  # a re-dial is planned at next_attempt_at
    DONE = "done"  # answered (or a final outcome that is not re-dialled)
    EXHAUSTED = "exhausted"  # attempt cap reached without an answer
    INVALID = "invalid"  # rejected at import, kept with the reason
    SUPPRESSED = "suppressed"  # on a do-not-call list
    EXPIRED = "expired"  # the campaign ended first
    CANCELLED = "cancelled"  # the campaign was cancelled first


#: Contact states that will never change again.
CONTACT_TERMINAL = frozenset(
    {
        ContactState.DONE,
        ContactState.EXHAUSTED,
        ContactState.INVALID,
        ContactState.SUPPRESSED,
        ContactState.EXPIRED,
        ContactState.CANCELLED,
    }
)

#: Contact states that may still be dialled (now or later).
CONTACT_DIALABLE = frozenset({ContactState.PENDING, ContactState.RETRY_WAIT})


class AttemptState(StrEnum):
    RESERVED = "reserved"  # written ahead, POST not (known to be) sent yet
    ACCEPTED = "accepted"  # the API gave us a call_id
    REJECTED = "rejected"  # 4xx: certainly not placed
    UNKNOWN = "unknown"  # sent, the answer was lost: must be reconciled
    NOT_PLACED = "not_placed"  # reconciled: the call history has no such call
    FINISHED = "finished"  # the call ended and its outcome is known


#: Attempt states that hold the contact: at most one per contact (invariant 1).
ATTEMPT_LIVE = frozenset({AttemptState.RESERVED, AttemptState.ACCEPTED, AttemptState.UNKNOWN})


class Outcome(StrEnum):
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    VOICEMAIL = "voicemail"
    NO_OUTCOME = "no_outcome"  # never reported back before the deadline
