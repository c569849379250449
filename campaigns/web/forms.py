"""The upload form's fields -> the settings of ``campaign create``.

Fields are named like the flags of ``campaign create`` in snake_case (``agent_id``,
``max_attempts``, ...). An unknown field is refused naming it (a typo'd ``windw`` would
otherwise silently give the default window), and so is a number that is not one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from campaigns.errors import UserError
from campaigns.services.create import CampaignSpec

if TYPE_CHECKING:
    from campaigns.importer.importer import ImportOptions

SPEC_FIELDS = (
    "name",
    "agent_id",
    "window",
    "days",
    "timezone",
    "max_attempts",
    "retry_delay",
    "start_at",
    "end_at",
    "caller_id",
    "voice",
    "draft",
    "provider",
    "webhook_url",
    "webhook_secret",  # only its fingerprint is stored (campaigns/services/create.py)
    # re-dial policy and days without calls (campaigns/services/redial.py)
    "retry",
    "retry_schedule",
    "redial_voicemail",
    "skip_dates",
    "holidays",
)
IMPORT_FIELDS = ("phone_column", "name_column", "region")
TRUE = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True, kw_only=True)
class CreateForm:
    spec: CampaignSpec
    options: ImportOptions


def parse_create_form(fields: Mapping[str, str], *, dnc_file: Path | None = None) -> CreateForm:
    """The spec and import options of the form; UserError naming a bad or unknown field."""
    unknown = sorted(set(fields) - {*SPEC_FIELDS, *IMPORT_FIELDS})
    if unknown:
        known = ", ".join((*SPEC_FIELDS, *IMPORT_FIELDS))
        raise UserError(f"unknown form field(s) {', '.join(unknown)}; known: {known}")
    given = {k: v.strip() for k, v in fields.items() if v.strip()}
    spec_args: dict[str, object] = {k: given[k] for k in SPEC_FIELDS if k in given}
    spec_args.setdefault("name", "")
    spec_args.setdefault("agent_id", "")
    if "max_attempts" in given:
        try:
            spec_args["max_attempts"] = int(given["max_attempts"])
        except ValueError:
            raise UserError(
                f"max_attempts: {given['max_attempts']!r} is not a whole number"
            ) from None
    spec_args["draft"] = given.get("draft", "").lower() in TRUE
    if "redial_voicemail" in given:
        spec_args["redial_voicemail"] = given["redial_voicemail"].lower() in TRUE
    from campaigns.importer.importer import ImportOptions  # loads pandas

    options = ImportOptions(
        phone_column=given.get("phone_column"),
        name_column=given.get("name_column"),
        region=given.get("region"),
        dnc_file=dnc_file,
    )
    return CreateForm(spec=CampaignSpec(**spec_args), options=options)  # type: ignore[arg-type]
