"""The scheduler daemon (``vaani-campaigns run``).

One asyncio process. APScheduler 3.11's ``AsyncIOScheduler`` (in-memory job store: a job store
cannot be shared between processes, so each daemon has its own and the database claims
coordinate daemons) drives three periodic jobs:

* **dispatch** (every ``tick`` seconds): claim due contacts and send their trigger-calls;
* **poll** (every ``poll_interval`` seconds): read outcomes back from the call history,
  reconcile lost answers, look up overdue calls;
* **housekeeping** (every second): heartbeat, reconcile claims of dead daemons, expire contacts
  of campaigns that ended, complete campaigns with nothing left, and in ``--until-done`` mode
  notice that no campaign has work left.

All jobs use ``coalesce=True``, ``max_instances=1`` and a misfire grace of about one interval.
Shutdown on SIGTERM/SIGINT is ours (APScheduler's asyncio executor only cancels): pause the
scheduler, stop claiming, await in-flight trigger-calls up to a timeout, record those still
running as ``unknown`` (reconciled by the next start), mark the daemon stopped, exit 0. A job
still running at that moment (a poll waiting out a retry, say) is cancelled by APScheduler;
the job wrapper takes that cancellation quietly, since it is the shutdown we asked for, rather
than letting APScheduler log it as a job failure with a traceback.

The daemon's dispatcher and poller share one :class:`~campaigns.dialing.PolicyCache` and one
:class:`~scheduler.reachability.Reachability`: while requests cannot leave, one warning names
the URL (at most every ``unreachable_warn_every`` s), and ``--until-done`` exits 3 after
``unreachable_exit_after`` s of nothing getting through. After a 401/402 from dispatch,
``--until-done`` stops dialling but keeps polling until the live calls have their outcomes
(or the outcome deadline flags them), then exits 3. A campaign paused by its circuit breaker
(``storage.breaker``) is logged once (``breaker_tripped``) and makes ``--until-done`` exit 3
too, once no other campaign has work left.

The module is over the 400-line guideline (about 490): the life cycle, the three jobs and the
account-error handling all share the daemon's state, and splitting them would pass it around.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import signal
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from campaigns.dialing import PolicyCache
from scheduler import dbexec
from scheduler.breaker import report_trip
from scheduler.dispatcher import Dispatcher, DispatchSettings, account_error_scope
from scheduler.errors import AccountError, NotSentError, ProviderError
from scheduler.fetches import BackgroundFetches
from scheduler.idle import WindowWatch
from scheduler.pipeline import Pipeline
from scheduler.poller import OutcomePoller
from scheduler.pollpace import PollPacer
from scheduler.providers import PROVIDERS, CallProvider
from scheduler.ratelimit import RateLimiter
from scheduler.reachability import Reachability
from scheduler.retry import RetryPolicy
from scheduler.webhooks_out import WebhookSender, WebhookSettings
from storage import campaigns_repo, daemons, owners, progress
from storage.attempts import reconcile_stale_claims
from storage.breaker import Trip
from storage.claims import DialJob
from storage.engine import DatabaseFileWatch, Engine, watch_database
from storage.errors import DatabaseUnavailable, InvalidTransition, NotFound
from storage.models import utcnow
from storage.progress import Progress

log = logging.getLogger("vaani.daemon")

EXIT_OK = 0
#: The HTTP connection pool's bound (see DaemonSettings.max_connections).
MAX_CONNECTIONS = 64
EXIT_SERVICE = 3


@dataclass(frozen=True, kw_only=True)
class DaemonSettings:
    """Everything ``run`` can be told; validated when built."""

    rate: float = 5.0  # requests per second for this API key, all endpoints together
    max_concurrent: int = 20  # live calls (in flight or awaiting an outcome)
    poll_interval: float = 5.0
    tick: float = 0.25
    until_done: bool = False
    outcome_deadline: timedelta = timedelta(minutes=15)
    reconcile_grace: timedelta = timedelta(seconds=60)
    daily_cap_per_number: int | None = 3
    heartbeat_interval: float = 2.0
    dead_after: timedelta = timedelta(seconds=20)
    lease: timedelta = timedelta(minutes=5)
    drain_timeout: float = 20.0
    history_page_size: int = 100
    request_timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    not_sent_backoff: timedelta = timedelta(seconds=10)  # a contact whose request never left
    unreachable_warn_every: float = 30.0  # repeat "cannot reach ..." at most this often
    unreachable_exit_after: float = 30.0  # --until-done: exit 3 after this long unreachable
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)  # events out

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError("the rate limit must be positive")
        if self.max_concurrent < 1:
            raise ValueError("--max-concurrent must be at least 1")
        if not self.poll_interval > 0:
            raise ValueError("--poll-interval must be positive")
        if not (self.unreachable_warn_every > 0 and self.unreachable_exit_after > 0):
            raise ValueError("the unreachable-API warning and exit delays must be positive")

    @property
    def max_connections(self) -> int:
        # requests in flight = rate x latency (the limiter grants no more than the rate):
        # room for 1.5 s of latency at the full rate, but httpcore scans every pooled
        # connection and every queued request on each request (CPU grows with the square),
        # so never more than MAX_CONNECTIONS
        return min(MAX_CONNECTIONS, max(16, math.ceil(self.rate * 1.5))) + 8


class Daemon:
    """One scheduler daemon. Use :func:`run_daemon` unless you need the pieces."""

    def __init__(
        self,
        engine: Engine,
        client: CallProvider,
        limiter: RateLimiter,
        settings: DaemonSettings,
        *,
        clock: Callable[[], datetime] = utcnow,
        on_progress: Callable[[Progress, Mapping[int, str]], None] | None = None,
        stop_requested: threading.Event | None = None,
        reachability: Reachability | None = None,
        handle_signals: bool = True,
        pipeline: Pipeline | None = None,
        fetch_pipeline: Pipeline | None = None,
    ) -> None:
        self.engine = engine
        self._handle_signals = handle_signals
        self.pipeline = pipeline
        self.reach = reachability or Reachability(
            getattr(client, "base_url", "the API"), warn_every=settings.unreachable_warn_every
        )
        self.policies = PolicyCache()
        self._stop_requested = stop_requested
        self.client = client
        self.limiter = limiter
        self.settings = settings
        self.clock = clock
        self.on_progress = on_progress
        self.daemon_id = ""
        self.exit_code = EXIT_OK
        self.stop_event = asyncio.Event()
        self.dispatcher: Dispatcher | None = None
        self.poller = OutcomePoller(
            engine,
            client,
            page_size=settings.history_page_size,
            outcome_deadline=settings.outcome_deadline,
            grace=settings.reconcile_grace,
            clock=clock,
            policies=self.policies,
        )
        self.poller.pipeline = fetch_pipeline
        self.poller.on_trip = self._breaker_tripped
        self.poller.background = BackgroundFetches()  # history reads never wait for details
        self.poll_pacer = PollPacer(settings.poll_interval, lambda: limiter.current_rate)
        self._next_poll = 0.0
        self._dispatching = asyncio.Lock()
        self._last_heartbeat = 0.0
        self._last_counts = 0.0
        self._idle_until = 0.0
        self._claimed_nothing = False
        self.windows = WindowWatch(engine, client.name)  # "next window opens ..." when idle
        self._fatal: str | None = None
        self._fatal_now = False  # the poller cannot read outcomes either: do not wait for them
        self._db_watch = DatabaseFileWatch(None)
        self._db_lost = False
        self.webhooks: WebhookSender | None = None

    # ----------------------------------------------------------------- life cycle

    async def run(self) -> int:
        s = self.settings
        self.daemon_id = await dbexec.run(daemons.register_daemon, self.engine, now=self.clock())
        self.poller.owner = self.daemon_id  # each live call is polled by its owner only
        log.info("daemon started", extra={"event": "daemon_started", "daemon_id": self.daemon_id})
        self._db_watch = await dbexec.run(watch_database, self.engine)
        self.dispatcher = Dispatcher(
            self.engine,
            self.client,
            daemon_id=self.daemon_id,
            settings=DispatchSettings(
                max_live_calls=s.max_concurrent,
                lease=s.lease,
                outcome_deadline=s.outcome_deadline,
                daily_cap_per_number=s.daily_cap_per_number,
                # at least a few tries before --until-done gives up on an unreachable API
                not_sent_backoff=min(
                    s.not_sent_backoff, timedelta(seconds=s.unreachable_exit_after / 3)
                ),
            ),
            on_account_error=self._account_error,
            clock=self.clock,
            policies=self.policies,
            reachability=self.reach,
            pipeline=self.pipeline,
        )
        await self._recover()
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT) if self._handle_signals else ()
        for sig in signals:
            loop.add_signal_handler(sig, self.stop_on, sig)
        if self._stop_requested is not None and self._stop_requested.is_set():
            self.stop_event.set()  # signalled while starting
        sched = AsyncIOScheduler(timezone="UTC")
        now = datetime.now(sched.timezone)
        jobs = (
            (self._dispatch_job, s.tick, "dispatch"),
            # the pacer decides when (scheduler.pollpace); the job only looks often enough
            (self._poll_job, min(s.tick, s.poll_interval), "poll"),
            (self._housekeeping_job, 1.0, "housekeeping"),
        )
        for fn, every, name in jobs:
            sched.add_job(
                self._quiet_at_shutdown(fn),
                "interval",
                seconds=every,
                id=name,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=max(1, math.ceil(every)),
                next_run_time=now,
            )
        sched.start()
        # events out to the user's CRM: one task, cancelled at shutdown (a POST cut short
        # is sent again, same event id, once its lease runs out: at least once)
        self.webhooks = WebhookSender(
            self.engine, s.webhooks, daemon_id=self.daemon_id, clock=self.clock
        )
        webhook_task = loop.create_task(self.webhooks.run(), name="webhooks")
        try:
            await self.stop_event.wait()
        finally:
            webhook_task.cancel()
            await asyncio.gather(webhook_task, return_exceptions=True)
            sched.pause()
            sched.shutdown(wait=False)
            for sig in signals:
                loop.remove_signal_handler(sig)
            await self._shutdown()
        return self.exit_code

    def stop_on(self, sig: signal.Signals, *, quiet: bool = False) -> None:
        """Stop (drain and exit) because ``sig`` arrived."""
        if not quiet:
            log.info("stopping on %s", sig.name, extra={"event": "signal", "signal": sig.name})
        self.stop_event.set()

    async def _recover(self) -> None:
        """Claims left by daemons that died (including an earlier run of this one killed
        with SIGKILL) become ``unknown`` and are reconciled, never re-dialled blindly."""
        now = self.clock()
        dead = await dbexec.run(
            daemons.dead_daemons, self.engine, now, self.settings.dead_after, local_pids=True
        )
        dead = [d for d in dead if d != self.daemon_id]  # a slow heartbeat is not death
        # also catches claims whose lease ran out on a daemon that is alive but stuck
        n = await dbexec.run(reconcile_stale_claims, self.engine, dead, now)
        for daemon_id in dead:
            await dbexec.run(daemons.mark_stopped, self.engine, daemon_id, now=now)
        await dbexec.run(
            owners.adopt_orphans,
            self.engine,
            self.daemon_id,
            provider=self.client.name,
            now=now,
            dead_after=self.settings.dead_after,
        )
        if dead or n:
            log.warning(
                "claims of dead daemons or expired leases will be reconciled",
                extra={"event": "recovered", "daemons": len(dead), "attempts": n},
            )

    async def _shutdown(self) -> None:
        assert self.dispatcher is not None
        unsettled = await self.dispatcher.drain(self.settings.drain_timeout)
        await self._stop_fetches()
        if unsettled:
            log.warning(
                "trigger-calls still running at shutdown were recorded unknown",
                extra={"event": "drain_timeout", "attempts": unsettled},
            )
        if not self._db_lost:  # the file is gone: there is no daemon row to mark any more
            await dbexec.run(daemons.mark_stopped, self.engine, self.daemon_id, now=self.clock())
        log.info("daemon stopped", extra={"event": "daemon_stopped", "exit_code": self.exit_code})

    async def _stop_fetches(self) -> None:
        """Cancel the details still being fetched (fetched again next run), and apply the
        ones already here."""
        assert self.poller.background is not None
        await self.poller.background.cancel()
        if self._db_lost:
            return
        try:
            await self.poller.apply_fetched()
        except Exception as exc:  # shutting down: say it, do not crash the drain
            log.warning("outcomes not applied at shutdown: %s", exc, extra={"event": "poll_error"})

    # ----------------------------------------------------------------- jobs

    def _quiet_at_shutdown(
        self, job: Callable[[], Awaitable[None]]
    ) -> Callable[[], Awaitable[None]]:
        """``job``, taking the cancellation APScheduler's shutdown sends it as the end of the
        job rather than a failure (the drain that follows is ours)."""

        @functools.wraps(job)
        async def run() -> None:
            try:
                await job()
            except asyncio.CancelledError:
                if not self.stop_event.is_set():
                    raise
                log.debug("%s job cancelled at shutdown", job.__name__)

        return run

    def _check_database(self) -> bool:
        """Is the SQLite file still the one we opened? (one ``stat``; always for PostgreSQL).
        When it was deleted or replaced, every write from now on would be lost: stop claiming
        at once, drain what is in flight, and exit with the error's code."""
        try:
            self._db_watch.check()
        except DatabaseUnavailable as exc:
            assert self.dispatcher is not None
            msg = f"{exc}. Restore the database file (or point --db at the right one) and restart."
            self.dispatcher.pause(msg)
            log.error(msg, extra={"event": "database_lost"})
            self._db_lost = True
            self.exit_code = exc.exit_code
            self.stop_event.set()
            return False
        return True

    async def _dispatch_job(self) -> None:
        if self._dispatching.locked():  # the poller started a tick (slots freed) just now
            return
        async with self._dispatching:
            await self._dispatch_tick()

    async def _dispatch_tick(self) -> None:
        assert self.dispatcher is not None
        if self.stop_event.is_set() or not self._check_database():
            return
        bg = self.poller.background
        if bg is not None and bg.ready:  # outcomes fetched since the poll: apply them now
            try:
                await self.poller.apply_fetched(raise_errors=False)  # errors: the next poll's
            except Exception:
                log.exception("applying outcomes failed", extra={"event": "poll_error"})
        loop = asyncio.get_running_loop()
        try:
            if loop.time() < self._idle_until:
                await self.dispatcher.flush()
                return
            claimed = await self.dispatcher.tick()
        except Exception:
            log.exception("dispatch tick failed", extra={"event": "dispatch_error"})
            self._idle_until = loop.time() + 2.0
            return
        self._claimed_nothing = claimed == 0
        d = self.dispatcher
        if claimed == 0 and not d.capped and d.inflight < d.pipeline_size:
            self._idle_until = loop.time() + 1.0  # nothing due: look again in a second

    async def _poll_job(self) -> None:
        loop = asyncio.get_running_loop()
        if self.stop_event.is_set():
            return
        if loop.time() < self._next_poll:
            return
        self._next_poll = loop.time() + self.settings.poll_interval  # if the poll fails
        try:
            st = await self.poller.poll_once()
            assert self.dispatcher is not None
            d = self.dispatcher
            wait = self.poll_pacer.wait(
                live=st.live, pages=st.history_pages, spare_rate=d.spare_rate, idle=d.idle
            )
            self._next_poll = loop.time() + wait
            if st.slots_freed and self.dispatcher.capped:  # fill them now, not next tick
                await self._dispatch_job()
        except AccountError as exc:
            self._account_error(exc, None)
        except NotSentError as exc:  # warned (at most every 30 s) by the reachability watch
            self.reach.not_sent(exc)
        except ProviderError as exc:
            log.warning("poll failed: %s", exc, extra={"event": "poll_error"})
        except Exception:
            log.exception("poll failed", extra={"event": "poll_error"})

    async def _housekeeping_job(self) -> None:
        if self.stop_event.is_set():
            return
        s = self.settings
        now = self.clock()
        loop = asyncio.get_running_loop()
        try:
            if loop.time() - self._last_heartbeat >= s.heartbeat_interval:
                await dbexec.run(daemons.heartbeat, self.engine, self.daemon_id, now=now)
                self._last_heartbeat = loop.time()
                await self._recover()
            await dbexec.run(progress.close_ended_campaigns, self.engine, now)
            counts = self.on_progress is not None and loop.time() - self._last_counts >= 2.0
            state = await dbexec.run(progress.progress, self.engine, with_counts=counts)
            if counts:
                self._last_counts = loop.time()
        except Exception:
            log.exception("housekeeping failed", extra={"event": "housekeeping_error"})
            return
        if state.work_left and self.windows.due(loop.time(), idle=self._claimed_nothing):
            try:  # "next window opens ...": a note, never in the way of the work
                await dbexec.run(self.windows.check, now)
            except Exception:
                log.exception("window check failed", extra={"event": "window_check_error"})
        if self.on_progress is not None and state.counts:
            self.on_progress(state, self.windows.notes)
        assert self.dispatcher is not None
        live = state.live_attempts + self.dispatcher.inflight
        if self._fatal is not None and s.until_done and (self._fatal_now or live == 0):
            log.error(self._fatal, extra={"event": "dispatch_paused"})  # outcomes all read
            self.exit_code = EXIT_SERVICE
            self.stop_event.set()
        elif s.until_done and self.reach.down_for() >= s.unreachable_exit_after:
            log.error(
                "%s; nothing got through for %d s, giving up (--until-done)",
                self.reach.last_warning,
                s.unreachable_exit_after,
                extra={"event": "api_unreachable_exit"},
            )
            self.reach.warn_every = math.inf  # said once; the drain that follows stays quiet
            self.exit_code = EXIT_SERVICE
            self.stop_event.set()
        elif s.until_done and not state.work_left and await self._outbox_drained():
            log.info("no campaign has work left", extra={"event": "until_done"})
            self.stop_event.set()

    async def _outbox_drained(self) -> bool:
        """--until-done also waits for the events out (delivered or dead-lettered), after
        completing the campaigns finished since this tick's check (so that their
        ``campaign.completed`` goes out too)."""
        await dbexec.run(progress.close_ended_campaigns, self.engine, self.clock())
        return self.webhooks is None or await self.webhooks.drained()

    # ----------------------------------------------------------------- account errors

    def _account_error(self, exc: AccountError, job: DialJob | None) -> None:
        """401/402 pause dispatch everywhere; 403/404 pause the campaign. Nothing is consumed.
        ``--until-done`` then exits 3 once the live calls have their outcomes, unless the
        error came from the poller (``job`` None), which cannot read them either."""
        assert self.dispatcher is not None
        self._fatal_now = self._fatal_now or job is None
        if job is None or account_error_scope(exc) == "daemon":
            spec = PROVIDERS.get(self.client.name)
            msg = (
                f"dispatch paused: {exc.user_message()}. Check the API key "
                f"({spec.key_env if spec else 'its API key'}) and the account's "
                "balance, then restart or resume."
            )
            if self.dispatcher.paused_reason is None:
                log.error(msg, extra={"event": "dispatch_paused", "status": exc.status_code})
            self.dispatcher.pause(msg)
            self._fatal = msg
            self.exit_code = EXIT_SERVICE
            return
        reason = f"paused by the API ({exc.status_code}): {exc}"
        asyncio.get_running_loop().create_task(
            dbexec.run(_pause_campaign, self.engine, job.campaign.id, reason, self.clock())
        )
        log.error(
            "campaign paused",
            extra={"event": "campaign_paused", "campaign_id": job.campaign.id, "reason": reason},
        )
        self.exit_code = EXIT_SERVICE

    def _breaker_tripped(self, trip: Trip) -> None:
        """A campaign's circuit breaker paused it (storage.breaker): said once, and like a
        campaign the API paused (403), ``--until-done`` exits 3 once the others are done."""
        report_trip(trip)
        self.exit_code = EXIT_SERVICE


def _pause_campaign(engine: Engine, campaign_id: int, reason: str, now: datetime) -> None:
    """Pause a running campaign with a reason people will see in ``campaign show``; one that
    is no longer running (paused or stopped meanwhile, or deleted) is left as it is."""
    with contextlib.suppress(InvalidTransition, NotFound):
        campaigns_repo.pause_campaign(engine, campaign_id, reason=reason[:2000], now=now)
