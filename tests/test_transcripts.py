"""Transcripts: the report's text form (campaigns/transcripts.py), and their storage beside the
attempt when an outcome is applied (storage/outcomes.py, ``call_transcripts``), on SQLite and
PostgreSQL through the real claim and settlement code."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from campaigns.csvsafe import needs_quote
from campaigns.transcripts import transcript_cell, transcript_text, turn_line
from storage import manage
from storage.models import CallTranscript, utcnow
from storage.states import Outcome
from tests.test_outcomes import apply_outcome, engine, place_calls, result

__all__ = ["engine"]  # the fixture, shared with test_outcomes

SANDBOX = [
    {"role": "agent", "text": "Hello Ana, this is an assistant calling for sales."},
    {"role": "user", "text": "Yes, tell me more."},
]

# --------------------------------------------------------------------------- the text form


def test_sandbox_turns_read_one_line_each() -> None:
    assert transcript_text(SANDBOX) == (
        "agent: Hello Ana, this is an assistant calling for sales.\nuser: Yes, tell me more."
    )


def test_other_spellings_and_wrappers_read_the_same() -> None:
    spelled = [{"speaker": "agent", "content": "Hi"}, {"from": "user", "message": "Bye"}]
    assert transcript_text(spelled) == "agent: Hi\nuser: Bye"
    assert transcript_text({"turns": spelled}) == "agent: Hi\nuser: Bye"
    assert transcript_text({"call_id": "c1", "transcript": spelled}) == "agent: Hi\nuser: Bye"
    assert transcript_text("agent: plain text\nuser: as sent") == "agent: plain text\nuser: as sent"


def test_nothing_is_empty_and_unknown_shapes_are_json() -> None:
    assert transcript_text(None) == "" and transcript_text([]) == ""
    assert transcript_text({"words": 3, "lang": "hi"}) == '{"words":3,"lang":"hi"}'
    assert transcript_text(42) == "42"
    # a turn of another shape is kept as JSON on its own line, beside readable ones
    assert transcript_text([{"role": "agent", "text": "Hi"}, {"t": 1.5, "x": ["a"]}]) == (
        'agent: Hi\n{"t":1.5,"x":["a"]}'
    )
    assert turn_line({"role": "", "text": "no speaker"}) == '{"role":"","text":"no speaker"}'


def test_a_turn_with_line_breaks_stays_on_one_line() -> None:
    assert transcript_text([{"role": "user", "text": "one\r\ntwo\nthree"}]) == "user: one two three"


def test_formula_at_the_start_is_neutralised() -> None:
    assert transcript_cell('=HYPERLINK("http://evil/")') == '\'=HYPERLINK("http://evil/")'
    assert transcript_cell([{"role": "@agent", "text": "x"}]) == "'@agent: x"
    assert transcript_cell(SANDBOX) == transcript_text(SANDBOX)  # plain text stays as it is


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@given(_json)
def test_any_json_value_becomes_a_safe_cell(value: Any) -> None:
    cell = transcript_cell(value)
    assert isinstance(cell, str)
    assert cell.startswith("'") or not needs_quote(cell)


_words = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Zl", "Zp", "Cc")), min_size=1, max_size=30
)


@given(st.lists(st.tuples(st.sampled_from(["agent", "user", "bot"]), _words), max_size=8))
def test_each_turn_is_one_line_in_order(turns: list[tuple[str, str]]) -> None:
    text = transcript_text([{"role": r, "text": t} for r, t in turns])
    lines = text.split("\n") if text else []
    assert len(lines) == len(turns)
    for line, (role, words) in zip(lines, turns, strict=True):
        assert line == f"{role}: {words.strip()}"


# --------------------------------------------------------------------------- storage


def _stored(engine: Engine) -> dict[int, Any]:
    with engine.connect() as conn:
        rows = conn.execute(select(CallTranscript.attempt_id, CallTranscript.transcript))
        return {aid: t for aid, t in rows}


def test_transcript_is_kept_with_the_outcome_and_only_once(engine: Engine) -> None:
    now = utcnow()
    _, (aid, none_aid, empty_aid), _ = place_calls(engine, 3, now=now)
    answered = result(Outcome.ANSWERED, "completed", transcript=SANDBOX)
    assert apply_outcome(engine, aid, answered, now=now)
    assert apply_outcome(engine, none_aid, result(Outcome.ANSWERED, "completed"), now=now)
    empty = result(Outcome.NO_ANSWER, "no_answer", transcript=[])
    assert apply_outcome(engine, empty_aid, empty, now=now)
    assert _stored(engine) == {aid: SANDBOX}  # nothing for no transcript or an empty one
    # a second application (another daemon) changes nothing, and does not fail on the key
    later = result(Outcome.ANSWERED, "completed", transcript=[{"role": "user", "text": "x"}])
    assert apply_outcome(engine, aid, later, now=now + timedelta(seconds=1)) is None
    assert _stored(engine) == {aid: SANDBOX}


def test_transcripts_go_with_their_campaign(engine: Engine) -> None:
    now = utcnow()
    cid, (aid,), _ = place_calls(engine, 1, now=now)
    apply_outcome(engine, aid, result(Outcome.ANSWERED, "completed", transcript="hi"), now=now)
    assert json.dumps(_stored(engine)) == json.dumps({str(aid): "hi"})
    manage.delete(engine, cid)
    assert _stored(engine) == {}
