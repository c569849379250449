"""The official ``vaani-sdk`` 0.3.1 client, unchanged, against the real sandbox server.

This is the proof that the sandbox speaks the Vaani wire: the SDK's paths, headers and
response parsing work, and each of its typed exceptions fires on the matching status.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import time
from collections.abc import Callable
from typing import Any

import pytest
import vaani_sdk
from vaani_sdk import AsyncVaaniClient, VaaniClient
from vaani_sdk.exceptions import (
    AuthenticationError,
    ForbiddenError,
    InsufficientBalanceError,
    NotFoundError,
    RateLimitError,
    ServerError,
    ValidationError,
)

from tests.conftest import Sandbox

SandboxFactory = Callable[..., Sandbox]


def test_sdk_version() -> None:
    # the distribution is 0.3.1; its module still says __version__ = "0.3.0"
    assert importlib.metadata.version("vaani-sdk") == "0.3.1"
    assert vaani_sdk.VaaniClient is VaaniClient


def _wait_completed(client: VaaniClient, call_id: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        history = client.get_call_history(page=1, page_size=50)
        record = next(r.raw for r in history.data if r.call_id == call_id)
        if record["call_status"] == "completed":
            return record
        time.sleep(0.05)
    raise AssertionError(f"{call_id} did not complete")


def test_sync_sdk_trigger_history_details_transcript(sandbox: Sandbox) -> None:
    with VaaniClient(api_key=sandbox.api_key, base_url=sandbox.base_url, timeout=10) as client:
        assert client.health().status == "healthy"
        result = client.trigger_call(
            agent_id="agent-1",
            contact_number="+14155550123",
            name="Ravi Kumar",
            metadata={"sandbox_opt_out": "yes", "order": "A-17"},
        )
        assert result.call_id and result.call_id.startswith("outbound-")
        # the resource-style API sends a slightly different body; it works too
        second = client.calls.trigger(
            agent_id="agent-1", contact_number="+919876543210", name="Asha"
        )
        history = client.get_call_history(page=1, page_size=1)
        assert [r.call_id for r in history.data] == [second.call_id]
        assert history.pagination is not None
        assert (history.pagination.total, history.pagination.total_pages) == (2, 2)
        record = _wait_completed(client, result.call_id)
        assert record["duration_ms"] > 0 and record["contact_number"] == "+14155550123"
        details = client.get_call_details(result.call_id)
        assert details.call_id == result.call_id
        assert details.raw["entity"]["opt_out"] is True
        assert details.raw["entity"]["email"] == "ravi.kumar@example.com"
        assert "Ravi Kumar" in details.raw["summary"]
        transcript = client.get_transcript(result.call_id)
        assert transcript.transcript == details.raw["transcript"] and transcript.transcript
        assert client.calls.get_details(second.call_id).call_id == second.call_id
        assert client.calls.get_history(page=2, page_size=1).data[0].call_id == result.call_id
        with pytest.raises(NotFoundError):
            client.get_call_details("outbound-0-00000000")
        with pytest.raises(ValidationError, match=r"E\.164"):
            client.trigger_call(agent_id="agent-1", contact_number="98765 43210", name="X")
        with pytest.raises(ValidationError):
            client.get_call_history(page=1, page_size=500)
    calls = sandbox.calls()
    assert [c["call_id"] for c in calls] == [result.call_id, second.call_id]
    assert calls[0]["metadata"] == {"sandbox_opt_out": "yes", "order": "A-17"}


def test_async_sdk_round_trip(sandbox: Sandbox) -> None:
    async def scenario() -> None:
        async with AsyncVaaniClient(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
            assert (await client.health()).status == "healthy"
            results = await asyncio.gather(
                *(
                    client.trigger_call(
                        agent_id="agent-1", contact_number=f"+1415555{4000 + i}", name=f"P{i}"
                    )
                    for i in range(10)
                )
            )
            ids = {r.call_id for r in results}
            assert len(ids) == 10
            history = await client.calls.get_history(page=1, page_size=200)
            assert {r.call_id for r in history.data} == ids
            details = await client.get_call_details(results[0].call_id)
            assert details.raw["call_status"] in {"queued", "ringing", "in_progress", "completed"}
            transcript = await client.get_transcript(results[0].call_id)
            assert transcript.raw["call_id"] == results[0].call_id
            assert isinstance(transcript.transcript, list)
            with pytest.raises(AuthenticationError):
                async with AsyncVaaniClient(api_key="wrong", base_url=sandbox.base_url) as bad:
                    await bad.get_call_history()

    asyncio.run(scenario())
    assert sandbox.stats()["calls_placed"] == 10


def test_sdk_exceptions_for_account_problems(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("--agents", "agent-1", "--balance-calls", "1", "--rate-limit", "4/min")
    with (
        VaaniClient(api_key="not-the-key", base_url=sb.base_url) as bad,
        pytest.raises(AuthenticationError),
    ):
        bad.trigger_call(agent_id="agent-1", contact_number="+14155550123", name="A")
    with VaaniClient(api_key=sb.api_key, base_url=sb.base_url) as client:
        with pytest.raises(ForbiddenError):
            client.trigger_call(agent_id="someone-else", contact_number="+14155550123", name="A")
        client.trigger_call(agent_id="agent-1", contact_number="+14155550123", name="A")
        with pytest.raises(InsufficientBalanceError):
            client.trigger_call(agent_id="agent-1", contact_number="+14155550124", name="B")
        with pytest.raises(RateLimitError):  # 3 requests used above, 1 left, then 429
            for _ in range(2):
                client.get_call_history()
    assert sb.stats()["rate_limited"] == 1
    assert len(sb.calls()) == 1  # neither the 403 nor the 402 placed a call


def test_sdk_rate_limit_on_a_quick_burst(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("--rate-limit", "2/min")  # per minute: no refill during the burst

    async def burst() -> list[BaseException | object]:
        async with AsyncVaaniClient(api_key=sb.api_key, base_url=sb.base_url) as client:
            return await asyncio.gather(
                *(client.get_call_history() for _ in range(5)), return_exceptions=True
            )

    outcomes = asyncio.run(burst())
    assert [type(o) for o in outcomes].count(RateLimitError) == 3
    assert not [
        o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, RateLimitError)
    ]


def test_sdk_server_error_fault(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("--faults", "5xx=1")
    with VaaniClient(api_key=sb.api_key, base_url=sb.base_url) as client:
        with pytest.raises(ServerError) as info:
            client.trigger_call(agent_id="a", contact_number="+14155550123", name="A")
        assert info.value.status_code in (500, 503)
        assert client.health().status == "healthy"  # health is never faulted
