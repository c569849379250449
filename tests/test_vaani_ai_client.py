"""The vaani.ai client against the real sandbox ``vaani-ai`` front-end over a loopback socket.

Checked against the sandbox's ground truth: a call placed with either credential form (API key
in ``X-API-Key``, JWT in the ``access_token`` cookie) reads back through the call logs and
``GET /calls/{id}`` as the engine decided it; our attempt reference comes back; every error of
the seed maps onto our tree with the right consequence; faults do the safe thing.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from scheduler.errors import (
    AmbiguousServerError,
    AnswerLostError,
    AuthenticationError,
    ForbiddenError,
    ValidationError,
)
from scheduler.outcomes import classify
from scheduler.providers import make_provider
from scheduler.providers.base import CallQuery, DialRequest, Direction, Listing
from scheduler.providers.vaani_ai import VaaniAIProvider
from scheduler.providers.vaani_ai_wire import CLIENT_REF_KEY
from scheduler.retry import RetryPolicy

FAST = RetryPolicy(max_attempts=6, max_total_s=30, backoff_base_s=0.01, backoff_max_s=0.05)
AGENT = "+16505551234"
#: a JWT-shaped token (header.payload.signature, base64url): sent as the access_token cookie
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0LXZhYW5pLWFpIn0.c2lnbmF0dXJlLXRlc3Q"


def request(i: int, *, ref: str | None = None, **metadata: Any) -> DialRequest:
    return DialRequest(
        agent_id="ours-only",
        phone_e164=f"+1212555{i:04d}",
        name=f"Person {i}",
        metadata=metadata,
        caller_id=AGENT,
        client_ref=ref,
    )


def client(sb: Any, key: str | None = None) -> VaaniAIProvider:
    return VaaniAIProvider(key or sb.api_key, sb.base_url, retry=FAST)


async def settled(c: VaaniAIProvider, call_id: str) -> Any:
    """Poll the call's log until it is final (the sandbox ends calls within a second)."""
    for _ in range(200):
        out = await c.outcome(call_id)
        if classify(out.status) is not None:
            return out
        await asyncio.sleep(0.05)
    raise AssertionError(f"call {call_id} never ended")


@pytest.mark.parametrize("key", ["plain-key-3c9e1a", JWT])
def test_place_list_and_read_outcomes_match_the_ground_truth(
    sandbox_factory: Any, key: str
) -> None:
    sb = sandbox_factory(
        "--answer-rate", "0.5", "--call-seconds", "0.2-0.4", "--seed", "4",
        provider="vaani-ai", api_key=key,
    )  # fmt: skip

    async def go() -> tuple[list[str], list[Any], Any]:
        async with client(sb) as c:
            ids = [(await c.place_call(request(i, ref=f"attempt-{i}"))).call_id for i in range(6)]
            outs = [await settled(c, call_id) for call_id in ids]
            page = await c.list_calls(page=1, page_size=4)
            return ids, outs, page

    ids, outs, page = asyncio.run(go())
    truth = {c["call_id"]: c for c in sb.calls()}
    assert set(truth) == set(ids)
    for call_id, out in zip(ids, outs, strict=True):
        assert classify(out.status) == classify(truth[call_id]["status"])
        assert out.summary == truth[call_id]["summary"]
        assert dict(out.entities) == truth[call_id]["entity"]
        assert out.raw_status in ("completed", "failed")
    statuses = {truth[i]["status"] for i in ids}
    assert len(statuses) > 1  # the seed gives a mix: the mapping is exercised, not one path
    # newest first, four a page, the counts say more follow; our reference comes back
    assert [r.call_id for r in page.records] == ids[::-1][:4]
    assert not page.is_last and page.total == 6 and page.served_size == 4
    first = page.records[0]
    assert first.client_ref == "attempt-5" and first.direction is Direction.OUTBOUND
    assert first.contact_number == "+12125550005" and first.agent_id is None
    placed = truth[ids[0]]["metadata"]
    assert placed == {"customer_name": "Person 0", CLIENT_REF_KEY: "attempt-0"}
    assert VaaniAIProvider.capabilities.listing is Listing.NEWEST_FIRST_PAGES


def test_find_calls_by_reference_with_a_start_date(sandbox_factory: Any) -> None:
    sb = sandbox_factory(
        "--call-seconds", "0.2-0.4", "--background-calls", "20", provider="vaani-ai"
    )
    since = datetime.now(UTC)

    async def go() -> tuple[list[Any], list[Any]]:
        async with client(sb) as c:
            await c.place_call(request(1, ref="attempt-1"))
            await c.place_call(request(1, ref="attempt-2"))  # the same number again
            await asyncio.sleep(0.3)
            mine = await c.find_calls(
                CallQuery(phone_e164="+12125550001", since=since, client_ref="attempt-2")
            )
            anyone = await c.find_calls(CallQuery(phone_e164="+12125550001", since=since))
            return mine, anyone

    mine, anyone = asyncio.run(go())
    assert [r.client_ref for r in mine] == ["attempt-2"]
    assert [r.client_ref for r in anyone] == ["attempt-1", "attempt-2"]  # oldest first
    assert sb.stats()["requests"]["logs"] == 2  # one page each: start_date cut the history


def test_errors_of_the_seed_map_onto_our_tree(
    sandbox_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sb = sandbox_factory("--agents", AGENT, provider="vaani-ai")
    wrong = "wrong-key-7e1f2a9b"

    async def go() -> dict[str, BaseException]:
        raised: dict[str, BaseException] = {}
        cases = {
            "bad number": (sb.api_key, _with(request(1), phone_e164="12")),
            "unknown agent": (sb.api_key, _with(request(2), caller_id="+16505550000")),
            "no caller id": (sb.api_key, _with(request(3), caller_id=None)),
            "wrong key": (wrong, request(4)),
        }  # fmt: skip
        for name, (key, req) in cases.items():
            async with client(sb, key) as c:
                try:
                    await c.place_call(req)
                except Exception as exc:  # the test inspects what was raised
                    raised[name] = exc
        return raised

    raised = asyncio.run(go())
    assert isinstance(raised["bad number"], ValidationError)
    assert "Invalid phone number format" in str(raised["bad number"])
    unknown = raised["unknown agent"]
    assert isinstance(unknown, ForbiddenError) and unknown.status_code == 404
    assert "+16505550000" in str(unknown) and "--caller-id" in str(unknown)
    assert isinstance(raised["no caller id"], ForbiddenError)
    assert "--caller-id" in raised["no caller id"].user_message()
    auth = raised["wrong key"]
    assert isinstance(auth, AuthenticationError)
    assert auth.user_message().startswith("the vaani.ai API:")
    assert "Invalid or missing token" in str(auth)
    for exc in raised.values():
        assert wrong not in str(exc) and wrong not in repr(exc)
    assert wrong not in caplog.text
    assert sb.calls() == []
    assert sb.stats()["requests"]["outbound_call"] == 3  # none resent; no caller id: not sent


def _fields(req: DialRequest) -> dict[str, Any]:
    return {f: getattr(req, f) for f in req.__dataclass_fields__}


def _with(req: DialRequest, **changes: Any) -> DialRequest:
    return DialRequest(**{**_fields(req), **changes})


def test_lost_answers_and_5xx_are_never_resent(sandbox_factory: Any) -> None:
    sb = sandbox_factory("--faults", "lost=0.5,5xx=0.5", "--seed", "8", provider="vaani-ai")

    async def go() -> list[BaseException | str]:
        out: list[BaseException | str] = []
        async with client(sb) as c:
            for i in range(12):
                try:
                    out.append((await c.place_call(request(i))).call_id)
                except AnswerLostError as exc:
                    out.append(exc)
        return out

    out = asyncio.run(go())
    assert all(isinstance(o, AnswerLostError) for o in out)  # every answer faulted
    assert any(isinstance(o, AmbiguousServerError) for o in out)
    truth = sb.calls()
    stats = sb.stats()
    assert stats["requests"]["outbound_call"] == 12  # one attempt each: nothing resent
    # a lost answer's call exists once; a 5xx (injected before the handler) placed nothing
    assert len(truth) == stats["faults"]["lost"]
    assert len({c["contact_number"] for c in truth}) == len(truth)


def test_429_is_waited_out_and_each_call_placed_once(sandbox_factory: Any) -> None:
    sb = sandbox_factory("--faults", "429=0.4", "--seed", "2", provider="vaani-ai")

    async def go() -> list[str]:
        async with client(sb) as c:
            return [(await c.place_call(request(i))).call_id for i in range(10)]

    ids = asyncio.run(go())
    assert len(set(ids)) == 10 and {c["call_id"] for c in sb.calls()} == set(ids)
    assert sb.stats()["faults"]["429"] > 0


def test_the_registry_builds_it_and_the_sandbox_exports_csv(sandbox_factory: Any) -> None:
    sb = sandbox_factory("--call-seconds", "0.1-0.2", provider="vaani-ai")
    provider = make_provider("vaani-ai", api_key=sb.api_key, base_url=sb.base_url)
    assert isinstance(provider, VaaniAIProvider) and sb.api_key not in repr(provider)

    async def go() -> str:
        async with provider:
            return (await provider.place_call(request(9))).call_id

    call_id = asyncio.run(go())
    today = datetime.now(UTC).date().isoformat()
    res = httpx.get(
        f"{sb.base_url}/calls/export-csv",
        params={"start_date": today, "call_type": "phone"},
        cookies={"access_token": sb.api_key},
        timeout=10,
    )
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
    lines = res.text.strip().splitlines()
    assert lines[0].startswith("id,created_at") and lines[1].startswith(call_id + ",")
    web = httpx.get(
        f"{sb.base_url}/calls/logs", params={"call_type": "web"},
        headers={"X-API-Key": sb.api_key}, timeout=10,
    )  # fmt: skip
    assert web.json()["items"] == [] and web.json()["total"] == 0


def test_the_rate_limit_answers_429_with_retry_after_only(sandbox_factory: Any) -> None:
    """``--rate-limit``: vaani.ai documents a bare 429, so the front-end sends ``Retry-After``
    and no ``X-RateLimit-*``; the client waits it out and places every call once."""
    sb = sandbox_factory("--rate-limit", "5/s", provider="vaani-ai")
    # at once, not one by one: on a loaded machine 8 sequential requests may take over 1.6 s
    # and all fit in 5/s
    with ThreadPoolExecutor(8) as pool:
        burst = list(
            pool.map(
                lambda _: httpx.get(
                    f"{sb.base_url}/calls/logs", headers={"X-API-Key": sb.api_key}, timeout=10
                ),
                range(8),
            )
        )
    refused = [r for r in burst if r.status_code == 429]
    assert refused and all(int(r.headers["retry-after"]) >= 1 for r in refused)
    assert not any(h.startswith("x-ratelimit") for r in burst for h in r.headers)
    body = refused[0].json()
    assert set(body) == {"detail"} and body["detail"].startswith("Rate limit exceeded")

    async def go() -> tuple[list[str], Any]:
        async with client(sb) as c:
            ids = [(await c.place_call(request(i))).call_id for i in range(8)]
            return ids, c.rate_info({"Retry-After": "2"})

    ids, info = asyncio.run(go())
    assert len(set(ids)) == 8 and len(sb.calls()) == 8
    assert info.retry_after_s == 2 and info.limit is None
    assert sb.stats()["rate_limited"] > len(refused)  # the client met the limit too
