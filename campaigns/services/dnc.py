"""Use cases of the global do-not-call list: add, import a file, list, remove, apply.

Numbers on the list are never dialled from any campaign: adding one suppresses the contacts
still waiting in every campaign that may dial (same transaction), and the dispatcher checks
the list again right before each call. Numbers are taken in any usual format and stored in
E.164 (``region`` for those written without a country code). A number that cannot be read
changes nothing: the whole request is refused, naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from campaigns.errors import UserError
from storage import suppressions
from storage.engine import Engine
from storage.suppressions import ListChange, SuppressionEntry

if TYPE_CHECKING:
    from campaigns.importer.dncfile import DncRejected
    from campaigns.importer.phones import PhoneParser

__all__ = [
    "DncFileImport",
    "DncRemoval",
    "ListChange",
    "SuppressionEntry",
    "add_numbers",
    "apply_list",
    "dnc_entries",
    "import_file",
    "parse_numbers",
    "remove_numbers",
]


@dataclass(frozen=True, kw_only=True)
class DncFileImport:
    """What :func:`import_file` did: the numbers read, the change, and unreadable lines."""

    numbers: int
    change: ListChange
    rejected: list[DncRejected]


@dataclass(frozen=True, kw_only=True)
class DncRemoval:
    """What :func:`remove_numbers` did: how many went, and how many were not on the list."""

    removed: int
    missing: int


def _parser(region: str | None) -> PhoneParser:
    from campaigns.importer.phones import PhoneParser  # phonenumbers loads in ~0.3 s

    try:
        return PhoneParser(region)
    except ValueError as exc:
        raise UserError(f"--region: {exc}") from None


def parse_numbers(numbers: list[str] | tuple[str, ...], region: str | None) -> list[str]:
    """E.164 forms of ``numbers``; UserError naming the first one that is not a number."""
    parser = _parser(region)
    out: list[str] = []
    for raw in numbers:
        result = parser.parse(raw)
        if result.e164 is None:
            raise UserError(f"{raw!r}: {result.error}. Nothing was changed.")
        out.append(result.e164)
    return out


def add_numbers(
    engine: Engine,
    numbers: list[str] | tuple[str, ...],
    *,
    reason: str | None = None,
    region: str | None = None,
    source: str = "cli",
) -> ListChange:
    """Put ``numbers`` (as typed) on the global list; their waiting contacts are suppressed."""
    phones = parse_numbers(numbers, region)
    return suppressions.add_to_list(engine, phones, reason=reason, source=source)


def import_file(
    engine: Engine, path: Path, *, reason: str | None = None, region: str | None = None
) -> DncFileImport:
    """Put every number of ``path`` (a CSV with a phone column, or one number per line) on
    the global list; unreadable lines are returned, not fatal."""
    from campaigns.importer.dncfile import read_dnc_file

    phones, rejected = read_dnc_file(path, _parser(region), given_as="`dnc import FILE`")
    change = suppressions.add_to_list(engine, phones, reason=reason, source=path.name)
    return DncFileImport(numbers=len(phones), change=change, rejected=rejected)


def dnc_entries(engine: Engine) -> list[SuppressionEntry]:
    """The global list, by number."""
    return suppressions.list_entries(engine)


def remove_numbers(
    engine: Engine, numbers: list[str] | tuple[str, ...], *, region: str | None = None
) -> DncRemoval:
    """Take ``numbers`` off the global list. Contacts already suppressed stay suppressed."""
    phones = parse_numbers(numbers, region)
    removed = suppressions.remove_from_list(engine, phones)
    return DncRemoval(removed=removed, missing=len(set(phones)) - removed)


def apply_list(engine: Engine) -> int:
    """Suppress the waiting contacts, in every campaign that may still dial, whose number is
    on a list; how many changed."""
    return suppressions.apply_to_campaigns(engine)
