"""A live one-line progress display for a terminal (rich), fed by the daemon's housekeeping."""

from __future__ import annotations

from rich.console import Console
from rich.live import Live
from rich.text import Text

from campaigns.wording import plural
from storage.progress import Progress
from storage.states import CONTACT_TERMINAL

_SHOWN = ("pending", "dialing", "awaiting_outcome", "retry_wait")


class ProgressLine:
    """``campaign 1: 42/60 finished · 5 dialing · 8 awaiting · 3 retry_wait | 13 live calls``."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console(stderr=True)
        self._live = Live(Text("starting…"), console=self._console, refresh_per_second=4)
        self._live.start()

    @staticmethod
    def render(progress: Progress) -> Text:
        parts = []
        for cid, counts in sorted(progress.counts.items()):
            total = sum(counts.values())
            final = sum(n for s, n in counts.items() if s in CONTACT_TERMINAL)
            detail = " · ".join(f"{counts[s]} {s}" for s in _SHOWN if counts.get(s))
            parts.append(
                f"campaign {cid}: {final}/{total} finished" + (f" · {detail}" if detail else "")
            )
        line = "  |  ".join(parts) or "no running campaign"
        return Text(f"{line}  |  {plural(progress.live_attempts, 'live call')}")

    def update(self, progress: Progress) -> None:
        self._live.update(self.render(progress))

    def close(self) -> None:
        self._live.stop()
