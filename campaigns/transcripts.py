"""A call's transcript as text a person reads in a spreadsheet cell: one line per turn.

Providers send transcripts in several shapes. Vaani's call details (and the sandbox) send a
list of turns ``[{"role": "agent", "text": "..."}, ...]``; others name the fields ``speaker``
and ``content`` or wrap the list (``{"turns": [...]}``), and some send plain text. The known
shapes become ``"agent: Hello ...\\nuser: Yes ..."``; a turn or a transcript of any other
shape is written as compact JSON, so that nothing said on a call is lost from the report.

:func:`transcript_cell` is the report's cell: the text made spreadsheet-safe
(:func:`campaigns.csvsafe.safe_cell`), since every word in it came from outside.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from campaigns.csvsafe import safe_cell

#: the keys a turn's speaker and words go by, most common first
SPEAKER_KEYS = ("role", "speaker", "from", "who")
TEXT_KEYS = ("text", "content", "message", "utterance")
#: the keys under which a wrapped transcript holds its list of turns
WRAPPER_KEYS = ("turns", "messages", "transcript", "utterances")
#: what a wrapper may hold besides its turns and still be read as them
_WRAPPER_IDS = frozenset({"call_id", "id", "conversation_id"})

_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


def _one_line(text: str) -> str:
    """A turn's words on one line (its own line breaks become spaces)."""
    return _LINE_BREAKS.sub(" ", text).strip()


def _pick(turn: Mapping[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        if key in turn:
            return turn[key]
    return None


def turn_line(turn: Any) -> str:
    """One turn as ``"speaker: words"``; a plain string as it is; anything else as JSON."""
    if isinstance(turn, str):
        return _one_line(turn)
    if isinstance(turn, Mapping):
        speaker, words = _pick(turn, SPEAKER_KEYS), _pick(turn, TEXT_KEYS)
        if isinstance(speaker, str) and speaker.strip() and isinstance(words, str):
            return f"{_one_line(speaker)}: {_one_line(words)}"
    return _one_line(_encode(turn))


def transcript_text(transcript: Any) -> str:
    """The whole transcript as text, one line per turn ("" when there is none)."""
    if transcript is None:
        return ""
    if isinstance(transcript, str):
        return transcript.strip()
    if isinstance(transcript, Mapping):
        for key in WRAPPER_KEYS:
            inner = transcript.get(key)
            if isinstance(inner, list | str) and set(transcript) - _WRAPPER_IDS <= {key}:
                return transcript_text(inner)
        return _one_line(_encode(transcript))
    if isinstance(transcript, list):
        return "\n".join(line for line in map(turn_line, transcript) if line)
    return _one_line(_encode(transcript))


def transcript_cell(transcript: Any) -> str:
    """:func:`transcript_text` made safe for a spreadsheet cell."""
    return safe_cell(transcript_text(transcript))
