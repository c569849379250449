"""The sandbox's Voisnap front-end (``sandbox --provider voisnap``), over the shared engine.

It serves the REST paths :mod:`scheduler.providers.voisnap` ASSUMES (the seed documents only
the SDK), with the same faults, rate limits and ground truth as every front-end:

* ``POST /v1/outbound-calls`` ``{agent_id, to_number, metadata, max_retries,
  retry_delay_minutes, scheduled_for}`` -> 201 ``{id: "obc_...", conversation_id, status:
  "queued", ...}``. The conversation id IS the engine's call id (as ``/sandbox/calls`` shows
  it). The contact's name is ``metadata.contact_name``. The sandbox simulates no provider-side
  retries nor scheduling: ``max_retries`` other than 0 and ``scheduled_for`` get a 422;
* ``GET /v1/outbound-calls?page&page_size&status``: newest first, pages of 1..100,
  ``{data, page, page_size, total, total_pages}``;
* ``GET /v1/conversations/{id}``, ``.../analysis`` (409 until the call has ended),
  ``.../transcript`` (``{turns: [{speaker, text, start_time}]}``).

Auth is ``Authorization: Bearer KEY``. Errors are ``{"detail", "trace_id"}``, plus ``errors:
[{field, message}]`` for a 422 (every problem of the request, not just the first). A 429 says
``retry_after`` (whole seconds) in its body; no rate-limit header is sent (the seed names
none: an assumption).

Statuses (engine outcome -> Voisnap ``status`` / ``end_reason``; the seed shows only
``completed``, the rest is an ASSUMPTION): queued, ringing, in_progress as they are;
completed -> completed/completed; voicemail -> completed/voicemail; no_answer ->
failed/no_answer; busy -> failed/busy; failed -> failed/error.

Analysis of an ended call: ``summary`` is the engine's; for a completed call ``extracted_data``
is the engine's entity, ``intent`` is ``interested`` or ``not_interested`` and ``sentiment``
``positive`` or ``negative`` (both from the entity's ``interested``); any other call has
``intent`` and ``sentiment`` null and no extracted data.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from scheduler.sandbox.app import _account, _state, e164_problem
from scheduler.sandbox.fronts import FrontEnd, Header, Scope, header
from scheduler.sandbox.sim import Call, check_hooks, iso_utc

PREFIX = "/v1/"
MAX_PAGE_SIZE = 100
_ENDINGS = {
    "completed": ("completed", "completed"),
    "voicemail": ("completed", "voicemail"),
    "no_answer": ("failed", "no_answer"),
    "busy": ("failed", "busy"),
    "failed": ("failed", "error"),
}


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """Voisnap's error: ``detail`` and a ``trace_id`` (``code`` is not on its wire)."""
    return {"detail": message, "trace_id": f"trc_{uuid.uuid4().hex[:16]}"}


def _error(status: int, message: str, problems: Sequence[tuple[str, str]] = ()) -> JSONResponse:
    body = error_body(status, "", message)
    if problems:
        body["errors"] = [{"field": f, "message": m} for f, m in problems]
    return JSONResponse(body, status_code=status)


def _retry_body(body: dict[str, Any], wait_s: float) -> dict[str, Any]:
    return {**body, "retry_after": max(1, math.ceil(wait_s))}


def _no_headers(_: Any) -> list[Header]:
    return []


# --------------------------------------------------------------------------- wire shapes


def ending(call: Call, now: float) -> tuple[str, str | None]:
    """The call's Voisnap ``status`` and ``end_reason`` at ``now``."""
    status = call.status(now)
    return _ENDINGS.get(status, (status, None))


def _seconds(call: Call, now: float) -> float | None:
    rec = call.record(now)
    duration = rec["duration_ms"]
    return None if duration is None else duration / 1000


def outbound_call(call: Call, now: float) -> dict[str, Any]:
    """The outbound-call record (create answer, listing)."""
    status, reason = ending(call, now)
    final = now >= call.end
    return {
        "id": f"obc_{call.call_id}",
        "conversation_id": call.call_id,
        "agent_id": call.agent_id,
        "direction": call.call_type,
        "to_number": call.contact_number,
        "status": status,
        "end_reason": reason,
        "duration_seconds": _seconds(call, now),
        "metadata": call.metadata,
        "created_at": iso_utc(call.created),
        "ended_at": iso_utc(call.end) if final else None,
        "max_retries": 0,
    }


def conversation(call: Call, now: float) -> dict[str, Any]:
    status, reason = ending(call, now)
    return {
        "id": call.call_id,
        "outbound_call_id": f"obc_{call.call_id}",
        "agent_id": call.agent_id,
        "channel": "phone",
        "direction": call.call_type,
        "to_number": call.contact_number,
        "status": status,
        "end_reason": reason,
        "duration_seconds": _seconds(call, now),
        "started_at": iso_utc(call.created),
        "ended_at": iso_utc(call.end) if now >= call.end else None,
        "metadata": call.metadata,
    }


def analysis(call: Call) -> dict[str, Any]:
    """The analysis of an ended call (see the module docstring)."""
    completed = call.outcome == "completed"
    interested = bool(call.entity.get("interested"))
    return {
        "conversation_id": call.call_id,
        "summary": call.summary,
        "intent": ("interested" if interested else "not_interested") if completed else None,
        "sentiment": ("positive" if interested else "negative") if completed else None,
        "extracted_data": dict(call.entity),
    }


# --------------------------------------------------------------------------- handlers


def _problems(body: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    agent_id = body.get("agent_id")
    if not isinstance(agent_id, str) or not agent_id.strip():
        out.append(("agent_id", "agent_id is required"))
    number = body.get("to_number")
    problem = e164_problem(number)
    if problem:
        out.append(("to_number", problem.replace("contact_number", "to_number")))
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        out.append(("metadata", "metadata must be a JSON object"))
    else:
        hooks = check_hooks(metadata or {})
        if hooks:
            out.append(("metadata", hooks))
    retries = body.get("max_retries")
    if retries is not None and retries != 0:
        out.append(("max_retries", f"the sandbox simulates no retries: send 0, got {retries!r}"))
    if body.get("scheduled_for") is not None:
        out.append(("scheduled_for", "the sandbox places calls now: omit scheduled_for"))
    return out


async def create_call(request: Request) -> Response:
    state = _state(request)
    account = _account(request)
    try:
        body = json.loads(await request.body())
    except ValueError:
        return _error(422, "the request body is not valid JSON")
    if not isinstance(body, dict):
        return _error(422, "the request body must be a JSON object")
    problems = _problems(body)
    if problems:
        return _error(422, "Validation failed", problems)
    agent_id = body["agent_id"]
    agents = state.config.agents
    if agents is not None and agent_id not in agents:
        return _error(403, f"agent {agent_id!r} does not belong to this API key")
    balance = state.config.balance_calls
    if balance is not None and account.placed >= balance:
        return _error(402, "Insufficient credits: top up to place more calls")
    metadata = dict(body.get("metadata") or {})
    call = state.place(
        account,
        agent_id=agent_id,
        contact_number=body["to_number"],
        name=str(metadata.get("contact_name") or "Contact"),
        metadata=metadata,
    )
    request.scope["sandbox.call"] = call
    return JSONResponse(outbound_call(call, state.clock()), status_code=201)


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int | str:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return f"{name} must be an integer, got {raw!r}"
    return value if low <= value <= high else f"{name} must be between {low} and {high}"


async def list_calls(request: Request) -> Response:
    page = _int_param(request, "page", 1, 1, 10**9)
    size = _int_param(request, "page_size", 20, 1, MAX_PAGE_SIZE)
    problems = [(n, v) for n, v in (("page", page), ("page_size", size)) if isinstance(v, str)]
    if problems:
        return _error(422, "Validation failed", problems)
    assert isinstance(page, int) and isinstance(size, int)
    state = _state(request)
    now = state.clock()
    state.catch_up(now)
    account = _account(request)
    wanted = request.query_params.get("status")
    if wanted:  # a filtered listing reads the whole history (the scheduler never asks one)
        matching = [c for c in reversed(account.history) if ending(c, now)[0] == wanted]
        total = len(matching)
        calls = matching[(page - 1) * size : page * size]
    else:
        calls, total = account.page(page, size)
    return JSONResponse(
        {
            "data": [outbound_call(c, now) for c in calls],
            "page": page,
            "page_size": size,
            "total": total,
            "total_pages": (total + size - 1) // size,
        }
    )


def _find(request: Request) -> tuple[float, Call | None]:
    state = _state(request)
    state.catch_up()
    return state.clock(), _account(request).by_id.get(request.path_params["conv_id"])


def _missing(request: Request) -> JSONResponse:
    return _error(404, f"conversation {request.path_params['conv_id']!r} not found")


async def get_conversation(request: Request) -> Response:
    now, call = _find(request)
    return _missing(request) if call is None else JSONResponse(conversation(call, now))


async def get_analysis(request: Request) -> Response:
    now, call = _find(request)
    if call is None:
        return _missing(request)
    if now < call.end:
        return _error(409, "the analysis is not ready: the conversation has not ended")
    return JSONResponse(analysis(call))


async def get_transcript(request: Request) -> Response:
    now, call = _find(request)
    if call is None:
        return _missing(request)
    turns = call.transcript if now >= call.end else []
    step = call.total_s / max(1, len(turns))
    return JSONResponse(
        {
            "conversation_id": call.call_id,
            "turns": [
                {
                    "speaker": "agent" if t["role"] == "agent" else "customer",
                    "text": t["text"],
                    "start_time": round(i * step, 3),
                }
                for i, t in enumerate(turns)
            ],
        }
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/outbound-calls", create_call, methods=["POST"]),
        Route("/v1/outbound-calls", list_calls, methods=["GET"]),
        Route("/v1/conversations/{conv_id}", get_conversation, methods=["GET"]),
        Route("/v1/conversations/{conv_id}/analysis", get_analysis, methods=["GET"]),
        Route("/v1/conversations/{conv_id}/transcript", get_transcript, methods=["GET"]),
    ]


def _bearer(scope: Scope) -> str | None:
    value = header(scope, b"authorization")
    if value is None or not value.lower().startswith("bearer "):
        return None
    return value[7:].strip() or None


def _bucket(path: str) -> str:
    parts = path[len(PREFIX) :].split("/")
    if parts[0] == "conversations" and len(parts) > 2:
        return parts[2]  # analysis, transcript
    return parts[0] or "other"


FRONT = FrontEnd(
    name="voisnap",
    api_prefix=PREFIX,
    health_paths=frozenset(),
    routes=routes,
    credential=_bearer,
    error_body=error_body,
    rate_headers=_no_headers,
    retry_headers=_no_headers,
    retry_body=_retry_body,
    endpoint_name=_bucket,
)
