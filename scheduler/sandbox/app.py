"""The sandbox's Vaani front-end (``/api/...``), the ground truth (``/sandbox/...``), and
``build_app``, which serves the front-end ``--provider`` names (:mod:`scheduler.sandbox.fronts`).

``build_app(config)`` returns the ASGI application: the Starlette routes behind the ``Gate``
(auth, rate limit, faults, statistics). Request validation follows the real service: 422 with a
``{"detail": "..."}`` body naming the field and the rule, 403 for an agent the key does not own
(``--agents``), 402 once the key has placed ``--balance-calls`` calls.
"""

from __future__ import annotations

import json
import re
from typing import Any

import phonenumbers
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from scheduler.sandbox import recordings
from scheduler.sandbox.config import SandboxConfig
from scheduler.sandbox.fronts import FrontEnd, detail_error, front_end, header
from scheduler.sandbox.gate import Gate
from scheduler.sandbox.sim import check_hooks
from scheduler.sandbox.state import Account, SandboxState

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MAX_PAGE_SIZE = 200


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def _account(request: Request) -> Account:
    account: Account = request.scope["sandbox.account"]
    return account


def e164_problem(number: Any) -> str | None:
    """Why ``number`` is not an E.164 phone number, or None when it is one."""
    if not isinstance(number, str) or not number:
        return "contact_number is required for telephony calls"
    if not _E164.match(number):
        return (
            f"contact_number {number!r} is not in E.164 format "
            "(a '+', the country code and the number, digits only, e.g. +14155550123)"
        )
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return f"contact_number {number!r} has an unknown country code"
    if not phonenumbers.is_possible_number(parsed):
        return f"contact_number {number!r} is not a possible phone number for its country"
    return None


async def health(request: Request) -> Response:
    return JSONResponse({"status": "healthy", "service": "vaani-sandbox"})


def _validate(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the request body must be a JSON object"
    agent_id = body.get("agent_id")
    if not isinstance(agent_id, str) or not agent_id.strip():
        return "agent_id is required"
    medium = body.get("medium", "telephony")
    if medium != "telephony":
        return (
            f"medium must be 'telephony' (the sandbox simulates phone calls only), got {medium!r}"
        )
    problem = e164_problem(body.get("contact_number"))
    if problem:
        return problem
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        return "name is required for telephony calls"
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        return "metadata must be a JSON object"
    return check_hooks(metadata or {})


async def trigger_call(request: Request) -> Response:
    state = _state(request)
    account = _account(request)
    try:
        body = json.loads(await request.body())
    except ValueError:
        return _error(422, "the request body is not valid JSON")
    problem = _validate(body)
    if problem:
        return _error(422, problem)
    agent_id = body["agent_id"]
    agents = state.config.agents
    if agents is not None and agent_id not in agents:
        return _error(403, f"agent {agent_id!r} does not belong to this API key")
    balance = state.config.balance_calls
    if balance is not None and account.placed >= balance:
        return _error(402, "Insufficient balance: top up the wallet to place more calls")
    call = state.place(
        account,
        agent_id=agent_id,
        contact_number=body["contact_number"],
        name=body["name"],
        metadata=dict(body.get("metadata") or {}),
    )
    request.scope["sandbox.call"] = call
    return JSONResponse(
        {
            "call_id": call.call_id,
            "status": "queued",
            "agent_id": agent_id,
            "contact_number": call.contact_number,
            "message": "Call queued",
        }
    )


def _int_param(request: Request, name: str, default: int) -> int | str:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        return f"{name} must be an integer, got {raw!r}"


async def call_history(request: Request) -> Response:
    page = _int_param(request, "page", 1)
    size = _int_param(request, "page_size", 50)
    for value in (page, size):
        if isinstance(value, str):
            return _error(422, value)
    assert isinstance(page, int) and isinstance(size, int)
    if page < 1:
        return _error(422, f"page must be >= 1, got {page}")
    if not 1 <= size <= MAX_PAGE_SIZE:
        return _error(422, f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {size}")
    state = _state(request)
    now = state.clock()
    state.catch_up(now)
    calls, total = _account(request).page(page, size)
    pagination = {
        "page": page,
        "page_size": size,
        "total": total,
        "total_pages": (total + size - 1) // size,
    }
    # records are pre-encoded (final ones once for good): a page is a join, not a dumps
    body = b"".join(
        (
            b'{"data":[',
            b",".join([c.record_json(now) for c in calls]),
            b'],"pagination":',
            json.dumps(pagination).encode(),
            b"}",
        )
    )
    return Response(body, media_type="application/json")


def _find(request: Request) -> tuple[SandboxState, Any]:
    state = _state(request)
    state.catch_up()
    return state, _account(request).by_id.get(request.path_params["call_id"])


async def call_details(request: Request) -> Response:
    state, call = _find(request)
    if call is None:
        return _error(404, f"call {request.path_params['call_id']!r} not found")
    return JSONResponse(call.details(state.clock()))


async def transcript(request: Request) -> Response:
    state, call = _find(request)
    if call is None:
        return _error(404, f"call {request.path_params['call_id']!r} not found")
    details = call.details(state.clock())
    return JSONResponse({"call_id": call.call_id, "transcript": details["transcript"]})


async def sandbox_calls(request: Request) -> Response:
    transcripts = request.query_params.get("transcripts", "") in ("1", "true")
    return JSONResponse(_state(request).ground_truth(transcripts=transcripts))


async def sandbox_stats(request: Request) -> Response:
    return JSONResponse(_state(request).stats_dict())


async def sandbox_reset(request: Request) -> Response:
    _state(request).reset()
    return JSONResponse({"status": "reset"})


def vaani_routes() -> list[BaseRoute]:
    """The Vaani wire (``seeds/000``): trigger a call, read the history, details, transcript,
    and stream a recording (:mod:`scheduler.sandbox.recordings`)."""
    return [
        Route("/api/health", health, methods=["GET"]),
        Route("/api/trigger-call/", trigger_call, methods=["POST"]),
        Route("/api/call-history", call_history, methods=["GET"]),
        Route("/api/call_details/{call_id}", call_details, methods=["GET"]),
        Route("/api/transcript/{call_id}", transcript, methods=["GET"]),
        Route("/api/stream/{call_id}", recordings.stream, methods=["GET"]),
    ]


def _x_api_key(scope: dict[str, Any]) -> str | None:
    return header(scope, b"x-api-key")


FRONT = FrontEnd(
    name="vaani",
    api_prefix="/api/",
    health_paths=frozenset({"/api/health"}),
    routes=vaani_routes,
    credential=_x_api_key,
    error_body=detail_error,
)


def ground_truth_routes() -> list[BaseRoute]:
    """``/sandbox/*``: what really happened, the same for every front-end."""
    return [
        Route("/sandbox/calls", sandbox_calls, methods=["GET"]),
        Route("/sandbox/stats", sandbox_stats, methods=["GET"]),
        Route("/sandbox/reset", sandbox_reset, methods=["POST"]),
        Route("/sandbox/recording/{call_id}", recordings.ground_truth, methods=["GET"]),
    ]


def build_app(config: SandboxConfig, state: SandboxState | None = None) -> Gate:
    """The sandbox as an ASGI application: the front-end of ``config.provider`` and the ground
    truth, behind the ``Gate``."""
    front = front_end(config.provider)
    state = state or SandboxState(config)
    app = Starlette(routes=[*front.routes(), *ground_truth_routes()])
    app.state.sandbox = state
    return Gate(app, state, front)
