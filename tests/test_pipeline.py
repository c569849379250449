"""Little's-law sizing of the trigger-call pipeline, and the gate that measures its latency."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.errors import RateLimitInfo
from scheduler.pipeline import HIGH, LatencyGate, Pipeline
from scheduler.providers.http import OpenGate

NO_INFO = RateLimitInfo()


def settled(pipeline: Pipeline, latency: float, n: int = 60) -> Pipeline:
    for _ in range(n):
        pipeline.sample(latency)
    return pipeline


def test_in_flight_is_rate_times_latency_times_margin() -> None:
    # 40 requests/s and answers taking 1 s: 40 in flight keep the limiter busy, 60 with margin
    p = settled(Pipeline(lambda: 40.0, margin=1.5), 1.0)
    assert p.target() == 60
    # a fast API needs few: 40/s x 20 ms x 1.5 = 1.2 -> 2
    assert settled(Pipeline(lambda: 40.0, margin=1.5), 0.02).target() == 2


def test_the_tick_counts_as_latency() -> None:
    # a claim per 0.25 s tick: a fast API still needs 40/s x (0.01 + 0.25) s x 1.5 = 15.6
    p = settled(Pipeline(lambda: 40.0, margin=1.5, overhead=0.25), 0.01)
    assert p.target() == 16


def test_follows_the_rate_in_force() -> None:
    rate = [40.0]
    p = settled(Pipeline(lambda: rate[0], margin=1.0), 0.5)
    assert p.target() == 20
    rate[0] = 10.0  # the limiter cut its rate after 429s
    assert p.target() == 5


def test_bounded_by_low_high_and_free_slots() -> None:
    p = settled(Pipeline(lambda: 1000.0), 30.0)
    assert p.target() == HIGH
    assert p.target(free_slots=7) == 7
    assert p.target(free_slots=0) == 0
    assert settled(Pipeline(lambda: 0.05, low=2), 0.01).target() == 2


def test_ewma_moves_towards_new_latency_and_ignores_nonsense() -> None:
    p = Pipeline(lambda: 10.0, alpha=0.5, initial_latency=0.05)
    p.sample(2.0)  # the first answer replaces the guess
    assert p.latency == pytest.approx(2.0)
    p.sample(1.0)
    assert p.latency == pytest.approx(1.5)
    p.sample(float("nan"))
    p.sample(-1.0)
    assert p.latency == pytest.approx(1.5) and p.samples == 2


@given(
    rate=st.floats(0.01, 10_000),
    latency=st.floats(0, 120),
    slots=st.none() | st.integers(-5, 1000),
)
def test_target_always_within_bounds(rate: float, latency: float, slots: int | None) -> None:
    t = settled(Pipeline(lambda: rate), latency, n=5).target(free_slots=slots)
    upper = HIGH if slots is None else max(0, min(HIGH, slots))
    assert 0 <= t <= upper
    if slots is None or slots >= 1:
        assert t >= 1


def test_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError, match="bounds"):
        Pipeline(lambda: 1.0, low=5, high=2)


def test_gate_times_dispatch_requests_from_grant_to_answer() -> None:
    now = [100.0]
    p = Pipeline(lambda: 10.0, alpha=1.0)
    gate = LatencyGate(OpenGate(), {"dispatch": p}, clock=lambda: now[0])

    async def scenario() -> None:
        await gate.acquire("dispatch")
        await gate.acquire("dispatch")
        await gate.acquire("poll")  # not timed
        now[0] += 0.8
        gate.observe("poll", 200, NO_INFO)
        assert p.samples == 0
        gate.observe("dispatch", 200, NO_INFO)
        assert p.latency == pytest.approx(0.8)
        now[0] += 0.4
        gate.observe("dispatch", None, NO_INFO)  # no answer: not a latency sample
        assert p.samples == 1

    asyncio.run(scenario())


# ------------------------------------------------------------------------------ poll pacing


def test_poll_waits_the_longest_while_dispatch_needs_the_rate() -> None:
    from scheduler.pollpace import PollPacer

    pacer = PollPacer(2.0, lambda: 40.0)
    assert pacer.wait(live=20, pages=1, spare_rate=False) == 2.0
    assert pacer.wait(live=0, pages=0, spare_rate=True) == 2.0  # nothing to read


def test_poll_sooner_with_spare_rate_within_its_share() -> None:
    from scheduler.pollpace import PollPacer

    pacer = PollPacer(2.0, lambda: 40.0, share=0.25, shortest=0.2)
    # one page per poll, a quarter of 40/s = 10 pages/s -> 0.1 s, floored at shortest=0.2
    assert pacer.wait(live=20, pages=1, spare_rate=True) == pytest.approx(0.2)
    # six pages per poll: 0.6 s keeps history reads at 10 requests/s
    assert pacer.wait(live=20, pages=6, spare_rate=True) == pytest.approx(0.6)
    slow = PollPacer(2.0, lambda: 1.0, share=0.25)
    assert slow.wait(live=5, pages=1, spare_rate=True) == 2.0  # never beyond the longest


@given(
    rate=st.floats(0.01, 1000),
    pages=st.integers(0, 50),
    live=st.integers(0, 100),
    spare=st.booleans(),
)
def test_poll_rate_never_exceeds_its_share(rate: float, pages: int, live: int, spare: bool) -> None:
    from scheduler.pollpace import PollPacer

    pacer = PollPacer(5.0, lambda: rate, share=0.25)
    w = pacer.wait(live=live, pages=pages, spare_rate=spare)
    assert 0.1 <= w <= 5.0
    # history pages per second stay within a quarter of the rate, or the longest wait holds
    assert max(1, pages) / w <= 0.25 * rate + 1e-9 or w == 5.0


# ------------------------------------------------------------------------------ background fetches


def test_background_fetches_run_limit_at_once_and_refill_as_they_finish() -> None:
    from scheduler.fetches import BackgroundFetches

    async def scenario() -> None:
        bg: BackgroundFetches[int] = BackgroundFetches(limit=2)
        gates = {i: asyncio.Event() for i in range(5)}
        running: list[int] = []

        def fetch(i: int):  # type: ignore[no-untyped-def]
            async def go() -> int | None:
                running.append(i)
                await gates[i].wait()
                return None if i == 3 else i * 10  # 3: details failed, try next poll

            return go

        for i in range(5):
            bg.submit(i, fetch(i))
        bg.submit(0, fetch(0))  # already under way: not twice
        await asyncio.sleep(0)
        assert running == [0, 1] and bg.running == 2
        gates[0].set()
        await asyncio.sleep(0.01)
        assert running == [0, 1, 2]  # a slot freed: the next starts at once, not next poll
        assert bg.take() == [0] and bg.busy(0)  # held until applied
        bg.applied([0])
        assert bg.busy(0)  # a poll that loaded before the apply committed must not refetch
        bg.prune({1, 2, 3, 4})  # a later load no longer shows it
        assert not bg.busy(0)
        for g in gates.values():
            g.set()
        await asyncio.sleep(0.01)
        assert sorted(bg.take()) == [10, 20, 40] and not bg.busy(3)
        await bg.cancel()

    asyncio.run(scenario())


def test_a_background_fetch_failure_is_raised_once() -> None:
    from scheduler.fetches import BackgroundFetches

    async def scenario() -> None:
        bg: BackgroundFetches[int] = BackgroundFetches(limit=4)

        async def boom() -> int | None:
            raise RuntimeError("bug")

        bg.submit(1, boom)
        await asyncio.sleep(0.01)
        err = bg.error()
        assert isinstance(err, RuntimeError) and bg.error() is None

    asyncio.run(scenario())


def test_in_the_tail_polls_come_sooner_only_while_few_calls_are_live() -> None:
    from scheduler.pollpace import PollPacer

    pacer = PollPacer(2.0, lambda: 40.0)
    assert pacer.wait(live=10, pages=1, spare_rate=False, idle=True) == pytest.approx(0.1)
    assert pacer.wait(live=400, pages=2, spare_rate=False, idle=True) == pytest.approx(0.8)
    assert pacer.wait(live=5000, pages=9, spare_rate=False, idle=True) == 2.0
    # rate-bound dispatch (neither capped nor idle): the longest wait
    assert pacer.wait(live=10, pages=1, spare_rate=False, idle=False) == 2.0


def test_the_connection_room_bounds_requests_past_the_gate() -> None:
    now = [0.0]
    gate = LatencyGate(OpenGate(), {}, max_in_flight=2, clock=lambda: now[0])

    async def scenario() -> None:
        await gate.acquire("poll")
        await gate.acquire("dispatch")
        third = asyncio.ensure_future(gate.acquire("poll"))
        await asyncio.sleep(0)
        assert not third.done()  # two in flight: the third waits here, not in the pool
        gate.observe("poll", 200, NO_INFO)
        await asyncio.wait_for(third, 1)

    asyncio.run(scenario())
