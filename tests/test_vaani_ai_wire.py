"""Property tests of the vaani.ai wire parsers (scheduler.providers.vaani_ai_wire).

The seed documents no answer's field set, so every parser must read whatever comes: a value or
``WireError`` for a wrongly shaped answer, never another exception, and the raw record kept.
The sandbox's own call logs must read back as the engine's outcome (the status mapping table).
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.outcomes import classify
from scheduler.providers.base import Direction
from scheduler.providers.vaani_ai_wire import (
    CLIENT_REF_KEY,
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
    CallLog,
    WireError,
    clamp_page_size,
    neutral_status,
    parse_log,
    parse_logs,
    parse_outcome,
    parse_placed,
)
from scheduler.sandbox.front_vaani_ai import call_log
from scheduler.sandbox.sim import Call
from tests.test_client_wire import json_values

PROPS = settings(max_examples=150, deadline=None)
LOG_KEYS = [
    "id",
    "call_log_id",
    "call_id",
    "status",
    "end_reason",
    "duration",
    "duration_ms",
    "phone_number",
    "phone_number_to_dial",
    "created_at",
    "direction",
    "summary",
    "extracted_data",
    "entities",
    "dynamic_variables",
    "transcript",
]
logs = st.dictionaries(st.sampled_from(LOG_KEYS), json_values, max_size=10)


def _read_all(log: CallLog) -> None:
    for name in ("status", "raw_status", "duration_ms", "contact_number", "created_at"):
        getattr(log, name)
    assert isinstance(log.direction, Direction)
    assert log.client_ref is None or isinstance(log.client_ref, str)
    assert log.agent_id is None


@PROPS
@given(logs)
def test_parse_log_never_crashes_and_keeps_the_raw_log(data: dict[str, Any]) -> None:
    log = parse_log(data)
    if log is None:
        assert not any(
            isinstance(data.get(k), str | int) and str(data.get(k)).strip()
            for k in ("id", "call_log_id", "call_id")
            if not isinstance(data.get(k), bool)
        )
        return
    assert log.raw is data
    _read_all(log)
    if log.duration_ms is not None:
        assert log.duration_ms >= 0
    if log.created_at is not None:
        assert log.created_at.tzinfo is not None


@PROPS
@given(json_values)
def test_parse_log_of_any_json_never_crashes(data: Any) -> None:
    log = parse_log(data)
    if log is not None:
        _read_all(log)


@PROPS
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {},
            optional={
                "items": st.one_of(st.lists(logs, max_size=5), json_values),
                "data": st.lists(logs, max_size=3),
                "total": json_values,
                "page": json_values,
                "page_size": json_values,
                "total_pages": json_values,
                "pagination": json_values,
            },
        ),
    ),
    st.integers(min_value=1, max_value=50),
    st.integers(min_value=1, max_value=PAGE_SIZE_MAX),
)
def test_parse_logs_returns_a_page_or_raises_wire_error(data: Any, page: int, size: int) -> None:
    try:
        got = parse_logs(data, page=page, page_size=size)
    except WireError:
        return
    assert got.page >= 0 and got.page_size >= 0
    for rec in got.records:
        _read_all(rec)  # type: ignore[arg-type]
    items = next((data[k] for k in ("items", "data") if k in data), [])
    if not items:
        assert got.is_last


@pytest.mark.parametrize(
    ("counts", "last"),
    [
        ({"total": 30, "page": 1, "page_size": 10}, False),
        ({"total": 30, "page": 3, "page_size": 10}, True),
        ({"total_pages": 2, "page": 2}, True),
        ({"pagination": {"total_pages": 5, "page": 2}}, False),
        ({}, False),  # a full page without counts: maybe more
    ],
)
def test_logs_end_is_what_the_counts_say(counts: dict[str, Any], last: bool) -> None:
    items = [{"id": f"c{i}"} for i in range(10)]
    assert parse_logs({"items": items, **counts}, page=1, page_size=10).is_last is last


def test_a_short_page_without_counts_is_the_end() -> None:
    page = parse_logs({"call_logs": [{"id": "a"}]}, page=1, page_size=10)
    assert page.is_last and [r.call_id for r in page.records] == ["a"]
    assert page.served_size is None


@PROPS
@given(json_values, st.text(min_size=1, max_size=10))
def test_parse_outcome_returns_an_outcome_or_raises_wire_error(data: Any, asked: str) -> None:
    try:
        got = parse_outcome(data, call_id=asked)
    except WireError:
        assert not isinstance(data, dict)
        return
    assert got.raw is data and got.call_id
    assert isinstance(got.entities, dict)
    assert got.summary is None or got.summary.strip()


def test_entities_as_a_json_string_and_fallback_key() -> None:
    as_text = parse_outcome({"extracted_data": json.dumps({"a": 1})}, call_id="x")
    assert as_text.entities == {"a": 1} and as_text.call_id == "x"
    assert parse_outcome({"entities": {"b": True}}, call_id="x").entities == {"b": True}
    assert parse_outcome({"extracted_data": "not json"}, call_id="x").entities == {}


@PROPS
@given(st.text(min_size=1, max_size=20).filter(str.strip), st.sampled_from(["top", "data"]))
def test_placed_id_at_the_top_or_under_data(call_id: str, where: str) -> None:
    body = {"call_log_id": call_id} if where == "top" else {"data": {"id": call_id}}
    assert parse_placed(body)[0] == call_id.strip()


@PROPS
@given(json_values)
def test_parse_placed_never_crashes_otherwise(data: Any) -> None:
    with contextlib.suppress(WireError):
        call_id, raw = parse_placed(data)
        assert call_id and raw is data


@pytest.mark.parametrize(
    ("status", "reason", "neutral"),
    [
        ("completed", "completed", "completed"),
        ("completed", "voicemail", "voicemail"),
        ("failed", "no_answer", "no_answer"),
        ("failed", "No-Answer", "no_answer"),
        ("failed", "busy", "busy"),
        ("completed", "customer-ended-call", "completed"),  # an end reason we do not know
        ("In-Progress", None, "in-progress"),
        (None, 3, None),
    ],
)
def test_neutral_status(status: Any, reason: Any, neutral: str | None) -> None:
    assert neutral_status(status, reason) == neutral


@pytest.mark.parametrize("outcome", ["completed", "voicemail", "no_answer", "busy", "failed"])
def test_the_sandbox_logs_read_back_as_the_engine_outcome(outcome: str) -> None:
    """Every final engine status, served by the front-end and read by the adapter, classifies
    as the ground truth does; raw_status stays vaani.ai's word; our reference comes back."""
    call = Call(
        call_id="c1",
        agent_id="+16505551234",
        contact_number="+14155550100",
        name="Ada",
        call_type="outbound",
        metadata={"customer_name": "Ada", CLIENT_REF_KEY: "attempt-7"},
        created=1_795_000_000.0,
        total_s=2.0,
        outcome=outcome,
        speed=1.0,
    )
    wire = json.loads(json.dumps(call_log(call, call.end + 1)))
    got = parse_outcome(wire, call_id="c1")
    assert classify(got.status) == classify(outcome)
    assert got.raw_status in ("completed", "failed")
    assert got.summary == call.summary and dict(got.entities) == call.entity
    log = parse_log(wire)
    assert log is not None and log.client_ref == "attempt-7"
    assert log.direction is Direction.OUTBOUND
    assert log.created_at == datetime.fromtimestamp(1_795_000_000.0, UTC)
    live = parse_log(json.loads(json.dumps(call_log(call, call.created + 0.5))))
    assert live is not None and classify(live.status) is None  # not final yet


@given(json_values)
def test_clamp_page_size(value: Any) -> None:
    size = clamp_page_size(value)
    assert 1 <= size <= PAGE_SIZE_MAX
    if value is None:
        assert size == PAGE_SIZE_DEFAULT
