"""Wire parsing every provider shares: numbers, timestamps, rate-limit headers, JSON bodies.

Pure functions of bytes, strings and JSON values, tolerant by rule: a value that cannot be
read becomes None (as if absent), never an exception, so that a provider's parsers built on
them can be property-tested with arbitrary input. The one exception is :class:`WireError`, for
an answer whose overall shape is wrong; a provider client turns it into
:class:`scheduler.errors.ProtocolError` with the request it belongs to.

* ``Retry-After`` is delta-seconds or an HTTP-date (RFC 9110);
* ``X-RateLimit-Reset`` is delta-seconds or an epoch timestamp (values above 10^9 are taken
  as epoch seconds: Vaani sends either, VaniAgent sends a Unix timestamp);
* timestamps are ISO 8601 (naive = UTC) or epoch seconds or milliseconds.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = [
    "EPOCH_MS_THRESHOLD",
    "EPOCH_THRESHOLD",
    "WireError",
    "as_count",
    "as_duration",
    "as_header_int",
    "as_number",
    "as_object",
    "as_status",
    "as_text",
    "decode_json",
    "parse_rate_reset",
    "parse_retry_after",
    "parse_timestamp",
    "shorten",
]

#: X-RateLimit-Reset values above this are epoch seconds, below it delta-seconds.
EPOCH_THRESHOLD = 1_000_000_000
#: Epoch values above this (in created_at fields) are milliseconds.
EPOCH_MS_THRESHOLD = 100_000_000_000
_DETAIL_MAX = 300


class WireError(ValueError):
    """An answer that does not have the shape the provider's wire format promises."""


def as_number(value: Any) -> float | None:
    """A finite number from an int, float or numeric string; None otherwise (never bool)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        f = float(value)
    elif isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return f if math.isfinite(f) else None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date).

    A date in the past gives 0.0; a value we cannot read gives None (as if absent).
    ``now`` is the current epoch time (for tests); defaults to ``time.time()``.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    seconds = as_number(text)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC per RFC 5322
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    try:
        return max(0.0, when.timestamp() - current)
    except (OverflowError, OSError, ValueError):
        return None


def as_header_int(value: str | None) -> int | None:
    """A header's non-negative integer value, or None."""
    number = as_number(value) if value is not None else None
    if number is None or number < 0:
        return None
    return int(number)


def parse_rate_reset(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds until the rate window resets; epoch values (> 10^9) become delta-seconds."""
    number = as_number(value) if value is not None else None
    if number is None or number < 0:
        return None
    if number > EPOCH_THRESHOLD:
        current = time.time() if now is None else now
        return max(0.0, number - current)
    return number


def decode_json(content: bytes) -> Any:
    """The JSON value of a body; an empty body is ``{}`` (as the official client reads it)."""
    if not content.strip():
        return {}
    try:
        return json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"the answer is not JSON ({exc.__class__.__name__}: {exc})") from None


def shorten(text: str) -> str:
    """``text`` cut to a length fit for an error message."""
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 1] + "…"


def as_text(value: Any) -> str | None:
    """A non-empty string from a string or an integer (ids and numbers come as both)."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def as_status(value: Any) -> str | None:
    """A call status, lower-cased ("Completed" and "completed" are the same outcome)."""
    if isinstance(value, str) and value.strip():
        return value.strip().lower()
    return None


def parse_timestamp(value: Any) -> datetime | None:
    """An aware UTC datetime from ISO 8601 (naive = UTC) or epoch seconds/milliseconds."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if not text.lstrip("+-").replace(".", "", 1).isdigit():  # not a bare number: ISO 8601
            try:
                parsed = datetime.fromisoformat(text)  # 3.11+: also "Z" and most ISO forms
            except ValueError:
                return None
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=UTC)
            try:
                return parsed.astimezone(UTC)
            except (OverflowError, ValueError):
                return None
    number = as_number(value)
    if number is None or number < 0:
        return None
    if number > EPOCH_MS_THRESHOLD:
        number /= 1000.0
    try:
        return datetime.fromtimestamp(number, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def as_duration(value: Any) -> float | None:
    """A duration: a finite number >= 0, or None."""
    number = as_number(value)
    return number if number is not None and number >= 0 else None


def as_count(value: Any) -> int | None:
    """A count: a finite number >= 0 as an int, or None."""
    number = as_number(value)
    return int(number) if number is not None and number >= 0 else None


def as_object(value: Any) -> dict[str, Any]:
    """A JSON object, also when sent as a JSON string (extracted data often is); ``{}``
    for anything else."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    return dict(value) if isinstance(value, dict) else {}


def is_last_page(
    *, count: int, page: int, page_size: int, total: int | None, total_pages: int | None
) -> bool:
    """Is a numbered page (1-based) of ``count`` records the end of the listing? The
    pagination decides when the API sends it; only without it does a short page count as the
    end (an API that silently sends fewer records than asked for would otherwise look
    finished, and a lost call not found in a listing we think complete is declared not
    placed)."""
    if count == 0:
        return True
    if total_pages is not None:
        return page >= total_pages
    if total is not None:
        return page * page_size >= total
    return count < page_size
