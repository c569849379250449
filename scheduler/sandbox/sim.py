"""The simulated calls: lifecycle over simulated time, outcomes, and the data "extracted" from them.

Time. A call lasts ``total_s`` simulated seconds, drawn uniformly from ``--call-seconds`` (or
forced by the ``sandbox_call_seconds`` metadata hook). ``--speed X`` makes simulated time run X
times faster than the wall clock. The status is computed when asked, from the wall clock; no
timers run. With ``f`` the elapsed fraction of ``total_s``:

* ``f < 0.1`` queued; then ringing; for a call that connects (completed or voicemail),
  ``in_progress`` from ``f >= 0.3``; at ``f >= 1`` the final status.
* ``duration_ms`` is ``round(total_s * 1000)`` for completed and voicemail calls once final,
  ``0`` for the other final statuses and ``null`` before the end. ``ended_at`` is the wall-clock
  end (``created_at + total_s / speed``).

Outcome. Each call draws from its own RNG, seeded with ``"{seed}:{contact_number}:{n}"`` where
``n`` counts earlier calls to that number in the sandbox (stable whatever the order in which
different numbers arrive). With probability ``--answer-rate`` the call is ``completed``; otherwise
no_answer 60%, voicemail 20%, busy 15%, failed 5%. ``sandbox_outcome`` in the metadata forces
the final status.

Derived data, for completed calls only (the rest get ``summary: null`` and ``entity: {}``, except
voicemail: a summary "Left a voicemail for NAME."). With ``letters`` = the number of
alphanumeric characters in the name:

* ``email``: ``metadata["email"]`` when given, else ``slug(name)@example.com`` where ``slug``
  lowercases the name and joins its alphanumeric runs with dots ("Anna Maria O'Neil" ->
  "anna.maria.o.neil@example.com");
* ``interested``: ``letters`` is even;
* ``preferred_date``: the UTC date of ``created_at`` plus ``letters % 7 + 1`` days (ISO date);
* every metadata key ``sandbox_entity_X`` adds ``X: value``;
* ``sandbox_callback_in: "90s"`` (or ``"2m"``, ``"1h"``, a plain number of seconds) adds
  ``callback_at``: the call's wall-clock end plus that long, ISO 8601 UTC (``...Z``), as an
  agent would extract "call me back in an hour and a half"; every answered call of the number
  asks again, so a campaign's callback cap shows;
* ``sandbox_opt_out: "yes"`` adds ``opt_out: true``.

The summary reads "NAME answered the call from agent AGENT. NAME is (not) interested; preferred
date DATE; email EMAIL." (plus " NAME asked not to be called again." on opt-out). The transcript
is a short list of ``{"role", "text"}`` turns built from the same facts.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from scheduler.sandbox.config import FINAL_STATUSES

CONNECTED = frozenset({"completed", "voicemail"})
_MISSED = (("no_answer", 0.60), ("voicemail", 0.20), ("busy", 0.15), ("failed", 0.05))
_ALNUM = re.compile(r"[0-9a-z]+")


def iso_utc(t: float) -> str:
    """Epoch seconds -> ISO 8601 UTC with milliseconds and a ``Z``."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def slug(name: str) -> str:
    return ".".join(_ALNUM.findall(name.lower())) or "contact"


_CALLBACK_IN = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600}


def callback_in(value: Any, ended: float) -> str | None:
    """``sandbox_callback_in``'s callback time (ISO UTC), or None when it is not a duration."""
    m = _CALLBACK_IN.fullmatch(str(value).lower())
    if m is None:
        return None
    return iso_utc(ended + float(m.group(1)) * _UNIT_S[m.group(2)])


def derive_facts(
    name: str,
    agent_id: str,
    metadata: Mapping[str, Any],
    created: float,
    ended: float | None = None,
) -> tuple[dict[str, Any], str, list[dict[str, str]]]:
    """Entity, summary and transcript of a completed call (see the module docstring)."""
    letters = sum(ch.isalnum() for ch in name)
    email = str(metadata.get("email") or f"{slug(name)}@example.com")
    interested = letters % 2 == 0
    day = datetime.fromtimestamp(created, UTC).date() + timedelta(days=letters % 7 + 1)
    entity: dict[str, Any] = {
        "email": email,
        "interested": interested,
        "preferred_date": day.isoformat(),
    }
    for key, value in metadata.items():
        if key.startswith("sandbox_entity_") and len(key) > len("sandbox_entity_"):
            entity[key[len("sandbox_entity_") :]] = value
    if "sandbox_callback_in" in metadata:
        at = callback_in(metadata["sandbox_callback_in"], created if ended is None else ended)
        if at is not None:
            entity["callback_at"] = at
    opt_out = str(metadata.get("sandbox_opt_out", "")).strip().lower() == "yes"
    if opt_out:
        entity["opt_out"] = True
    not_ = "" if interested else "not "
    summary = (
        f"{name} answered the call from agent {agent_id}. {name} is {not_}interested; "
        f"preferred date {entity['preferred_date']}; email {email}."
    )
    transcript = [
        {"role": "agent", "text": f"Hello {name}, this is an assistant calling for {agent_id}."},
        {"role": "user", "text": "Yes, tell me more." if interested else "I am not interested."},
        {"role": "agent", "text": "Which day suits you, and what is your email?"},
        {"role": "user", "text": f"{entity['preferred_date']}, and {email}."},
    ]
    if opt_out:
        summary += f" {name} asked not to be called again."
        transcript.append({"role": "user", "text": "Please do not call me again."})
    return entity, summary, transcript


class Call:
    """One simulated call. Immutable facts; the status follows from the clock."""

    __slots__ = (
        "_final_json",
        "_final_record",
        "agent_id",
        "call_id",
        "call_type",
        "contact_number",
        "created",
        "end",
        "entity",
        "fingerprint",
        "metadata",
        "name",
        "outcome",
        "response",
        "speed",
        "summary",
        "total_s",
        "transcript",
    )

    def __init__(
        self,
        *,
        call_id: str,
        agent_id: str,
        contact_number: str,
        name: str,
        call_type: str,
        metadata: dict[str, Any],
        created: float,
        total_s: float,
        outcome: str,
        speed: float,
        fingerprint: str | None = None,
    ) -> None:
        self.call_id = call_id
        self.agent_id = agent_id
        self.contact_number = contact_number
        self.name = name
        self.call_type = call_type
        self.metadata = metadata
        self.created = created
        self.total_s = total_s
        self.outcome = outcome
        self.speed = speed
        self.end = created + total_s / speed
        self.fingerprint = fingerprint
        self.response = "ok"  # or lost-drop, lost-502, slow (set by the fault gate)
        self._final_record: dict[str, Any] | None = None
        self._final_json: bytes | None = None
        self.entity: dict[str, Any] = {}
        self.summary: str | None = None
        self.transcript: list[dict[str, str]] = []
        if outcome == "completed":
            self.entity, self.summary, self.transcript = derive_facts(
                name, agent_id, metadata, created, self.end
            )
        elif outcome == "voicemail":
            self.summary = f"Left a voicemail for {name}."
            self.transcript = [{"role": "agent", "text": f"Hello {name}, please call us back."}]

    def status(self, now: float) -> str:
        if now >= self.end:
            return self.outcome
        f = (now - self.created) / (self.end - self.created)
        if f < 0.1:
            return "queued"
        if f >= 0.3 and self.outcome in CONNECTED:
            return "in_progress"
        return "ringing"

    def record(self, now: float) -> dict[str, Any]:
        """The call-history record at ``now`` (cached once the call is final)."""
        if self._final_record is not None:
            return self._final_record
        final = now >= self.end
        rec = {
            "call_id": self.call_id,
            "agent_id": self.agent_id,
            "contact_number": self.contact_number,
            "name": self.name,
            "call_type": self.call_type,
            "call_status": self.status(now),
            "duration_ms": (round(self.total_s * 1000) if self.outcome in CONNECTED else 0)
            if final
            else None,
            "created_at": iso_utc(self.created),
            "ended_at": iso_utc(self.end) if final else None,
        }
        if final:
            self._final_record = rec
        return rec

    def record_json(self, now: float) -> bytes:
        """The record as JSON bytes; encoded once for good when final (history pages are hot)."""
        if self._final_json is not None:
            return self._final_json
        data = json.dumps(self.record(now), separators=(",", ":")).encode()
        if self._final_record is not None:
            self._final_json = data
        return data

    def details(self, now: float) -> dict[str, Any]:
        """call_details: the record plus summary, entity and transcript (once final)."""
        rec = dict(self.record(now))
        final = now >= self.end
        rec["summary"] = self.summary if final else None
        rec["entity"] = dict(self.entity) if final else {}
        rec["transcript"] = list(self.transcript) if final else []
        rec["metadata"] = self.metadata
        return rec

    def ground_truth(self, now: float) -> dict[str, Any]:
        rec = self.details(now)
        rec["status"] = rec["call_status"]
        rec["final"] = now >= self.end
        rec["api_key_fingerprint"] = self.fingerprint
        rec["response"] = self.response
        del rec["transcript"]
        return rec


def draw_outcome(rng: random.Random, answer_rate: float) -> str:
    if rng.random() < answer_rate:
        return "completed"
    u = rng.random()
    for status, p in _MISSED:
        if u < p:
            return status
        u -= p
    return _MISSED[-1][0]


def check_hooks(metadata: Mapping[str, Any]) -> str | None:
    """Why the test hooks in ``metadata`` are unusable, or None when they are fine."""
    outcome = metadata.get("sandbox_outcome")
    if outcome is not None and outcome not in FINAL_STATUSES:
        return (
            f"metadata.sandbox_outcome must be one of {', '.join(FINAL_STATUSES)}, got {outcome!r}"
        )
    seconds = metadata.get("sandbox_call_seconds")
    if seconds is not None:
        try:
            ok = float(seconds) > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            return f"metadata.sandbox_call_seconds must be a positive number, got {seconds!r}"
    return None
