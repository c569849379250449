"""A local stand-in for the Vaani External API, for tests, demos and benchmarks.

It speaks the same wire format as the real service (the official ``vaani-sdk`` client works
against it unchanged) and simulates call lifecycles, outcomes, rate limits and faults. It shares
no state with the scheduler: only the HTTP wire. Modules:

* ``config``: ``SandboxConfig`` and the parsers of the CLI flags;
* ``sim``: one simulated call (lifecycle, outcome, derived summary and entities);
* ``state``: accounts, history paging, background traffic, ground truth, statistics;
* ``limits``: per-key GCRA rate limiting and its headers;
* ``faults``: fault injection (429, 5xx, lost answers, slow answers);
* ``gate``: the ASGI layer for auth, limits, faults and statistics;
* ``app``: the routes; ``server``: serving it with uvicorn.

Run it with ``vaani-campaigns sandbox --port 8000``. It is a test tool, not part of the
scheduler: its server libraries (Starlette, uvicorn) are imported only when it is built or
served, so importing this package or its ``config`` (as the CLI does to build ``--help``)
pulls in neither. The names below are therefore resolved lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scheduler.sandbox.app import build_app
    from scheduler.sandbox.config import SandboxConfig
    from scheduler.sandbox.server import serve

__all__ = ["SandboxConfig", "build_app", "serve"]

_HOMES = {
    "SandboxConfig": "scheduler.sandbox.config",
    "build_app": "scheduler.sandbox.app",
    "serve": "scheduler.sandbox.server",
}


def __getattr__(name: str) -> Any:
    """``scheduler.sandbox.serve`` and friends, imported on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)
