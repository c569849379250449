"""End-to-end tests of the Vaani client against the real sandbox server on a loopback port.

For every fault kind the sandbox can inject, the client must do the safe thing, checked
against the sandbox's ground truth (``/sandbox/calls``, ``/sandbox/stats``):

* ``lost``: the call IS placed; the client raises AnswerLostError and never resends;
* ``429``: every trigger eventually succeeds, exactly one call per trigger;
* ``5xx``: trigger-call raises AmbiguousServerError at once; a GET is retried, then raises;
* ``slow`` past the read timeout: AnswerLostError, the call placed once, not resent;
* a wrong key: AuthenticationError, nothing placed, the key in no message.

Waits the server asks for are recorded and then shortened (``ShortSleep``) to keep the suite
fast; that the requested wait is honoured in real time is covered by the unit tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from scheduler.errors import (
    AmbiguousServerError,
    AnswerLostError,
    AuthenticationError,
    RateLimitedError,
    RateLimitInfo,
    ServerError,
)
from scheduler.providers.vaani import VaaniProvider
from scheduler.retry import RetryPolicy

Factory = Callable[..., Any]
FAST = RetryPolicy(max_attempts=4, max_total_s=30, backoff_base_s=0.01, backoff_max_s=0.05)


class ShortSleep:
    """Records every wait the retry layer asks for and sleeps a token amount instead."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(min(seconds, 0.02))


class RecordingGate:
    def __init__(self) -> None:
        self.acquired: Counter[str] = Counter()
        self.observed: list[tuple[str, int | None, RateLimitInfo]] = []

    async def acquire(self, kind: str) -> None:
        self.acquired[kind] += 1

    def observe(self, kind: str, status: int | None, rate: RateLimitInfo) -> None:
        self.observed.append((kind, status, rate))


def number(i: int) -> str:
    return f"+1415555{i:04d}"


async def place(client: VaaniProvider, i: int, **metadata: Any) -> str:
    result = await client.trigger_call(
        agent_id="agent-e2e", contact_number=number(i), name=f"Person {i}", metadata=metadata
    )
    return result.call_id


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --------------------------------------------------------------------------- no faults


def test_trigger_history_details_transcript_round_trip(sandbox: Any) -> None:
    async def go() -> tuple[str, Any, Any, Any]:
        async with VaaniProvider(sandbox.api_key, sandbox.base_url, retry=FAST) as client:
            assert (await client.health())["status"] == "healthy"
            call_id = await place(client, 1, order="A-17", sandbox_outcome="completed")
            for _ in range(100):  # the sandbox ends calls within 0.2-0.5 s
                page = await client.call_history(page=1, page_size=200)
                mine = [r for r in page.records if r.call_id == call_id]
                if mine and mine[0].status == "completed":
                    break
                await asyncio.sleep(0.05)
            details = await client.call_details(call_id)
            transcript = await client.transcript(call_id)
            return call_id, mine[0], details, transcript

    call_id, record, details, transcript = run(go())
    assert record.contact_number == number(1) and record.agent_id == "agent-e2e"
    assert record.status == "completed" and record.created_at is not None
    assert record.duration_ms is not None and record.duration_ms > 0
    assert details.call_id == call_id and details.status == "completed"
    assert details.summary
    assert transcript
    (truth,) = sandbox.calls()
    assert truth["call_id"] == call_id and truth["metadata"]["order"] == "A-17"


def test_wrong_key_raises_authentication_error_and_places_nothing(
    sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-key-0123456789abcdef"

    async def go() -> None:
        async with VaaniProvider(wrong, sandbox.base_url, retry=FAST) as client:
            await place(client, 2)

    with pytest.raises(AuthenticationError) as info:
        run(go())
    assert info.value.status_code == 401
    assert wrong not in str(info.value) and wrong not in repr(info.value)
    assert wrong not in caplog.text
    assert sandbox.calls() == []
    assert sandbox.stats()["requests"].get("trigger-call") == 1  # not resent

    async def history(key: str) -> Any:
        async with VaaniProvider(key, sandbox.base_url, retry=FAST) as client:
            return await client.call_history(page=1, page_size=1)

    with pytest.raises(AuthenticationError):  # reads are refused too: the key is wrong
        run(history(wrong))
    assert run(history(sandbox.api_key)).records == []  # the right key reads the history


# --------------------------------------------------------------------------- faults


def test_lost_answer_raises_and_the_call_is_placed_exactly_once(sandbox_factory: Factory) -> None:
    sb = sandbox_factory("--faults", "lost=1.0", "--seed", "3")
    n = 6

    async def go() -> list[BaseException]:
        errors: list[BaseException] = []
        async with VaaniProvider(sb.api_key, sb.base_url, retry=FAST, sleep=ShortSleep()) as client:
            for i in range(n):
                with pytest.raises(AnswerLostError) as info:
                    await place(client, 100 + i)
                errors.append(info.value)
        return errors

    errors = run(go())
    calls = {c["contact_number"]: c for c in sb.calls()}
    assert sorted(calls) == [number(100 + i) for i in range(n)]  # each placed once, none resent
    assert sb.stats()["requests"]["trigger-call"] == n
    # The sandbox loses an answer by dropping the connection or by a 502 after placing:
    # the first surfaces as AnswerLostError, the second as AmbiguousServerError (also lost).
    expected = {"lost-drop": AnswerLostError, "lost-502": AmbiguousServerError}
    for i, error in enumerate(errors):
        assert type(error) is expected[calls[number(100 + i)]["response"]]
    assert {c["response"] for c in calls.values()} == set(expected)  # both forms were seen


def test_lost_answers_on_gets_are_retried_then_raised(sandbox_factory: Factory) -> None:
    sb = sandbox_factory("--faults", "lost=1.0", "--seed", "4")

    async def go() -> None:
        async with VaaniProvider(sb.api_key, sb.base_url, retry=FAST, sleep=ShortSleep()) as client:
            await client.call_history()

    with pytest.raises((AnswerLostError, ServerError)):  # a dropped connection or a 502
        run(go())
    assert sb.stats()["requests"]["call-history"] == FAST.max_attempts


def test_429_faults_every_trigger_succeeds_once(sandbox_factory: Factory) -> None:
    sb = sandbox_factory("--faults", "429=0.5", "--seed", "5")
    n = 20
    sleep = ShortSleep()
    gate = RecordingGate()
    patient = RetryPolicy(max_attempts=30, max_total_s=120, backoff_base_s=0.01)

    async def go() -> list[str]:
        async with VaaniProvider(
            sb.api_key, sb.base_url, retry=patient, sleep=sleep, gate=gate
        ) as client:
            return list(await asyncio.gather(*(place(client, 200 + i) for i in range(n))))

    call_ids = run(go())
    calls = sb.calls()
    assert sorted(c["call_id"] for c in calls) == sorted(call_ids)
    assert Counter(c["contact_number"] for c in calls) == Counter(number(200 + i) for i in range(n))
    stats = sb.stats()
    refused = stats["faults"]["429"]
    assert refused > 0
    assert stats["requests"]["trigger-call"] == n + refused
    assert sleep.waits == [1.0] * refused  # the sandbox's Retry-After: 1, honoured each time
    limited = [rate for kind, status, rate in gate.observed if status == 429]
    assert len(limited) == refused and all(r.retry_after_s == 1.0 for r in limited)
    assert gate.acquired == Counter({"dispatch": n + refused})


def test_5xx_on_trigger_is_ambiguous_and_not_resent_gets_retry(sandbox_factory: Factory) -> None:
    sb = sandbox_factory("--faults", "5xx=1.0", "--seed", "6")

    async def trigger() -> None:
        async with VaaniProvider(sb.api_key, sb.base_url, retry=FAST, sleep=ShortSleep()) as client:
            await place(client, 300)

    async def history() -> None:
        async with VaaniProvider(sb.api_key, sb.base_url, retry=FAST, sleep=ShortSleep()) as client:
            await client.call_history()

    with pytest.raises(AmbiguousServerError) as info:
        run(trigger())
    assert isinstance(info.value, AnswerLostError)
    assert info.value.status_code in (500, 503)
    with pytest.raises(ServerError) as get_info:
        run(history())
    assert not isinstance(get_info.value, AnswerLostError)
    requests = sb.stats()["requests"]
    assert requests["trigger-call"] == 1
    assert requests["call-history"] == FAST.max_attempts


def test_slow_answer_past_the_read_timeout_is_lost_not_resent(sandbox_factory: Factory) -> None:
    sb = sandbox_factory("--faults", "slow=1.0", "--slow-seconds", "3", "--seed", "7")
    timeout = httpx.Timeout(5.0, read=0.3)

    async def trigger() -> None:
        async with VaaniProvider(
            sb.api_key, sb.base_url, retry=FAST, timeout=timeout, sleep=ShortSleep()
        ) as client:
            await place(client, 400)

    async def history() -> None:
        async with VaaniProvider(
            sb.api_key,
            sb.base_url,
            retry=RetryPolicy(max_attempts=2, backoff_base_s=0.01),
            timeout=timeout,
        ) as client:
            await client.call_history()

    with pytest.raises(AnswerLostError) as info:
        run(trigger())
    assert type(info.value) is AnswerLostError and "ReadTimeout" in str(info.value)
    assert [c["contact_number"] for c in sb.calls()] == [number(400)]  # placed, once
    with pytest.raises(AnswerLostError):
        run(history())
    requests = sb.stats()["requests"]
    assert requests["trigger-call"] == 1
    assert requests["call-history"] == 2


def test_rate_limit_over_the_cap_raises_rate_limited(sandbox_factory: Factory) -> None:
    sb = sandbox_factory("--rate-limit", "2/min")

    async def go() -> None:
        async with VaaniProvider(
            sb.api_key, sb.base_url, retry=RetryPolicy(max_retry_after_s=5)
        ) as client:
            for i in range(3):
                await place(client, 500 + i)

    with pytest.raises(RateLimitedError) as info:
        run(go())
    assert info.value.retry_after is not None and info.value.retry_after > 5
    assert info.value.rate.limit == 2 and info.value.rate.remaining == 0
    assert len(sb.calls()) == 2
    assert sb.stats()["requests"]["trigger-call"] == 3  # the refused one was not retried


def test_rate_limit_without_headers_backs_off_until_through(sandbox_factory: Factory) -> None:
    sb = sandbox_factory("--rate-limit", "20/s", "--no-rate-headers")
    n = 30

    async def go() -> list[str]:
        policy = RetryPolicy(
            max_attempts=50, max_total_s=60, backoff_base_s=0.05, backoff_max_s=0.2
        )
        async with VaaniProvider(sb.api_key, sb.base_url, retry=policy) as client:
            return list(await asyncio.gather(*(place(client, 600 + i) for i in range(n))))

    call_ids = run(go())
    assert len(set(call_ids)) == n
    assert len(sb.calls()) == n
    stats = sb.stats()
    assert stats["rate_limited"] > 0  # the burst did hit the limit
    assert stats["requests"]["trigger-call"] == n + stats["rate_limited"]
