"""A live one-line progress display for a terminal (rich), fed by the daemon's housekeeping."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.live import Live
from rich.text import Text

from campaigns.wording import plural
from storage.progress import Progress
from storage.states import CONTACT_TERMINAL

_SHOWN = ("pending", "dialing", "awaiting_outcome", "retry_wait")
#: Rows the import set aside: never called, so not "finished" calls (as in ``campaign list``).
_NOT_CALLED = ("invalid", "suppressed")


class ProgressLine:
    """``campaign 1: 42/60 finished · 5 dialing · 8 awaiting · 3 retry_wait | 13 live calls``,
    with "next window opens ..." for a campaign whose waiting contacts are all outside their
    window; rows never to be called (invalid, suppressed) are not counted as finished."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console(stderr=True)
        self._live = Live(Text("starting…"), console=self._console, refresh_per_second=4)
        self._live.start()

    @staticmethod
    def render(progress: Progress, notes: Mapping[int, str] | None = None) -> Text:
        parts = []
        for cid, counts in sorted(progress.counts.items()):
            skipped = sum(counts.get(s, 0) for s in _NOT_CALLED)
            total = sum(counts.values()) - skipped
            final = sum(n for s, n in counts.items() if s in CONTACT_TERMINAL) - skipped
            detail = [f"{counts[s]} {s}" for s in _SHOWN if counts.get(s)]
            if skipped:
                detail.append(f"{skipped} not to be called")
            if notes and cid in notes:
                detail.append(notes[cid])
            parts.append(" · ".join([f"campaign {cid}: {final}/{total} finished", *detail]))
        line = "  |  ".join(parts) or "no running campaign"
        return Text(f"{line}  |  {plural(progress.live_attempts, 'live call')}")

    def update(self, progress: Progress, notes: Mapping[int, str] | None = None) -> None:
        self._live.update(self.render(progress, notes))

    def close(self) -> None:
        self._live.stop()
