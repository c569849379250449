"""The console's ASGI app: the HTTP API over the services, and the one page.

:func:`create_app` takes the engine and :class:`ConsoleSettings`; routes are thin: read the
request, call a service (in a worker thread: the services are synchronous), shape JSON.
The product's errors become answers with the message alone, never a traceback: a bad input
400, an unknown id 404, a lifecycle step the status does not allow 409, an upload over the cap
413, a database that cannot be reached 503. The OpenAPI document is in
:mod:`campaigns.web.openapi`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from campaigns.errors import CampaignsError, UserError
from campaigns.services import dnc, lifecycle, manage
from campaigns.services.create import MIN_RETRY_DELAY, create_from_csv
from campaigns.services.outlook import outlook
from campaigns.services.preview import preview_csv
from campaigns.stats import campaign_stats
from campaigns.web.forms import parse_create_form
from campaigns.web.openapi import openapi_document
from campaigns.web.security import SecurityMiddleware
from campaigns.web.streams import SharedSnapshot, event_stream, report_chunks
from campaigns.web.uploads import UploadTooLarge, receive_upload
from storage import campaigns_repo
from storage.contacts import calls_timeline, contact_page
from storage.engine import Engine
from storage.errors import DatabaseUnavailable, InvalidTransition, NotFound
from storage.models import utcnow
from storage.states import ContactState, Outcome

STATIC = Path(__file__).parent / "static"
MB = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class ConsoleSettings:
    token: str | None
    max_upload_bytes: int = 200 * MB
    min_retry_delay: timedelta = MIN_RETRY_DELAY
    events_interval: float = 1.0


def _error(status: int) -> Any:
    async def handler(request: Request, exc: Exception) -> Response:
        message = exc.user_message() if isinstance(exc, CampaignsError) else str(exc)
        return JSONResponse({"error": message}, status_code=status)

    return handler


def campaign_json(engine: Engine, campaign_id: int) -> dict[str, Any]:
    """``campaign show --json``, with when the waiting contacts can be called, and its
    events to the CRM (``events``: waiting, delivered, dead and the newest dead one's error;
    None for a campaign without a webhook)."""
    data = campaign_stats(engine, campaign_id).to_dict()
    data.update(outlook(engine, campaign_id).to_dict())
    data["events"] = data.get("outbox")
    return data


def campaigns_json(engine: Engine) -> list[dict[str, Any]]:
    return [
        campaign_stats(engine, c.campaign.id).to_dict() for c in lifecycle.list_campaigns(engine)
    ]


def _split(values: list[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _checked(values: list[str], valid: set[str], name: str) -> list[str]:
    bad = sorted(set(values) - valid)
    if bad:
        raise UserError(f"unknown {name}(s) {', '.join(bad)}; valid: {', '.join(sorted(valid))}")
    return values


def _int(value: str | None, name: str, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{name}: {value!r} is not a whole number") from None


def create_app(engine: Engine, settings: ConsoleSettings) -> Starlette:
    """The console app over ``engine`` (see the module docstring)."""

    def cid(request: Request) -> int:
        return int(request.path_params["campaign_id"])

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document())

    async def list_campaigns(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(campaigns_json, engine))

    async def show(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(campaign_json, engine, cid(request)))

    async def from_upload(request: Request, use_case: Callable[..., Any]) -> Any:
        """``use_case(engine, csv, spec, options)`` on the request's upload and form."""
        async with receive_upload(request, settings.max_upload_bytes) as upload:
            form = parse_create_form(upload.fields, dnc_file=upload.dnc_path)
            return await run_in_threadpool(
                lambda: use_case(
                    engine,
                    upload.csv_path,
                    form.spec,
                    form.options,
                    min_retry_delay=settings.min_retry_delay,
                )
            )

    async def create(request: Request) -> Response:
        created = await from_upload(request, create_from_csv)
        s = created.stats
        body = {
            "id": created.campaign_id,
            "name": created.name,
            "status": created.status,
            "import": {**s.summary(created.campaign_id), "by_reason": dict(s.by_reason)},
        }
        return JSONResponse(body, status_code=201)

    async def preview(request: Request) -> Response:
        return JSONResponse((await from_upload(request, preview_csv)).to_dict())

    async def step(request: Request) -> Response:
        action = request.path_params["action"]
        if action not in lifecycle.ACTIONS:
            return JSONResponse({"error": f"no action {action!r}"}, status_code=404)
        reason = None
        if await request.body():
            try:
                payload = await request.json()
            except ValueError:
                raise UserError('send no body, or JSON: {"reason": "..."}') from None
            reason = payload.get("reason") if isinstance(payload, dict) else None
            if reason is not None and not isinstance(reason, str):
                raise UserError('"reason": give a string')
        done = await run_in_threadpool(
            lambda: lifecycle.transition(engine, action, cid(request), reason=reason)
        )
        c = done.result.campaign
        return JSONResponse(
            {
                "id": c.id,
                "status": c.status,
                "previous_status": done.result.previous_status,
                "contacts_cancelled": done.result.contacts_cancelled,
                "counts": done.progress.counts,
            }
        )

    async def contacts(request: Request) -> Response:
        qp = request.query_params
        states = _checked(_split(qp.getlist("state")), {s.value for s in ContactState}, "state")
        outcomes = _checked(_split(qp.getlist("outcome")), {o.value for o in Outcome}, "outcome")
        page = await run_in_threadpool(
            lambda: contact_page(
                engine,
                cid(request),
                states=states,
                outcomes=outcomes,
                q=qp.get("q") or None,
                cursor=_int(qp.get("cursor"), "cursor", 0),
                limit=_int(qp.get("limit"), "limit", 100),
            )
        )
        rows = [
            {
                **c.__dict__,
                "next_attempt_at": _iso(c.next_attempt_at),
                "last_attempt_at": _iso(c.last_attempt_at),
            }
            for c in page.contacts
        ]
        return JSONResponse({"contacts": rows, "next_cursor": page.next_cursor})

    async def requeue(request: Request) -> Response:
        try:
            payload = json.loads(await request.body() or b"{}")
        except ValueError:
            raise UserError('send JSON: {"states": "exhausted", "outcomes": "no_answer"}') from None
        if not isinstance(payload, dict) or not all(
            isinstance(payload.get(k, ""), str) for k in ("states", "outcomes")
        ):
            raise UserError('"states", "outcomes": give comma-separated strings')
        done = await run_in_threadpool(
            lambda: manage.requeue_contacts(
                engine,
                cid(request),
                states=payload.get("states") or "exhausted",
                outcomes=payload.get("outcomes") or None,
            )
        )
        c = done.campaign
        return JSONResponse(
            {
                "id": c.id,
                "requeued": done.requeued,
                "status": c.status,
                "previous_status": done.previous_status,
            }
        )

    async def timeline(request: Request) -> Response:
        minutes = _int(request.query_params.get("minutes"), "minutes", 60)
        since = utcnow() - timedelta(minutes=max(1, min(minutes, 7 * 24 * 60)))
        points = await run_in_threadpool(calls_timeline, engine, cid(request), since=since)
        return JSONResponse(
            {
                "points": [
                    {"minute": _iso(p.minute), "placed": p.placed, "outcomes": p.outcomes}
                    for p in points
                ]
            }
        )

    async def report(request: Request) -> Response:
        from campaigns.report_options import check_filters, report_options

        qp = request.query_params
        options = report_options(
            attempts=qp.get("attempts", "") in ("1", "true"),
            states=qp.getlist("state"),
            outcomes=qp.getlist("outcome"),
            columns=qp.get("columns") or None,
            since=qp.get("since") or None,
            bom=qp.get("no_bom", "") not in ("1", "true"),
            transcripts=qp.get("transcripts", "") in ("1", "true"),
        )
        check_filters(options)
        campaign_id = cid(request)
        await run_in_threadpool(campaigns_repo.get_campaign, engine, campaign_id)
        name = f"campaign-{campaign_id}-{'attempts' if options.attempts else 'report'}.csv"
        return StreamingResponse(
            report_chunks(engine, campaign_id, options),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    async def dnc_list(request: Request) -> Response:
        entries = await run_in_threadpool(dnc.dnc_entries, engine)
        return JSONResponse(
            [
                {
                    "phone_e164": e.phone_e164,
                    "campaign_id": e.campaign_id,
                    "reason": e.reason,
                    "source": e.source,
                    "added_at": _iso(e.added_at),
                }
                for e in entries
            ]
        )

    async def _numbers(request: Request) -> tuple[list[str], dict[str, Any]]:
        try:
            payload = await request.json()
        except ValueError:
            raise UserError(
                'send JSON: {"numbers": ["+91..."], "reason": "...", "region": "IN"}'
            ) from None
        numbers = payload.get("numbers") if isinstance(payload, dict) else None
        if (
            not isinstance(numbers, list)
            or not numbers
            or not all(isinstance(n, str) for n in numbers)
        ):
            raise UserError('"numbers": give a non-empty list of phone numbers as strings')
        return numbers, payload

    async def dnc_add(request: Request) -> Response:
        numbers, payload = await _numbers(request)
        change = await run_in_threadpool(
            lambda: dnc.add_numbers(
                engine,
                numbers,
                reason=payload.get("reason"),
                region=payload.get("region"),
                source="console",
            )
        )
        return JSONResponse(
            {"added": change.added, "suppressed_contacts": change.suppressed_contacts},
            status_code=201,
        )

    async def dnc_remove(request: Request) -> Response:
        numbers, payload = await _numbers(request)
        gone = await run_in_threadpool(
            lambda: dnc.remove_numbers(engine, numbers, region=payload.get("region"))
        )
        return JSONResponse({"removed": gone.removed, "missing": gone.missing})

    snapshot = SharedSnapshot(lambda: campaigns_json(engine), settings.events_interval * 0.9)

    async def events(request: Request) -> Response:
        return StreamingResponse(
            event_stream(request, snapshot, interval=settings.events_interval),
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )

    routes = [
        Route("/", index),
        Route("/api/health", health),
        Route("/api/openapi.json", openapi),
        Route("/api/events", events),
        Route("/api/campaigns", list_campaigns, methods=["GET"]),
        Route("/api/campaigns", create, methods=["POST"]),
        Route("/api/campaigns/preview", preview, methods=["POST"]),
        Route("/api/campaigns/{campaign_id:int}", show),
        Route("/api/campaigns/{campaign_id:int}/contacts", contacts),
        Route("/api/campaigns/{campaign_id:int}/timeline", timeline),
        Route("/api/campaigns/{campaign_id:int}/report.csv", report),
        Route("/api/campaigns/{campaign_id:int}/requeue", requeue, methods=["POST"]),
        Route("/api/campaigns/{campaign_id:int}/{action}", step, methods=["POST"]),
        Route("/api/dnc", dnc_list, methods=["GET"]),
        Route("/api/dnc", dnc_add, methods=["POST"]),
        Route("/api/dnc", dnc_remove, methods=["DELETE"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    handlers = {
        UploadTooLarge: _error(413),
        NotFound: _error(404),
        InvalidTransition: _error(409),
        DatabaseUnavailable: _error(503),
        CampaignsError: _error(400),
    }
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.add_middleware(SecurityMiddleware, token=settings.token)
    return app


def _iso(dt: Any) -> str | None:
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%SZ")
