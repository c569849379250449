"""The OpenAPI 3.1 document of the console's API (``GET /api/openapi.json``), written by hand:
the routes are few, and a generator would be one more dependency."""

from __future__ import annotations

from typing import Any

from campaigns.web.forms import IMPORT_FIELDS, SPEC_FIELDS

ID = {"name": "campaign_id", "in": "path", "required": True, "schema": {"type": "integer"}}
ERROR = {
    "description": "error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
UNAUTHORIZED = {"description": "missing or wrong token (nothing was changed)"}
FORM_FIELDS = {
    "csv": {"type": "string", "format": "binary"},
    "dnc": {"type": "string", "format": "binary", "description": "the campaign's do-not-call list (--dnc)"},
    **{
        k: {"type": "string"}
        for k in (*SPEC_FIELDS, *IMPORT_FIELDS)
    },
}  # fmt: skip
UPLOAD = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["csv", "name", "agent_id"],
                "properties": FORM_FIELDS,
            }
        }
    },
}


def _op(
    summary: str,
    *,
    params: list[Any] | None = None,
    body: Any = None,
    ok: str = "200",
    **errors: Any,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": params or [],
        "responses": {
            ok: {"description": "ok"},
            "401": UNAUTHORIZED,
            **{k[1:]: ERROR for k in errors},
        },
    }
    if body is not None:
        op["requestBody"] = body
    return op


def _query(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": description,
    }


NUMBERS = {"content": {"application/json": {"schema": {"type": "object", "required": ["numbers"], "properties": {
    "numbers": {"type": "array", "items": {"type": "string"}},
    "reason": {"type": "string"}, "region": {"type": "string"}}}}}}  # fmt: skip


def openapi_document() -> dict[str, Any]:
    lifecycle = {
        f"/api/campaigns/{{campaign_id}}/{action}": {
            "post": _op(f"{action.capitalize()} the campaign", params=[ID], _404=1, _409=1)
        }
        for action in ("start", "pause", "resume", "stop", "cancel")
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "vaani-campaigns console API", "version": "1"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "string"}}}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/health": {"get": {"summary": "Liveness (no token)", "security": [], "responses": {"200": {"description": "ok"}}}},
            "/api/campaigns": {
                "get": _op("Campaigns with their counts, outcomes, pickup rate and ETA"),
                "post": _op("Create a campaign from a CSV (fields as `campaign create`'s flags)", body=UPLOAD, ok="201", _400=1, _413=1),
            },
            "/api/campaigns/preview": {"post": _op("What create would do; nothing stored", body=UPLOAD, _400=1, _413=1)},
            "/api/campaigns/{campaign_id}": {"get": _op("`campaign show` as JSON, next window, events", params=[ID], _404=1)},
            **lifecycle,
            "/api/campaigns/{campaign_id}/requeue": {"post": _op("Fresh attempts for closed contacts (JSON: states, outcomes as `campaign requeue`)", params=[ID], _400=1, _404=1, _409=1)},
            "/api/campaigns/{campaign_id}/contacts": {
                "get": _op(
                    "Contacts, keyset-paged: pass next_cursor back as cursor",
                    params=[ID, _query("state", "comma-separated contact states"), _query("outcome", "comma-separated outcomes"),
                            _query("q", "substring of name or number"), _query("cursor", "next_cursor of the previous page"),
                            _query("limit", "1-500, default 100")],
                    _400=1, _404=1,
                )
            },
            "/api/campaigns/{campaign_id}/timeline": {"get": _op("Calls placed per minute and outcome", params=[ID, _query("minutes", "how far back, default 60")], _404=1)},
            "/api/campaigns/{campaign_id}/report.csv": {
                "get": _op(
                    "The report, streamed; the same bytes as `vaani-campaigns report`",
                    params=[ID, _query("attempts", "1: one row per attempt"), _query("state", "repeatable"), _query("outcome", "repeatable"),
                            _query("columns", "A,B,C"), _query("since", "ISO 8601"), _query("no_bom", "1: no byte order mark"),
                            _query("transcripts", "1: a last transcript column")],
                    _400=1, _404=1,
                )
            },
            "/api/dnc": {
                "get": _op("The do-not-call list"),
                "post": _op("Add numbers (their waiting contacts are suppressed)", body=NUMBERS, ok="201", _400=1),
                "delete": _op("Remove numbers", body=NUMBERS, _400=1),
            },
            "/api/events": {"get": _op("Server-sent events `campaigns` (the list) on change; token also as ?token=", params=[_query("token", "the bearer token (EventSource cannot set headers)")])},
        },
    }  # fmt: skip
