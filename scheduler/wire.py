"""Compatibility names: the Vaani wire parsers moved to :mod:`scheduler.providers.vaani_wire`.

Only a provider knows its wire (DESIGN, layering). This module keeps the names the engine
imported before the provider interface existed, so that code switching to
:mod:`scheduler.providers.base` can do so one call site at a time; new code imports from
``scheduler.providers``.
"""

from scheduler.providers.vaani_wire import (
    EPOCH_MS_THRESHOLD,
    EPOCH_THRESHOLD,
    PAGE_SIZE_MAX,
    PAGE_SIZE_MIN,
    CallDetails,
    CallRecord,
    HistoryPage,
    TriggerResult,
    WireError,
    clamp_page_size,
    decode_json,
    error_detail,
    parse_details,
    parse_history,
    parse_rate_info,
    parse_rate_reset,
    parse_record,
    parse_retry_after,
    parse_timestamp,
    parse_transcript,
    parse_trigger,
)

__all__ = [
    "EPOCH_MS_THRESHOLD",
    "EPOCH_THRESHOLD",
    "PAGE_SIZE_MAX",
    "PAGE_SIZE_MIN",
    "CallDetails",
    "CallRecord",
    "HistoryPage",
    "TriggerResult",
    "WireError",
    "clamp_page_size",
    "decode_json",
    "error_detail",
    "parse_details",
    "parse_history",
    "parse_rate_info",
    "parse_rate_reset",
    "parse_record",
    "parse_retry_after",
    "parse_timestamp",
    "parse_transcript",
    "parse_trigger",
]
