"""The Voisnap client against the real sandbox front-end (``sandbox --provider voisnap``) over
loopback sockets: placing, listing newest first, outcomes with their request cost, errors,
429 waits read from the body, lost answers found again by our client reference."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from scheduler.errors import (
    AnswerLostError,
    AuthenticationError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
)
from scheduler.providers import CallQuery, DialRequest, make_provider
from scheduler.providers.voisnap import VoisnapProvider
from scheduler.retry import RetryPolicy
from tests.test_client_e2e import RecordingGate, ShortSleep

Factory = Callable[..., Any]
KEY = "vsnp_sb_4f1c2d9e8a7b6c5d"
FAST = RetryPolicy(max_attempts=4, max_total_s=30, backoff_base_s=0.01, backoff_max_s=0.05)


def voisnap(sandbox_factory: Factory, *args: str) -> Any:
    return sandbox_factory(*args, api_key=KEY, provider="voisnap")


def dial(i: int, **metadata: Any) -> DialRequest:
    return DialRequest(
        agent_id="agt_e2e",
        phone_e164=f"+1415555{i:04d}",
        name=f"Person {i}",
        metadata=metadata,
        client_ref=f"attempt-{i}",
    )


async def wait_final(client: VoisnapProvider, n: int) -> list[Any]:
    """The listing's records, once ``n`` calls show a final status (bounded wait)."""
    for _ in range(200):
        page = await client.list_calls(page=1, page_size=100)
        if sum(r.status not in ("queued", "ringing", "in_progress") for r in page.records) >= n:
            return list(page.records)
        await asyncio.sleep(0.05)
    raise AssertionError("calls did not end")


def test_place_list_outcome_round_trip_matches_ground_truth(sandbox_factory: Factory) -> None:
    sb = voisnap(sandbox_factory, "--answer-rate", "1", "--call-seconds", "0.2-0.4", "--seed", "2")
    hooks = {0: {}, 1: {"sandbox_outcome": "voicemail"}, 2: {"sandbox_outcome": "no_answer"}}
    hooks[3] = {"sandbox_outcome": "busy"}
    hooks[4] = {"sandbox_outcome": "failed", "email": "x@example.com"}

    async def go() -> tuple[list[str], list[Any], dict[str, Any], list[Any]]:
        async with VoisnapProvider(KEY, sb.base_url, retry=FAST) as client:
            ids = [(await client.place_call(dial(i, **hooks[i]))).call_id for i in hooks]
            records = await wait_final(client, len(ids))
            outcomes = {i: await client.outcome(i) for i in ids}
            return ids, records, outcomes, await client.transcript(ids[0])

    before = datetime.now(UTC)
    ids, records, outcomes, turns = asyncio.run(go())
    truth = {c["call_id"]: c for c in sb.calls()}
    assert sorted(truth) == sorted(ids)
    # newest first, each echoing our client reference
    assert [r.call_id for r in records] == list(reversed(ids))
    assert [r.client_ref for r in records] == [f"attempt-{i}" for i in reversed(hooks)]
    for rec in records:
        assert rec.status == truth[rec.call_id]["status"]
        assert rec.created_at is not None and rec.created_at >= before.replace(microsecond=0)
    raw = {rec.call_id: rec.raw_status for rec in records}
    assert [raw[i] for i in ids] == ["completed", "completed", "failed", "failed", "failed"]
    for call_id, out in outcomes.items():
        t = truth[call_id]
        assert out.status == t["status"]
        assert out.summary == t["summary"]
        extra = {}
        if t["status"] == "completed":
            liked = t["entity"]["interested"]
            extra = {
                "intent": "interested" if liked else "not_interested",
                "sentiment": "positive" if liked else "negative",
            }
        assert dict(out.entities) == {**t["entity"], **extra}
        assert out.duration_ms == t["duration_ms"]
    assert [t["speaker"] for t in turns][:2] == ["agent", "customer"]
    # a connected call costs conversation + analysis, a missed one the conversation only
    requests = sb.stats()["requests"]
    assert requests["conversations"] == 5 and requests["analysis"] == 2
    assert requests["transcript"] == 1


def test_wrong_key_validation_and_unknown_ids(sandbox_factory: Factory) -> None:
    sb = voisnap(sandbox_factory, "--answer-rate", "1")
    wrong = "vsnp_live_wrongwrongwrong"

    async def go() -> None:
        async with VoisnapProvider(wrong, sb.base_url, retry=FAST) as client:
            with pytest.raises(AuthenticationError) as info:
                await client.place_call(dial(1))
            assert wrong not in str(info.value) and "trace_id" in str(info.value)
        async with VoisnapProvider(KEY, sb.base_url, retry=FAST) as client:
            bad = DialRequest(
                agent_id="",
                phone_e164="12345",
                name="x",
                options={"scheduled_for": "2027-01-04T09:00:00Z"},
            )
            with pytest.raises(ValidationError) as error:
                await client.place_call(bad)
            message = str(error.value)
            assert "HTTP 422" in message
            assert "agent_id: agent_id is required" in message
            assert "to_number: to_number '12345' is not in E.164 format" in message
            assert "scheduled_for: the sandbox places calls now" in message
            with pytest.raises(NotFoundError):
                await client.outcome("conv_nope")

    asyncio.run(go())
    assert sb.calls() == []
    assert "vsnp" not in sb.log_path.read_text()


def test_429s_wait_the_retry_after_of_the_body(sandbox_factory: Factory) -> None:
    sb = voisnap(sandbox_factory, "--faults", "429=0.5", "--seed", "5")
    n = 16
    sleep, gate = ShortSleep(), RecordingGate()
    patient = RetryPolicy(max_attempts=30, max_total_s=120, backoff_base_s=0.01)

    async def go() -> list[str]:
        async with VoisnapProvider(KEY, sb.base_url, retry=patient, sleep=sleep, gate=gate) as c:
            placed = await asyncio.gather(*(c.place_call(dial(300 + i)) for i in range(n)))
            return [p.call_id for p in placed]

    ids = asyncio.run(go())
    calls = sb.calls()
    assert sorted(c["call_id"] for c in calls) == sorted(ids)
    assert Counter(c["contact_number"] for c in calls) == Counter(
        f"+1415555{300 + i:04d}" for i in range(n)
    )
    refused = sb.stats()["faults"]["429"]
    assert refused > 0
    assert sleep.waits == [1.0] * refused  # the body's retry_after: 1 (no header is sent)
    limited = [rate for _, status, rate in gate.observed if status == 429]
    assert len(limited) == refused and all(r.retry_after_s == 1.0 for r in limited)


def test_rate_limit_over_the_cap_says_its_wait(sandbox_factory: Factory) -> None:
    sb = voisnap(sandbox_factory, "--rate-limit", "1/m")
    once = RetryPolicy(max_attempts=1)

    async def go() -> RateLimitedError:
        async with VoisnapProvider(KEY, sb.base_url, retry=once) as client:
            await client.list_calls(page=1, page_size=10)
            with pytest.raises(RateLimitedError) as info:
                await client.list_calls(page=1, page_size=10)
            return info.value

    error = asyncio.run(go())
    assert error.retry_after is not None and 50 <= error.retry_after <= 60


def test_lost_answers_are_found_again_by_client_reference(sandbox_factory: Factory) -> None:
    sb = voisnap(sandbox_factory, "--faults", "lost=0.5", "--seed", "3")
    n = 10
    patient = RetryPolicy(max_attempts=15, max_total_s=30, backoff_base_s=0.01, backoff_max_s=0.02)

    async def go() -> dict[int, list[Any]]:
        found: dict[int, list[Any]] = {}
        async with VoisnapProvider(KEY, sb.base_url, retry=patient, sleep=ShortSleep()) as c:
            for i in range(n):
                since = datetime.now(UTC)
                try:
                    await c.place_call(dial(400 + i))
                    continue
                except AnswerLostError:
                    pass
                # a wrong number: only the client reference can find the call
                ref = f"attempt-{400 + i}"
                query = CallQuery(phone_e164="+19990000000", since=since, client_ref=ref)
                found[i] = await c.find_calls(query)
        return found

    found = asyncio.run(go())
    calls = sb.calls()
    assert Counter(c["contact_number"] for c in calls) == Counter(
        f"+1415555{400 + i:04d}" for i in range(n)
    )  # every call placed once: a lost answer is never resent
    assert found, "the seed gives lost answers"
    for i, records in found.items():
        assert [r.contact_number for r in records] == [f"+1415555{400 + i:04d}"]


def test_paths_come_from_voisnap_paths(
    sandbox_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = voisnap(sandbox_factory, "--answer-rate", "1")
    monkeypatch.setenv("VOISNAP_PATHS", "calls=/v1/outbound_calls")

    async def go() -> None:
        client = make_provider("voisnap", api_key=KEY, base_url=sb.base_url, retry=FAST)
        try:
            with pytest.raises(NotFoundError):
                await client.place_call(dial(1))
        finally:
            await client.aclose()

    asyncio.run(go())
    assert sb.calls() == []
