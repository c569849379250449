"""``campaign test-call``'s pieces: the checks before the call (on a real database), the wait
for its outcome (a small fake provider whose answers are built by Vaani's own wire parser,
and a fake clock), the lines errors print, and how a callback entity is read."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from campaigns.errors import UserError
from campaigns.services.test_call import (
    NoOutcomeError,
    callback_of,
    explain,
    wait_for_outcome,
)
from campaigns.services.test_call_plan import CLIENT_REF_PREFIX, parse_to, plan_test_call
from scheduler.errors import (
    AnswerLostError,
    AuthenticationError,
    ForbiddenError,
    InsufficientBalanceError,
    NotFoundError,
    NotSentError,
    ProviderError,
    ServerError,
    ValidationError,
)
from scheduler.providers.base import CallOutcome, CallQuery, CallRecord, ListedCall
from scheduler.providers.vaani_wire import parse_details
from storage.engine import make_engine
from storage.models import Suppression
from storage.outcomes import CallResult
from storage.states import Outcome
from tests.factories import make_campaign, make_contacts

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)  # 11:30 in Kolkata
ME = "+919800000001"


# --------------------------------------------------------------------------- the checks


@pytest.fixture
def engine(db_url: str):  # type: ignore[no-untyped-def]
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def test_the_plan_is_the_campaigns_call_with_the_first_valid_contact(engine: Any) -> None:
    cid = make_campaign(
        engine,
        agent_id="sales-7",
        outbound_number="+918000000000",
        voice="meera",
        call_options={"sip_trunk_id": "trunk-2"},
        region="IN",
        window_start="09:00",
        window_end="18:00",
    )
    make_contacts(engine, cid, [None], first_row=2)  # row 2: rejected at import
    make_contacts(engine, cid, ["+919812345679", "+919812345678"], first_row=4)
    make_contacts(engine, cid, ["+919812345670"], first_row=3)
    plan = plan_test_call(engine, cid, to="98000 00001", row=None, now=T0)
    req = plan.request
    assert (plan.contact.row_number, req.phone_e164) == (3, ME)
    assert (req.agent_id, req.caller_id, req.voice) == ("sales-7", "+918000000000", "meera")
    assert req.options == {"sip_trunk_id": "trunk-2"}
    assert req.metadata == {"customer_name": "Contact 2", "row": "2"} and req.name == "Contact 2"
    assert req.client_ref is not None and req.client_ref.startswith(CLIENT_REF_PREFIX)
    assert plan.notes == ()  # 11:30 in Kolkata: the window is open
    late = plan_test_call(engine, cid, to=ME, row=4, now=T0 + timedelta(hours=8))
    assert late.contact.row_number == 4
    (note,) = late.notes
    assert "window is closed for row 4's contact now; it opens 2026-12-02 03:30Z" in note
    same = plan_test_call(engine, cid, to="+919812345678", row=None, now=T0)
    assert "+919812345678 is the number of row 5 of this campaign" in same.notes[-1]


def test_refusals_name_the_flag(engine: Any) -> None:
    cid = make_campaign(engine, region="IN")
    with pytest.raises(UserError, match="has no contact with a valid number"):
        plan_test_call(engine, cid, to=ME, row=None, now=T0)
    make_contacts(engine, cid, [None], first_row=2, reason="invalid phone number: too short")
    make_contacts(engine, cid, ["+919812345670"], first_row=3)
    with pytest.raises(UserError, match=r"^--contact 9: campaign \d+ has no contact at row 9$"):
        plan_test_call(engine, cid, to=ME, row=9, now=T0)
    with pytest.raises(UserError, match=r"--contact 2: that row was rejected at import \(inv"):
        plan_test_call(engine, cid, to=ME, row=2, now=T0)
    with engine.begin() as conn:  # the campaign's own list counts as much as the global one
        conn.execute(insert(Suppression).values(phone_e164=ME, campaign_id=cid))
    with pytest.raises(UserError, match=r"^--to \+919800000001: on the do-not-call list"):
        plan_test_call(engine, cid, to=ME, row=None, now=T0)
    other = make_campaign(engine, region="IN")
    make_contacts(engine, other, ["+919812345670"])
    assert plan_test_call(engine, other, to=ME, row=None, now=T0).request.phone_e164 == ME


def test_to_is_read_with_the_campaigns_region() -> None:
    assert parse_to("098000-00001", "IN") == ME
    assert parse_to("+1 415 555 2671", "IN") == "+14155552671"
    with pytest.raises(UserError, match=r"^--to '9800000001': no country code: write it as \+CC"):
        parse_to("9800000001", None)
    with pytest.raises(UserError, match=r"^--to 'abc': invalid phone number"):
        parse_to("abc", "IN")


# --------------------------------------------------------------------------- the wait


class FakeCalls:
    """``outcome`` and ``find_calls`` of one call whose details go through ``statuses`` (one
    per read; the last repeats); a status ``None`` leaves it out of the details."""

    def __init__(self, statuses: list[str | None], *, fail_first: ProviderError | None = None):
        self.statuses = statuses
        self.fail_first = fail_first
        self.reads = 0
        self.listed_status = "completed"
        self.listings = 0

    async def outcome(self, call_id: str) -> CallOutcome:
        self.reads += 1
        if self.fail_first is not None and self.reads == 1:
            raise self.fail_first
        status = self.statuses[min(self.reads - 1, len(self.statuses) - 1)]
        body: dict[str, Any] = {"call_id": call_id, "summary": "Asha answered."}
        if status is not None:
            body["call_status"] = status
        if status in ("completed", None):
            body.update(duration_ms=4200, entity={"email": "asha@example.in"})
        return parse_details(body, call_id=call_id).to_outcome()

    async def find_calls(self, query: CallQuery, *, max_pages: int = 10) -> list[CallRecord]:
        self.listings += 1
        return [
            ListedCall(call_id="other", raw={}, status="completed"),
            ListedCall(call_id="c-1", raw={}, status=self.listed_status, raw_status="Completed"),
        ]


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


QUERY = CallQuery(phone_e164=ME, since=T0)


def wait(api: FakeCalls, clock: FakeClock, timeout: float = 60) -> CallResult:
    return asyncio.run(
        wait_for_outcome(
            api,  # type: ignore[arg-type]
            "c-1",
            QUERY,
            poll_interval=2,
            timeout=timeout,
            clock=clock,
            sleep=clock.sleep,
        )
    )


def test_waits_until_the_call_has_ended_by_the_pollers_rule() -> None:
    api, clock = FakeCalls(["queued", "ringing", "in_progress", "completed"]), FakeClock()
    result = wait(api, clock)
    assert (result.outcome, result.call_status, result.duration_ms) == (
        Outcome.ANSWERED,
        "completed",
        4200,
    )
    assert (result.summary, result.entity) == ("Asha answered.", {"email": "asha@example.in"})
    assert clock.sleeps == [2, 2, 2] and api.listings == 0


def test_a_call_not_found_yet_is_asked_for_again() -> None:
    gone = NotFoundError("HTTP 404", status_code=404)
    api, clock = FakeCalls(["no-answer"], fail_first=gone), FakeClock()
    result = wait(api, clock)
    assert result.outcome is Outcome.NO_ANSWER and api.reads == 2


def test_details_without_a_status_take_it_from_the_listing() -> None:
    api, clock = FakeCalls([None]), FakeClock()
    api.listed_status = "ringing"
    with pytest.raises(NoOutcomeError):
        wait(api, clock, timeout=5)
    api.listed_status = "completed"
    result = wait(api, FakeClock())
    assert (result.outcome, result.call_status, result.summary) == (
        Outcome.ANSWERED,
        "Completed",
        "Asha answered.",
    )


def test_no_end_within_the_timeout_names_the_call_and_its_last_status() -> None:
    api, clock = FakeCalls(["ringing"]), FakeClock()
    with pytest.raises(NoOutcomeError) as err:
        wait(api, clock, timeout=5)
    assert str(err.value) == "no outcome after 5s; call id c-1 (last status ringing)"
    assert err.value.exit_code == 3
    assert clock.sleeps == [2, 2, 1]  # the last wait ends at the deadline


def test_a_refused_key_while_waiting_is_raised() -> None:
    api = FakeCalls(["ringing"], fail_first=AuthenticationError("HTTP 401", status_code=401))
    with pytest.raises(AuthenticationError):
        wait(api, FakeClock())


# --------------------------------------------------------------------------- errors, callbacks


def status(cls: type[Any], code: int, detail: str) -> Any:
    return cls(f"HTTP {code}: {detail}", status_code=code, method="POST", path="/api/trigger-call/")


@pytest.mark.parametrize(
    ("exc", "says"),
    [
        (status(AuthenticationError, 401, "bad key"), "HTTP 401: bad key; check VAANI_API_KEY"),
        (status(InsufficientBalanceError, 402, "top up"), "balance is too low to place calls"),
        (status(ForbiddenError, 403, "not yours"), "this key may not use agent 'sales-7'"),
        (status(NotFoundError, 404, "no agent"), "agent 'sales-7' not found"),
        (status(ValidationError, 422, "contact_number invalid"), "invalid; the API refused"),
        (AnswerLostError("sent, but the answer was lost"), "may have been placed; it is not re"),
        (
            NotSentError("request not sent", reason="connection refused"),
            "cannot reach http://h:1 (connection refused); no call was placed",
        ),
    ],
)
def test_each_refusal_says_what_to_do(exc: ProviderError, says: str) -> None:
    line = explain(exc, key_env="VAANI_API_KEY", agent_id="sales-7", url="http://h:1")
    assert says in line and "\n" not in line


def test_a_failure_after_the_call_was_placed_names_the_call() -> None:
    line = explain(
        ServerError("HTTP 503", status_code=503, method="GET", path="/api/call_details/c-1"),
        key_env="VAANI_API_KEY",
        agent_id="a",
        call_id="c-1",
    )
    assert line.startswith("the call was placed (call id c-1) but its outcome could not be read")


@pytest.mark.parametrize(
    ("entities", "zones", "expected"),
    [
        ({"callback_at": "2026-12-01T18:00:00Z"}, (), datetime(2026, 12, 1, 18, tzinfo=UTC)),
        ({"Callback_Time": "5pm"}, ("Asia/Kolkata",), datetime(2026, 12, 1, 11, 30, tzinfo=UTC)),
        ({"callback_at": "in 2 hours"}, (), T0 + timedelta(hours=2)),
        ({"email": "a@b"}, ("Asia/Kolkata",), None),
    ],
)
def test_a_callback_is_read_as_the_campaign_reads_one(
    entities: Mapping[str, Any], zones: tuple[str, ...], expected: datetime | None
) -> None:
    at, note = callback_of(entities, keys=None, zones=zones, ended_at=T0)
    assert (at, note) == (expected, None)


def test_a_callback_the_campaign_cannot_read_says_why() -> None:
    at, note = callback_of({"when": "soonish"}, keys=["when"], zones=(), ended_at=T0)
    assert at is None and note is not None and note.startswith("when: 'soonish' is not a callback")
