"""Property tests of the wire parsers (scheduler.providers.vaani_wire): odd input never crashes them.

Real deployments differ in field sets and types, and headers come in two forms; every parser
must either return a sensible value or raise ``WireError`` (never anything else).
"""

from __future__ import annotations

import contextlib
import json
import math
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.errors import RateLimitInfo
from scheduler.providers.base import Direction
from scheduler.providers.vaani_wire import (
    EPOCH_THRESHOLD,
    WireError,
    clamp_page_size,
    decode_json,
    error_detail,
    parse_details,
    parse_history,
    parse_rate_info,
    parse_rate_reset,
    parse_record,
    parse_retry_after,
    parse_timestamp,
    parse_trigger,
)

NOW = 1_795_000_000.0  # a fixed "now" (Nov 2026) so that dates are reproducible
PROPS = settings(max_examples=120, deadline=None)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
RECORD_KEYS = [
    "call_id",
    "call_status",
    "status",
    "duration_ms",
    "contact_number",
    "agent_id",
    "created_at",
    "call_type",
]
records = st.dictionaries(
    st.sampled_from(RECORD_KEYS) | st.text(max_size=8), json_values, max_size=8
)
datetimes = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


# --------------------------------------------------------------------------- Retry-After


@PROPS
@given(st.integers(min_value=0, max_value=10**9))
def test_retry_after_delta_seconds(n: int) -> None:
    assert parse_retry_after(str(n), now=NOW) == float(n)
    assert parse_retry_after(f"  {n} ", now=NOW) == float(n)


@PROPS
@given(datetimes)
def test_retry_after_http_date(when: datetime) -> None:
    when = when.replace(microsecond=0)
    header = format_datetime(when, usegmt=True)
    assert parse_retry_after(header, now=NOW) == max(0.0, when.timestamp() - NOW)


@pytest.mark.parametrize(
    "header",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
        "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850
        "Sun Nov  6 08:49:37 1994",  # obsolete asctime
    ],
)
def test_retry_after_all_http_date_forms_read_past_dates_as_zero(header: str) -> None:
    assert parse_retry_after(header, now=NOW) == 0.0
    expected = datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC).timestamp()
    assert parse_retry_after(header, now=expected - 30) == 30.0


@PROPS
@given(st.text(max_size=40))
def test_retry_after_never_crashes(text: str) -> None:
    value = parse_retry_after(text, now=NOW)
    assert value is None or (math.isfinite(value) and value >= 0)


@pytest.mark.parametrize("header", [None, "", "soon", "1e999", "nan", "Mon, 99 Foo 2026"])
def test_retry_after_unreadable_is_absent(header: str | None) -> None:
    assert parse_retry_after(header, now=NOW) is None


# --------------------------------------------------------------------------- rate headers


@PROPS
@given(st.floats(min_value=0, max_value=EPOCH_THRESHOLD, allow_nan=False))
def test_rate_reset_delta_seconds(delta: float) -> None:
    assert parse_rate_reset(repr(delta), now=NOW) == pytest.approx(delta)


@PROPS
@given(st.integers(min_value=EPOCH_THRESHOLD + 1, max_value=4_000_000_000))
def test_rate_reset_epoch_seconds(epoch: int) -> None:
    assert parse_rate_reset(str(epoch), now=NOW) == max(0.0, epoch - NOW)


@PROPS
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "X-RateLimit-Limit",
                "x-ratelimit-remaining",
                "X-RATELIMIT-RESET",
                "Retry-After",
                "X-Other",
            ]
        ),
        st.text(alphabet=st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=20),
    )
)
def test_rate_info_never_crashes(headers: dict[str, str]) -> None:
    info = parse_rate_info(headers, now=NOW)
    for value in (info.limit, info.remaining, info.reset_s, info.retry_after_s):
        assert value is None or (value >= 0 and math.isfinite(value))


def test_rate_info_reads_every_header_in_any_case() -> None:
    headers = {
        "x-ratelimit-limit": "100",
        "X-RATELIMIT-REMAINING": "7",
        "X-RateLimit-Reset": str(int(NOW) + 12),
        "retry-after": "3",
    }
    assert parse_rate_info(headers, now=NOW) == RateLimitInfo(
        limit=100, remaining=7, reset_s=12.0, retry_after_s=3.0
    )
    assert parse_rate_info({}, now=NOW).empty


# --------------------------------------------------------------------------- bodies


@PROPS
@given(records)
def test_parse_record_never_crashes_and_keeps_the_raw_record(data: dict[str, Any]) -> None:
    rec = parse_record(data)
    call_id = data.get("call_id")
    usable = (isinstance(call_id, str) and call_id.strip()) or (
        isinstance(call_id, int) and not isinstance(call_id, bool)
    )
    if not usable:
        assert rec is None
        return
    assert rec is not None
    assert rec.raw is data
    assert rec.call_id == str(call_id).strip()
    assert rec.created_at is None or rec.created_at.tzinfo is UTC
    assert rec.duration_ms is None or (rec.duration_ms >= 0 and math.isfinite(rec.duration_ms))
    assert rec.status is None or rec.status == rec.status.lower()
    # the neutral fields of the provider interface
    assert rec.direction in set(Direction)
    if rec.direction is not Direction.UNKNOWN:
        assert str(data["call_type"]).strip().lower() == rec.direction.value
    assert (rec.raw_status is None) == (rec.status is None)
    assert rec.raw_status is None or rec.raw_status.lower() == rec.status
    assert rec.client_ref is None


@PROPS
@given(json_values)
def test_parse_record_of_any_json_never_crashes(data: Any) -> None:
    parse_record(data)


@PROPS
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"data": st.lists(records, max_size=5)}, optional={"pagination": json_values}
        ),
    )
)
def test_parse_history_returns_a_page_or_raises_wire_error(data: Any) -> None:
    try:
        page = parse_history(data, page=3, page_size=20)
    except WireError:
        assert not isinstance(data, dict) or not isinstance(data.get("data", []), list)
        return
    assert page.raw is data
    assert len(page.records) <= len(data.get("data", []))
    assert page.page >= 1 and page.page_size >= 1
    assert page.total is None or page.total >= 0
    neutral = page.to_page()
    assert list(neutral.records) == page.records and neutral.is_last == page.is_last
    assert neutral.served_size is None or isinstance(neutral.served_size, int)
    if not data.get("data"):  # an empty page ends the history, whatever the pagination
        assert neutral.is_last


@pytest.mark.parametrize(
    ("pagination", "total"),
    [
        ({"total": 9}, 9),
        ({"total_count": 8}, 8),
        ({"total": "7"}, 7),
        ({}, None),
        ({"total": "x"}, None),
    ],
)
def test_history_total_vs_total_count(pagination: dict[str, Any], total: int | None) -> None:
    assert parse_history({"data": [], "pagination": pagination}, page=1, page_size=5).total == total


@PROPS
@given(json_values)
def test_parse_details_returns_details_or_raises_wire_error(data: Any) -> None:
    try:
        details = parse_details(data, call_id="asked")
    except WireError:
        assert not isinstance(data, dict)
        return
    assert isinstance(details.entity, dict)
    assert details.call_id
    assert details.raw is data
    outcome = details.to_outcome()
    assert outcome.call_id == details.call_id and outcome.entities == details.entity
    assert (outcome.raw_status is None) == (details.status is None)


def test_details_entity_as_json_string() -> None:
    details = parse_details({"entity": '{"opt_out": true}', "summary": " ok "}, call_id="c")
    assert details.entity == {"opt_out": True} and details.summary == "ok"
    assert details.call_id == "c"


@PROPS
@given(st.text(min_size=1, max_size=30).filter(str.strip), st.booleans())
def test_trigger_call_id_top_level_or_nested(call_id: str, nested: bool) -> None:
    body = {"output": {"call_id": call_id}} if nested else {"call_id": call_id}
    assert parse_trigger(body).call_id == call_id.strip()


@PROPS
@given(json_values)
def test_parse_trigger_never_crashes_otherwise(data: Any) -> None:
    try:
        result = parse_trigger(data)
    except WireError:
        return
    assert result.call_id


@PROPS
@given(st.binary(max_size=200))
def test_decode_json_and_error_detail_never_crash(content: bytes) -> None:
    with contextlib.suppress(WireError):
        decode_json(content)
    detail = error_detail(content)
    assert detail is None or len(detail) <= 300


@PROPS
@given(json_values)
def test_error_detail_of_any_json_body(data: Any) -> None:
    detail = error_detail(json.dumps(data).encode())
    assert detail is None or isinstance(detail, str)


# --------------------------------------------------------------------------- timestamps


@PROPS
@given(datetimes)
def test_timestamps_round_trip_iso_and_epoch(when: datetime) -> None:
    assert parse_timestamp(when.isoformat()) == when
    assert parse_timestamp(when.isoformat().replace("+00:00", "Z")) == when
    assert parse_timestamp(when.replace(tzinfo=None).isoformat()) == when  # naive = UTC
    assert parse_timestamp(int(when.timestamp())) == when.replace(microsecond=0)
    millis = int(when.timestamp()) * 1000
    if millis > 100_000_000_000:
        assert parse_timestamp(millis) == when.replace(microsecond=0)


def test_timestamp_with_offset_is_converted_to_utc() -> None:
    got = parse_timestamp("2026-11-23T10:00:00+05:30")
    assert got == datetime(2026, 11, 23, 4, 30, tzinfo=UTC)
    assert got is not None and got.utcoffset() == timedelta(0)


@PROPS
@given(json_values)
def test_timestamp_of_anything_never_crashes(value: Any) -> None:
    got = parse_timestamp(value)
    assert got is None or got.tzinfo is UTC


@PROPS
@given(st.integers(min_value=-(10**6), max_value=10**6))
def test_page_size_is_clamped(n: int) -> None:
    assert 1 <= clamp_page_size(n) <= 200
    if 1 <= n <= 200:
        assert clamp_page_size(n) == n
