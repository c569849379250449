"""Structured logs: one line per event, as ``key=value`` text or as JSON (``--log-json``).

Code logs with ``log.info("call placed", extra={"event": "call_placed", "call_id": ...})``;
the formatter renders the message plus every extra field. A redaction filter removes the API
key from every record, whatever a library put in it (invariant 5). Every logger of ours is
named under ``vaani.``: :func:`setup_logging` configures that one namespace.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import quote

REDACTED = "***"
#: Shorter values are not redacted (see :meth:`RedactFilter.add`).
MIN_SECRET = 4

_STANDARD = set(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None).__dict__.keys()) | {
    "message",
    "asctime",
    "taskName",
}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """One JSON object per record (``--log-json``): time, level, logger, message, extras."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        data.update(_fields(record))
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """One human line per record: time, level, message, then the extras as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{ts} {record.levelname.lower():7} {record.getMessage()}"
        if extra:
            line += f"  {extra}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class RedactFilter(logging.Filter):
    """Replaces every registered secret in a record's message and fields with ``***``.

    The one redaction mechanism of the product: secrets are registered on the shared
    :data:`REDACTOR` (by each provider client when it is built, and by :func:`setup_logging`),
    which is attached to our log handler and to the ``httpx``/``httpcore`` loggers (they log
    each request's URL, and a key could reach a URL through a call id or a base URL). Each
    secret is removed as is and URL-quoted, as it would appear in a path.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._forms: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        """Redact ``secret`` from now on (values shorter than 4 characters are ignored:
        replacing them would shred ordinary words while protecting nothing)."""
        if isinstance(secret, str) and len(secret) >= MIN_SECRET:
            self._forms.update({secret, quote(secret, safe="")})

    def clean(self, text: str) -> str:
        """``text`` with every registered secret replaced by ``***``."""
        for form in self._forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._forms:
            return True
        message = record.getMessage()
        clean = self.clean(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        for k, v in _fields(record).items():
            if isinstance(v, str):
                setattr(record, k, self.clean(v))
        return True


#: Shared by every handler and library logger we touch, so one registration covers them all.
REDACTOR = RedactFilter()
_LIBRARY_LOGGERS = ("httpx", "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2")


def redact_secret(secret: str) -> None:
    """Register ``secret`` with :data:`REDACTOR` and make sure the library loggers use it.

    Logger filters are not inherited by child loggers, hence each httpcore logger by name.
    """
    REDACTOR.add(secret)
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if REDACTOR not in logger.filters:
            logger.addFilter(REDACTOR)


def redact(text: str, secret: str) -> str:
    """``text`` with ``secret`` (as is, or URL-quoted as in a path) replaced by ``***``:
    for exception messages, which are built before any log record exists."""
    for form in {secret, quote(secret, safe="")}:
        if form and form in text:
            text = text.replace(form, REDACTED)
    return text


def setup_logging(
    *, json_lines: bool, level: int = logging.INFO, secrets: list[str], stream: TextIO | None = None
) -> logging.Handler:
    """Send the ``vaani`` loggers' records to ``stream`` (stderr) in the chosen format.

    Every logger of ours is named ``vaani.*`` (``vaani.client``, ``vaani.daemon``, ...), so
    this one handler, its format and its redaction cover them all.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    for secret in secrets:
        redact_secret(secret)
    handler.addFilter(REDACTOR)
    root = logging.getLogger("vaani")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # "skipped: maximum number of running instances reached" is max_instances=1 doing its job
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    return handler
