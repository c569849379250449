"""Use case: what would ``campaign create`` do with this file and these settings? Nothing is
stored in the user's database.

The file goes through the very import ``create`` runs (:func:`create_from_csv`: the same
column mapping, numbers, zones, duplicates and do-not-call rules, no second copy of them)
into a throwaway SQLite database in a temporary directory, seeded with the user's global
do-not-call list so that "suppressed" means what it will mean. The answer is read from there
and the directory is deleted: the user's database is only read (its do-not-call list).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from campaigns.services.create import MIN_RETRY_DELAY, CampaignSpec, check_campaign, create_from_csv
from campaigns.services.dnc import dnc_entries
from campaigns.services.outlook import Outlook, outlook
from storage import suppressions
from storage.contacts import sample_metadata
from storage.engine import Engine, make_engine
from storage.migrate import upgrade

if TYPE_CHECKING:
    from campaigns.importer.importer import ImportOptions, ImportStats

SAMPLE_SIZE = 3


@dataclass(frozen=True, kw_only=True)
class Preview:
    """What creating the campaign would do: the import's counts, when the contacts to call
    can be called, and the metadata the first few agent calls would carry."""

    stats: ImportStats
    outlook: Outlook
    sample: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        s = self.stats
        return {
            **s.counts(),
            "valid": s.imported,
            "rejected_by_reason": dict(s.by_reason),
            "no_country_code": s.no_country_code,
            **self.outlook.to_dict(),
            "sample": self.sample,
        }


def preview_csv(
    engine: Engine,
    csv_path: Path,
    spec: CampaignSpec,
    options: ImportOptions,
    *,
    min_retry_delay: timedelta = MIN_RETRY_DELAY,
) -> Preview:
    """Import ``csv_path`` as ``create`` would, into a throwaway database; report on it.
    Raises :class:`~campaigns.errors.UserError` exactly where ``create`` would."""
    check_campaign(spec, min_retry_delay=min_retry_delay)  # a bad setting: no file read
    listed = [e.phone_e164 for e in dnc_entries(engine) if e.campaign_id is None]
    with tempfile.TemporaryDirectory(prefix="vaani-preview-") as tmp:
        scratch = make_engine(f"sqlite:///{Path(tmp) / 'preview.db'}")
        try:
            upgrade(scratch)
            if listed:
                suppressions.add_to_list(scratch, listed, reason=None, source="preview")
            created = create_from_csv(
                scratch,
                csv_path,
                replace(spec, draft=False),
                replace(options, rejects_path=None),
                min_retry_delay=min_retry_delay,
            )
            return Preview(
                stats=created.stats,
                outlook=outlook(scratch, created.campaign_id),
                sample=sample_metadata(scratch, created.campaign_id, limit=SAMPLE_SIZE),
            )
        finally:
            scratch.dispose()
