"""Unit tests of the Vaani client: wire shape, error mapping, retry decisions, key redaction.

Every test drives the real ``VaaniProvider`` through ``httpx.MockTransport`` (the transport is
the one seam) and counts the attempts the transport saw. Waits go through a recording fake
sleep, except one test that checks a real ``Retry-After`` wait.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from scheduler.errors import (
    AmbiguousServerError,
    AnswerLostError,
    APIStatusError,
    AuthenticationError,
    ForbiddenError,
    InsufficientBalanceError,
    NotFoundError,
    NotSentError,
    ProtocolError,
    RateLimitedError,
    RateLimitInfo,
    ServerError,
    VaaniError,
    ValidationError,
)
from scheduler.providers.vaani import VaaniProvider
from scheduler.retry import RetryPolicy

KEY = "sk-live-7Hq2ZpX9wV4mB1nC"
BASE = "http://vaani.test"
FAST = RetryPolicy(max_attempts=4, max_total_s=30, backoff_base_s=0.01, backoff_max_s=0.05)
Handler = Callable[[httpx.Request], httpx.Response]


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


class Recorder:
    """A MockTransport handler that answers from a script and records every request."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer


class FakeSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class RecordingGate:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, int | None, RateLimitInfo | None]] = []

    async def acquire(self, kind: str) -> None:
        self.events.append(("acquire", kind, None, None))

    def observe(self, kind: str, status: int | None, rate: RateLimitInfo) -> None:
        self.events.append(("observe", kind, status, rate))


def client_for(
    rec: Recorder, *, retry: RetryPolicy = FAST, sleep: FakeSleep | None = None, **kw: Any
) -> VaaniProvider:
    return VaaniProvider(
        KEY,
        BASE,
        retry=retry,
        transport=httpx.MockTransport(rec),
        sleep=sleep or FakeSleep(),
        **kw,
    )


def ok(body: Any = None, **kw: Any) -> httpx.Response:
    return httpx.Response(200, json={"call_id": "c-1"} if body is None else body, **kw)


def trigger(client: VaaniProvider, **kw: Any) -> Any:
    args = {"agent_id": "agent-1", "contact_number": "+14155550100", "name": "Ada"} | kw

    async def go() -> Any:
        async with client:
            return await client.trigger_call(**args)

    return run(go())


def call(client: VaaniProvider, method: str, *args: Any, **kw: Any) -> Any:
    async def go() -> Any:
        async with client:
            return await getattr(client, method)(*args, **kw)

    return run(go())


# --------------------------------------------------------------------------- wire shape


def test_trigger_call_sends_the_official_wire_format() -> None:
    rec = Recorder(ok({"call_id": "outbound-1-a", "status": "queued"}))
    result = trigger(
        client_for(rec),
        metadata={"order": "A-17"},
        outbound_number="+14155550199",
        extra={"sip_trunk_id": "trunk-9", "test_mode": True},
    )
    assert result.call_id == "outbound-1-a"
    assert result.raw == {"call_id": "outbound-1-a", "status": "queued"}
    (req,) = rec.requests
    assert req.method == "POST"
    assert req.url.path == "/api/trigger-call/"
    assert req.headers["X-API-Key"] == KEY
    assert req.headers["content-type"] == "application/json"
    assert json.loads(req.content) == {
        "agent_id": "agent-1",
        "medium": "telephony",
        "contact_number": "+14155550100",
        "name": "Ada",
        "metadata": {"order": "A-17"},
        "outbound_number": "+14155550199",
        "sip_trunk_id": "trunk-9",
        "test_mode": True,
    }


def test_trigger_call_omits_absent_options_and_sends_voice_when_given() -> None:
    rec = Recorder(ok(), ok())
    trigger(client_for(rec))
    trigger(client_for(rec), voice="meera")
    assert json.loads(rec.requests[0].content) == {
        "agent_id": "agent-1",
        "medium": "telephony",
        "contact_number": "+14155550100",
        "name": "Ada",
        "metadata": {},
    }
    assert json.loads(rec.requests[1].content)["voice"] == "meera"


def test_trigger_call_reads_call_id_nested_under_output() -> None:
    rec = Recorder(ok({"output": {"call_id": "nested-7"}, "success": True}))
    assert trigger(client_for(rec)).call_id == "nested-7"


@pytest.mark.parametrize(("asked", "sent"), [(0, 1), (-5, 1), (1, 1), (50, 50), (500, 200)])
def test_call_history_clamps_page_size(asked: int, sent: int) -> None:
    rec = Recorder(ok({"data": [], "pagination": {"total_count": 3}}))
    page = call(client_for(rec), "call_history", page=2, page_size=asked)
    (req,) = rec.requests
    assert req.method == "GET" and req.url.path == "/api/call-history"
    assert dict(req.url.params) == {"page": "2", "page_size": str(sent)}
    assert page.total == 3 and page.records == [] and page.page == 2


def test_call_history_parses_records() -> None:
    body: dict[str, Any] = {
        "data": [
            {
                "call_id": "c-2",
                "call_status": "Completed",
                "duration_ms": 61000,
                "contact_number": "+14155550100",
                "agent_id": "agent-1",
                "created_at": "2026-11-23T19:00:00Z",
            },
            {"call_status": "queued"},  # no call_id: skipped
        ],
        "pagination": {"page": 1, "page_size": 50, "total": 2, "total_pages": 1},
    }
    page = call(client_for(Recorder(ok(body))), "call_history")
    (rec,) = page.records
    assert (rec.call_id, rec.status, rec.duration_ms) == ("c-2", "completed", 61000.0)
    assert rec.created_at == datetime(2026, 11, 23, 19, 0, tzinfo=UTC)
    assert rec.raw == body["data"][0]
    assert (page.total, page.total_pages) == (2, 1)


def test_call_details_and_transcript_quote_the_call_id() -> None:
    details = {
        "call_id": "a/b c",
        "call_status": "completed",
        "summary": "Agreed to a demo.",
        "entity": {"email": "ada@example.com"},
        "transcript": [{"role": "agent", "text": "Hello"}],
    }
    rec = Recorder(ok(details), ok({"transcript": "Hello"}))
    got = call(client_for(rec), "call_details", "a/b c")
    assert rec.requests[0].url.raw_path == b"/api/call_details/a%2Fb%20c"
    assert got.summary == "Agreed to a demo." and got.entity == {"email": "ada@example.com"}
    assert got.transcript == [{"role": "agent", "text": "Hello"}]
    assert call(client_for(rec), "transcript", "a/b c") == "Hello"
    assert rec.requests[1].url.raw_path == b"/api/transcript/a%2Fb%20c"


def test_health() -> None:
    rec = Recorder(ok({"status": "healthy", "service": "vaani"}))
    assert call(client_for(rec), "health") == {"status": "healthy", "service": "vaani"}
    assert rec.requests[0].url.path == "/api/health"


# --------------------------------------------------------------------------- error mapping


@pytest.mark.parametrize(
    ("status", "method", "expected"),
    [
        (401, "health", AuthenticationError),
        (402, "trigger", InsufficientBalanceError),
        (403, "trigger", ForbiddenError),
        (404, "call_details", NotFoundError),
        (422, "trigger", ValidationError),
        (400, "trigger", ValidationError),
        (409, "trigger", ValidationError),
        (500, "call_details", ServerError),
        (503, "trigger", AmbiguousServerError),
        (502, "trigger", AmbiguousServerError),
    ],
)
def test_status_codes_map_to_the_exception_tree(
    status: int, method: str, expected: type[APIStatusError]
) -> None:
    rec = Recorder(httpx.Response(status, json={"detail": "nope, really"}))
    client = client_for(rec, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(expected) as info:
        if method == "trigger":
            trigger(client)
        else:
            call(client, method, *(["c-1"] if method == "call_details" else []))
    exc = info.value
    assert type(exc) is expected
    assert exc.status_code == status and exc.detail == "nope, really"
    assert f"HTTP {status}: nope, really" in str(exc)
    if expected is AmbiguousServerError:
        assert isinstance(exc, AnswerLostError)  # the call may have been placed
    else:
        assert not isinstance(exc, AnswerLostError)


def test_error_detail_from_message_and_fastapi_list() -> None:
    rec = Recorder(
        httpx.Response(403, json={"message": "agent belongs to another account"}),
        httpx.Response(
            422,
            json={"detail": [{"loc": ["body", "contact_number"], "msg": "not E.164"}]},
        ),
        httpx.Response(418, text="I'm a teapot"),
    )
    for expected, detail in [
        (ForbiddenError, "agent belongs to another account"),
        (ValidationError, "body.contact_number: not E.164"),
        (ValidationError, "I'm a teapot"),
    ]:
        with pytest.raises(expected) as info:
            trigger(client_for(rec))
        assert info.value.detail == detail
        assert detail in str(info.value)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), NotSentError),
        (httpx.ConnectError("[Errno -2] Name or service not known"), NotSentError),
        (httpx.ConnectTimeout("timed out"), NotSentError),
        (httpx.PoolTimeout("no connection free"), NotSentError),
        (httpx.ReadTimeout("timed out"), AnswerLostError),
        (httpx.WriteTimeout("timed out"), AnswerLostError),
        (httpx.RemoteProtocolError("Server disconnected"), AnswerLostError),
        (httpx.ReadError("Connection reset by peer"), AnswerLostError),
    ],
)
def test_transport_errors_split_not_sent_from_answer_lost(
    error: Exception, expected: type[VaaniError]
) -> None:
    rec = Recorder(error)
    with pytest.raises(expected) as info:
        trigger(client_for(rec, retry=RetryPolicy(max_attempts=1)))
    assert type(info.value) is expected
    assert info.value.status_code is None
    assert type(error).__name__ in str(info.value)
    assert str(info.value).startswith("POST /api/trigger-call/: ")


@pytest.mark.parametrize(
    ("response", "method"),
    [
        (httpx.Response(200, text="<html>gateway</html>"), "trigger"),
        (httpx.Response(200, json={"status": "queued"}), "trigger"),
        (httpx.Response(201, json={"output": {"id": 5}}), "trigger"),
        (httpx.Response(200, json=["not", "an", "object"]), "call_history"),
        (httpx.Response(200, json={"data": "oops"}), "call_history"),
        (httpx.Response(200, text="{truncated"), "call_details"),
        (httpx.Response(307, headers={"location": "/elsewhere"}), "trigger"),
    ],
)
def test_unreadable_answers_are_protocol_errors(response: httpx.Response, method: str) -> None:
    rec = Recorder(response)
    with pytest.raises(ProtocolError):
        if method == "trigger":
            trigger(client_for(rec))
        else:
            call(client_for(rec), method, *(["c-1"] if method == "call_details" else []))
    assert len(rec.requests) == 1  # never retried


# --------------------------------------------------------------------------- retry decisions


def test_post_with_lost_answer_is_not_resent() -> None:
    rec = Recorder(httpx.ReadTimeout("timed out"), ok())
    with pytest.raises(AnswerLostError):
        trigger(client_for(rec))
    assert len(rec.requests) == 1


def test_post_5xx_is_not_resent() -> None:
    rec = Recorder(httpx.Response(503), ok())
    with pytest.raises(AmbiguousServerError):
        trigger(client_for(rec))
    assert len(rec.requests) == 1


def test_post_429_is_resent_after_retry_after() -> None:
    sleep = FakeSleep()
    rec = Recorder(httpx.Response(429, headers={"Retry-After": "1"}), ok({"call_id": "c-9"}))
    assert trigger(client_for(rec, sleep=sleep)).call_id == "c-9"
    assert len(rec.requests) == 2
    assert sleep.waits == [1.0]


def test_post_429_really_waits_retry_after() -> None:
    rec = Recorder(httpx.Response(429, headers={"Retry-After": "1"}), ok())
    client = VaaniProvider(KEY, BASE, retry=FAST, transport=httpx.MockTransport(rec))
    started = time.monotonic()
    trigger(client)
    elapsed = time.monotonic() - started
    assert len(rec.requests) == 2
    assert 0.9 <= elapsed < 5


def test_post_429_with_http_date_retry_after() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    sleep = FakeSleep()
    rec = Recorder(httpx.Response(429, headers={"Retry-After": when}), ok())
    trigger(client_for(rec, sleep=sleep))
    assert len(rec.requests) == 2
    (wait,) = sleep.waits
    assert 27 <= wait <= 30


def test_429_longer_than_the_cap_raises_at_once() -> None:
    rec = Recorder(httpx.Response(429, headers={"Retry-After": "600"}), ok())
    with pytest.raises(RateLimitedError) as info:
        trigger(client_for(rec, retry=RetryPolicy(max_retry_after_s=120)))
    assert len(rec.requests) == 1
    assert info.value.retry_after == 600.0
    assert "retry after 600 s" in str(info.value)


def test_429_without_retry_after_backs_off_with_jitter() -> None:
    sleep = FakeSleep()
    rec = Recorder(httpx.Response(429), httpx.Response(429), httpx.Response(429), ok())
    trigger(client_for(rec, sleep=sleep, retry=RetryPolicy(backoff_base_s=1, backoff_max_s=3)))
    assert len(rec.requests) == 4
    assert len(sleep.waits) == 3
    for attempt, wait in enumerate(sleep.waits, start=1):
        assert 0 <= wait <= min(3, 2 ** (attempt - 1))


def test_429_without_retry_after_waits_for_the_rate_reset() -> None:
    sleep = FakeSleep()
    headers = {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "7"}
    rec = Recorder(httpx.Response(429, headers=headers), ok())
    trigger(client_for(rec, sleep=sleep))
    assert sleep.waits == [7.0]


def test_connect_error_is_resent() -> None:
    rec = Recorder(httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), ok())
    assert trigger(client_for(rec)).call_id == "c-1"
    assert len(rec.requests) == 3


@pytest.mark.parametrize("status", [401, 402, 403, 404, 422])
def test_client_errors_are_not_resent(status: int) -> None:
    rec = Recorder(httpx.Response(status), ok())
    with pytest.raises(APIStatusError):
        trigger(client_for(rec))
    assert len(rec.requests) == 1


def test_get_5xx_is_resent() -> None:
    rec = Recorder(httpx.Response(503), httpx.Response(500), ok({"status": "healthy"}))
    assert call(client_for(rec), "health") == {"status": "healthy"}
    assert len(rec.requests) == 3


def test_get_timeout_is_resent() -> None:
    rec = Recorder(httpx.ReadTimeout("slow"), ok({"data": []}))
    call(client_for(rec), "call_history")
    assert len(rec.requests) == 2


def test_exhausted_retries_raise_the_last_error_itself() -> None:
    rec = Recorder(httpx.ReadTimeout("slow"), httpx.Response(502, json={"detail": "bad gw"}))
    with pytest.raises(ServerError) as info:
        call(client_for(rec, retry=RetryPolicy(max_attempts=3, backoff_base_s=0)), "health")
    assert len(rec.requests) == 3
    assert info.value.detail == "bad gw"


def test_total_time_budget_stops_before_a_long_wait() -> None:
    sleep = FakeSleep()
    rec = Recorder(httpx.Response(429, headers={"Retry-After": "20"}), ok())
    with pytest.raises(RateLimitedError):
        trigger(client_for(rec, sleep=sleep, retry=RetryPolicy(max_total_s=10)))
    assert len(rec.requests) == 1 and sleep.waits == []


def test_max_attempts_one_disables_retries() -> None:
    rec = Recorder(httpx.ConnectError("refused"), ok())
    with pytest.raises(NotSentError):
        trigger(client_for(rec, retry=RetryPolicy(max_attempts=1)))
    assert len(rec.requests) == 1


# --------------------------------------------------------------------------- the gate


def test_gate_is_asked_before_and_told_after_every_attempt() -> None:
    gate = RecordingGate()
    headers = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "Retry-After": "2"}
    rec = Recorder(
        httpx.ConnectError("refused"),
        httpx.Response(429, headers=headers),
        ok(headers={"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59"}),
    )
    trigger(client_for(rec, gate=gate))
    assert [e[:3] for e in gate.events] == [
        ("acquire", "dispatch", None),
        ("observe", "dispatch", None),
        ("acquire", "dispatch", None),
        ("observe", "dispatch", 429),
        ("acquire", "dispatch", None),
        ("observe", "dispatch", 200),
    ]
    assert gate.events[1][3] == RateLimitInfo()
    assert gate.events[3][3] == RateLimitInfo(limit=60, remaining=0, retry_after_s=2.0)
    assert gate.events[5][3] == RateLimitInfo(limit=60, remaining=59)


def test_gets_acquire_the_poll_kind() -> None:
    gate = RecordingGate()
    rec = Recorder(ok({"data": []}), ok({"call_id": "c"}), ok({"transcript": ""}), ok({}))
    client = client_for(rec, gate=gate)

    async def go() -> None:
        async with client:
            await client.call_history()
            await client.call_details("c")
            await client.transcript("c")
            await client.health()

    run(go())
    kinds = {kind for _, kind, _, _ in gate.events}
    assert kinds == {"poll"} and len(gate.events) == 8


def test_gate_is_told_when_an_attempt_is_cancelled() -> None:
    gate = RecordingGate()
    started = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        started.set()
        await asyncio.sleep(60)
        raise AssertionError("not reached")

    async def go() -> None:
        client = VaaniProvider(KEY, BASE, gate=gate, transport=httpx.MockTransport(hang))
        async with client:
            task = asyncio.create_task(client.call_history())
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    run(go())
    assert [e[:3] for e in gate.events] == [("acquire", "poll", None), ("observe", "poll", None)]


# --------------------------------------------------------------------------- the key


SECRET_ANSWERS: list[tuple[str, httpx.Response | Exception]] = [
    ("401", httpx.Response(401, json={"detail": f"invalid key {KEY}"})),
    ("402", httpx.Response(402, json={"message": f"key {KEY} has no balance"})),
    ("403", httpx.Response(403, json={"detail": f"{KEY} may not use this agent"})),
    ("404", httpx.Response(404, json={"detail": f"no call for {KEY}"})),
    ("422", httpx.Response(422, json={"detail": [{"loc": ["header", KEY], "msg": KEY}]})),
    (
        "429",
        httpx.Response(429, json={"detail": f"slow down {KEY}"}, headers={"Retry-After": "999"}),
    ),
    ("500", httpx.Response(500, text=f"Traceback ... X-API-Key: {KEY}")),
    ("text", httpx.Response(200, text=f"<html>{KEY}</html>")),
    ("connect", httpx.ConnectError(f"cannot reach {KEY}")),
    ("read", httpx.ReadTimeout(f"timed out {KEY}")),
    ("reset", httpx.RemoteProtocolError(f"peer closed {KEY}")),
]


@pytest.mark.parametrize(("name", "answer"), SECRET_ANSWERS, ids=[n for n, _ in SECRET_ANSWERS])
@pytest.mark.parametrize("endpoint", ["trigger", "details"])
def test_the_key_never_appears_in_errors_or_logs(
    name: str, answer: Any, endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rec = Recorder(answer)
    client = client_for(rec, retry=RetryPolicy(max_attempts=2, backoff_base_s=0))
    assert KEY not in repr(client)
    with pytest.raises(VaaniError) as info:
        if endpoint == "trigger":
            trigger(client)
        else:  # the key even inside the URL path
            call(client, "call_details", f"call-{KEY}")
    exc = info.value
    texts = [str(exc), repr(exc), exc.message, exc.path, *map(str, exc.args)]
    texts.append(str(getattr(exc, "detail", "")))
    for text in texts:
        assert KEY not in text
    if endpoint == "details" or name != "text":  # the key was in what we show: redacted
        assert "***" in str(exc)
    assert caplog.records, "expected the request's DEBUG log line"
    assert KEY not in caplog.text
    for record in caplog.records:
        assert KEY not in record.getMessage()


def test_one_debug_line_per_request(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="vaani.client")
    rec = Recorder(httpx.Response(503), ok({"status": "healthy"}))
    call(client_for(rec), "health")
    lines = [r.getMessage() for r in caplog.records if r.name == "vaani.client"]
    requests = [line for line in lines if line.startswith("GET /api/health -> ")]
    assert len(requests) == 2
    assert requests[0].startswith("GET /api/health -> 503 in ") and requests[0].endswith(" ms")
    assert KEY not in caplog.text


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize("key", ["", "   ", "two words", "tab\tkey"])
def test_bad_keys_are_refused_without_echoing_them(key: str) -> None:
    with pytest.raises(ValueError) as info:
        VaaniProvider(key, BASE)
    if key.strip():
        assert key not in str(info.value)


def test_bad_base_url_is_refused() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        VaaniProvider(KEY, "api.vaanivoice.ai")


def test_base_url_trailing_slash_is_ignored() -> None:
    rec = Recorder(ok({"status": "healthy"}))
    run(VaaniProvider(KEY, BASE + "/", transport=httpx.MockTransport(rec)).health())
    assert str(rec.requests[0].url) == "http://vaani.test/api/health"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_total_s": -1},
        {"backoff_base_s": float("nan")},
        {"max_retry_after_s": -0.5},
    ],
)
def test_retry_policy_validates(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RetryPolicy(**kwargs)
