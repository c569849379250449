"""Compatibility names: the Vaani client moved behind the provider interface.

``VaaniClient`` is :class:`scheduler.providers.vaani.VaaniProvider`; the HTTP plumbing shared
by every provider (the gate protocol, the one ``httpx.AsyncClient`` factory, the mapping of
httpx errors and statuses into :mod:`scheduler.errors`) is :mod:`scheduler.providers.http`.
These names stay importable so that the engine can switch to :mod:`scheduler.providers` one
call site at a time; new code imports from there.
"""

from scheduler.providers.http import (
    RequestGate,
    error_for_status,
    make_http_client,
    map_transport_error,
)
from scheduler.providers.vaani import DEFAULT_BASE_URL, TRIGGER_PATH, VaaniClient, VaaniProvider
from scheduler.providers.vaani_wire import CallDetails, CallRecord, HistoryPage, TriggerResult
from scheduler.retry import RetryPolicy

__all__ = [
    "DEFAULT_BASE_URL",
    "TRIGGER_PATH",
    "CallDetails",
    "CallRecord",
    "HistoryPage",
    "RequestGate",
    "RetryPolicy",
    "TriggerResult",
    "VaaniClient",
    "VaaniProvider",
    "error_for_status",
    "make_http_client",
    "map_transport_error",
]
