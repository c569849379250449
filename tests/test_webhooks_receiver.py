"""The webhook receiver (scheduler.webhooks_in) over real HTTP, on SQLite and PostgreSQL.

401 for a bad or missing signature with nothing changed, 400 for a body that is no event, 200
only once stored, replays idempotent, an early event kept and applied when its call id lands,
the health routes, and the secret in no answer and no log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from scheduler.inbox import Inbox
from scheduler.providers.vaniagent_events import signature
from scheduler.webhooks_in import parse_listen
from storage.attempts import mark_reconciled
from storage.engine import make_engine
from storage.inbox import list_events
from tests.webhooks_helpers import (
    DEADLINE,
    PROVIDER,
    SECRET,
    T0,
    attempt,
    event,
    finished,
    land,
    place,
    reserve,
    serving,
    vaniagent_source,
)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def signed(payload: Any, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {"X-Vaniagent-Signature": signature(body, secret)}


def test_health_routes_answer_200(engine: Engine) -> None:
    async def scenario() -> list[tuple[int, Any]]:
        async with serving(Inbox(engine, {PROVIDER: vaniagent_source()})) as (url, http):
            return [
                ((r := await http.get(url + path)).status_code, r.json())
                for path in ("/", "/health")
            ]

    assert asyncio.run(scenario()) == [(200, {"status": "ok", "webhooks": [PROVIDER]})] * 2


def test_bad_or_missing_signature_is_401_and_changes_nothing(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    ((aid, call_id),) = place(engine, 1)
    body, good = signed(event(call_id))

    async def scenario() -> list[tuple[int, str]]:
        async with serving(Inbox(engine, {PROVIDER: vaniagent_source()})) as (url, http):
            out = []
            for headers in (
                {},
                {"X-Vaniagent-Signature": ""},
                {"X-Vaniagent-Signature": signature(body, "wrong-secret")},
                {"X-Vaniagent-Signature": good["X-Vaniagent-Signature"][:-2] + "00"},
                # a valid signature of another body
                signed(event(call_id, "call.failed"))[1],
            ):
                r = await http.post(f"{url}/webhooks/{PROVIDER}", content=body, headers=headers)
                out.append((r.status_code, r.text))
            return out

    with caplog.at_level(logging.DEBUG):
        answers = asyncio.run(scenario())
    assert [status for status, _ in answers] == [401] * 5
    assert all(SECRET not in text for _, text in answers)
    assert SECRET not in caplog.text
    assert list_events(engine) == []
    assert attempt(engine, aid).state == "accepted"


def test_body_that_is_no_event_is_400_and_unknown_provider_404(engine: Engine) -> None:
    async def scenario() -> list[int]:
        async with serving(Inbox(engine, {PROVIDER: vaniagent_source()})) as (url, http):
            out = []
            for payload in ({"data": {"call_id": "x"}}, [1, 2], {"event": "call.completed"}):
                body, headers = signed(payload)
                r = await http.post(f"{url}/webhooks/{PROVIDER}", content=body, headers=headers)
                out.append(r.status_code)
            body, headers = signed(event("c"))
            r = await http.post(f"{url}/webhooks/voisnap", content=body, headers=headers)
            out.append(r.status_code)
            return out

    assert asyncio.run(scenario()) == [400, 400, 400, 404]
    assert list_events(engine) == []


def test_oversized_body_is_refused_unread(engine: Engine) -> None:
    body, headers = signed({"event": "call.completed", "data": {"call_id": "c", "x": "y" * 2**20}})

    async def scenario() -> int:
        async with serving(Inbox(engine, {PROVIDER: vaniagent_source()})) as (url, http):
            r = await http.post(f"{url}/webhooks/{PROVIDER}", content=body, headers=headers)
            return r.status_code

    assert asyncio.run(scenario()) == 413
    assert list_events(engine) == []


def test_valid_event_settles_at_once_and_a_replay_changes_nothing(engine: Engine) -> None:
    ((aid, call_id), (other, _)) = place(engine, 2)
    body, headers = signed(event(call_id))

    async def scenario() -> list[Any]:
        async with serving(Inbox(engine, {PROVIDER: vaniagent_source()})) as (url, http):
            first = await http.post(f"{url}/webhooks/{PROVIDER}", content=body, headers=headers)
            # settled before the answer came back: the slot is free at once
            state = attempt(engine, aid).state
            after_first = attempt(engine, aid)
            again = await http.post(f"{url}/webhooks/{PROVIDER}", content=body, headers=headers)
            return [first.status_code, first.json(), state, after_first, again.json()]

    status, answer, state, after_first, replay = asyncio.run(scenario())
    assert (status, answer, state) == (200, {"status": "ok", "duplicate": False}, "finished")
    assert replay == {"status": "ok", "duplicate": True}
    assert attempt(engine, aid) == after_first
    assert after_first.outcome == "answered" and after_first.summary == f"summary of {call_id}"
    assert attempt(engine, other).state == "accepted"
    assert len(list_events(engine)) == 1


def test_early_event_is_kept_then_applied_when_the_call_id_lands(engine: Engine) -> None:
    ((aid, _),) = place(engine, 1, unknown=1)  # dispatch has no call id for it yet
    body, headers = signed(event("va-early", "call.failed", end_reason="busy"))

    async def scenario() -> tuple[int, str, str | None]:
        async with serving(Inbox(engine, {PROVIDER: vaniagent_source()})) as (url, http):
            r = await http.post(f"{url}/webhooks/{PROVIDER}", content=body, headers=headers)
            state = attempt(engine, aid).state
            # the call id lands on the attempt (as when the dispatcher records the answer)
            assert mark_reconciled(
                engine,
                aid,
                call_id="va-early",
                call_started_at=T0,
                now=T0,
                outcome_deadline=DEADLINE,
            )
            outcome = (await finished(engine, aid)).outcome  # the sweep, within 0.5 s
            return r.status_code, state, outcome

    assert asyncio.run(scenario()) == (200, "unknown", "busy")
    (stored,) = list_events(engine)
    assert stored.applied_at is not None


def test_event_before_the_dispatcher_records_the_answer(engine: Engine) -> None:
    """The webhook beats the trigger-call's answer: the reserved attempt gets its call id
    right after, and the event settles it."""
    aid = reserve(engine)
    body, headers = signed(event("va-fast", end_reason="voicemail"))

    async def scenario() -> str | None:
        async with serving(Inbox(engine, {PROVIDER: vaniagent_source()})) as (url, http):
            r = await http.post(f"{url}/webhooks/{PROVIDER}", content=body, headers=headers)
            assert r.status_code == 200
            assert attempt(engine, aid).state == "reserved"
            land(engine, aid, "va-fast")
            return str((await finished(engine, aid)).outcome)

    assert asyncio.run(scenario()) == "voicemail"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:8080", ("127.0.0.1", 8080)), (":0", ("127.0.0.1", 0)), ("[::1]:9", ("::1", 9))],
)
def test_listen_address(text: str, expected: tuple[str, int], engine: Engine) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["8080", "host:", "host:port", "h:70000"])
def test_bad_listen_address_says_what_is_expected(text: str, engine: Engine) -> None:
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        parse_listen(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_listen_parser_returns_an_address_or_says_what_is_expected(text: str) -> None:
    try:
        host, port = parse_listen(text)
    except ValueError as exc:
        assert "expected HOST:PORT" in str(exc)
        return
    assert 0 <= port <= 65535 and host and text.strip().endswith(str(port))
