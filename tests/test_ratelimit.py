"""The rate limiter, on virtual time: pacing, burst, priority, 429 pauses, headers, AIMD.

Everything runs on :class:`VirtualTime`, a clock whose ``sleep`` parks the coroutine until
the driver moves time forward, so the tests are exact and take milliseconds. The adaptive
tests drive the limiter against a simulated server with a hidden GCRA limit (the same
algorithm the sandbox uses), with and without rate headers; no network.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import random
from collections.abc import Awaitable
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.errors import RateLimitInfo
from scheduler.ratelimit import (
    DECREASE_FACTOR,
    DEEPEST_CUT,
    FLOOR_SHARE,
    LimiterRegistry,
    RateLimiter,
    parse_rate,
)

NO_INFO = RateLimitInfo()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async_test = pytest.mark.anyio

# ------------------------------------------------------------------------------ parse_rate


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("10/s", 10.0),
        ("2.5/s", 2.5),
        ("600/min", 10.0),
        ("30/m", 0.5),
        (" 40 / second ", 40.0),
        ("3600/hour", 1.0),
        ("5/SEC", 5.0),
        ("120/minutes", 2.0),
    ],
)
def test_parse_rate(text: str, rate: float) -> None:
    assert parse_rate(text) == pytest.approx(rate)


@pytest.mark.parametrize("text", ["", "10", "10/", "/s", "10/d", "-1/s", "0/s", "ten/s", "1e3/s"])
def test_parse_rate_rejects_garbage_clearly(text: str) -> None:
    with pytest.raises(ValueError, match="invalid rate") as err:
        parse_rate(text)
    assert repr(text) in str(err.value)


@given(st.text(max_size=20))
def test_parse_rate_raises_only_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        assert parse_rate(text) > 0


@given(st.integers(1, 100_000), st.sampled_from([("s", 1), ("min", 60)]))
def test_parse_rate_round_trips(n: int, unit: tuple[str, int]) -> None:
    assert parse_rate(f"{n}/{unit[0]}") == pytest.approx(n / unit[1])


# ------------------------------------------------------------------------------ virtual time


class VirtualTime:
    """A clock and a ``sleep`` for it; :meth:`run` moves time to the next wake-up, repeatedly."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._seq), fut))
        await fut

    async def settle(self) -> None:
        for _ in range(30):  # let every runnable coroutine reach its next sleep or wait
            await asyncio.sleep(0)

    async def complete(self, aw: Awaitable[None]) -> None:
        """Await ``aw``, moving time forward as far as it needs."""
        task = asyncio.ensure_future(aw)
        await self.settle()
        while not task.done():
            assert self._sleepers, "deadlock: nothing sleeps and the task is not done"
            when, _, fut = heapq.heappop(self._sleepers)
            self.now = max(self.now, when)
            if not fut.cancelled():
                fut.set_result(None)
            await self.settle()
        task.result()

    async def run(self, until: float) -> None:
        """Advance time, waking sleepers in order, until ``until`` or nothing sleeps."""
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= until:
            when, _, fut = heapq.heappop(self._sleepers)
            self.now = max(self.now, when)
            if not fut.cancelled():
                fut.set_result(None)
            await self.settle()
        self.now = max(self.now, until)
        await self.settle()


def limiter(vt: VirtualTime, rate: float, **kw: object) -> RateLimiter:
    return RateLimiter(rate, clock=vt.clock, sleep=vt.sleep, rng=random.Random(7), **kw)  # type: ignore[arg-type]


async def grab(lim: RateLimiter, vt: VirtualTime, kind: str, log: list[tuple[float, str]]) -> None:
    await lim.acquire(kind)
    log.append((vt.now, kind))


def spawn(coros: list[Awaitable[None]]) -> list[asyncio.Task[None]]:
    return [asyncio.ensure_future(c) for c in coros]


# ------------------------------------------------------------------------------ pacing


@async_test
async def test_rate_is_honoured_over_any_window() -> None:
    vt = VirtualTime()
    lim = limiter(vt, 10.0, adaptive=False)
    log: list[tuple[float, str]] = []
    tasks = spawn([grab(lim, vt, "poll", log) for _ in range(60)])
    await vt.run(until=100)
    assert all(t.done() for t in tasks)
    times = [t for t, _ in log]
    # burst 2.5 -> 2 at once, then one every 0.1 s: the 60th at (60 - 2) * 0.1 = 5.8 s
    assert times[-1] == pytest.approx(5.8)
    for start in times:  # no 1-second window holds more than rate + burst
        assert sum(1 for t in times if start <= t < start + 1.0) <= 10 + lim.burst
    assert lim.stats()["granted"] == 60


@async_test
async def test_burst_after_idle_then_steady_pace() -> None:
    vt = VirtualTime()
    lim = limiter(vt, 40.0, adaptive=False)  # burst: a quarter second = 10 requests
    assert lim.burst == 10
    vt.now = 50.0  # idle for a while
    log: list[tuple[float, str]] = []
    spawn([grab(lim, vt, "poll", log) for _ in range(12)])
    await vt.run(until=60)
    times = [t for t, _ in log]
    assert times[:10] == [50.0] * 10
    assert times[10] == pytest.approx(50.025)
    assert times[11] == pytest.approx(50.05)


@async_test
async def test_dispatch_goes_first_but_a_waiting_poll_gets_every_third_grant() -> None:
    vt = VirtualTime()
    lim = limiter(vt, 10.0, burst=1, adaptive=False)
    log: list[tuple[float, str]] = []
    spawn([grab(lim, vt, "poll", log) for _ in range(5)])
    await vt.settle()
    spawn([grab(lim, vt, "dispatch", log) for _ in range(4)])
    await vt.run(until=10)
    kinds = [k for _, k in log]
    # the first poll went at once; the dispatches queued later overtake the other polls, two
    # at a time, then the polls that were left waiting go
    d, p = "dispatch", "poll"
    assert kinds == [p, d, d, p, d, d, p, p, p]
    times = [t for t, _ in log]
    assert times == pytest.approx([0.1 * i for i in range(9)])


@async_test
async def test_polls_are_not_starved_while_dispatch_is_rate_bound() -> None:
    # a campaign placing calls at the full rate for 10 s: the history pages and call details
    # waiting meanwhile get a third of the grants, not none until dispatch is done
    vt = VirtualTime()
    lim = limiter(vt, 30.0, burst=1, adaptive=False)
    log: list[tuple[float, str]] = []
    spawn([grab(lim, vt, "dispatch", log) for _ in range(300)])
    spawn([grab(lim, vt, "poll", log) for _ in range(60)])
    await vt.run(until=5)
    polls = sum(1 for _, k in log if k == "poll")
    assert 45 <= polls <= 51, polls  # a third of the 150 grants of the first 5 s
    await vt.run(until=60)
    assert len(log) == 360
    assert log[-1][0] == pytest.approx(359 / 30, abs=0.05)  # the pace is unchanged


@async_test
async def test_a_cancelled_waiter_does_not_block_the_line() -> None:
    vt = VirtualTime()
    lim = limiter(vt, 1.0, burst=1, adaptive=False)
    log: list[tuple[float, str]] = []
    await vt.complete(lim.acquire("poll"))  # uses the only slot at t=0
    head = asyncio.ensure_future(grab(lim, vt, "dispatch", log))
    behind = spawn([grab(lim, vt, "poll", log) for _ in range(2)])
    await vt.run(until=0.5)
    head.cancel()
    await vt.run(until=10)
    assert head.cancelled()
    assert all(t.done() and not t.cancelled() for t in behind)
    assert [t for t, _ in log] == pytest.approx([1.0, 2.0])


@async_test
async def test_many_concurrent_acquirers() -> None:
    vt = VirtualTime()
    lim = limiter(vt, 100.0, adaptive=False)
    log: list[tuple[float, str]] = []
    kinds = ["dispatch" if i % 3 == 0 else "poll" for i in range(300)]
    spawn([grab(lim, vt, k, log) for k in kinds])
    await vt.run(until=100)
    assert len(log) == 300
    assert log[-1][0] == pytest.approx((300 - lim.burst) / 100, abs=0.011)
    # dispatch took two grants in three while polls waited: every dispatch was served by the
    # 150th grant, long before the last poll
    last_dispatch = max(i for i, (_, k) in enumerate(log) if k == "dispatch")
    assert last_dispatch < 150 + lim.burst
    assert lim.stats()["granted_dispatch"] == 100


# ------------------------------------------------------------------------------ 429 and headers


@async_test
async def test_a_429_with_retry_after_pauses_everyone() -> None:
    vt = VirtualTime()
    lim = limiter(vt, 10.0)
    await vt.complete(lim.acquire("poll"))
    lim.observe("poll", 429, RateLimitInfo(retry_after_s=2.0))
    assert lim.paused_until == pytest.approx(2.0)
    assert lim.current_rate == pytest.approx(10.0 * DECREASE_FACTOR)
    log: list[tuple[float, str]] = []
    spawn([grab(lim, vt, "dispatch", log) for _ in range(3)])
    await vt.run(until=10)
    times = [t for t, _ in log]
    # nobody before the pause ends, then the steady pace (no burst after a pause)
    assert times[0] == pytest.approx(2.0)
    assert times[1] - times[0] == pytest.approx(1 / lim.current_rate)
    assert lim.paused_until is None
    assert lim.stats()["rate_limited"] == 1 and lim.stats()["pauses"] == 1


@async_test
async def test_in_flight_429s_count_as_one_episode() -> None:
    vt = VirtualTime()
    lim = limiter(vt, 20.0)
    for _ in range(5):
        await vt.complete(lim.acquire("poll"))
    for _ in range(5):  # a burst of 429s from requests that were all in flight together
        lim.observe("poll", 429, RateLimitInfo(retry_after_s=1.0))
    assert lim.current_rate == pytest.approx(20.0 * DECREASE_FACTOR)
    assert lim.stats()["decreases"] == 1
    assert lim.stats()["rate_limited"] == 5


@async_test
async def test_a_429_that_leaves_budget_pauses_without_slowing_down() -> None:
    vt = VirtualTime()
    lim = limiter(vt, 20.0)
    await vt.complete(lim.acquire("poll"))
    lim.observe("poll", 429, RateLimitInfo(limit=20, remaining=12, reset_s=1, retry_after_s=1))
    assert lim.paused_until == pytest.approx(1.0)
    assert lim.current_rate == 20.0
    await vt.run(until=5)
    await vt.complete(lim.acquire("poll"))
    lim.observe("poll", 429, RateLimitInfo(limit=20, remaining=0, reset_s=1, retry_after_s=1))
    assert lim.current_rate == pytest.approx(20.0 * DECREASE_FACTOR)


@async_test
async def test_a_429_without_retry_after_backs_off_exponentially_with_jitter() -> None:
    vt = VirtualTime()
    lim = limiter(vt, 10.0, adaptive=False)
    pauses = []
    for _ in range(6):
        await vt.complete(lim.acquire("poll"))
        start = vt.now
        lim.observe("poll", 429, NO_INFO)
        assert lim.paused_until is not None
        pauses.append(lim.paused_until - start)
        await vt.run(until=lim.paused_until + 1.0)  # wait out the pause and the calm period
    base = 2.0 / 10.0
    for n, pause in enumerate(pauses):
        assert base * 2**n * 0.5 <= pause <= base * 2**n
    # a success resets the backoff
    await vt.complete(lim.acquire("poll"))
    lim.observe("poll", 200, NO_INFO)
    await vt.complete(lim.acquire("poll"))
    start = vt.now
    lim.observe("poll", 429, NO_INFO)
    assert lim.paused_until is not None and lim.paused_until - start <= base


@async_test
async def test_huge_retry_after_is_capped() -> None:
    vt = VirtualTime()
    lim = limiter(vt, 10.0, max_pause_s=120.0)
    await vt.complete(lim.acquire("poll"))
    lim.observe("poll", 429, RateLimitInfo(retry_after_s=86400.0))
    assert lim.paused_until == pytest.approx(120.0)


@async_test
async def test_503_with_retry_after_pauses_but_does_not_slow_down() -> None:
    vt = VirtualTime()
    lim = limiter(vt, 10.0)
    await vt.complete(lim.acquire("poll"))
    lim.observe("poll", 503, RateLimitInfo(retry_after_s=3.0))
    assert lim.paused_until == pytest.approx(3.0)
    assert lim.current_rate == 10.0
    await vt.complete(lim.acquire("poll"))
    lim.observe("poll", None, NO_INFO)  # no answer at all: no lesson
    assert lim.current_rate == 10.0


@async_test
async def test_rate_limit_header_is_adopted() -> None:
    vt = VirtualTime()
    lim = limiter(vt, 80.0)
    await vt.complete(lim.acquire("poll"))
    lim.observe("poll", 200, RateLimitInfo(limit=40, remaining=39, reset_s=1.0))
    assert lim.current_rate == pytest.approx(40.0)
    # a per-minute limit shows as a reset longer than a second: the period grows with it
    lim2 = limiter(vt, 20.0)
    await vt.complete(lim2.acquire("poll"))
    lim2.observe("poll", 200, RateLimitInfo(limit=600, remaining=500, reset_s=60.0))
    assert lim2.current_rate == pytest.approx(10.0)
    # never above the configured ceiling
    lim3 = limiter(vt, 5.0)
    await vt.complete(lim3.acquire("poll"))
    lim3.observe("poll", 200, RateLimitInfo(limit=100, remaining=99, reset_s=1.0))
    assert lim3.current_rate == pytest.approx(5.0)


@async_test
async def test_remaining_running_out_paces_the_next_request() -> None:
    vt = VirtualTime()
    lim = limiter(vt, 100.0, adaptive=False)
    vt.now = 1.0
    for _ in range(4):
        await vt.complete(lim.acquire("poll"))
    # the server has 1 left, but 3 more of ours are still in flight: we owe 2
    lim.observe("poll", 200, RateLimitInfo(remaining=1, reset_s=1.0))
    log: list[tuple[float, str]] = []
    spawn([grab(lim, vt, "poll", log)])
    await vt.run(until=5)
    assert log[0][0] == pytest.approx(1.0 + 3 / 100.0)


@async_test
async def test_remaining_counts_the_refill_during_a_slow_answer() -> None:
    # an answer that took 1 s was decided about half-way: the server refilled ~50 requests'
    # worth at 100/s since, so 1 left and 3 in flight owe nothing (a slow API must not make
    # the header pacing wait for budget the server already has)
    vt = VirtualTime()
    lim = limiter(vt, 100.0, adaptive=False)
    for _ in range(4):
        await vt.complete(lim.acquire("poll"))
    vt.now = 1.0
    lim.observe("poll", 200, RateLimitInfo(remaining=1, reset_s=1.0))
    log: list[tuple[float, str]] = []
    spawn([grab(lim, vt, "poll", log)])
    await vt.run(until=5)
    assert log[0][0] == pytest.approx(1.0)


@async_test
async def test_successes_raise_the_rate_up_to_the_ceiling_only() -> None:
    vt = VirtualTime()
    lim = limiter(vt, 10.0)
    await vt.complete(lim.acquire("poll"))
    lim.observe("poll", 429, RateLimitInfo(retry_after_s=0.0))
    assert lim.current_rate == pytest.approx(10.0 * DECREASE_FACTOR)
    for _ in range(2000):
        await vt.complete(lim.acquire("poll"))
        lim.observe("poll", 200, NO_INFO)
    assert lim.current_rate == pytest.approx(10.0)
    assert lim.stats()["increases"] >= 12


@async_test
async def test_a_429_far_above_the_accepted_rate_drops_to_it_at_once() -> None:
    vt = VirtualTime()
    lim = limiter(vt, 100.0)
    for _ in range(40):  # 40 accepted over one second ...
        await vt.complete(lim.acquire("poll"))
        vt.now += 1 / 40
        lim.observe("poll", 200, NO_INFO)
    await vt.complete(lim.acquire("poll"))
    lim.observe("poll", 429, NO_INFO)  # ... then refused: the limit is near 40/s, not 80
    assert lim.current_rate == pytest.approx(40, abs=1)
    assert lim.stats()["decreases"] == 1


@async_test
async def test_a_429_after_idling_cuts_by_the_factor_only() -> None:
    vt = VirtualTime()
    lim = limiter(vt, 100.0)
    await vt.complete(lim.acquire("poll"))
    lim.observe("poll", 200, NO_INFO)
    vt.now = 60.0  # nothing for a minute: the last second says nothing about the server
    await vt.complete(lim.acquire("poll"))
    lim.observe("poll", 429, NO_INFO)
    assert lim.current_rate == pytest.approx(100 * DECREASE_FACTOR)


@async_test
async def test_one_429_never_cuts_below_a_quarter() -> None:
    vt = VirtualTime()
    lim = limiter(vt, 1000.0)
    for _ in range(10):  # busy, but only 10 accepted in the last second
        await vt.complete(lim.acquire("poll"))
        vt.now += 0.1
        lim.observe("poll", 200, NO_INFO)
    await vt.complete(lim.acquire("poll"))
    lim.observe("poll", 429, NO_INFO)
    assert lim.current_rate == pytest.approx(1000 * DEEPEST_CUT)


# ------------------------------------------------------------------------------ simulated server


@dataclass
class HiddenLimitServer:
    """A server with a GCRA limit we do not tell the limiter (as the sandbox does it)."""

    rate: float
    burst: float
    headers: bool
    accepted: list[float] = field(default_factory=list)
    refused: int = 0
    _tat: float = -math.inf

    def decide(self, now: float) -> tuple[int, RateLimitInfo]:
        interval = 1.0 / self.rate
        tolerance = (self.burst - 1) * interval
        tat = max(self._tat, now)
        if tat - now > tolerance + 1e-9:
            self.refused += 1
            wait = tat - now - tolerance
            info = (
                RateLimitInfo(
                    limit=int(self.burst), remaining=0, reset_s=math.ceil(tat - now),
                    retry_after_s=max(1, math.ceil(wait)),
                )
                if self.headers else NO_INFO
            )  # fmt: skip
            return 429, info
        self._tat = tat + interval
        self.accepted.append(now)
        backlog = self._tat - now
        remaining = max(0, int((tolerance - backlog + 1e-9) // interval) + 1)
        info = (
            RateLimitInfo(limit=int(self.burst), remaining=remaining, reset_s=math.ceil(backlog))
            if self.headers else NO_INFO
        )  # fmt: skip
        return 200, info


async def simulate(
    told: float,
    server: HiddenLimitServer,
    *,
    seconds: float,
    workers: int = 8,
    latency: float = 0.02,
) -> tuple[float, float, RateLimiter]:
    """Workers send through the limiter for ``seconds``; return (rate over the second half,
    share of 429s overall, the limiter)."""
    vt = VirtualTime()
    lim = limiter(vt, told)

    async def worker(kind: str) -> None:
        while vt.now < seconds:
            await lim.acquire(kind)
            status, info = server.decide(vt.now + latency / 2)
            await vt.sleep(latency)
            lim.observe(kind, status, info)

    tasks = spawn([worker("dispatch" if i % 2 else "poll") for i in range(workers)])
    await vt.run(until=seconds + 5)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    half = seconds / 2
    achieved = sum(1 for t in server.accepted if half <= t < seconds) / half
    total = len(server.accepted) + server.refused
    return achieved, server.refused / total, lim


@async_test
@pytest.mark.parametrize("headers", [False, True])
async def test_told_the_right_limit_it_runs_at_the_limit_without_429s(headers: bool) -> None:
    server = HiddenLimitServer(rate=40, burst=40, headers=headers)
    achieved, share_429, _ = await simulate(40, server, seconds=30)
    assert achieved >= 0.97 * 40
    assert share_429 == 0


@pytest.mark.parametrize(("told", "burst"), [(80, 40), (400, 40), (80, 5), (1000, 10)], ids=str)
@async_test
async def test_told_too_much_without_headers_it_converges_to_the_hidden_limit(
    told: float, burst: float
) -> None:
    server = HiddenLimitServer(rate=40, burst=burst, headers=False)
    achieved, share_429, lim = await simulate(told, server, seconds=90)
    assert achieved == pytest.approx(40, rel=0.10)
    assert share_429 < 0.03
    assert lim.current_rate < 50


@async_test
async def test_told_too_much_with_headers_it_adopts_the_limit_at_once() -> None:
    server = HiddenLimitServer(rate=40, burst=40, headers=True)
    achieved, share_429, lim = await simulate(80, server, seconds=30)
    assert achieved >= 0.97 * 40
    assert share_429 < 0.005
    assert lim.current_rate == pytest.approx(40)


@async_test
async def test_a_lower_hidden_limit_than_the_burst_suggests() -> None:
    # one slow worker, a tight server: the limiter still settles near the limit
    server = HiddenLimitServer(rate=5, burst=2, headers=False)
    achieved, share_429, _ = await simulate(50, server, seconds=200, workers=3)
    assert achieved == pytest.approx(5, rel=0.12)
    assert share_429 < 0.05


def test_on_the_real_clock_and_loop() -> None:
    """The defaults (monotonic clock, asyncio.sleep) pace real concurrent tasks."""

    async def main() -> float:
        lim = RateLimiter(200.0)  # burst 50
        start = asyncio.get_running_loop().time()
        await asyncio.gather(*(lim.acquire("poll" if i % 2 else "dispatch") for i in range(90)))
        return asyncio.get_running_loop().time() - start

    elapsed = asyncio.run(main())
    assert elapsed >= (90 - 50) / 200 * 0.95
    assert elapsed < 2.0


@async_test
async def test_stray_429s_at_low_demand_never_starve_the_limiter() -> None:
    """429s that are not about our pace (a flaky gateway, no headers) while we send little
    must not cut the rate to nothing: it stays above a floor and climbs back when calm."""
    vt = VirtualTime()
    lim = limiter(vt, 100.0)
    for _ in range(30):  # a stray 429 every few requests, at ~5 requests/s of demand
        for status in (200, 200, 200, 429):
            await vt.complete(lim.acquire("dispatch"))
            vt.now += 0.2
            lim.observe("dispatch", status, NO_INFO)
    assert lim.current_rate >= 100.0 * FLOOR_SHARE
    low = lim.current_rate
    for _ in range(600):  # then a minute of calm at 10 requests/s
        await vt.complete(lim.acquire("dispatch"))
        vt.now += 0.1
        lim.observe("dispatch", 200, NO_INFO)
    assert lim.current_rate > low + 10


# --------------------------------------------------------------------------- the registry


def test_registry_hands_out_one_limiter_per_provider_and_key() -> None:
    registry = LimiterRegistry()
    a = registry.get("vaani", "key-aaaa-1111", rate=5.0)
    assert registry.get("vaani", "key-aaaa-1111", rate=50.0) is a  # the first rate set it
    assert a.ceiling == 5.0
    b = registry.get("vaani", "key-bbbb-2222", rate=5.0)
    c = registry.get("vaniagent", "key-aaaa-1111", rate=2.0)  # same key string, other provider
    assert len({id(a), id(b), id(c)}) == 3
    assert len(registry) == 3
    assert registry.providers() == {"vaani": 2, "vaniagent": 1}


def test_registry_never_keeps_the_key_visible() -> None:
    key = "sk-live-registry-secret-9f8e"
    registry = LimiterRegistry()
    limiter = registry.get("vaani", key, rate=1.0)
    shown = [repr(registry), repr(limiter), repr(vars(registry)), repr(limiter.stats())]
    shown += [repr(k) for k in registry._limiters]
    assert all(key not in text for text in shown)


def test_registry_builds_limiters_with_its_factory() -> None:
    built: list[float] = []

    def factory(rate: float) -> RateLimiter:
        built.append(rate)
        return RateLimiter(rate, adaptive=False)

    registry = LimiterRegistry(factory)
    registry.get("vaani", "k-1234", rate=3.0)
    registry.get("vaani", "k-1234", rate=3.0)
    assert built == [3.0]
