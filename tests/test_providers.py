"""The provider interface (scheduler.providers) with Vaani behind it.

Vaani is driven through ``httpx.MockTransport`` (the one seam), so each test sees the exact
requests the interface produces; the wire itself is covered by test_client_unit.py and, against
the real sandbox, by test_client_e2e.py and test_sandbox_sdk.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from scheduler.errors import ProviderConfigError, ProviderError, RateLimitInfo, VaaniError
from scheduler.logs import setup_logging
from scheduler.providers import (
    PROVIDERS,
    CallOutcome,
    CallPage,
    CallProvider,
    CallQuery,
    DialRequest,
    Direction,
    ListedCall,
    Listing,
    check_config,
    make_provider,
)
from scheduler.providers.vaani import VaaniAuth, VaaniProvider
from scheduler.retry import RetryPolicy
from tests.cli_helpers import run_cli

KEY = "sk-live-9Zq2PpX7wV4mB1nD"
BASE = "http://vaani.test"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
Handler = Callable[[httpx.Request], httpx.Response]


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


class Recorder:
    """Answers every request with ``handler`` and keeps the requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)


def vaani(rec: Recorder) -> CallProvider:
    return make_provider(
        "vaani",
        api_key=KEY,
        base_url=BASE,
        transport=httpx.MockTransport(rec),
        retry=RetryPolicy(max_attempts=1),
    )


def record(call_id: str, minutes: float, **kw: Any) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "contact_number": "+14155550100",
        "agent_id": "agent-1",
        "call_status": "Completed",
        "created_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "call_type": "outbound",
    } | kw


# --------------------------------------------------------------------------- placing calls


def test_place_call_sends_the_trigger_call_wire_and_no_client_reference() -> None:
    rec = Recorder(lambda r: httpx.Response(200, json={"call_id": "c-9"}))
    request = DialRequest(
        agent_id="agent-1",
        phone_e164="+14155550100",
        name="Ada",
        metadata={"order": "A-17"},
        caller_id="+14155550199",
        voice="meera",
        options={"test_mode": True},
        client_ref="attempt-42",
    )

    async def go() -> Any:
        provider = vaani(rec)
        try:
            return await provider.place_call(request)
        finally:
            await provider.aclose()

    placed = run(go())
    assert placed.call_id == "c-9" and placed.raw == {"call_id": "c-9"}
    (sent,) = rec.requests
    assert sent.method == "POST" and sent.url.path == "/api/trigger-call/"
    assert sent.headers["X-API-Key"] == KEY
    assert json.loads(sent.content) == {
        "agent_id": "agent-1",
        "medium": "telephony",
        "contact_number": "+14155550100",
        "name": "Ada",
        "metadata": {"order": "A-17"},  # Vaani takes no client reference: not smuggled in
        "voice": "meera",
        "outbound_number": "+14155550199",
        "test_mode": True,
    }


def test_vaani_declares_its_capabilities_auth_and_rate_headers() -> None:
    provider = VaaniProvider(KEY, BASE)
    caps = provider.capabilities
    assert caps.listing is Listing.NEWEST_FIRST_PAGES and caps.max_page_size == 200
    assert not caps.pushes_events and not caps.idempotency_key and not caps.client_reference
    assert isinstance(provider.auth, httpx.Auth) and isinstance(provider.auth, VaaniAuth)
    assert KEY not in repr(provider.auth) and KEY not in repr(provider)
    headers = {"Retry-After": "3", "X-RateLimit-Limit": "10", "x-ratelimit-remaining": "0"}
    assert provider.rate_info(headers) == RateLimitInfo(limit=10, remaining=0, retry_after_s=3)
    assert provider.name == "vaani" and PROVIDERS["vaani"].key_env == "VAANI_API_KEY"
    run(provider.aclose())


# --------------------------------------------------------------------------- listing calls


def test_list_calls_gives_a_neutral_page_with_directions() -> None:
    body = {
        "data": [record("c-2", 2), record("c-1", 1, call_type="inbound"), {"no": "id"}],
        "pagination": {"page": 1, "page_size": 50, "total": 2, "total_pages": 1},
    }
    rec = Recorder(lambda r: httpx.Response(200, json=body))
    page: CallPage = run(vaani(rec).list_calls(page=1, page_size=50))
    assert [r.call_id for r in page.records] == ["c-2", "c-1"]
    assert [r.direction for r in page.records] == [Direction.OUTBOUND, Direction.INBOUND]
    assert page.records[0].status == "completed" and page.records[0].client_ref is None
    assert page.is_last and page.size_confirmed(50) and page.total == 2
    assert page.records[0].raw_status == "Completed"
    assert dict(rec.requests[0].url.params) == {"page": "1", "page_size": "50"}


def test_a_page_that_does_not_echo_the_size_is_not_confirmed_nor_last_when_full() -> None:
    body = {"data": [record(f"c-{i}", -i) for i in range(3)]}
    page = run(
        vaani(Recorder(lambda r: httpx.Response(200, json=body))).list_calls(page=1, page_size=3)
    )
    assert (
        page.served_size is None and not page.size_confirmed(3) and not page.is_last
    )  # full page, no pagination block


def test_find_calls_pages_back_to_the_attempt_and_skips_inbound_calls() -> None:
    pages = {
        1: [
            record("c-new", 30),
            record("c-in", 20, call_type="inbound"),
            record("c-other", 15, contact_number="+14155550111"),
        ],
        2: [record("c-mine", 5), record("c-old", -10)],
        3: [record("c-never-read", -60)],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params["page"])
        return httpx.Response(200, json={"data": pages[n], "pagination": {"total_pages": 3}})

    rec = Recorder(handler)
    query = CallQuery(phone_e164="+1 415 555 0100", since=T0, agent_id="agent-1")
    found = run(vaani(rec).find_calls(query))
    assert [r.call_id for r in found] == ["c-mine", "c-new"]  # oldest first
    assert [int(r.url.params["page"]) for r in rec.requests] == [1, 2]  # stopped at c-old
    assert {r.url.params["page_size"] for r in rec.requests} == {"200"}


def test_call_query_matches_like_the_reconciler() -> None:
    query = CallQuery(phone_e164="+14155550100", since=T0, agent_id="agent-1")
    base = ListedCall(call_id="c", raw={}, contact_number="14155550100", created_at=T0)
    assert query.matches(base)
    assert query.matches(ListedCall(call_id="c", raw={}, contact_number="+14155550100"))
    early = timedelta(minutes=1, seconds=59)
    assert query.matches(
        ListedCall(call_id="c", raw={}, contact_number="+14155550100", created_at=T0 - early)
    )
    assert not query.matches(
        ListedCall(
            call_id="c", raw={}, contact_number="+14155550100", created_at=T0 - timedelta(minutes=3)
        )
    )
    assert not query.matches(
        ListedCall(call_id="c", raw={}, contact_number="+14155550100", direction=Direction.INBOUND)
    )
    assert not query.matches(
        ListedCall(call_id="c", raw={}, contact_number="+14155550100", agent_id="agent-2")
    )
    assert not query.matches(ListedCall(call_id="c", raw={}, contact_number="+14155550101"))
    by_ref = CallQuery(phone_e164="+14155550100", since=T0, client_ref="attempt-7")
    assert by_ref.matches(ListedCall(call_id="c", raw={}, client_ref="attempt-7"))
    assert not by_ref.matches(
        ListedCall(call_id="c", raw={}, contact_number="+14155550100", client_ref="attempt-8")
    )


# --------------------------------------------------------------------------- outcomes


def test_outcome_maps_the_call_details() -> None:
    details = {
        "call_id": "c-1",
        "call_status": "Completed",
        "duration_ms": 61000,
        "summary": "  Wants a visit.  ",
        "entity": {"email": "ada@example.com"},
        "transcript": [{"role": "agent", "text": "Hello"}],
    }
    rec = Recorder(lambda r: httpx.Response(200, json=details))
    outcome: CallOutcome = run(vaani(rec).outcome("c-1"))
    assert outcome.status == "completed" and outcome.raw_status == "Completed"
    assert outcome.duration_ms == 61000 and outcome.summary == "Wants a visit."
    assert outcome.entities == {"email": "ada@example.com"}
    assert outcome.transcript == [{"role": "agent", "text": "Hello"}]
    assert rec.requests[0].url.path == "/api/call_details/c-1"


# --------------------------------------------------------------------------- configuration and errors


def test_the_error_root_is_provider_neutral_and_keeps_its_old_name() -> None:
    assert VaaniError is ProviderError
    assert issubclass(ProviderConfigError, ProviderError) and issubclass(
        ProviderConfigError, ValueError
    )


@pytest.mark.parametrize("key", ["sk-live-abcdé", "sk-live-“quoted”", "two words", ""])
def test_unusable_keys_are_refused_when_a_provider_is_built(key: str) -> None:
    with pytest.raises(ProviderConfigError) as info:
        make_provider("vaani", api_key=key, base_url=BASE)
    if key.strip():
        assert key not in str(info.value)
    with pytest.raises(ProviderConfigError):
        check_config("vaani", api_key=key)


def test_unknown_provider_names_the_known_ones() -> None:
    with pytest.raises(ProviderConfigError, match="vaani"):
        make_provider("nope", api_key=KEY)


@pytest.mark.parametrize("key", ["sk-live-abcdé", "sk live"])
def test_run_refuses_an_unusable_key_in_one_line(tmp_path: Path, key: str) -> None:
    res = run_cli(
        "run", "--api-key", key, "--until-done", db_url=f"sqlite:///{tmp_path}/r.db", timeout=60
    )
    assert res.returncode in (1, 3), res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: the Vaani API key contains"), lines
    assert "Traceback" not in res.stderr
    assert key not in res.stderr + res.stdout


# --------------------------------------------------------------------------- logs


@pytest.fixture
def vaani_logging() -> Iterator[io.StringIO]:
    """setup_logging in JSON mode into a buffer; the logging tree restored afterwards."""
    root = logging.getLogger("vaani")
    saved = (root.handlers[:], root.level, root.propagate)
    stream = io.StringIO()
    setup_logging(json_lines=True, level=logging.DEBUG, secrets=[KEY], stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:], root.level, root.propagate = saved


def test_a_client_debug_line_goes_through_the_json_formatter_redacted(
    vaani_logging: io.StringIO,
) -> None:
    rec = Recorder(lambda r: httpx.Response(404, json={"detail": "no such call"}))
    with pytest.raises(ProviderError):
        run(vaani(rec).outcome(f"call-{KEY}"))  # the key even inside the URL path
    assert KEY in str(rec.requests[0].url)  # it really was there
    lines = [json.loads(line) for line in vaani_logging.getvalue().splitlines()]
    (line,) = [x for x in lines if x["logger"] == "vaani.client"]
    assert line["level"] == "debug" and line["msg"].startswith("GET /api/call_details/call-***")
    assert KEY not in vaani_logging.getvalue()


def test_httpx_request_lines_are_redacted_too(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    rec = Recorder(lambda r: httpx.Response(200, json={"call_id": "c-1"}))
    run(vaani(rec).outcome(f"call-{KEY}"))
    messages = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert messages and all(KEY not in m for m in messages)
    assert any("call-***" in m for m in messages)


# --------------------------------------------------------------------------- the sandbox is a tool


def test_the_cli_and_the_scheduler_import_no_server_library() -> None:
    code = (
        "import sys, click\n"
        "import campaigns.cli.sandbox_cmd as s, campaigns.cli.run_cmd, scheduler.providers\n"
        "import scheduler.daemon, scheduler.sandbox.config\n"
        "s.sandbox.get_help(click.Context(s.sandbox))\n"
        "print(sorted(m for m in ('starlette', 'uvicorn', 'uvloop') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("n", "pagination", "last"),
    [
        (0, {"total_pages": 9}, True),  # an empty page ends it, whatever the pagination says
        (2, {"page": 2, "total_pages": 2}, True),
        (2, {"page": 1, "total_pages": 2}, False),
        (2, {"page": 2, "page_size": 2, "total": 4}, True),
        (2, {"page": 1, "page_size": 2, "total": 5}, False),
        (1, {}, True),  # no pagination block: a short page is the end
        (2, {}, False),  # ... a full one is not
    ],
)
def test_the_end_of_the_history_is_the_providers_verdict(
    n: int, pagination: dict[str, Any], last: bool
) -> None:
    from scheduler.providers.vaani_wire import parse_history

    body = {"data": [record(f"c-{i}", -i) for i in range(n)], "pagination": pagination}
    page = parse_history(body, page=int(pagination.get("page", 1)), page_size=2).to_page()
    assert page.is_last is last
