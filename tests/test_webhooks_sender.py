"""The sandbox's webhook sender (scheduler.sandbox.webhooks) against the real receiver.

Events go out when calls end, signed so that the receiver accepts them; the webhook faults
drop, duplicate, delay and reorder them as counted in the statistics; a wrong secret is refused
by the receiver (and not retried); the flags are checked with one clear line.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from scheduler.inbox import Inbox
from scheduler.sandbox.config import SandboxConfig, parse_faults
from scheduler.sandbox.front_vaniagent import event_data, webhook_event
from scheduler.sandbox.state import SandboxState
from scheduler.sandbox.webhooks import WebhookSender, event_body
from storage.engine import make_engine
from storage.inbox import StoredEvent, list_events
from tests.cli_helpers import run_cli
from tests.webhooks_helpers import PROVIDER, SECRET, serving, vaniagent_source

N = 40


@pytest.fixture
def engine(sqlite_url: str) -> Engine:
    return make_engine(sqlite_url)


def sandbox_state(faults: str) -> SandboxState:
    state = SandboxState(
        SandboxConfig(faults=parse_faults(faults), seed=11, call_seconds=(0.1, 0.4), speed=1.0)
    )
    account = state.account("sandbox-key")
    assert account is not None
    for i in range(N):
        state.place(
            account,
            agent_id="agent-1",
            contact_number=f"+9198{i:08d}",
            name=f"Contact {i}",
            metadata={"client_ref": f"attempt-{i}"},
        )
    return state


def run_sender(
    engine: Engine, state: SandboxState, *, secret: str = SECRET, settle_s: float = 0.0
) -> tuple[Counter[str], list[StoredEvent], float]:
    """Send the events of ``state``'s calls to a real receiver until every one is settled
    (delivered, dropped, refused or given up); the sender's counts, what the receiver stored,
    and how long it took."""

    async def scenario() -> tuple[Counter[str], float]:
        async with serving(Inbox(engine, {PROVIDER: vaniagent_source()})) as (url, _):
            sender = WebhookSender(state, f"{url}/webhooks/{PROVIDER}", secret, webhook_event)
            task = asyncio.create_task(sender.run())
            start = time.monotonic()
            stats = state.stats.webhooks
            try:
                while time.monotonic() - start < 20:
                    await asyncio.sleep(0.05)
                    settled = stats["delivered"] + stats["rejected"] + stats["failed"]
                    expected = N - stats["dropped"] + stats["duplicated"]
                    if not sender._due and not sender._held and settled >= expected:
                        break
                await asyncio.sleep(settle_s)
                return Counter(stats), time.monotonic() - start
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    stats, took = asyncio.run(scenario())
    return stats, list_events(engine, PROVIDER), took


def test_every_call_gets_one_signed_event_when_it_ends(engine: Engine) -> None:
    state = sandbox_state("")
    stats, stored, _ = run_sender(engine, state)
    assert stats["delivered"] == stats["sent"] == N
    assert sorted(e.call_id for e in stored) == sorted(c.call_id for c in state.placed)
    by_id = {c.call_id: c for c in state.placed}
    for e in stored:
        call = by_id[e.call_id]
        assert e.payload == event_body(webhook_event, call)
        assert e.payload["data"] == event_data(call)  # the front-end's own builder
        assert e.received_at.timestamp() >= call.end - 0.01  # not before the call ended
        data = e.payload["data"]
        assert data["end_reason"] == call.outcome and data["summary"] == call.summary
        assert data["metadata"] == {"client_ref": call.metadata["client_ref"]}
        expected = ("call.completed", "completed")
        if call.outcome not in ("completed", "voicemail"):
            expected = ("call.failed", "failed")
        assert (e.kind, data["status"]) == expected
    assert state.stats_dict()["webhooks"]["delivered"] == N


def test_webhook_faults_drop_duplicate_delay_and_reorder(engine: Engine) -> None:
    state = sandbox_state(
        "webhook_drop=0.2,webhook_dup=0.2,webhook_delay=0.15,webhook_reorder=0.15"
    )
    stats, stored, _ = run_sender(engine, state, settle_s=0.2)
    for kind in ("dropped", "duplicated", "delayed", "reordered"):
        assert stats[kind] > 0, stats
    # the receiver keeps each event once: duplicates are replays
    assert len(stored) == N - stats["dropped"]
    assert len({e.event_id for e in stored}) == len(stored)
    assert stats["delivered"] == N - stats["dropped"] + stats["duplicated"]
    # delayed events arrive at least the delay after their call ended
    ends = {c.call_id: c.end for c in state.placed}
    late = [e for e in stored if e.received_at.timestamp() - ends[e.call_id] >= 1.9]
    assert len(late) >= stats["delayed"]


def test_a_wrong_secret_is_refused_and_not_retried(engine: Engine) -> None:
    state = sandbox_state("")
    stats, stored, _ = run_sender(engine, state, secret="not-the-secret")
    assert stats["rejected"] == stats["sent"] == N and stats["retried"] == 0
    assert stored == []


def test_unreachable_receiver_is_retried_then_given_up() -> None:
    state = sandbox_state("")
    sender = WebhookSender(state, "http://127.0.0.1:9/webhooks/vaniagent", SECRET, webhook_event)

    async def scenario() -> Counter[str]:
        task = asyncio.create_task(sender.run())
        for _ in range(400):
            await asyncio.sleep(0.05)
            if state.stats.webhooks["failed"] == N:
                break
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return Counter(state.stats.webhooks)

    stats = asyncio.run(scenario())
    assert stats["failed"] == N and stats["retried"] == 3 * N and stats["sent"] == 4 * N


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--webhook-url", "http://127.0.0.1:1/x"], "--webhook-url needs --webhook-secret"),
        (["--webhook-url", "ftp://x", "--webhook-secret", "s"], "must be an http(s) URL"),
        (["--faults", "webhook_drop=0.7,webhook_dup=0.7"], "webhook probabilities add up"),
        (["--faults", "webhook_lose=0.1"], "webhook_drop, webhook_dup"),
        (["--webhook-url", "http://127.0.0.1:1/x", "--webhook-secret", "s"], "sends no webhooks"),
    ],
)
def test_bad_webhook_flags_are_one_clear_line(
    args: list[str], message: str, tmp_path: Path
) -> None:
    res = run_cli("sandbox", "--port", "0", *args, timeout=30)
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["webhook_drop", "webhook_dup", "webhook_delay", "webhook_reorder", "429"]),
        st.floats(min_value=0, max_value=1),
        max_size=5,
    )
)
def test_webhook_fault_spec_parses_or_says_why(rates: dict[str, float]) -> None:
    spec = ",".join(f"{k}={v!r}" for k, v in rates.items())
    webhook = sum(v for k, v in rates.items() if k.startswith("webhook_"))
    try:
        parsed = parse_faults(spec)
    except ValueError as exc:
        assert webhook > 1 and "webhook probabilities add up to more than 1" in str(exc)
        return
    assert webhook <= 1 + 1e-9
    assert parsed.webhook_drop == rates.get("webhook_drop", 0.0)
    assert parsed.webhook_reorder == rates.get("webhook_reorder", 0.0)
    assert parsed.rate_429 == rates.get("429", 0.0)
    assert parsed.any == (rates.get("429", 0.0) > 0)  # webhook faults never fault requests


def test_a_sandbox_reset_starts_the_sender_over(engine: Engine) -> None:
    state = SandboxState(SandboxConfig(seed=5, call_seconds=(0.1, 0.2)))

    def place(n: int, start: int) -> None:
        account = state.account("sandbox-key")
        assert account is not None
        for i in range(start, start + n):
            state.place(
                account, agent_id="a", contact_number=f"+9198{i:08d}", name=f"C{i}", metadata={}
            )

    async def delivered(n: int) -> int:
        for _ in range(200):
            if state.stats.webhooks["delivered"] >= n:
                break
            await asyncio.sleep(0.02)
        return state.stats.webhooks["delivered"]

    async def scenario() -> tuple[int, int]:
        async with serving(Inbox(engine, {PROVIDER: vaniagent_source()})) as (url, _):
            task = asyncio.create_task(
                WebhookSender(state, f"{url}/webhooks/{PROVIDER}", SECRET, webhook_event).run()
            )
            try:
                place(5, 0)
                first = await delivered(5)
                state.reset()  # POST /sandbox/reset: new calls, new statistics
                place(3, 100)
                return first, await delivered(3)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    assert asyncio.run(scenario()) == (5, 3)
    assert len(list_events(engine, PROVIDER)) == 8


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["completed", "no_answer", "voicemail", "busy", "failed"]),
    st.text(min_size=1, max_size=20),
    st.floats(min_value=0.1, max_value=600),
)
def test_what_the_sandbox_sends_reads_back_as_the_sim_outcome(
    outcome: str, name: str, seconds: float
) -> None:
    """The fixed contract between the sandbox's events and our parser: the neutral status is
    the sim's outcome, the summary and duration are the sim's."""
    from scheduler.providers.vaniagent_events import parse_payload
    from scheduler.sandbox.sim import Call

    call = Call(
        call_id="c-1",
        agent_id="a",
        contact_number="+919800000001",
        name=name,
        call_type="outbound",
        metadata={"client_ref": "attempt-1"},
        created=1_795_000_000.0,
        total_s=seconds,
        outcome=outcome,
        speed=1.0,
    )
    parsed = parse_payload(event_body(webhook_event, call))
    assert parsed.call_id == "c-1" and parsed.outcome is not None
    assert parsed.outcome.status == outcome
    # kept as the Vaani wire keeps it: stripped, blank as none
    assert parsed.outcome.summary == ((call.summary or "").strip() or None)
    connected = outcome in ("completed", "voicemail")
    assert parsed.outcome.duration_ms == (round(seconds, 3) * 1000.0 if connected else 0.0)
    assert parsed.outcome.entities["metadata"] == {"client_ref": "attempt-1"}
