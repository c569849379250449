"""The VaniAgent client against the real sandbox front-end (``sandbox --provider vaniagent``)
over a loopback socket, checked against the sandbox's ground truth.

* every final outcome of the engine maps through status + ``end_reason`` onto ours, with the
  summary, duration and the entities VaniAgent has (sentiment, transcript URL, metadata echo);
* the listing is served newest first in ``limit``/``offset`` pages and echoes our reference;
* a lost answer is found again by that reference;
* 401, 402 ``insufficient_credits``, an unknown agent, a bad number and 429s with a Unix
  timestamp Reset each become the right error of our tree, never echoing the key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from scheduler.errors import (
    AnswerLostError,
    AuthenticationError,
    ForbiddenError,
    InsufficientBalanceError,
    RateLimitInfo,
    ValidationError,
)
from scheduler.outcomes import classify
from scheduler.providers import make_provider
from scheduler.providers.base import CallQuery, DialRequest
from scheduler.providers.vaniagent import VaniAgentProvider
from scheduler.retry import RetryPolicy
from tests.conftest import Sandbox

Factory = Callable[..., Sandbox]
FAST = RetryPolicy(max_attempts=6, max_total_s=30, backoff_base_s=0.01, backoff_max_s=0.05)
OUTCOMES = ("completed", "voicemail", "no_answer", "busy", "failed")


def sandbox(factory: Factory, *args: str) -> Sandbox:
    return factory("--call-seconds", "0.2-0.4", "--seed", "4", *args, provider="vaniagent")


def client(sb: Sandbox, **kwargs: Any) -> VaniAgentProvider:
    kwargs.setdefault("retry", FAST)
    made = make_provider("vaniagent", api_key=sb.api_key, base_url=sb.base_url, **kwargs)
    assert isinstance(made, VaniAgentProvider)
    return made


def dial(n: int, **metadata: Any) -> DialRequest:
    return DialRequest(
        agent_id="agent-1",
        phone_e164=f"+1415555{n:04d}",
        name=f"Ada Lovelace {n}",
        metadata={"customer_id": f"cust_{n}", **metadata},
        caller_id="+14155550199",
        client_ref=f"attempt-{n}",
    )


async def until_final(api: VaniAgentProvider, call_id: str) -> Any:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        outcome = await api.outcome(call_id)
        if classify(outcome.status) is not None:
            return outcome
        await asyncio.sleep(0.05)
    raise AssertionError(f"call {call_id} never ended")


def test_every_engine_outcome_maps_back_to_the_ground_truth(sandbox_factory: Factory) -> None:
    sb = sandbox(sandbox_factory)

    async def main() -> list[Any]:
        async with client(sb) as api:
            placed = [
                await api.place_call(dial(i, sandbox_outcome=o)) for i, o in enumerate(OUTCOMES)
            ]
            opted = await api.place_call(
                dial(9, sandbox_outcome="completed", sandbox_opt_out="yes")
            )
            return [await until_final(api, p.call_id) for p in [*placed, opted]]

    outcomes = asyncio.run(main())
    truth = {c["call_id"]: c for c in sb.calls()}
    assert len(truth) == 6
    for out in outcomes:
        call = truth[out.call_id]
        assert out.status == call["status"]
        assert out.raw_status == (
            "completed" if call["status"] in ("completed", "voicemail") else "failed"
        )
        assert out.raw["end_reason"] == call["status"]
        assert out.summary == call["summary"]
        assert out.entities["metadata"] == call["metadata"]
        assert out.entities["metadata"]["customer_id"] == call["metadata"]["customer_id"]
        if call["status"] in ("completed", "voicemail"):
            assert out.duration_ms == pytest.approx(call["duration_ms"], abs=1)
            assert out.entities["transcript_url"].endswith(f"/{out.call_id}.txt")
        else:
            assert out.duration_ms == 0 and "transcript_url" not in out.entities
        if call["status"] == "completed":
            entity = call["entity"]
            expected = (
                "negative"
                if entity.get("opt_out")
                else ("positive" if entity["interested"] else "neutral")
            )
            assert out.entities["sentiment"] == expected
            assert f"user: {entity['preferred_date']}" in out.transcript
    # the name travelled in the metadata: the engine's summary greets the contact by it
    assert truth[outcomes[0].call_id]["summary"].startswith("Ada Lovelace 0 answered")


def test_listing_is_newest_first_offset_pages_that_echo_our_reference(
    sandbox_factory: Factory,
) -> None:
    sb = sandbox(sandbox_factory)

    async def main() -> tuple[list[str], list[Any]]:
        async with client(sb) as api:
            ids = [(await api.place_call(dial(i))).call_id for i in range(7)]
            pages = [await api.list_calls(page=p, page_size=3) for p in (1, 2, 3)]
            return ids, pages

    ids, pages = asyncio.run(main())
    listed = [r for page in pages for r in page.records]
    assert [r.call_id for r in listed] == ids[::-1]
    assert [p.is_last for p in pages] == [False, False, True]
    assert all(p.total == 7 and p.size_confirmed(3) for p in pages)
    newest = listed[0]
    assert newest.client_ref == "attempt-6"
    assert newest.contact_number == "+14155550006" and newest.agent_id == "agent-1"
    assert newest.created_at is not None and newest.created_at <= datetime.now(UTC)
    assert newest.raw["from_number"] == "+14155550199"


def test_a_lost_answer_is_found_again_by_our_reference(sandbox_factory: Factory) -> None:
    sb = sandbox(sandbox_factory, "--faults", "lost=0.5", "--background-calls", "20")
    patient = RetryPolicy(max_attempts=40, max_total_s=30, backoff_base_s=0.01, backoff_max_s=0.02)

    async def main() -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        async with client(sb, retry=patient) as api:
            since = datetime.now(UTC)
            lost = []
            for n in range(6):  # one number, six attempts: only the reference tells them apart
                request = replace(dial(1), client_ref=f"attempt-{n}")
                try:
                    await api.place_call(request)
                except AnswerLostError:
                    lost.append(request.client_ref)
            for ref in lost:
                query = CallQuery(phone_e164=dial(1).phone_e164, since=since, client_ref=ref)
                found[ref or ""] = await api.find_calls(query)
        return found

    found = asyncio.run(main())
    placed = sb.calls()
    assert len(placed) == 6  # lost POSTs were never resent
    assert found, "no answer was lost: the test would prove nothing"
    by_ref = {c["metadata"]["_campaigns_ref"]: c["call_id"] for c in placed}
    for ref, records in found.items():
        assert [r.call_id for r in records] == [by_ref[ref]]


def test_account_errors_pause_and_never_echo_the_key(sandbox_factory: Factory) -> None:
    sb = sandbox(sandbox_factory, "--balance-calls", "1", "--agents", "agent-1")
    wrong = "wrong-key-4b1f09d2"

    async def main() -> list[Exception]:
        errors: list[Exception] = []
        async with client(sb) as api:
            await api.place_call(dial(1))
            for request in (
                dial(2),
                DialRequest(agent_id="agent-9", phone_e164="+14155550003", name="X"),
            ):
                try:
                    await api.place_call(request)
                except Exception as exc:
                    errors.append(exc)
            try:
                await api.place_call(DialRequest(agent_id="agent-1", phone_e164="+1", name="X"))
            except Exception as exc:
                errors.append(exc)
        bad = make_provider("vaniagent", api_key=wrong, base_url=sb.base_url, retry=FAST)
        try:
            await bad.list_calls(page=1, page_size=10)
        except Exception as exc:
            errors.append(exc)
        finally:
            await bad.aclose()
        return errors

    credits, agent, number, auth = asyncio.run(main())
    assert isinstance(credits, InsufficientBalanceError) and "insufficient_credits" in str(credits)
    assert isinstance(agent, ForbiddenError) and "agent-9" in str(agent)
    assert isinstance(number, ValidationError) and "to_number" in str(number)
    assert isinstance(auth, AuthenticationError) and auth.status_code == 401
    for exc in (credits, agent, number, auth):
        assert exc.user_message().startswith("the VaniAgent API: ")  # type: ignore[attr-defined]
        assert sb.api_key not in repr(exc) + str(exc) and wrong not in str(exc)
    assert len(sb.calls()) == 1


class RecordingGate:
    def __init__(self) -> None:
        self.rates: list[tuple[int | None, RateLimitInfo]] = []

    async def acquire(self, kind: str) -> None:
        return None

    def observe(self, kind: str, status: int | None, rate: RateLimitInfo) -> None:
        self.rates.append((status, rate))


def test_429s_carry_a_unix_timestamp_reset_and_every_call_lands_once(
    sandbox_factory: Factory,
) -> None:
    sb = sandbox(sandbox_factory, "--rate-limit", "5/s")
    gate = RecordingGate()
    n = 15

    async def main() -> None:
        async with client(sb, gate=gate) as api:
            await asyncio.gather(*(api.place_call(dial(i)) for i in range(n)))

    asyncio.run(main())
    assert sorted(c["contact_number"] for c in sb.calls()) == sorted(
        dial(i).phone_e164 for i in range(n)
    )
    refused = [rate for status, rate in gate.rates if status == 429]
    assert refused, "the sandbox never refused: the test would prove nothing"
    for rate in refused:
        # read as a timestamp: a wait of about a second, not 1.8e9 seconds nor "in the past"
        assert rate.remaining == 0 and rate.reset_s is not None and 0 < rate.reset_s <= 2.0
        assert rate.retry_after_s is None
    ok = [rate for status, rate in gate.rates if status == 201]
    assert all(r.limit == 5 and r.reset_s is not None and r.reset_s <= 2.0 for r in ok)
