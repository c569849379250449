"""The calling decisions after a call (campaigns/dialing.py): pure, no I/O.

The dial decision itself is tested in test_dispatcher.py; outcome application against real
databases in test_outcomes.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from campaigns.calling import CallingPolicy
from campaigns.dialing import (
    Decider,
    OutcomeRules,
    PolicyCache,
    cancelled_by_campaign,
    next_contact_state,
)
from storage.states import CampaignStatus, ContactState, Outcome
from tests.factories import campaign_record

NOW = datetime(2026, 11, 25, 6, 30, tzinfo=UTC)


def policy(**values: object) -> CallingPolicy:
    return CallingPolicy.from_campaign(campaign_record(**values))


@pytest.mark.parametrize("status", list(CampaignStatus))
def test_only_stopped_and_cancelled_campaigns_cancel_a_redial(status: CampaignStatus) -> None:
    reason = cancelled_by_campaign(status.value)
    if status in (CampaignStatus.STOPPED, CampaignStatus.CANCELLED):
        assert reason == f"campaign {status.value} before a re-dial"
    else:
        assert reason is None
    assert cancelled_by_campaign(None) is None  # the campaign is gone: nothing to cancel by


def test_next_state_after_each_kind_of_outcome() -> None:
    pol = policy(max_attempts=3, retry_delay_s=600, redial_voicemail=False)
    answered = next_contact_state(Outcome.ANSWERED, 1, pol, "running", NOW)
    assert (answered.state, answered.next_attempt_at, answered.reason) == (
        ContactState.DONE,
        None,
        None,
    )
    again = next_contact_state(Outcome.NO_ANSWER, 1, pol, "running", NOW)
    assert (again.state, again.next_attempt_at) == (
        ContactState.RETRY_WAIT,
        NOW + timedelta(seconds=600),
    )
    busy = next_contact_state(Outcome.BUSY, 2, pol, "paused", NOW)  # paused still re-dials later
    assert (busy.state, busy.next_attempt_at) == (
        ContactState.RETRY_WAIT,
        NOW + timedelta(seconds=600),
    )
    capped = next_contact_state(Outcome.NO_ANSWER, 3, pol, "running", NOW)
    assert (capped.state, capped.reason) == (
        ContactState.EXHAUSTED,
        "attempt cap reached (3 calls)",
    )
    voicemail = next_contact_state(Outcome.VOICEMAIL, 1, pol, "running", NOW)
    assert (voicemail.state, voicemail.reason) == (
        ContactState.DONE,
        "voicemail is not re-dialled",
    )
    stopped = next_contact_state(Outcome.FAILED, 1, pol, "stopped", NOW)
    assert (stopped.state, stopped.reason) == (
        ContactState.CANCELLED,
        "campaign stopped before a re-dial",
    )
    # the cap wins over the stop: nothing would be re-dialled anyway
    assert (
        next_contact_state(Outcome.FAILED, 3, pol, "stopped", NOW).state is ContactState.EXHAUSTED
    )
    assert all(m.opted_out is None for m in (answered, again, busy, capped, voicemail, stopped))


def test_the_attempt_cap_is_read_in_one_place() -> None:
    pol = policy(max_attempts=2)
    assert [pol.cap_reached(n) for n in (0, 1, 2, 3)] == [False, False, True, True]
    assert pol.redial_delay("no_answer", 1) is not None
    assert pol.redial_delay("no_answer", 2) is None


def test_outcome_rules_opt_out_first_then_policy() -> None:
    rules = OutcomeRules()
    camp = campaign_record(opt_out_entities=["unsubscribe"], max_attempts=3)
    out = rules.after_outcome(
        camp, outcome=Outcome.NO_ANSWER, entity={"Unsubscribe": "yes"}, attempts=1, now=NOW
    )
    assert (out.state, out.reason, out.opted_out) == (
        ContactState.DONE,
        "opted out (unsubscribe)",
        "unsubscribe",
    )
    # an entity that is not a configured opt-out key changes nothing
    out = rules.after_outcome(
        camp, outcome=Outcome.NO_ANSWER, entity={"opt_out": True}, attempts=1, now=NOW
    )
    assert (out.state, out.opted_out) == (ContactState.RETRY_WAIT, None)
    unreadable = replace(camp, id=9, days="someday")
    out = rules.after_outcome(unreadable, outcome=Outcome.BUSY, entity=None, attempts=1, now=NOW)
    assert out.state is ContactState.EXHAUSTED
    assert (out.reason or "").startswith("not re-dialled: campaign 9: invalid days 'someday'")


def test_one_policy_cache_is_keyed_by_campaign_and_updated_at() -> None:
    cache = PolicyCache()
    camp = campaign_record(max_attempts=3)
    first = cache.get(camp)
    assert cache.get(camp) is first  # built once
    edited = replace(camp, max_attempts=5, updated_at=camp.updated_at + timedelta(seconds=1))
    assert cache.get(edited) is not first and cache.get(edited).max_attempts == 5
    # the dial decision and the outcome rules share it: an edit is seen by both at once
    decide, rules = Decider(None, cache), OutcomeRules(cache)
    assert decide.policies is rules.policies is cache
    assert cache.get(edited) is cache.get(replace(edited, name="renamed"))  # same updated_at
