"""The unreachable-API watch: one warning per ``warn_every``, a recovery line, down time."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from scheduler.errors import NotSentError, RateLimitInfo
from scheduler.providers.http import map_transport_error, not_sent_reason
from scheduler.reachability import Reachability, ReachabilityGate, display_url


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def refused() -> NotSentError:
    return NotSentError("request not sent (ConnectError: ...)", reason="connection refused")


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "vaani.daemon"]


def test_warns_once_per_interval_and_says_when_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    reach = Reachability("http://127.0.0.1:1/", warn_every=30, clock=clock)
    caplog.set_level(logging.INFO, logger="vaani")
    assert reach.down_for() == 0.0
    for _ in range(20):  # twenty contacts failing at once: one line
        reach.not_sent(refused())
    clock.t += 29
    reach.not_sent(refused())
    assert messages(caplog) == ["cannot reach http://127.0.0.1:1: connection refused"]
    assert reach.down_for() == 29
    clock.t += 1
    reach.not_sent(refused())
    assert len(messages(caplog)) == 2
    assert reach.last_warning == "cannot reach http://127.0.0.1:1: connection refused"
    reach.reached()
    assert messages(caplog)[-1] == "API reachable again: http://127.0.0.1:1"
    assert reach.down_for() == 0.0 and reach.last_warning is None
    reach.reached()  # reachable all along: nothing more to say
    assert len(messages(caplog)) == 3


def test_display_url_drops_user_info_and_query() -> None:
    assert display_url("https://user:s3cret@api.example.com:8443/v1/?key=abc") == (
        "https://api.example.com:8443/v1"
    )
    assert display_url("not a url") == "the API"


@pytest.mark.parametrize(
    ("url", "reason"),
    [("http://127.0.0.1:1/", "connection refused"), ("http://x.invalid/", "host name not found")],
)
def test_transport_errors_say_why_as_a_person_would(url: str, reason: str) -> None:
    async def fail() -> httpx.HTTPError:
        async with httpx.AsyncClient() as client:
            try:
                await client.get(url, timeout=5)
            except httpx.HTTPError as exc:
                return exc
        raise AssertionError("the request succeeded")

    exc = asyncio.run(fail())
    assert not_sent_reason(exc) == reason
    mapped = map_transport_error(exc, method="GET", path="/")
    assert isinstance(mapped, NotSentError) and mapped.reason == reason


def test_gate_reports_responses_only() -> None:
    class Inner:
        def __init__(self) -> None:
            self.seen: list[int | None] = []

        async def acquire(self, kind: str) -> None:
            return None

        def observe(self, kind: str, status: int | None, rate: RateLimitInfo) -> None:
            self.seen.append(status)

    clock = Clock()
    reach = Reachability("http://h", clock=clock)
    inner = Inner()
    gate = ReachabilityGate(inner, reach)
    reach.not_sent(refused())
    clock.t += 5
    gate.observe("dispatch", None, RateLimitInfo())  # no response: still down
    assert reach.down_for() == 5
    gate.observe("poll", 429, RateLimitInfo())  # any answer: reachable
    assert reach.down_for() == 0.0
    assert inner.seen == [None, 429]
