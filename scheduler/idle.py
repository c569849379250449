"""Why the daemon dials nothing: every waiting contact of a campaign is outside its window.

A daemon that sits quiet at night looks broken unless it says why. :class:`WindowWatch` asks
the outlook service (:func:`campaigns.services.outlook.outlook`, the one the console and
``campaign show`` use) about each running campaign, and

* logs once per wait, for the campaigns of its own provider: ``campaign 3: 42 contacts
  waiting, all outside their calling window; next window opens 10:00 Asia/Kolkata (in
  13h56m)``; again only when that opening changes (a new wait, after some calls);
* keeps the "next window opens ..." sentence per campaign for the progress line.

The outlook groups the waiting contacts in the database (a scan of a campaign's waiting
contacts), so the watch runs every few seconds while the dispatcher finds nothing to claim and
once a minute while it is busy (and at once when it starts claiming again: a window opened),
and looks again at one campaign only after :data:`RELOOK` or at its next opening, whichever
comes first; in between, the sentence is said again with the time left brought up to date.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from datetime import datetime, timedelta

from campaigns.services.outlook import Outlook, outlook
from campaigns.testclock import policy_now, to_real
from campaigns.wording import plural
from storage import campaigns_repo
from storage.engine import Engine
from storage.errors import NotFound
from storage.states import CampaignStatus

log = logging.getLogger("vaani.daemon")
#: How long one campaign's outlook is reused (unless its next window opens sooner).
RELOOK = timedelta(seconds=30)


class WindowWatch:
    """The "next window opens ..." notes of the running campaigns (see the module doc)."""

    def __init__(
        self, engine: Engine, provider: str, *, every_idle: float = 5.0, every_busy: float = 60.0
    ) -> None:
        self._engine = engine
        self._provider = provider
        self._every = (every_idle, every_busy)
        self._last = -math.inf
        self._was_idle = False
        self._said: dict[int, datetime | None] = {}
        self._looks: dict[int, tuple[datetime, Outlook]] = {}  # (look again at, outlook)
        self.notes: dict[int, str] = {}

    def due(self, monotonic: float, *, idle: bool) -> bool:
        """Time for :meth:`check` (at ``monotonic`` seconds; ``idle``: nothing was claimed).
        Also at once when the dispatcher starts claiming again: a window opened."""
        woke, self._was_idle = self._was_idle and not idle, idle
        if not woke and monotonic - self._last < self._every[0 if idle else 1]:
            return False
        self._last = monotonic
        return True

    def check(self, now: datetime) -> dict[int, str]:
        """Refresh :attr:`notes` (and log the new waits); blocking, run it off the loop."""
        notes: dict[int, str] = {}
        running = campaigns_repo.list_campaigns(
            self._engine, statuses=[CampaignStatus.RUNNING.value]
        )
        for c in running:
            try:
                look = self._outlook(c.id, now)
            except (NotFound, ValueError):  # deleted meanwhile; a setting the policy refuses
                continue
            text = look.next_window_text()
            if text is None:
                self._said.pop(c.id, None)
                continue
            notes[c.id] = text
            if c.provider != self._provider:
                continue  # that provider's daemon says it
            if c.id in self._said and self._said[c.id] == look.next_window_at:
                continue
            self._said[c.id] = look.next_window_at
            log.info(
                "campaign %d: %s, all outside their calling window; %s",
                c.id,
                plural(look.later, "contact", "contacts") + " waiting",
                text,
                extra={
                    "event": "waiting_for_window",
                    "campaign_id": c.id,
                    "next_window_at": look.to_dict()["next_window_at"],
                },
            )
        for cid in set(self._said) - set(notes):
            del self._said[cid]
        ids = {c.id for c in running}
        self._looks = {cid: v for cid, v in self._looks.items() if cid in ids}
        self.notes = notes
        return notes

    def _outlook(self, campaign_id: int, now: datetime) -> Outlook:
        cached = self._looks.get(campaign_id)
        if cached is not None and now < cached[0]:
            # the same wait, the time left from now (in the policy's time: campaigns.testclock)
            return replace(cached[1], as_of=policy_now(now))
        look = outlook(self._engine, campaign_id, now=now)
        again = now + RELOOK
        if look.next_window_at is not None:
            again = min(again, to_real(look.next_window_at))
        self._looks[campaign_id] = (again, look)
        return look
