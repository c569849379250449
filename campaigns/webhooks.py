"""Signing events for the user's CRM, and checking them on the receiving side.

Each POST carries ``X-Campaigns-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``,
``X-Campaigns-Event-Id`` (the same on every retry: receivers dedupe by it) and
``X-Campaigns-Timestamp`` (Unix seconds of this delivery). :func:`verify_signature` is the
receiver's check, written to be copied: constant-time comparison, and a timestamp older than
``tolerance`` seconds (5 minutes) refused as a replay.

The secret is never stored: a campaign keeps only :func:`fingerprint` of it, and the daemon,
which gets the secret from ``VAANI_WEBHOOK_SECRET`` / ``run --webhook-secret`` / the config
file, sends a campaign's events only when the fingerprints match.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlsplit

SIGNATURE_HEADER = "X-Campaigns-Signature"
EVENT_ID_HEADER = "X-Campaigns-Event-Id"
TIMESTAMP_HEADER = "X-Campaigns-Timestamp"
SECRET_ENV = "VAANI_WEBHOOK_SECRET"
#: A signature older than this is invalid (seconds).
DEFAULT_TOLERANCE = 300


def display_url(url: str) -> str:
    """A webhook URL as it may be shown: without user info, query or fragment (receivers
    often put a token there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a number: show none
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else "(not a URL)"


def fingerprint(secret: str) -> str:
    """What the database keeps instead of the secret: ``sha256:`` + 12 hex digits."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:12]


def sign(secret: str, body: bytes) -> str:
    """The ``X-Campaigns-Signature`` value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers(secret: str, body: bytes, event_id: str, *, now: float | None = None) -> dict[str, str]:
    """Every header of one delivery of ``body``."""
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body),
        EVENT_ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(int(time.time() if now is None else now)),
    }


def verify_signature(
    secret: str,
    body: bytes,
    header: str | None,
    timestamp: str | None,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> bool:
    """True when ``header`` (``X-Campaigns-Signature``) is the HMAC of the raw ``body`` and
    ``timestamp`` (``X-Campaigns-Timestamp``) is within ``tolerance`` seconds of now.

    Receivers: pass the body exactly as received (before any JSON parsing), then dedupe
    by ``X-Campaigns-Event-Id``::

        if not verify_signature(SECRET, request.body, request.headers.get(
            "X-Campaigns-Signature"), request.headers.get("X-Campaigns-Timestamp")):
            return 401
    """
    if not header or not timestamp:
        return False
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance:
        return False
    return hmac.compare_digest(header.strip(), sign(secret, body))
