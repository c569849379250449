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

Run it with ``vaani-campaigns sandbox --port 8000``.
"""

from scheduler.sandbox.app import build_app
from scheduler.sandbox.config import SandboxConfig
from scheduler.sandbox.server import serve

__all__ = ["SandboxConfig", "build_app", "serve"]
