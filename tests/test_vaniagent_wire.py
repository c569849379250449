"""Property tests of the VaniAgent wire parsers (scheduler.providers.vaniagent_wire).

Every parser either returns a value that keeps the raw record or raises ``WireError``, for
any JSON at all; the known fields are mapped, the status refined by ``end_reason``, and the
rate-limit reset read as a Unix timestamp.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.outcomes import classify
from scheduler.providers.vaniagent_events import parse_payload
from scheduler.providers.vaniagent_wire import (
    NAME_KEY,
    REF_KEY,
    WireError,
    clamp_limit,
    entities_of,
    error_code,
    error_detail,
    neutral_status,
    parse_call,
    parse_list,
    parse_placed,
    parse_rate_info,
    parse_reset,
    to_listed,
)
from scheduler.sandbox.front_vaniagent import event_data, record, webhook_event
from scheduler.sandbox.sim import Call
from scheduler.sandbox.webhooks import event_body
from storage.states import Outcome
from tests.test_client_wire import json_values

NOW = 1_795_000_000.0
PROPS = settings(max_examples=150, deadline=None)

KEYS = [
    "id",
    "agent_id",
    "to_number",
    "from_number",
    "status",
    "end_reason",
    "duration",
    "transcript",
    "sentiment",
    "summary",
    "transcript_url",
    "recording_url",
    "metadata",
    "created_at",
    "completed_at",
]
records = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=len(KEYS))


@PROPS
@given(records)
def test_a_listed_record_never_crashes_and_keeps_raw(data: dict[str, Any]) -> None:
    rec = to_listed(data)
    if rec is None:
        call_id = data.get("id")
        usable = isinstance(call_id, str) and call_id.strip()
        assert not usable and not (isinstance(call_id, int) and not isinstance(call_id, bool))
        return
    assert rec.raw is data
    assert rec.duration_ms is None or rec.duration_ms >= 0
    assert rec.created_at is None or rec.created_at.tzinfo is not None
    assert rec.status is None or rec.status == rec.status.lower()
    if isinstance(data.get("status"), str) and data["status"].strip():
        assert rec.raw_status == data["status"].strip()


@PROPS
@given(json_values)
def test_any_json_is_a_page_or_a_wire_error(data: Any) -> None:
    try:
        page = parse_list(data, page=2, limit=50)
    except WireError as exc:
        shape = not isinstance(data, dict) or not isinstance(data.get("data", []), list)
        assert shape or "older calls first" in str(exc)
        return
    assert page.page == 2
    assert all(r.raw in data["data"] for r in page.records)


@PROPS
@given(
    st.dictionaries(
        st.sampled_from(["data", "total", "limit", "offset"]),
        json_values | st.lists(records, max_size=5),
    )
)
def test_list_answers_of_any_shape(data: dict[str, Any]) -> None:
    try:
        page = parse_list(data, page=1, limit=20)
    except WireError as exc:
        shape = not isinstance(data.get("data", []), list)
        assert shape or "older calls first" in str(exc)
        return
    if not data.get("data"):
        assert page.is_last
    times = [r.created_at for r in page.records if r.created_at is not None]
    assert len(times) < 2 or times[-1] - times[0] <= timedelta(seconds=1)


@PROPS
@given(json_values | records)
def test_get_call_never_crashes(data: Any) -> None:
    try:
        outcome = parse_call(data, call_id="asked")
    except WireError:
        assert not isinstance(data, dict)
        return
    assert outcome.raw is data
    assert outcome.call_id
    assert outcome.summary is None or outcome.summary.strip() == outcome.summary
    assert set(outcome.entities) <= {"sentiment", "transcript_url", "recording_url", "metadata"}


@PROPS
@given(json_values)
def test_make_call_answer_has_an_id_or_is_a_wire_error(data: Any) -> None:
    try:
        placed = parse_placed(data)
    except WireError:
        return
    assert placed.call_id and placed.raw is data


@PROPS
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_error_bodies_of_any_shape(content: bytes) -> None:
    detail = error_detail(content)
    assert detail is None or len(detail) <= 300
    error_code(detail)  # never raises


@PROPS
@given(st.text(max_size=20) | st.none(), st.floats(0, 2e9))
def test_reset_header_of_any_text(value: str | None, now: float) -> None:
    reset = parse_reset(value, now=now)
    assert reset is None or reset >= 0


def test_reset_is_a_unix_timestamp_not_seconds() -> None:
    info = parse_rate_info(
        {
            "X-RateLimit-Limit": "100",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "1795000042",
        },
        now=NOW,
    )
    assert (info.limit, info.remaining, info.reset_s, info.retry_after_s) == (100, 0, 42.0, None)
    # a small value is a time long past (1970), not "in 30 seconds"
    assert parse_reset("30", now=NOW) == 0.0
    assert parse_rate_info({}, now=NOW).empty


@pytest.mark.parametrize(
    ("status", "end_reason", "neutral", "outcome"),
    [
        ("initiated", None, "initiated", None),
        ("in_progress", None, "in_progress", None),
        ("completed", "completed", "completed", Outcome.ANSWERED),
        ("Completed", "voicemail", "voicemail", Outcome.VOICEMAIL),
        ("failed", "no_answer", "no_answer", Outcome.NO_ANSWER),
        ("failed", "busy", "busy", Outcome.BUSY),
        ("failed", "failed", "failed", Outcome.FAILED),
        ("failed", None, "failed", Outcome.FAILED),
        ("completed", None, "completed", Outcome.ANSWERED),
        ("failed", "something new", "failed", Outcome.FAILED),
        ("completed", "no_answer", "completed", Outcome.ANSWERED),
        ("failed", "completed", "failed", Outcome.FAILED),
        ("failed", "No-Answer", "no_answer", Outcome.NO_ANSWER),
    ],
)
def test_status_and_end_reason_classify_as_our_outcomes(
    status: str, end_reason: str | None, neutral: str, outcome: Outcome | None
) -> None:
    assert neutral_status(status, end_reason) == neutral
    assert classify(neutral) is outcome
    rec = to_listed({"id": "c1", "status": status, "end_reason": end_reason})
    assert rec is not None and rec.status == neutral and rec.raw_status == status


def test_a_full_call_maps_its_known_fields() -> None:
    raw = {
        "id": "call_xyz789",
        "agent_id": "agent_abc123",
        "to_number": "+14155550100",
        "status": "completed",
        "end_reason": "completed",
        "duration": 245,
        "transcript": "agent: hello",
        "sentiment": "positive",
        "summary": " Ada is interested. ",
        "transcript_url": "https://x/t.txt",
        "recording_url": "https://x/r.mp3",
        "metadata": {"customer_id": "cust_123", REF_KEY: "attempt-7", NAME_KEY: "Ada"},
        "created_at": "2024-01-15T10:35:00Z",
        "completed_at": "2024-01-15T10:39:05Z",
    }
    out = parse_call(raw, call_id="ignored")
    assert out.call_id == "call_xyz789"
    assert (out.status, out.raw_status, out.duration_ms) == ("completed", "completed", 245_000.0)
    assert out.summary == "Ada is interested."
    assert out.transcript == "agent: hello"
    assert out.entities == {
        "sentiment": "positive",
        "transcript_url": "https://x/t.txt",
        "recording_url": "https://x/r.mp3",
        "metadata": raw["metadata"],
    }
    rec = to_listed(raw)
    assert rec is not None
    assert (rec.client_ref, rec.contact_number, rec.agent_id) == (
        "attempt-7",
        "+14155550100",
        "agent_abc123",
    )
    assert entities_of({"metadata": ["not", "a", "dict"]}) == {}


def test_pages_end_by_total_or_a_short_page() -> None:
    rows = [{"id": f"c{i}"} for i in range(3)]
    assert not parse_list(
        {"data": rows, "total": 10, "limit": 3, "offset": 0}, page=1, limit=3
    ).is_last
    assert parse_list({"data": rows, "total": 6, "limit": 3, "offset": 3}, page=2, limit=3).is_last
    assert parse_list({"data": rows}, page=1, limit=5).is_last
    assert not parse_list({"data": rows}, page=1, limit=3).is_last
    page = parse_list({"data": rows, "limit": 3}, page=1, limit=3)
    assert page.size_confirmed(3) and not page.size_confirmed(100)


def test_error_detail_leads_with_the_code() -> None:
    body = {"error": {"code": "insufficient_credits", "message": "No credits", "param": None}}
    detail = error_detail(json.dumps(body).encode())
    assert detail == "insufficient_credits: No credits"
    assert error_code(detail) == "insufficient_credits"
    body = {"error": {"code": "invalid_request", "message": "bad", "param": "to_number"}}
    assert error_detail(json.dumps(body).encode()) == "invalid_request: bad (param: to_number)"
    assert error_code("The 'to_number' field is required") is None
    assert error_detail(b"plain text") == "plain text"
    assert (clamp_limit(0), clamp_limit(500), clamp_limit(42)) == (1, 100, 42)


def test_the_sandbox_event_data_reads_as_the_polled_call() -> None:
    """What the sandbox would push for an ended call parses to what polling it reads."""
    for outcome in ("completed", "voicemail", "no_answer", "busy", "failed"):
        call = Call(
            call_id=f"c-{outcome}",
            agent_id="agent-1",
            contact_number="+14155550100",
            name="Ada Lovelace",
            call_type="outbound",
            metadata={REF_KEY: "attempt-1", "customer_id": "c-1"},
            created=NOW,
            total_s=12.5,
            outcome=outcome,
            speed=1.0,
        )
        kind, data = webhook_event(call)
        assert data == event_data(call)
        polled = parse_call(record(call, call.end + 1, "+14155550199", full=True), call_id="x")
        event = parse_payload(event_body(webhook_event, call))  # what run --listen reads
        assert (event.kind, event.call_id) == (kind, call.call_id)
        pushed = event.outcome
        assert pushed is not None
        assert pushed.call_id == polled.call_id == call.call_id
        assert (pushed.status, pushed.raw_status) == (polled.status, polled.raw_status)
        assert classify(pushed.status) is classify(outcome)
        assert pushed.entities == polled.entities and pushed.summary == polled.summary
        assert (
            pushed.duration_ms
            == polled.duration_ms
            == (12_500 if outcome in ("completed", "voicemail") else 0)
        )


def test_a_page_listed_oldest_first_is_refused_not_misread() -> None:
    rows = [
        {"id": "a", "created_at": "2026-12-01T10:00:00Z"},
        {"id": "b", "created_at": "2026-12-01T10:00:05Z"},
    ]
    with pytest.raises(WireError, match="older calls first"):
        parse_list({"data": rows}, page=1, limit=20)
    page = parse_list({"data": rows[::-1]}, page=1, limit=20)
    assert [r.call_id for r in page.records] == ["b", "a"]
    # the same second, or within the slack, is not an order at all
    rows[1]["created_at"] = "2026-12-01T10:00:00.500Z"
    assert len(parse_list({"data": rows}, page=1, limit=20).records) == 2
