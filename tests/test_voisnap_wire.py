"""Property tests of the Voisnap wire parsers (scheduler.providers.voisnap_wire), and the paths.

The seed documents only the SDK, so every parser must accept any JSON value: return a sensible
value keeping the raw record, or raise ``WireError`` (never anything else).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.errors import ProviderConfigError, RateLimitInfo
from scheduler.outcomes import classify
from scheduler.providers.base import Direction
from scheduler.providers.voisnap import VoisnapPaths, VoisnapProvider, parse_paths
from scheduler.providers.voisnap_wire import (
    CLIENT_REF_KEY,
    NAME_KEY,
    WireError,
    create_body,
    error_detail,
    error_rate,
    neutral_status,
    parse_analysis,
    parse_conversation,
    parse_created,
    parse_page,
    parse_record,
    parse_transcript,
)
from scheduler.sandbox.config import FINAL_STATUSES
from scheduler.sandbox.front_voisnap import _ENDINGS
from storage.states import Outcome
from tests.test_client_wire import json_values

PROPS = settings(max_examples=150, deadline=None)
KEYS = [
    "id",
    "conversation_id",
    "status",
    "end_reason",
    "duration_seconds",
    "to_number",
    "agent_id",
    "created_at",
    "direction",
    "metadata",
    "analysis",
    "summary",
    "intent",
    "sentiment",
    "sentiment_score",
    "extracted_data",
    "data",
    "page",
    "page_size",
    "total",
    "total_pages",
    "turns",
    "detail",
    "errors",
    "trace_id",
    "retry_after",
]
records = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=10)
anything = st.one_of(json_values, records)


def _tolerant(parse: Any, data: Any) -> Any:
    try:
        return parse(data)
    except WireError:
        return None


@PROPS
@given(anything)
def test_parse_record_never_raises_and_keeps_raw(data: Any) -> None:
    rec = parse_record(data)
    if rec is not None:
        assert rec.raw is data
        assert rec.call_id
        assert rec.status is None or rec.status == rec.status.lower()
        assert rec.duration_ms is None or rec.duration_ms >= 0
        assert rec.created_at is None or rec.created_at.tzinfo is not None


@PROPS
@given(anything, st.integers(1, 5), st.integers(1, 100))
def test_parse_page_returns_a_page_or_wire_error(data: Any, page: int, size: int) -> None:
    result = _tolerant(lambda d: parse_page(d, page=page, page_size=size), data)
    if result is not None:
        assert all(r.call_id for r in result.records)
        assert result.page >= 0 and result.page_size >= 0


@PROPS
@given(st.lists(records, max_size=5))
def test_parse_page_of_records_keeps_each_usable_one(items: list[dict[str, Any]]) -> None:
    page = parse_page({"data": items}, page=1, page_size=50)
    assert len(page.records) == sum(parse_record(i) is not None for i in items)
    assert page.is_last == (len(items) < 50)


@PROPS
@given(anything)
def test_parse_conversation_and_analysis_never_crash(data: Any) -> None:
    conv = _tolerant(lambda d: parse_conversation(d, call_id="conv_1"), data)
    if conv is not None:
        outcome = conv.to_outcome()
        assert outcome.call_id and outcome.raw == data
        assert isinstance(outcome.entities, dict)
    analysis = _tolerant(parse_analysis, data)
    if analysis is not None:
        assert analysis.raw is data
        assert None not in analysis.entities.values()
    assert isinstance(parse_transcript(data), list)


@PROPS
@given(anything)
def test_parse_created_gives_an_id_or_wire_error(data: Any) -> None:
    result = _tolerant(parse_created, data)
    if result is not None:
        assert result[0] and result[1] is data


@PROPS
@given(st.binary(max_size=200) | records.map(lambda r: json.dumps(r, default=str).encode()))
def test_error_detail_and_error_rate_never_crash(content: bytes) -> None:
    detail = error_detail(content)
    assert detail is None or (detail and len(detail) <= 300)
    rate = error_rate(RateLimitInfo(), content)
    assert rate.retry_after_s is None or rate.retry_after_s >= 0


def test_error_detail_shows_field_and_message_and_trace() -> None:
    body = {
        "detail": "Validation failed",
        "trace_id": "trc_42",
        "errors": [{"field": "to_number", "message": "not E.164"}, {"message": "bad agent"}],
    }
    assert error_detail(json.dumps(body).encode()) == (
        "Validation failed; to_number: not E.164; bad agent (trace_id trc_42)"
    )
    assert error_detail(b"upstream down") == "upstream down"
    assert error_detail(b"") is None


def test_retry_after_comes_from_the_body_unless_a_header_said_it() -> None:
    body = json.dumps({"detail": "slow down", "retry_after": 7}).encode()
    assert error_rate(RateLimitInfo(), body).retry_after_s == 7
    assert error_rate(RateLimitInfo(retry_after_s=2.0), body).retry_after_s == 2.0
    assert error_rate(RateLimitInfo(), b'{"retry_after": "soon"}').retry_after_s is None


@pytest.mark.parametrize("outcome", FINAL_STATUSES)
def test_every_sandbox_ending_maps_back_to_the_engine_outcome(outcome: str) -> None:
    status, reason = _ENDINGS[outcome]
    assert neutral_status(status, reason) == outcome
    # and our status classifies as the outcome the report shows
    want = Outcome.ANSWERED if outcome == "completed" else Outcome(outcome)
    assert classify(neutral_status(status, reason)) is want


@pytest.mark.parametrize("status", ["queued", "ringing", "in_progress", "scheduled"])
def test_statuses_of_live_calls_are_not_final(status: str) -> None:
    assert classify(neutral_status(status, None)) is None
    assert classify(neutral_status("cancelled", None)) is Outcome.FAILED


def test_statuses_without_reason_stay_themselves() -> None:
    assert neutral_status("In_Progress", None) == "in_progress"
    assert neutral_status("failed", "carrier_rejected") == "failed"
    assert neutral_status("queued", "busy") == "queued"  # not ended: the reason says nothing
    assert neutral_status(None, "busy") is None


def test_record_echoes_client_ref_and_direction() -> None:
    rec = parse_record(
        {
            "id": "obc_1",
            "conversation_id": "conv_1",
            "status": "failed",
            "end_reason": "no_answer",
            "duration_seconds": "1.5",
            "to_number": "+14155550100",
            "created_at": "2026-12-01T10:00:00Z",
            "metadata": {CLIENT_REF_KEY: "attempt-7"},
        }
    )
    assert rec is not None
    assert (rec.call_id, rec.status, rec.raw_status) == ("conv_1", "no_answer", "failed")
    assert rec.client_ref == "attempt-7" and rec.duration_ms == 1500
    assert rec.direction is Direction.OUTBOUND
    inbound = parse_record({"id": "x", "direction": "inbound"})
    assert inbound is not None and inbound.direction is Direction.INBOUND


def test_embedded_analysis_saves_the_request() -> None:
    conv = parse_conversation(
        {
            "status": "completed",
            "analysis": {"summary": "ok", "intent": {"name": "buy"}, "sentiment": "positive"},
        },
        call_id="conv_9",
    )
    assert not conv.needs_analysis
    out = conv.to_outcome()
    assert out.summary == "ok" and out.entities == {"intent": "buy", "sentiment": "positive"}
    assert parse_conversation({"status": "completed"}, call_id="c").needs_analysis
    assert not parse_conversation(
        {"status": "failed", "end_reason": "busy"}, call_id="c"
    ).needs_analysis


def test_analysis_entities_merge_extracted_data() -> None:
    analysis = parse_analysis(
        {
            "summary": " Fine. ",
            "intent": "interested",
            "sentiment": "positive",
            "sentiment_score": 0.8,
            "extracted_data": json.dumps({"email": "a@b.c", "gone": None}),
        }
    )
    assert analysis.summary == "Fine."
    assert analysis.entities == {
        "email": "a@b.c",
        "intent": "interested",
        "sentiment": "positive",
        "sentiment_score": 0.8,
    }


def test_create_body_sends_no_retries_and_our_reference() -> None:
    body = create_body(
        agent_id="agt_1",
        to_number="+14155550100",
        name="Ada",
        metadata={"order": "A-1"},
        client_ref="attempt-3",
        options={"retry_delay_minutes": 5, "max_retries": 3, "agent_id": "other"},
    )
    assert body == {
        "agent_id": "agt_1",
        "to_number": "+14155550100",
        "metadata": {"order": "A-1", NAME_KEY: "Ada", CLIENT_REF_KEY: "attempt-3"},
        "max_retries": 0,
        "retry_delay_minutes": 5,
    }


def test_paths_override_and_validation() -> None:
    paths = parse_paths("calls=/v2/calls, analysis=/v2/c/{id}/insights")
    assert paths.calls == "/v2/calls"
    assert paths.of("analysis", "conv/1") == "/v2/c/conv%2F1/insights"
    assert paths.conversation == VoisnapPaths().conversation
    assert parse_paths(None) == parse_paths(" ") == VoisnapPaths()
    for bad in ("calls", "nope=/x", "calls=v1/x", "conversation=/v1/conversations"):
        with pytest.raises(ProviderConfigError, match="VOISNAP_PATHS"):
            parse_paths(bad)


def test_reprs_never_show_the_key() -> None:
    key = "vsnp_live_9a8b7c6d5e4f"
    provider = VoisnapProvider(key, "https://api.voisnap.example")
    assert key not in repr(provider) and key not in repr(provider.auth)
    with pytest.raises(ProviderConfigError) as info:
        VoisnapProvider(key, f"ftp://{key}@host")
    assert key not in str(info.value)
