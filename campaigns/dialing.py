"""The calling decisions, each written once: dial or not, and what an outcome means.

* :class:`Decider` -- the dial decision for a due contact (suppressed, cap reached, campaign
  ended, zone unknown, window closed, rolling 24-hour cap per number), handed to
  ``storage.claims.claim_due``;
* :func:`next_contact_state` -- the contact's state after a call's outcome (done, re-dial at,
  exhausted, not re-dialled);
* :func:`cancelled_by_campaign` -- "the campaign was stopped or cancelled: the contact is
  cancelled instead of re-dialled", for outcomes and for calls found never placed alike;
* :func:`opted_out` and :func:`is_truthy` -- an opt-out heard on a call (entities);
* :class:`OutcomeRules` -- all of the above for ``storage.outcomes.apply_outcomes``, and a
  callback the contact asked for (:mod:`campaigns.callbacks`) before the re-dial rule;
* :class:`PolicyCache` -- the ONE cache of calling policies, keyed by (campaign id,
  ``updated_at``), shared by the dispatcher and the poller of a daemon.

Pure: values in, values out; the clock is a parameter. Storage asks these mid-transaction
through the callables and protocols it defines (``Decide``, ``OutcomeRule``, ``CancelRule``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from campaigns.blackout import country_of
from campaigns.callbacks import plan_callback
from campaigns.calling import CallingPolicy
from campaigns.testclock import policy_now, to_real
from campaigns.wording import plural
from storage.campaigns_repo import CampaignRecord
from storage.claims import Candidate, Decision
from storage.outcomes import ContactMove
from storage.states import CampaignStatus, ContactState, Outcome

#: Entity values that mean "yes" for an opt-out entity (strings compared case-insensitively).
_TRUTHY_TEXT = frozenset({"true", "yes", "y", "1", "on"})


class PolicyCache:
    """Calling policies by campaign, rebuilt when the campaign changes (``updated_at``).

    One per daemon, shared by its dispatcher and its poller (both ask on the database thread).
    A campaign keeps one entry: an edit replaces it rather than adding another.
    """

    def __init__(self) -> None:
        self._policies: dict[int, tuple[datetime, CallingPolicy]] = {}

    def get(self, campaign: CampaignRecord) -> CallingPolicy:
        """The policy of ``campaign``; ValueError (naming the setting) when it cannot be read."""
        cached = self._policies.get(campaign.id)
        if cached is not None and cached[0] == campaign.updated_at:
            return cached[1]
        policy = CallingPolicy.from_campaign(campaign)
        self._policies[campaign.id] = (campaign.updated_at, policy)
        return policy


class Decider:
    """The dial decision for one candidate, from the campaign's calling policy.

    ``daily_cap`` is the daemon's rolling 24-hour cap per number (None: none); a campaign can
    tighten it, never loosen it. ``clock_offset`` shifts the policy's calendar (the test hook
    of :mod:`campaigns.testclock`; None: the one of the environment, zero unless set).
    """

    def __init__(
        self,
        daily_cap: int | None,
        policies: PolicyCache | None = None,
        *,
        clock_offset: timedelta | None = None,
    ) -> None:
        self._daily_cap = daily_cap
        self.policies = policies or PolicyCache()
        self._offset = clock_offset

    def __call__(self, camp: CampaignRecord, cand: Candidate, now: datetime) -> Decision:
        """Dial ``cand`` now, defer it to an instant, or close it with a reason."""
        pol = self.policies.get(camp)
        if cand.suppressed:
            return Decision.close(ContactState.SUPPRESSED, "on the do-not-call list")
        if pol.cap_reached(cand.attempts - cand.callbacks):  # callbacks have their own cap
            return Decision.close(ContactState.EXHAUSTED, "attempt cap reached")
        view = policy_now(now, self._offset)  # the calendar the policy reads; `now` is real
        if pol.end_at is not None and view >= pol.end_at:
            return Decision.close(ContactState.EXPIRED, "the campaign ended before this call")
        zones = pol.zones_for(cand.timezones)
        if not zones:
            return Decision.close(
                ContactState.INVALID,
                "time zone unknown for this number: set the campaign's --timezone "
                "or a timezone column",
            )
        country = country_of(cand.phone_e164) if pol.blackout.uses_country else None
        if not pol.is_open(zones, view, country):  # holidays are the contact's country's
            opening = pol.next_opening(zones, view, country)
            if opening is None:
                return Decision.close(
                    ContactState.EXPIRED, "no calling window left before the campaign's end"
                )
            return Decision.defer(to_real(opening, self._offset))  # stored: real time
        caps = [c for c in (self._daily_cap, pol.daily_cap_per_number) if c]
        cap = min(caps) if caps else None
        if cap is not None and len(cand.recent_calls) >= cap:
            # due again when the oldest of the last `cap` calls leaves the 24-hour window
            return Decision.defer(cand.recent_calls[-cap] + timedelta(hours=24, seconds=1))
        return Decision.dial()


def cancelled_by_campaign(campaign_status: str | None) -> str | None:
    """Why a contact that would be dialled again is cancelled instead: its campaign was
    stopped or cancelled. None when the campaign still dials (or is gone)."""
    if campaign_status in (CampaignStatus.STOPPED, CampaignStatus.CANCELLED):
        return f"campaign {campaign_status} before a re-dial"
    return None


def next_contact_state(
    outcome: Outcome,
    attempts: int,
    policy: CallingPolicy,
    campaign_status: str,
    now: datetime,
) -> ContactMove:
    """The contact's next state, its next attempt time and a reason, after ``outcome`` of its
    ``attempts``-th call."""
    if outcome is Outcome.ANSWERED:
        return ContactMove(state=ContactState.DONE)
    delay = policy.redial_delay(outcome.value, attempts)
    if delay is None:
        if policy.cap_reached(attempts):
            return ContactMove(
                state=ContactState.EXHAUSTED,
                reason=f"attempt cap reached ({plural(attempts, 'call')})",
            )
        return ContactMove(state=ContactState.DONE, reason=f"{outcome.value} is not re-dialled")
    cancelled = cancelled_by_campaign(campaign_status)
    if cancelled is not None:
        return ContactMove(state=ContactState.CANCELLED, reason=cancelled)
    return ContactMove(state=ContactState.RETRY_WAIT, next_attempt_at=now + delay)


def is_truthy(value: Any) -> bool:
    """Does an extracted entity value say yes? (``True``, ``"yes"``, ``"true"``, ``1`` ...)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in _TRUTHY_TEXT
    return False


def opted_out(entity: Mapping[str, Any] | None, keys: Iterable[str]) -> str | None:
    """The first opt-out entity key that is truthy in ``entity`` (matched case-insensitively),
    or None."""
    if not entity:
        return None
    lowered = {str(k).strip().lower(): v for k, v in entity.items()}
    for key in keys:
        if is_truthy(lowered.get(str(key).strip().lower())):
            return str(key)
    return None


class OutcomeRules:
    """What an outcome means for a contact (``storage.outcomes.OutcomeRule``): an opt-out
    closes it ``done`` (and storage suppresses the number); otherwise the campaign's policy
    decides (:func:`next_contact_state`); a campaign setting that cannot be read closes it
    ``exhausted`` rather than re-dialling on a guess."""

    def __init__(self, policies: PolicyCache | None = None) -> None:
        self.policies = policies or PolicyCache()

    def after_outcome(
        self,
        campaign: CampaignRecord,
        *,
        outcome: Outcome,
        entity: Mapping[str, Any] | None,
        attempts: int,
        now: datetime,
        callbacks: int = 0,
        timezones: str | None = None,
        ended_at: datetime | None = None,
    ) -> ContactMove:
        """The contact's move after ``outcome`` of its ``attempts``-th call; ``callbacks``
        of those calls were callbacks (they do not count against ``max_attempts``)."""
        opt_key = opted_out(entity, campaign.opt_out_entities or ())
        if opt_key is not None:
            return ContactMove(
                state=ContactState.DONE, reason=f"opted out ({opt_key})", opted_out=opt_key
            )
        try:
            policy = self.policies.get(campaign)
        except ValueError as exc:  # a campaign setting we cannot read: do not re-dial
            return ContactMove(state=ContactState.EXHAUSTED, reason=f"not re-dialled: {exc}")
        plan = plan_callback(
            policy,
            entity=entity,
            keys=campaign.callback_keys,
            max_callbacks=campaign.max_callbacks,
            callbacks=callbacks,
            timezones=timezones,
            ended_at=ended_at or now,
            now=now,
        )
        if plan is not None and plan.at is not None:  # the contact asked: call back then
            cancelled = cancelled_by_campaign(campaign.status)
            if cancelled is None:
                return ContactMove(
                    state=ContactState.RETRY_WAIT,
                    next_attempt_at=plan.at,
                    reason="callback asked for on the call",
                    callback_at=plan.at,
                    callback_note=plan.note,
                )
        move = next_contact_state(outcome, attempts - callbacks, policy, campaign.status, now)
        if plan is not None and plan.note:
            return replace(move, callback_note=plan.note)
        return move
