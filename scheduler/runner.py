"""Run daemons: one per provider that ``run`` drives, side by side in one event loop.

Each provider has its own plan (rate limit and live-call cap), key and client, so each gets
its own :class:`~scheduler.daemon.Daemon`, claiming only its provider's campaigns. They share
the process, the database engine and the signals: SIGTERM or SIGINT stops every one of them
(each drains), and the exit code is the first non-zero one, in provider order.

With ``run --listen`` (``listen``: the bound socket) the webhook receiver
(:mod:`scheduler.webhooks_in`) runs in the same loop for every provider that pushes events;
those providers' polls become a slow sweep (:mod:`scheduler.sweep`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from scheduler import dbexec
from scheduler.daemon import Daemon, DaemonSettings
from scheduler.pipeline import LatencyGate, Pipeline
from scheduler.providers import DEFAULT_PROVIDER, make_provider, provider_spec
from scheduler.providers.base import CallProvider, EventSource
from scheduler.providers.http import RequestGate
from scheduler.ratelimit import LimiterRegistry, RateLimiter
from scheduler.ratelimit_windows import Window, WindowedGate, parse_window
from scheduler.reachability import Reachability, ReachabilityGate, display_url
from scheduler.sharedgate import plan_gate
from storage.engine import Engine
from storage.progress import Progress

if TYPE_CHECKING:
    from scheduler.webhooks_in import Receiver

log = logging.getLogger("vaani.runner")


@dataclass(frozen=True, slots=True, kw_only=True)
class Drive:
    """One provider to drive: its name, key and base URL (None: the provider's default)."""

    provider: str
    api_key: str = field(repr=False)
    base_url: str | None = None
    #: requests per second for this provider's key; None: the settings' rate
    rate: float | None = None
    #: request windows enforced together (``scheduler.ratelimit_windows``); None: the
    #: provider's plan windows from the registry (``ProviderSpec.rate_windows``)
    windows: tuple[Window, ...] | None = None
    #: the secret the provider signs its webhooks with (``run --listen``)
    webhook_secret: str | None = field(default=None, repr=False)

    def plan_windows(self) -> tuple[Window, ...]:
        if self.windows is not None:
            return self.windows
        return tuple(parse_window(w) for w in provider_spec(self.provider).rate_windows)


def limiter_rate(limiter: RateLimiter) -> Callable[[], float]:
    """The rate ``limiter`` currently allows (it slows down after 429s)."""
    return lambda: limiter.current_rate


async def drive_gate(engine: Engine, drive: Drive, limiter: RateLimiter) -> RequestGate:
    """The plan's gate for ``drive``'s requests: ``limiter``, shared with the other daemons
    of the database on PostgreSQL (:mod:`scheduler.sharedgate`), and the plan's request
    windows when it has several (:mod:`scheduler.ratelimit_windows`)."""
    shared = await dbexec.run(
        plan_gate, engine, limiter, provider=drive.provider, api_key=drive.api_key
    )
    windows = drive.plan_windows()
    return WindowedGate(shared, windows) if windows else shared


@asynccontextmanager
async def plan_client(
    engine: Engine, drive: Drive, *, rate: float, timeout: float = 30.0
) -> AsyncIterator[CallProvider]:
    """A client of ``drive``'s provider for a command that talks to the API outside the
    daemon (``campaign recordings``, ``campaign test-call``): every request it sends takes
    the same plan as the daemons' (``rate`` requests a second for this key, shared across
    the daemons of a PostgreSQL database, 429s and ``Retry-After`` honoured), so such a
    command never pushes a running campaign over the plan."""
    limiter = LimiterRegistry().get(drive.provider, drive.api_key, rate=drive.rate or rate)
    gate = await drive_gate(engine, drive, limiter)
    client = make_provider(
        drive.provider, api_key=drive.api_key, base_url=drive.base_url, gate=gate, timeout=timeout
    )
    try:
        yield client
    finally:
        await client.aclose()


async def run_daemons(
    engine: Engine,
    settings: DaemonSettings,
    drives: Sequence[Drive],
    *,
    on_progress: Callable[[Progress, Mapping[int, str]], None] | None = None,
    stop_requested: threading.Event | None = None,
    listen: socket.socket | None = None,
) -> int:
    """Run one daemon per drive until signalled (or, with ``until_done``, until each is done);
    with ``listen``, receive webhooks on that socket meanwhile."""
    registry = LimiterRegistry()
    daemons: list[Daemon] = []
    clients = []
    receiver = None
    try:
        for i, drive in enumerate(drives):
            own = replace(settings, rate=drive.rate) if drive.rate else settings
            limiter = registry.get(drive.provider, drive.api_key, rate=own.rate)
            reach = Reachability("the API", warn_every=own.unreachable_warn_every)
            # in flight: rate x measured latency (Little's law), per kind of request
            pipeline = Pipeline(limiter_rate(limiter), overhead=own.tick)
            fetches = Pipeline(limiter_rate(limiter))
            gate = await drive_gate(engine, drive, limiter)
            client = make_provider(
                drive.provider,
                api_key=drive.api_key,
                base_url=drive.base_url,
                gate=LatencyGate(
                    ReachabilityGate(gate, reach),
                    {"dispatch": pipeline, "poll": fetches},
                    max_in_flight=own.max_connections,
                ),
                timeout=own.request_timeout,
                retry=own.retry,
                max_connections=own.max_connections,
            )
            clients.append(client)
            reach.url = display_url(getattr(client, "base_url", ""))
            daemons.append(
                Daemon(
                    engine,
                    client,
                    limiter,
                    own,
                    # progress counts every campaign: one display is enough
                    on_progress=on_progress if i == 0 else None,
                    stop_requested=stop_requested,
                    reachability=reach,
                    handle_signals=len(drives) == 1,
                    pipeline=pipeline,
                    fetch_pipeline=fetches,
                )
            )
        if listen is not None:
            receiver = await _start_receiver(engine, settings, drives, daemons, listen)
        if len(daemons) == 1:
            return await daemons[0].run()
        loop = asyncio.get_running_loop()

        def stop_all(sig: signal.Signals) -> None:
            for n, daemon in enumerate(daemons):
                daemon.stop_on(sig, quiet=n > 0)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop_all, sig)
        try:
            codes = await asyncio.gather(*(d.run() for d in daemons))
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        return next((c for c in codes if c), 0)
    finally:
        if receiver is not None:
            await receiver.stop()
        for client in clients:
            await client.aclose()
        dbexec.shutdown()


async def _start_receiver(
    engine: Engine,
    settings: DaemonSettings,
    drives: Sequence[Drive],
    daemons: Sequence[Daemon],
    sock: socket.socket,
) -> Receiver:
    """Serve webhooks for every driven provider that pushes events; their polls become a
    sweep. ValueError when one of them has no secret (``run`` refuses that earlier)."""
    from scheduler.inbox import Inbox
    from scheduler.sweep import GAP_FACTOR, PushSweep
    from scheduler.webhooks_in import Channel, Receiver

    channels: dict[str, Channel] = {}
    sweeps: dict[str, PushSweep] = {}
    for drive, daemon in zip(drives, daemons, strict=True):
        client = daemon.client
        if not client.capabilities.pushes_events:
            continue
        if not drive.webhook_secret:
            raise ValueError(f"provider {drive.provider!r} pushes events: a secret is needed")
        if not isinstance(client, EventSource):  # a provider that says it pushes must read
            raise TypeError(f"provider {drive.provider!r} pushes events but cannot read them")
        channels[drive.provider] = Channel(
            provider=drive.provider, source=client, secret=drive.webhook_secret
        )
        sweep = PushSweep(max_gap=settings.poll_interval * GAP_FACTOR)
        daemon.poller.sweep = sweeps[drive.provider] = sweep
    if not channels:
        log.warning(
            "run --listen: none of the driven providers pushes events; only /health is served",
            extra={"event": "listen_idle"},
        )
    inbox = Inbox(engine, {n: c.source for n, c in channels.items()}, sweeps=sweeps)
    receiver = Receiver(inbox, channels, sock)
    await receiver.start()
    return receiver


async def run_daemon(
    engine: Engine,
    settings: DaemonSettings,
    *,
    api_key: str,
    base_url: str | None,
    provider: str = DEFAULT_PROVIDER,
    on_progress: Callable[[Progress, Mapping[int, str]], None] | None = None,
    stop_requested: threading.Event | None = None,
) -> int:
    """Run one daemon for ``provider`` (``base_url`` None: the provider's default), paced by
    the limiter of that (provider, key) pair."""
    drive = Drive(provider=provider, api_key=api_key, base_url=base_url)
    return await run_daemons(
        engine, settings, [drive], on_progress=on_progress, stop_requested=stop_requested
    )
