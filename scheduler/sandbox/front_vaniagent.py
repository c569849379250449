"""The sandbox's VaniAgent front-end (``seeds/001``): ``/v1/calls`` over the shared engine.

``sandbox --provider vaniagent`` serves ``POST /v1/calls``, ``GET /v1/calls?limit&offset``
(``status`` and ``agent_id`` filters, at most 100 a page, NEWEST FIRST) and
``GET /v1/calls/{id}``, authenticated with ``Authorization: Bearer KEY``, with the faults,
rate limit and ground truth (``/sandbox/*``) every front-end has.

Status mapping (fixed: the webhook sender and the adapter rely on it). The seed names four
statuses and no word for a missed call, so a final call says why in ``end_reason`` (our
assumption, mirrored by :mod:`scheduler.providers.vaniagent_wire`):

==============================  =============  ==============
sim status                      ``status``     ``end_reason``
==============================  =============  ==============
queued, ringing                 initiated      null
in_progress                     in_progress    null
completed                       completed      completed
voicemail                       completed      voicemail
no_answer, busy, failed         failed         the sim status
==============================  =============  ==============

A call's fields: ``id`` (the sim's call id), ``agent_id``, ``to_number``, ``from_number``,
``status``, ``end_reason``, ``duration`` (seconds, 3 decimals; 0 for calls that never
connected, null before the end), ``transcript`` (text, ``"role: text"`` lines), ``sentiment``
(for connected calls once final: ``negative`` on an opt-out, else ``positive`` when the sim
says interested, else ``neutral``; null otherwise), ``summary``, ``transcript_url`` and
``recording_url`` (connected calls once final), ``metadata`` (echoed as sent),
``created_at`` and ``completed_at`` (ISO 8601, ``Z``). Listed records are the same without
the transcript. The sim needs a name for its summary: it is the metadata's
``_campaigns_name`` (what our adapter sends), else ``"Customer"``.

Errors are ``{"error": {"code", "message", "param", "type"}}``: 400 ``invalid_request`` for a
bad body or query, 401 ``authentication_failed``, 402 ``insufficient_credits`` after
``--balance-calls``, 404 ``resource_not_found`` for an unknown call or an agent outside
``--agents``, 429 ``rate_limit_exceeded``, 5xx ``internal_error``. Rate-limit headers are
``X-RateLimit-Limit/Remaining`` and ``X-RateLimit-Reset`` as a UNIX TIMESTAMP: when the full
quota is back, or, on a 429, when the next request will be accepted (no ``Retry-After``).

Webhooks (``--webhook-url``, ``--webhook-secret``): as each call ends, ``call.completed``
(status ``completed``) or ``call.failed`` (status ``failed``), whose ``data`` is
:func:`event_data` (the get-call fields above, plus ``call_id``), sent by
:mod:`scheduler.sandbox.webhooks` with the ``webhook_*`` faults of ``--faults``.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from scheduler.sandbox.app import _account, _int_param, _state, e164_problem
from scheduler.sandbox.fronts import FrontEnd, Header, Scope, header
from scheduler.sandbox.limits import Decision
from scheduler.sandbox.sim import CONNECTED, Call, check_hooks, iso_utc
from scheduler.sandbox.state import Account
from scheduler.sandbox.webhooks import sender

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
NAME_KEY = "_campaigns_name"
ASSET_BASE = "https://assets.vaniagent.sandbox"
_STATUSES = {"queued": "initiated", "ringing": "initiated", "in_progress": "in_progress"}
_TYPES = {
    400: "validation_error",
    401: "authentication_error",
    402: "billing_error",
    404: "not_found_error",
    429: "rate_limit_error",
}
_CODES = {
    "invalid_api_key": "authentication_failed",
    "server_error": "internal_error",
    "bad_gateway": "internal_error",
}


def error_body(status: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    """VaniAgent's error shape; the Gate's generic codes become VaniAgent's."""
    kind = _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {
        "error": {"code": _CODES.get(code, code), "message": message, "param": param, "type": kind}
    }


def _error(status: int, code: str, message: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, code, message, param), status_code=status)


def _invalid(message: str, param: str | None) -> JSONResponse:
    return _error(400, "invalid_request", message, param)


def wire_status(call: Call, now: float) -> tuple[str, str | None]:
    """(``status``, ``end_reason``) of ``call`` at ``now`` (the table in the docstring)."""
    sim = call.status(now)
    if now < call.end:
        return _STATUSES.get(sim, "initiated"), None
    return ("completed" if sim in CONNECTED else "failed"), sim


def sentiment(call: Call) -> str | None:
    """The final call's sentiment (see the docstring)."""
    if call.outcome not in CONNECTED:
        return None
    if call.entity.get("opt_out"):
        return "negative"
    return "positive" if call.entity.get("interested") else "neutral"


def transcript_text(call: Call) -> str:
    return "\n".join(f"{turn['role']}: {turn['text']}" for turn in call.transcript)


def record(call: Call, now: float, from_number: str | None, *, full: bool) -> dict[str, Any]:
    """The call as VaniAgent shows it; ``full`` adds the transcript (get-call only)."""
    status, end_reason = wire_status(call, now)
    final = end_reason is not None
    connected = final and call.outcome in CONNECTED
    duration = (round(call.total_s, 3) if connected else 0) if final else None
    rec: dict[str, Any] = {
        "id": call.call_id,
        "agent_id": call.agent_id,
        "to_number": call.contact_number,
        "from_number": from_number,
        "status": status,
        "end_reason": end_reason,
        "duration": duration,
        "sentiment": sentiment(call) if final else None,
        "summary": call.summary if final else None,
        "transcript_url": f"{ASSET_BASE}/transcripts/{call.call_id}.txt" if connected else None,
        "recording_url": f"{ASSET_BASE}/recordings/{call.call_id}.mp3" if connected else None,
        "metadata": call.metadata,
        "created_at": iso_utc(call.created),
        "completed_at": iso_utc(call.end) if final else None,
    }
    if full:
        rec["transcript"] = transcript_text(call) if final else ""
    return rec


def event_data(call: Call, from_number: str | None = None) -> dict[str, Any]:
    """The ``data`` of the webhook event for an ended ``call``: the same fields and values as
    ``GET /v1/calls/{id}`` shows (without the transcript), plus ``call_id`` as the seed's
    webhook payload names the id, so that a call settles the same polled or pushed."""
    data = record(call, call.end, from_number, full=False)
    data["call_id"] = call.call_id
    return data


def webhook_event(call: Call) -> tuple[str, dict[str, Any]]:
    """(event type, data) of the webhook for an ended ``call``: ``call.completed`` when VaniAgent
    says ``completed`` (answered, voicemail), else ``call.failed``; what the sender posts.
    ``from_number`` is null there (the sender never sees the make-call request)."""
    data = event_data(call)
    return ("call.completed" if data["status"] == "completed" else "call.failed"), data


def _from_numbers(request: Request) -> dict[str, str]:
    """The ``from_number`` of each placed call (the engine's Call has no such field)."""
    numbers: dict[str, str] | None = getattr(request.app.state, "vaniagent_from", None)
    if numbers is None:
        numbers = request.app.state.vaniagent_from = {}
    return numbers


def _problem(body: Any) -> tuple[str, str | None] | None:
    """(message, param) of what is wrong with a make-call body, or None."""
    if not isinstance(body, dict):
        return "the request body must be a JSON object", None
    agent_id = body.get("agent_id")
    if not isinstance(agent_id, str) or not agent_id.strip():
        return "The 'agent_id' field is required", "agent_id"
    if body.get("to_number") in (None, ""):
        return "The 'to_number' field is required", "to_number"
    problem = e164_problem(body.get("to_number"))
    if problem:
        return problem.replace("contact_number", "to_number"), "to_number"
    caller = body.get("from_number")
    if caller is not None and e164_problem(caller):
        return f"from_number {caller!r} is not in E.164 format", "from_number"
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        return "metadata must be a JSON object", "metadata"
    hooks = check_hooks(metadata or {})
    return (hooks, "metadata") if hooks else None


async def make_call(request: Request) -> Response:
    state = _state(request)
    account = _account(request)
    try:
        body = json.loads(await request.body())
    except ValueError:
        return _invalid("the request body is not valid JSON", None)
    problem = _problem(body)
    if problem:
        return _invalid(*problem)
    agent_id = body["agent_id"]
    agents = state.config.agents
    if agents is not None and agent_id not in agents:
        return _error(404, "resource_not_found", f"Agent {agent_id!r} not found", "agent_id")
    balance = state.config.balance_calls
    if balance is not None and account.placed >= balance:
        return _error(402, "insufficient_credits", "Account has insufficient credits")
    metadata = dict(body.get("metadata") or {})
    call = state.place(
        account,
        agent_id=agent_id,
        contact_number=body["to_number"],
        name=str(metadata.get(NAME_KEY) or "Customer"),
        metadata=metadata,
    )
    if body.get("from_number") is not None:
        _from_numbers(request)[call.call_id] = body["from_number"]
    request.scope["sandbox.call"] = call
    answer = {
        "id": call.call_id,
        "agent_id": agent_id,
        "status": "initiated",
        "to_number": call.contact_number,
        "from_number": body.get("from_number"),
        "created_at": iso_utc(call.created),
    }
    return JSONResponse(answer, status_code=201)


def newest_first(
    account: Account, offset: int, limit: int, keep: Any = None
) -> tuple[list[Call], int]:
    """``limit`` calls from ``offset``, newest first, and the total (filtered by ``keep``)."""
    history = account.history
    if keep is None:
        end = len(history) - offset
        chunk = history[max(0, end - limit) : end] if end > 0 else []
        chunk.reverse()
        return chunk, len(history)
    matching = [c for c in reversed(history) if keep(c)]
    return matching[offset : offset + limit], len(matching)


async def list_calls(request: Request) -> Response:
    limit = _int_param(request, "limit", DEFAULT_LIMIT)
    offset = _int_param(request, "offset", 0)
    for name, value in (("limit", limit), ("offset", offset)):
        if isinstance(value, str):
            return _invalid(value, name)
    assert isinstance(limit, int) and isinstance(offset, int)
    if not 1 <= limit <= MAX_LIMIT:
        return _invalid(f"limit must be between 1 and {MAX_LIMIT}, got {limit}", "limit")
    if offset < 0:
        return _invalid(f"offset must be >= 0, got {offset}", "offset")
    state = _state(request)
    now = state.clock()
    state.catch_up(now)
    status = request.query_params.get("status")
    agent = request.query_params.get("agent_id")
    keep = None
    if status or agent:

        def keep(c: Call) -> bool:
            return (not status or wire_status(c, now)[0] == status) and (
                not agent or c.agent_id == agent
            )

    calls, total = newest_first(_account(request), offset, limit, keep)
    numbers = _from_numbers(request)
    data = [record(c, now, numbers.get(c.call_id), full=False) for c in calls]
    return JSONResponse({"data": data, "total": total, "limit": limit, "offset": offset})


async def get_call(request: Request) -> Response:
    state = _state(request)
    state.catch_up()
    call_id = request.path_params["call_id"]
    call = _account(request).by_id.get(call_id)
    if call is None:
        return _error(404, "resource_not_found", f"Call {call_id!r} not found", "call_id")
    from_number = _from_numbers(request).get(call_id)
    return JSONResponse(record(call, state.clock(), from_number, full=True))


def routes() -> list[BaseRoute]:
    """The VaniAgent call endpoints of ``seeds/001`` (agents are not simulated)."""
    return [
        Route("/v1/calls", make_call, methods=["POST"]),
        Route("/v1/calls", list_calls, methods=["GET"]),
        Route("/v1/calls/{call_id}", get_call, methods=["GET"]),
    ]


def bearer(scope: Scope) -> str | None:
    """The key of ``Authorization: Bearer KEY``."""
    value = header(scope, b"authorization")
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def rate_headers(decision: Decision) -> list[Header]:
    """``X-RateLimit-*`` with ``Reset`` as a Unix timestamp (see the docstring)."""
    wait = decision.reset_s if decision.allowed else decision.retry_after_s
    reset = math.ceil(time.time() + max(0.0, wait))
    return [
        (b"x-ratelimit-limit", str(decision.limit).encode()),
        (b"x-ratelimit-remaining", str(decision.remaining).encode()),
        (b"x-ratelimit-reset", str(reset).encode()),
    ]


def bucket(path: str) -> str:
    """Statistics buckets: ``calls`` (place and list) and ``call`` (get one call)."""
    rest = path[len("/v1/") :].strip("/")
    return "call" if rest.startswith("calls/") else rest.split("/", 1)[0] or "other"


def no_retry_after(seconds: float) -> list[Header]:
    """VaniAgent sends no ``Retry-After`` on a 429: the Reset timestamp says when."""
    return []


FRONT = FrontEnd(
    name="vaniagent",
    api_prefix="/v1/",
    health_paths=frozenset(),
    routes=routes,
    credential=bearer,
    error_body=error_body,
    rate_headers=rate_headers,
    retry_headers=no_retry_after,
    endpoint_name=bucket,
    background=sender(webhook_event),
)
