"""``campaign test-call``: one call to the operator's own number, placed as the campaign would.

Before a batch goes out, the operator hears the agent for themselves. The call is checked and
built by :mod:`campaigns.services.test_call_plan` (the first contact's name and metadata, the
campaign's agent, caller id, voice and options, refusals of unsafe numbers); here it is
placed, and its outcome read back every ``poll_interval`` until the call has ended, by the
poller's rule of what ended means (:func:`scheduler.outcomes.outcome_result`), or until the
timeout (:class:`NoOutcomeError`, exit 3, naming the call id).

Nothing is counted against the campaign: no attempt row is written, no contact changes, the
per-number daily cap does not see the call. The report holds what the poller would have
stored (status, outcome class, duration, summary, entities) and the callback the entities
ask for, read as the campaign reads one (:mod:`campaigns.callbacks`). API failures become one
line that says what to do (:func:`explain`), exit 3, never carrying the key.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from campaigns.callbacks import DEFAULT_KEYS, callback_value, parse_callback
from campaigns.calling import CallingPolicy
from campaigns.parsing import format_duration, parse_zone
from campaigns.services.test_call_plan import CallPlan, plan_test_call
from scheduler.errors import (
    AnswerLostError,
    AuthenticationError,
    ForbiddenError,
    InsufficientBalanceError,
    NotFoundError,
    NotSentError,
    ProtocolError,
    ProviderError,
    RateLimitedError,
    ServerError,
    ValidationError,
)
from scheduler.outcomes import outcome_result
from scheduler.providers.base import CallOutcome, CallProvider, CallQuery
from scheduler.reachability import display_url
from storage.errors import CampaignsError
from storage.outcomes import CallResult

#: Errors while reading the outcome after which it is simply asked for again.
_TRANSIENT = (NotFoundError, ServerError, RateLimitedError, AnswerLostError, ProtocolError)


__all__ = [
    "CallPlan",
    "CallReport",
    "NoOutcomeError",
    "TestCallError",
    "callback_of",
    "explain",
    "place_test_call",
    "plan_test_call",
    "wait_for_outcome",
]


class NoOutcomeError(CampaignsError):
    """The call was placed but reported no end within ``--timeout``."""

    exit_code = 3


class TestCallError(CampaignsError):
    """The API refused or could not take the test call (the message says what to do)."""

    __test__ = False  # a pytest importing it must not take it for a test class
    exit_code = 3


@dataclass(frozen=True, kw_only=True)
class CallReport:
    """What became of a test call, as ``campaign test-call`` prints it."""

    call_id: str
    to: str
    row_number: int
    name: str
    status: str | None  # the status as the provider wrote it
    outcome: str  # its class (answered, no_answer, ...), as the poller would store it
    duration_s: float | None
    summary: str | None
    entities: dict[str, Any]
    callback_at: datetime | None = None
    callback_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` object (times ISO 8601 UTC)."""
        at = self.callback_at
        return {
            "call_id": self.call_id,
            "to": self.to,
            "contact_row": self.row_number,
            "name": self.name,
            "status": self.status,
            "outcome": self.outcome,
            "duration_s": self.duration_s,
            "summary": self.summary,
            "entities": self.entities,
            "callback_at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at else None,
            "callback_note": self.callback_note,
        }


# --------------------------------------------------------------------------- the call


def explain(
    exc: ProviderError,
    *,
    key_env: str,
    agent_id: str,
    url: str = "the API",
    call_id: str | None = None,
) -> str:
    """The line a failed request of a test call prints: what the API said and what to do.
    ``call_id`` set: the call was placed and its outcome could not be read."""
    placing = call_id is None
    hint: str | None = None
    if isinstance(exc, NotSentError):
        line = f"cannot reach {url} ({exc.reason or exc})" + ("; no call was placed" * placing)
    else:
        line = exc.user_message()
        if isinstance(exc, AuthenticationError):
            hint = f"check {key_env} (or --api-key)"
        elif isinstance(exc, InsufficientBalanceError):
            hint = "the account's balance is too low to place calls"
        elif isinstance(exc, ForbiddenError):
            hint = (
                f"this key may not use agent {agent_id!r}: check the campaign's agent and the key"
            )
        elif isinstance(exc, NotFoundError) and placing:
            hint = f"agent {agent_id!r} not found: check the campaign's agent"
        elif isinstance(exc, RateLimitedError):
            hint = "the API is rate limiting this key: try again later"
        elif isinstance(exc, AnswerLostError) and placing:
            hint = "the call may have been placed; it is not resent (see the call history)"
        elif isinstance(exc, ValidationError) and placing:
            hint = "the API refused the call; nothing was placed"
    if hint:
        line = f"{line}; {hint}"
    if placing:
        return line
    return f"the call was placed (call id {call_id}) but its outcome could not be read: {line}"


def callback_of(
    entities: Mapping[str, Any] | None,
    *,
    keys: Sequence[str] | None,
    zones: Sequence[str],
    ended_at: datetime,
) -> tuple[datetime | None, str | None]:
    """The callback the call's entities ask for, read as the campaign would read it (in the
    contact's first zone, UTC when unknown): (instant, None), (None, why it cannot be read),
    or (None, None) when none is asked for."""
    key, value = callback_value(entities, keys or DEFAULT_KEYS)
    if not key:
        return None, None
    zone = parse_zone(zones[0] if zones else "UTC")
    try:
        return parse_callback(value, zone=zone, ended_at=ended_at), None
    except ValueError as exc:
        return None, f"{key}: {exc}"


async def _listed(client: CallProvider, call_id: str, query: CallQuery) -> CallOutcome | None:
    """The call's listed record as an outcome (for details that carry no status)."""
    for rec in await client.find_calls(query, max_pages=2):
        if rec.call_id == call_id:
            return CallOutcome(
                call_id=call_id,
                status=rec.status,
                raw_status=rec.raw_status,
                duration_ms=rec.duration_ms,
                summary=None,
                entities={},
                transcript=None,
                raw=rec.raw,
            )
    return None


async def wait_for_outcome(
    client: CallProvider,
    call_id: str,
    query: CallQuery,
    *,
    poll_interval: float,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> CallResult:
    """Ask for the call's outcome every ``poll_interval`` s until the call has ended (the
    poller's test); :class:`NoOutcomeError` after ``timeout`` s. A call not found yet, a 5xx
    or a 429 past the retries is asked for again; other failures are raised."""
    deadline = clock() + timeout
    last: str | None = None
    while True:
        try:
            details = await client.outcome(call_id)
            if details.status is None:  # the listing says whether it ended
                listed = await _listed(client, call_id, query)
                if listed is not None:
                    details = replace(
                        details,
                        status=listed.status,
                        raw_status=listed.raw_status,
                        duration_ms=details.duration_ms
                        if details.duration_ms is not None
                        else listed.duration_ms,
                    )
            result = outcome_result(details)
            if result is not None:
                return result
            last = f"last status {details.raw_status or 'unknown'}"
        except _TRANSIENT as exc:
            last = f"last answer: {exc}"
        left = deadline - clock()
        if left <= 0:
            raise NoOutcomeError(
                f"no outcome after {_wait(timeout)}; call id {call_id} ({last or 'no answer'})"
            )
        await sleep(min(poll_interval, left))


def _wait(seconds: float) -> str:
    """A timeout as it is typed (``10m``, ``90s``: ``campaigns.parsing.format_duration``)."""
    return format_duration(timedelta(seconds=seconds))


async def place_test_call(
    client: CallProvider,
    plan: CallPlan,
    *,
    key_env: str,
    poll_interval: float,
    timeout: float,
    on_placed: Callable[[str], None] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> CallReport:
    """Place ``plan``'s call, wait for its outcome and report it. :class:`TestCallError`
    (exit 3, the line of :func:`explain`) when a request fails; nothing is written."""
    req = plan.request
    why = functools.partial(
        explain,
        key_env=key_env,
        agent_id=req.agent_id,
        url=display_url(getattr(client, "base_url", "")),
    )
    sent_at = now()
    try:
        placed = await client.place_call(req)
    except ProviderError as exc:
        raise TestCallError(why(exc)) from None
    if on_placed is not None:
        on_placed(placed.call_id)
    query = CallQuery(
        phone_e164=req.phone_e164, since=sent_at, agent_id=req.agent_id, client_ref=req.client_ref
    )
    try:
        result = await wait_for_outcome(
            client, placed.call_id, query, poll_interval=poll_interval, timeout=timeout
        )
    except ProviderError as exc:
        raise TestCallError(why(exc, call_id=placed.call_id)) from None
    try:
        zones = CallingPolicy.from_campaign(plan.campaign).zones_for(plan.contact.timezones)
    except ValueError:  # settings this version cannot read: the callback is read in UTC
        zones = ()
    callback_at, note = callback_of(
        result.entity, keys=plan.campaign.callback_keys, zones=zones, ended_at=now()
    )
    return CallReport(
        call_id=placed.call_id,
        to=req.phone_e164,
        row_number=plan.contact.row_number,
        name=req.name,
        status=result.call_status,
        outcome=result.outcome.value,
        duration_s=None if result.duration_ms is None else result.duration_ms / 1000,
        summary=result.summary,
        entities=dict(result.entity or {}),
        callback_at=callback_at,
        callback_note=note,
    )
