"""The sandbox's vaani.ai front-end (``seeds/003``) over the shared call engine.

Paths: ``POST /calls/outbound_call``, ``GET /calls/logs`` (filters ``page``, ``page_size``
1..100, ``call_type`` phone|web, ``agent_id``, ``start_date``, ``end_date``; newest first),
``GET /calls/export-csv`` (the same filters, as CSV), ``GET /calls/{call_log_id}``. A key is
presented as the ``access_token`` cookie or in ``X-API-Key``. Errors are ``{"detail": ...}``
with the seed's words: 400 "Invalid phone number format", 401 "Invalid or missing token",
404 "Agent not found" (``--agents`` lists the registered agent phone numbers), 404 "Call log
not found"; a body of the wrong shape is 422, ``--balance-calls`` spent is 402. Rate limits:
429 with ``Retry-After`` only (the seed documents no rate-limit headers).

A call log is what :mod:`scheduler.providers.vaani_ai_wire` reads. The engine's statuses map
as follows (the seed names none; this is our assumption of the real service):

==================  ============  ==============
engine status       ``status``    ``end_reason``
==================  ============  ==============
queued              queued        null
ringing             ringing       null
in_progress         in-progress   null
completed           completed     completed
voicemail           completed     voicemail
no_answer           failed        no_answer
busy                failed        busy
failed              failed        failed
==================  ============  ==============

Entities are ``extracted_data``, the summary ``summary``; ``dynamic_variables`` (the engine's
metadata, test hooks included) are echoed; ``customer_name`` in them is the callee's name.
Every call is ``call_type: "phone"``; ``direction`` tells inbound background calls apart.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from scheduler.sandbox.app import _account, _error, _state, e164_problem
from scheduler.sandbox.fronts import FrontEnd, Header, Scope, detail_error, header, retry_after
from scheduler.sandbox.limits import Decision
from scheduler.sandbox.sim import Call, check_hooks, iso_utc
from scheduler.sandbox.state import Account

MAX_PAGE_SIZE = 100
_STATUS = {"queued": "queued", "ringing": "ringing", "in_progress": "in-progress"}
_CONNECTED = frozenset({"completed", "voicemail"})
_ENDPOINTS = frozenset({"outbound_call", "logs", "export-csv", "generate-token"})
_CSV_FIELDS: tuple[str, ...] = ("id", "created_at", "call_type", "direction", "phone_number")
_CSV_FIELDS += ("agent_phone_number", "status", "end_reason", "duration", "summary")


def call_log(call: Call, now: float) -> dict[str, Any]:
    """The call log of ``call`` at ``now`` (see the module docstring)."""
    details = call.details(now)
    state = call.status(now)
    final = now >= call.end
    agent = call.agent_id
    ms = details["duration_ms"]
    return {
        "id": call.call_id,
        "call_type": "phone",
        "direction": call.call_type,
        "agent_id": "agt_" + agent.lstrip("+") if agent.startswith("+") else agent,
        "agent_phone_number": agent if agent.startswith("+") else None,
        "phone_number": call.contact_number,
        "status": ("completed" if state in _CONNECTED else "failed") if final else _STATUS[state],
        "end_reason": state if final else None,
        "duration": None if ms is None else ms / 1000,
        "created_at": iso_utc(call.created),
        "ended_at": details["ended_at"],
        "summary": details["summary"],
        "extracted_data": details["entity"],
        "transcript": details["transcript"],
        "dynamic_variables": call.metadata,
    }


async def outbound_call(request: Request) -> Response:
    state, account = _state(request), _account(request)
    try:
        body = json.loads(await request.body())
    except ValueError:
        return _error(422, "the request body is not valid JSON")
    if not isinstance(body, dict):
        return _error(422, "the request body must be a JSON object")
    agent, number = body.get("agent_phone_number"), body.get("phone_number_to_dial")
    if e164_problem(agent) or e164_problem(number):
        return _error(400, "Invalid phone number format")
    assert isinstance(agent, str) and isinstance(number, str)
    variables = body.get("dynamic_variables")
    if variables is None:
        variables = {}
    if not isinstance(variables, dict):
        return _error(422, "dynamic_variables must be a JSON object")
    problem = check_hooks(variables)
    if problem:
        return _error(422, problem.replace("metadata.", "dynamic_variables.", 1))
    if state.config.agents is not None and agent not in state.config.agents:
        return _error(404, "Agent not found")
    balance = state.config.balance_calls
    if balance is not None and account.placed >= balance:
        return _error(402, "Insufficient balance")
    name = variables.get("customer_name")
    call = state.place(
        account,
        agent_id=agent,
        contact_number=number,
        name=name if isinstance(name, str) and name.strip() else "Customer",
        metadata=dict(variables),
    )
    request.scope["sandbox.call"] = call
    return JSONResponse(
        {"call_log_id": call.call_id, "status": "queued", "message": "Outbound call initiated"}
    )


def _instant(raw: str | None, *, end: bool) -> datetime | str | None:
    """A query date as an aware instant (a bare date: its start, or the next day's for
    ``end``); the problem as a string when it cannot be read."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text) + timedelta(days=1 if end else 0)
            return datetime.combine(day, time(), UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        return f"{'end_date' if end else 'start_date'} must be an ISO 8601 date, got {raw!r}"
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Filters:
    """The ``/calls/logs`` query, checked (``problem`` says what is wrong with it)."""

    def __init__(self, request: Request) -> None:
        q = request.query_params
        self.problem: str | None = None
        self.page = self._int(q.get("page"), "page", 1)
        self.size = self._int(q.get("page_size"), "page_size", 25)
        if self.problem is None and self.page < 1:
            self.problem = f"page must be >= 1, got {self.page}"
        if self.problem is None and not 1 <= self.size <= MAX_PAGE_SIZE:
            self.problem = f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {self.size}"
        self.call_type = q.get("call_type") or None
        if self.problem is None and self.call_type not in (None, "phone", "web"):
            self.problem = f"call_type must be 'phone' or 'web', got {self.call_type!r}"
        self.agent_id = q.get("agent_id") or None
        start, end = _instant(q.get("start_date"), end=False), _instant(q.get("end_date"), end=True)
        for value in (start, end):
            if isinstance(value, str) and self.problem is None:
                self.problem = value
        self.start = start.timestamp() if isinstance(start, datetime) else None
        self.end = end.timestamp() if isinstance(end, datetime) else None

    def _int(self, raw: str | None, name: str, default: int) -> int:
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            self.problem = self.problem or f"{name} must be an integer, got {raw!r}"
            return default

    @property
    def plain(self) -> bool:
        """No filter that drops any engine call (all of them are phone calls)."""
        return self.call_type != "web" and not (self.agent_id or self.start or self.end)

    def matching(self, account: Account, now: float) -> Iterator[Call]:
        """The account's calls that pass, newest first (stops at ``start_date``)."""
        if self.call_type == "web":
            return
        for call in reversed(account.history):
            if self.start is not None and call.created < self.start:
                return
            if self.end is not None and call.created >= self.end:
                continue
            if self.agent_id and call_log(call, now)["agent_id"] != self.agent_id:
                continue
            yield call


def _prepare(request: Request) -> tuple[Filters, Account, float] | Response:
    """The checked filters, the caller's account and "now", or the 422 to answer."""
    filters = Filters(request)
    if filters.problem:
        return _error(422, filters.problem)
    state = _state(request)
    now = state.clock()
    state.catch_up(now)
    return filters, _account(request), now


async def logs(request: Request) -> Response:
    prepared = _prepare(request)
    if isinstance(prepared, Response):
        return prepared
    filters, account, now = prepared
    if filters.plain:
        calls, total = account.page(filters.page, filters.size)
    else:
        every = list(filters.matching(account, now))
        skip = (filters.page - 1) * filters.size
        calls, total = every[skip : skip + filters.size], len(every)
    return JSONResponse(
        {
            "items": [call_log(c, now) for c in calls],
            "total": total,
            "page": filters.page,
            "page_size": filters.size,
            "total_pages": (total + filters.size - 1) // filters.size,
        }
    )


async def export_csv(request: Request) -> Response:
    prepared = _prepare(request)
    if isinstance(prepared, Response):
        return prepared
    filters, account, now = prepared
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for call in filters.matching(account, now):
        writer.writerow(call_log(call, now))
    return Response(out.getvalue(), media_type="text/csv")


async def single_log(request: Request) -> Response:
    state = _state(request)
    state.catch_up()
    call = _account(request).by_id.get(request.path_params["call_log_id"])
    if call is None:
        return _error(404, "Call log not found")
    return JSONResponse(call_log(call, state.clock()))


def routes() -> list[BaseRoute]:
    """The vaani.ai wire: fixed paths before ``/calls/{call_log_id}``."""
    return [
        Route("/calls/outbound_call", outbound_call, methods=["POST"]),
        Route("/calls/logs", logs, methods=["GET"]),
        Route("/calls/export-csv", export_csv, methods=["GET"]),
        Route("/calls/{call_log_id}", single_log, methods=["GET"]),
    ]


def credential(scope: Scope) -> str | None:
    """The ``access_token`` cookie, else ``X-API-Key``."""
    for part in (header(scope, b"cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "access_token" and value:
            return value
    return header(scope, b"x-api-key")


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """``{"detail": ...}``, with the seed's words for a refused key."""
    return detail_error(status, code, "Invalid or missing token" if status == 401 else message)


def rate_headers(decision: Decision) -> list[Header]:
    """Only ``Retry-After``, on a refusal: the seed documents no ``X-RateLimit-*``."""
    return [] if decision.allowed else retry_after(decision.retry_after_s)


def endpoint(path: str) -> str:
    """Statistics bucket: the fixed endpoints by name, every call log as "call"."""
    rest = path.removeprefix("/calls/").split("/", 1)[0]
    return rest if rest in _ENDPOINTS else "call"


FRONT = FrontEnd(
    name="vaani-ai",
    api_prefix="/calls/",
    health_paths=frozenset(),
    routes=routes,
    credential=credential,
    error_body=error_body,
    rate_headers=rate_headers,
    endpoint_name=endpoint,
)
