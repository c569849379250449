"""The checks of ``campaign test-call``, made before anything is sent: reads only.

:func:`plan_test_call` builds the request the campaign's own calls are built with
(:func:`scheduler.dispatcher.dial_request`: agent, caller id, voice, options) to the
operator's number, with the name and metadata of the campaign's first contact with a valid
number (or the row ``--contact`` names), and refuses, in one line naming the flag:

* a ``--to`` that is not a number (read with the campaign's ``--region``);
* a number on the do-not-call list, the global one or the campaign's (no override: the list
  is a promise);
* a number with a live attempt, in any campaign: a lost answer is reconciled by number and
  time (:mod:`scheduler.reconcile`), so a test call placed meanwhile could be taken for that
  attempt's call. A number that is a contact's without a live attempt gets a note: the test
  call is not that contact's call (though a campaign call to it whose answer is lost within
  the reconciler's clock-skew margin, 2 minutes, could still be matched to it).

The call carries a client reference ``test-call-...``, never an attempt's ``attempt-N``, so
providers that echo references never match it to an attempt. The calling window is not
checked (the call rings the operator), but a note says when it is closed for the contact
whose metadata is used.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from campaigns.calling import CallingPolicy
from campaigns.errors import UserError
from scheduler.dispatcher import dial_request
from scheduler.providers.base import DialRequest
from storage import campaigns_repo
from storage.campaigns_repo import CampaignRecord
from storage.engine import Engine
from storage.errors import NotFound
from storage.testcall import SampleContact, dial_facts

#: A test call's client reference starts so; an attempt's is ``attempt-N``.
CLIENT_REF_PREFIX = "test-call-"


@dataclass(frozen=True, kw_only=True)
class CallPlan:
    """A test call checked and ready to place: the request, and the notes to show first."""

    campaign: CampaignRecord
    contact: SampleContact
    request: DialRequest
    notes: tuple[str, ...]


def parse_to(number: str, region: str | None) -> str:
    """``--to`` in E.164, read with the campaign's region; UserError naming ``--to``."""
    from campaigns.importer.phones import REASON_NO_COUNTRY_CODE, PhoneParser

    result = PhoneParser(region).parse(number)
    if result.e164 is not None:
        return result.e164
    if result.error == REASON_NO_COUNTRY_CODE:
        why = "no country code: write it as +CC... (the campaign has no --region)"
    else:
        why = result.error or "not a phone number"
    raise UserError(f"--to {number!r}: {why}")


def _pick_contact(
    facts_contact: SampleContact | None, campaign_id: int, row: int | None
) -> SampleContact:
    """The contact whose metadata the call carries; UserError when there is none to use."""
    if facts_contact is None:
        if row is not None:
            raise UserError(f"--contact {row}: campaign {campaign_id} has no contact at row {row}")
        raise UserError(
            f"campaign {campaign_id} has no contact with a valid number: a test call takes "
            "its metadata from one"
        )
    if facts_contact.phone_e164 is None:
        why = facts_contact.reason or "no valid number"
        raise UserError(
            f"--contact {row}: that row was rejected at import ({why}): pick a row with a "
            "valid number"
        )
    return facts_contact


def window_note(campaign: CampaignRecord, contact: SampleContact, now: datetime) -> str | None:
    """A note when the campaign could not call ``contact`` now (window closed, zone
    unknown); None when it could. The test call itself is not held to the window."""
    from campaigns.blackout import country_of

    try:
        policy = CallingPolicy.from_campaign(campaign)
    except ValueError:
        return None
    zones = policy.zones_for(contact.timezones)
    who = f"row {contact.row_number}'s contact"
    if not zones:
        return f"note: the time zone of {who} is unknown: the campaign would not call it"
    country = country_of(contact.phone_e164 or "") if policy.blackout.uses_country else None
    if policy.is_open(zones, now, country):
        return None
    opening = policy.next_opening(zones, now, country)
    when = f"; it opens {opening:%Y-%m-%d %H:%M}Z" if opening is not None else ""
    return (
        f"note: the campaign's calling window is closed for {who} now{when} "
        "(the test call rings your number all the same)"
    )


def plan_test_call(
    engine: Engine, campaign_id: int, *, to: str, row: int | None, now: datetime
) -> CallPlan:
    """Check a test call of ``campaign_id`` to ``to`` and build its request; UserError (one
    line, naming the flag) when it may not be placed. Reads only."""
    try:
        campaign = campaigns_repo.get_campaign(engine, campaign_id)
    except NotFound as exc:
        raise NotFound(f"{exc} (see: vaani-campaigns campaign list)") from None
    to_e164 = parse_to(to, campaign.region)
    facts = dial_facts(engine, campaign_id, to_e164=to_e164, row=row)
    if facts.suppressed:
        raise UserError(f"--to {to_e164}: on the do-not-call list; no test call is placed to it")
    if facts.live:
        live = facts.live[0]
        raise UserError(
            f"--to {to_e164}: a call to this number is live in campaign {live.campaign_id} "
            f"(row {live.row_number}, attempt {live.state}); a test call now could be taken "
            "for it when its outcome is reconciled: try again once it has settled"
        )
    contact = _pick_contact(facts.contact, campaign_id, row)
    notes = [n for n in [window_note(campaign, contact, now)] if n]
    if facts.same_number_row is not None:
        notes.append(
            f"note: {to_e164} is the number of row {facts.same_number_row} of this campaign; "
            "this test call does not count as that contact's call"
        )
    request = dial_request(
        campaign,
        phone_e164=to_e164,
        name=contact.name or "",
        metadata=contact.metadata,
        client_ref=f"{CLIENT_REF_PREFIX}{uuid.uuid4().hex[:12]}",
    )
    return CallPlan(campaign=campaign, contact=contact, request=request, notes=tuple(notes))
