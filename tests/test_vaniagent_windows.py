"""The two-window gate (scheduler.ratelimit_windows) VaniAgent's plans need: 100/min AND
1,000/h. On a simulated clock: no trailing window ever holds more than its limit, the hour's
budget is spread rather than spent in ten minutes, dispatch goes before poll, and the
``rate-limit`` setting parses into a ceiling or windows."""

from __future__ import annotations

import asyncio
import bisect

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.errors import RateLimitInfo
from scheduler.providers.http import OpenGate
from scheduler.ratelimit_windows import Window, WindowedGate, parse_limits, parse_window
from scheduler.runner import Drive


class SimClock:
    """A clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


def max_in_any_window(times: list[float], period: float) -> int:
    times = sorted(times)
    return max(bisect.bisect_left(times, t + period) - i for i, t in enumerate(times))


def test_parse_limits_one_rate_is_a_ceiling_a_list_is_windows() -> None:
    assert parse_limits("10/s") == (10.0, ())
    assert parse_limits("100/min, 1000/h") == (None, (Window(100, 60.0), Window(1000, 3600.0)))
    assert parse_window("500/minute") == Window(500, 60.0)
    for bad in ("2.5/s,10/min", "100/min,fast", "0/s,1/h", "", "100/min,"):
        with pytest.raises(ValueError, match="invalid"):
            parse_limits(bad)


def test_vaniagent_drives_get_the_starter_plan_windows_unless_configured() -> None:
    assert Drive(provider="vaniagent", api_key="k").plan_windows() == (
        Window(100, 60.0),
        Window(1000, 3600.0),
    )
    assert Drive(provider="vaniagent", api_key="k", windows=()).plan_windows() == ()
    assert Drive(provider="vaani", api_key="k").plan_windows() == ()


def test_no_trailing_window_ever_exceeds_its_limit() -> None:
    clock = SimClock()
    gate = WindowedGate(
        OpenGate(), [Window(100, 60.0), Window(1000, 3600.0)], clock=clock, sleep=clock.sleep
    )
    granted: list[float] = []

    async def worker() -> None:
        for _ in range(150):
            await gate.acquire("poll")
            granted.append(clock.now)
            gate.observe("poll", 200, RateLimitInfo())

    async def main() -> None:
        await asyncio.gather(*(worker() for _ in range(8)))

    asyncio.run(main())
    assert len(granted) == 1200
    assert max_in_any_window(granted, 60.0) == 100
    assert max_in_any_window(granted, 3600.0) == 1000
    # the first 1000 went at the minute's pace (10 minutes), the 1001st waits for the hour
    assert granted[999] < 600 and granted[1000] >= 3600.0
    minute, hour = gate.used(clock.now)
    assert minute <= 100 and hour == 1000  # the hour stays full: the pace is the hour's


def test_dispatch_waiters_go_before_poll_waiters() -> None:
    clock = SimClock()
    gate = WindowedGate(OpenGate(), [Window(1, 10.0)], clock=clock, sleep=clock.sleep)
    order: list[str] = []

    async def one(kind: str) -> None:
        await gate.acquire(kind)
        order.append(kind)

    async def main() -> None:
        await gate.acquire("poll")  # fills the window: everyone else waits
        polls = [asyncio.create_task(one("poll")) for _ in range(3)]
        await asyncio.sleep(0)
        dispatch = asyncio.create_task(one("dispatch"))
        await asyncio.gather(*polls, dispatch)

    asyncio.run(main())
    assert order[0] == "poll"  # the head was already sleeping when dispatch arrived
    assert order.index("dispatch") == 1


def test_a_cancelled_waiter_does_not_block_the_line() -> None:
    now = [0.0]
    moved = asyncio.Event()

    async def sleep(seconds: float) -> None:  # sleeps until the test moves the clock
        moved.clear()
        await moved.wait()

    gate = WindowedGate(OpenGate(), [Window(1, 5.0)], clock=lambda: now[0], sleep=sleep)

    async def main() -> None:
        await gate.acquire("poll")
        head = asyncio.create_task(gate.acquire("dispatch"))
        await asyncio.sleep(0.01)
        behind = asyncio.create_task(gate.acquire("poll"))
        await asyncio.sleep(0.01)
        head.cancel()  # while it sleeps at the head of the line
        await asyncio.gather(head, return_exceptions=True)
        await asyncio.sleep(0.01)
        now[0] = 5.0
        moved.set()
        await asyncio.wait_for(behind, timeout=5)

    asyncio.run(main())
    assert gate.granted == 2


def test_observe_reaches_the_wrapped_gate() -> None:
    seen: list[tuple[str, int | None]] = []

    class Inner(OpenGate):
        def observe(self, kind: str, status: int | None, rate: RateLimitInfo) -> None:
            seen.append((kind, status))

    gate = WindowedGate(Inner(), [Window(5, 1.0)])
    asyncio.run(gate.acquire("dispatch"))
    gate.observe("dispatch", 429, RateLimitInfo(remaining=0))
    assert seen == [("dispatch", 429)]
    with pytest.raises(ValueError, match="at least one window"):
        WindowedGate(OpenGate(), [])


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789./, smhinutero", max_size=24))
def test_any_rate_limit_text_parses_or_says_why(text: str) -> None:
    try:
        rate, windows = parse_limits(text)
    except ValueError as exc:
        assert str(exc).startswith("invalid")
        return
    if windows:
        assert rate is None and len(windows) == len(text.split(","))
        assert all(w.limit >= 1 and w.period_s > 0 for w in windows)
    else:
        assert rate is not None and rate > 0


@given(st.integers(1, 10_000), st.sampled_from([("s", 1.0), ("min", 60.0), ("h", 3600.0)]))
def test_windows_round_trip(limit: int, unit: tuple[str, float]) -> None:
    name, seconds = unit
    assert parse_window(f"{limit}/{name}") == Window(limit, seconds)
