"""VaniAgent's webhook events (scheduler.providers.vaniagent_events): signatures and parsing.

The signature check must accept exactly the seed's HMAC-SHA256 hex of the raw body and refuse
everything else; the parser must never crash on odd input (it returns an event or raises
ProtocolError), keep the raw event, and derive the engine's neutral status from VaniAgent's
status and end reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.errors import ProtocolError
from scheduler.outcomes import classify
from scheduler.providers import make_provider
from scheduler.providers.base import EventSource
from scheduler.providers.registry import PROVIDERS
from scheduler.providers.vaniagent import VaniAgentProvider
from scheduler.providers.vaniagent_events import (
    parse_event,
    parse_payload,
    signature,
    verify_event,
)
from scheduler.providers.vaniagent_wire import neutral_status, parse_call
from storage.states import Outcome
from tests.test_client_wire import json_values

PROPS = settings(max_examples=150, deadline=None)
SECRET = "whsec-test-3f9a"

DATA_KEYS = [
    "call_id",
    "id",
    "agent_id",
    "duration",
    "status",
    "end_reason",
    "transcript_url",
    "recording_url",
    "metadata",
    "sentiment",
    "summary",
]
data_dicts = st.dictionaries(st.sampled_from(DATA_KEYS), json_values, max_size=len(DATA_KEYS))
events = st.fixed_dictionaries(
    {},
    optional={
        "event": st.one_of(
            st.sampled_from(["call.completed", "call.failed", "call.started"]), json_values
        ),
        "timestamp": json_values,
        "data": st.one_of(data_dicts, json_values),
        "id": json_values,
    },
)


def seed_event(**data: Any) -> dict[str, Any]:
    """The seed's example payload, with ``data`` fields replaced or added."""
    body = {
        "call_id": "call_xyz789",
        "agent_id": "agent_abc123",
        "duration": 245,
        "status": "completed",
        "transcript_url": "https://example.test/t/1",
        "recording_url": "https://example.test/r/1",
        "metadata": {"customer_id": "cust_123"},
    }
    body.update(data)
    return {"event": "call.completed", "timestamp": "2024-01-15T10:39:05Z", "data": body}


# --------------------------------------------------------------------------- signatures


def test_signature_is_the_seeds_python_example() -> None:
    body = json.dumps(seed_event()).encode()
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert signature(body, SECRET) == expected
    assert verify_event({"x-vaniagent-signature": expected}, body, SECRET)
    assert verify_event({"x-vaniagent-signature": f" {expected.upper()} "}, body, SECRET)


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-vaniagent-signature": ""}, {"x-vaniagent-signature": "00" * 32}, {"other": "x"}],
)
def test_missing_or_wrong_signature_is_refused(headers: dict[str, str]) -> None:
    assert not verify_event(headers, b"{}", SECRET)


def test_signature_of_another_body_or_secret_is_refused() -> None:
    body = json.dumps(seed_event()).encode()
    sig = signature(body, SECRET)
    assert not verify_event({"x-vaniagent-signature": sig}, body + b" ", SECRET)
    assert not verify_event({"x-vaniagent-signature": sig}, body, SECRET + "x")
    assert not verify_event({"x-vaniagent-signature": sig}, body, "")


@PROPS
@given(st.binary(max_size=200), st.text(max_size=80), st.text(min_size=1, max_size=20))
def test_verify_never_crashes_and_accepts_only_the_true_signature(
    body: bytes, sent: str, secret: str
) -> None:
    ok = verify_event({"x-vaniagent-signature": sent}, body, secret)
    assert ok == (sent.strip().lower() == signature(body, secret))


# --------------------------------------------------------------------------- parsing


def test_seed_payload_parses_into_an_outcome() -> None:
    event = parse_event(json.dumps(seed_event(sentiment="positive", summary="Booked")).encode())
    assert event.kind == "call.completed" and event.call_id == "call_xyz789"
    assert event.outcome is not None
    assert event.outcome.status == "completed" and event.outcome.raw_status == "completed"
    assert event.outcome.duration_ms == 245_000
    assert event.outcome.summary == "Booked"
    assert event.outcome.entities == {
        "sentiment": "positive",
        "transcript_url": "https://example.test/t/1",
        "recording_url": "https://example.test/r/1",
        "metadata": {"customer_id": "cust_123"},
    }
    assert event.raw == seed_event(sentiment="positive", summary="Booked")


@pytest.mark.parametrize(
    ("kind", "status", "reason", "neutral", "outcome"),
    [
        ("call.completed", "completed", "completed", "completed", Outcome.ANSWERED),
        ("call.completed", "completed", None, "completed", Outcome.ANSWERED),
        ("call.completed", "completed", "voicemail", "voicemail", Outcome.VOICEMAIL),
        ("call.failed", "failed", "no_answer", "no_answer", Outcome.NO_ANSWER),
        ("call.failed", "failed", "no-answer", "no_answer", Outcome.NO_ANSWER),
        ("call.failed", "failed", "busy", "busy", Outcome.BUSY),
        ("call.failed", "failed", "failed", "failed", Outcome.FAILED),
        ("call.failed", "failed", "carrier exploded", "failed", Outcome.FAILED),
        ("call.failed", None, None, "failed", Outcome.FAILED),
    ],
)
def test_status_and_end_reason_give_the_neutral_status(
    kind: str, status: str | None, reason: str | None, neutral: str, outcome: Outcome
) -> None:
    if status is not None:  # the polled reading's mapping, the one mapping there is
        assert neutral_status(status, reason) == neutral
    payload = seed_event(status=status, end_reason=reason)
    payload["event"] = kind
    parsed = parse_payload(payload)
    assert parsed.outcome is not None and parsed.outcome.status == neutral
    assert classify(parsed.outcome.status) is outcome
    assert parsed.outcome.raw_status == status


@PROPS
@given(data_dicts, st.sampled_from(["call.completed", "call.failed"]))
def test_an_event_reads_as_the_same_call_polled(data: dict[str, Any], kind: str) -> None:
    """Whatever its fields, an event's outcome is what ``GET /v1/calls/{id}`` with the same
    fields reads as: status, duration, summary, entities (one mapping, not two)."""
    data = {**data, "call_id": "c-1"}
    if not isinstance(data.get("status"), str) or not data["status"].strip():
        data["status"] = "failed" if kind == "call.failed" else "completed"
    pushed = parse_payload({"event": kind, "data": data}).outcome
    polled = parse_call({**data, "id": "c-1"}, call_id="c-1")
    assert pushed is not None
    assert (pushed.status, pushed.raw_status) == (polled.status, polled.raw_status)
    assert (pushed.duration_ms, pushed.summary) == (polled.duration_ms, polled.summary)
    assert pushed.entities == polled.entities


def test_non_final_event_has_no_outcome() -> None:
    payload = {"event": "call.started", "timestamp": "t", "data": {"call_id": "c1"}}
    event = parse_payload(payload)
    assert event.outcome is None and event.kind == "call.started" and event.call_id == "c1"


def test_event_id_is_stable_across_redeliveries_and_differs_between_events() -> None:
    first = parse_event(json.dumps(seed_event()).encode())
    again = parse_event(json.dumps(seed_event(), indent=2, sort_keys=True).encode())
    failed = parse_payload({**seed_event(), "event": "call.failed"})
    assert first.event_id == again.event_id
    assert failed.event_id != first.event_id
    assert parse_payload({**seed_event(), "id": "evt_1"}).event_id == "evt_1"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'{"data": {"call_id": "c"}}',
        b'{"event": "call.completed"}',
        b'{"event": "call.completed", "data": {"status": "completed"}}',
        b"\xff\xfe",
        b"[" * 5000,
    ],
)
def test_bodies_that_are_not_events_raise_protocol_error(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_event(body)


@PROPS
@given(events)
def test_parse_never_crashes_and_keeps_the_raw_event(payload: dict[str, Any]) -> None:
    try:
        event = parse_event(json.dumps(payload).encode())
    except ProtocolError:
        return
    assert event.raw == json.loads(json.dumps(payload))
    assert event.call_id and event.event_id and event.kind
    if event.outcome is not None:
        assert event.outcome.call_id == event.call_id
        assert event.outcome.duration_ms is None or event.outcome.duration_ms >= 0
        assert all(isinstance(k, str) for k in event.outcome.entities)
        assert event.outcome.status is None or event.outcome.status == event.outcome.status.lower()


def test_exactly_the_providers_that_push_events_can_read_them() -> None:
    """``run --listen`` serves every driven provider whose capabilities say it pushes, as an
    EventSource: VaniAgent is one (delegating to vaniagent_events), the others are not."""

    async def check() -> dict[str, bool]:
        out = {}
        for name in PROVIDERS:
            client = make_provider(name, api_key="test-key-events-51c0", base_url="http://x:9")
            try:
                assert client.capabilities.pushes_events == isinstance(client, EventSource)
                out[name] = isinstance(client, EventSource)
            finally:
                await client.aclose()
        return out

    assert asyncio.run(check())["vaniagent"]
    agent = VaniAgentProvider("test-key-events-51c0")
    body = json.dumps(seed_event(summary="Booked")).encode()
    assert agent.verify_event({"x-vaniagent-signature": signature(body, SECRET)}, body, SECRET)
    assert not agent.verify_event({"x-vaniagent-signature": signature(body, "x")}, body, SECRET)
    assert agent.parse_event(body) == parse_event(body)
    asyncio.run(agent.aclose())
