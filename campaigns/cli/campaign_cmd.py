"""``vaani-campaigns campaign ...``: create (import a CSV), list, show, start, pause, resume,
stop, cancel; after creation: import, edit, requeue, contacts, archive, delete, recordings.

Each command lives in its own module, imported only when it runs; this one only assembles
the group.
"""

from __future__ import annotations

import click

from campaigns.cli.lazy import LazyGroup

_LIFECYCLE = "campaigns.cli.lifecycle_cmd"
_MANAGE = "campaigns.cli.manage_cmd"


@click.group(
    cls=LazyGroup,
    lazy={
        "create": "campaigns.cli.create_cmd:create",
        "show": "campaigns.cli.show_cmd:show",
        "list": f"{_LIFECYCLE}:list_",
        "start": f"{_LIFECYCLE}:start",
        "pause": f"{_LIFECYCLE}:pause",
        "resume": f"{_LIFECYCLE}:resume",
        "stop": f"{_LIFECYCLE}:stop",
        "cancel": f"{_LIFECYCLE}:cancel",
        "import": f"{_MANAGE}:import_",
        "edit": f"{_MANAGE}:edit",
        "requeue": f"{_MANAGE}:requeue",
        "contacts": "campaigns.cli.contacts_cmd:contacts",
        "archive": f"{_MANAGE}:archive",
        "delete": f"{_MANAGE}:delete",
        "recordings": "campaigns.cli.recordings_cmd:recordings",
        "test-call": "campaigns.cli.test_call_cmd:test_call",
    },
)
def campaign() -> None:
    """Create and manage campaigns."""
