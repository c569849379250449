"""Use case: import more contacts into an existing campaign.

The same checks as at creation (numbers, zones, the calling window, the do-not-call lists),
and duplicates are found against the campaign's contacts as well as within the file. Row
numbers continue after the campaign's highest. One transaction: a failure adds nothing.
A stopped or cancelled campaign takes no new contacts (it was closed on purpose: they would
wait forever); a completed one does, and runs again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from campaigns.errors import UserError
from storage import campaigns_repo
from storage.engine import Engine
from storage.errors import NotFound
from storage.states import CampaignStatus

if TYPE_CHECKING:
    from campaigns.importer.importer import ImportOptions, ImportStats, Progress

LIST_HINT = "see: vaani-campaigns campaign list"


def import_contacts(
    engine: Engine,
    campaign_id: int,
    csv_path: Path,
    options: ImportOptions,
    *,
    progress: Progress | None = None,
) -> ImportStats:
    """Add the contacts of ``csv_path`` to campaign ``campaign_id``; what became of the rows.

    Raises :class:`~storage.errors.NotFound` for an unknown id and :class:`UserError` for a
    stopped or cancelled campaign or a bad file (nothing is written then).
    """
    try:
        campaign = campaigns_repo.get_campaign(engine, campaign_id)
    except NotFound as exc:
        raise NotFound(f"{exc} ({LIST_HINT})") from None
    if campaign.is_final and campaign.status != CampaignStatus.COMPLETED:
        raise UserError(
            f"campaign {campaign_id} ({campaign.name!r}) is {campaign.status}: it will not dial "
            "again, so it takes no new contacts. Create a new campaign instead."
        )
    from campaigns.importer.importer import add_contacts  # loads pandas and numpy

    return add_contacts(engine, campaign_id, csv_path, options, progress=progress)
