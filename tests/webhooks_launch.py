"""Run the real ``vaani-campaigns`` CLI with webhooks on the Vaani wire, for the webhook tests
and ``benchmarks/bench_webhooks.py --stand-in``, until the VaniAgent adapter and front-end
carry them.

Usage: ``python tests/webhooks_launch.py ARGS...`` = ``vaani-campaigns ARGS...`` where

* ``sandbox --provider vaani-webhooks`` serves the Vaani wire and sends VaniAgent webhooks
  (``scheduler.sandbox.webhooks``) for its calls to ``--webhook-url``;
* ``run`` drives Vaani with a client that also takes pushed events
  (``tests.webhooks_helpers.PushingVaani``), its secret in ``VAANI_WEBHOOK_SECRET``.

Everything else is the product's own code: the receiver, the inbox, the sweep, the daemon.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    from scheduler.providers import registry
    from scheduler.sandbox import fronts
    from tests.webhooks_helpers import PushingVaani

    fronts.FRONTS["vaani-webhooks"] = "tests.webhooks_helpers"
    registry.PROVIDERS["vaani"] = replace(
        registry.PROVIDERS["vaani"], build=PushingVaani, webhook_secret_env="VAANI_WEBHOOK_SECRET"
    )
    from campaigns.cli import main as cli

    cli()


if __name__ == "__main__":
    main()
