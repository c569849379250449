"""The small synchronous face of the Vaani client, for command-line checks.

The scheduler is asyncio; the CLI is not. Rather than sprinkling ``asyncio.run`` through the
commands, the few things the CLI needs from the API are wrapped here, deliberately, once.
Do not call these from inside a running event loop (use :class:`VaaniClient` there).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from scheduler.client import DEFAULT_BASE_URL, VaaniClient
from scheduler.retry import RetryPolicy

#: A person is waiting at the terminal: try briefly, then say what is wrong.
CLI_RETRY = RetryPolicy(max_attempts=3, max_total_s=15.0, max_retry_after_s=10.0)


def check_key(
    api_key: str,
    base_url: str = DEFAULT_BASE_URL,
    *,
    timeout: float = 15.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Any]:
    """Check that the API answers and accepts ``api_key``; return what was learned.

    Health alone does not prove the key (it needs none), so one call-history page of one
    record is fetched too. Returns ``{"base_url", "health", "key_ok": True, "history_total",
    "rate_limit": {...}}``. Raises the client's errors (``AuthenticationError`` for a wrong
    key, ``NotSentError`` when the service cannot be reached, ...), which the CLI reports as a
    one-line message; none of them contains the key.
    """
    return asyncio.run(_check_key(api_key, base_url, timeout=timeout, transport=transport))


async def _check_key(
    api_key: str,
    base_url: str,
    *,
    timeout: float,
    transport: httpx.AsyncBaseTransport | None,
) -> dict[str, Any]:
    async with VaaniClient(
        api_key, base_url, timeout=timeout, retry=CLI_RETRY, transport=transport
    ) as client:
        health = await client.health()
        page = await client.call_history(page=1, page_size=1)
        rate = client.last_rate
        return {
            "base_url": client.base_url,
            "health": health,
            "key_ok": True,
            "history_total": page.total,
            "rate_limit": {
                "limit": rate.limit,
                "remaining": rate.remaining,
                "reset_s": rate.reset_s,
            },
        }
