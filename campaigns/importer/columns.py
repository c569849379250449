"""Which column holds what: the phone, the name, the per-row time zone, and the metadata keys.

Mapping rules (the README repeats them):

* Headers are matched ignoring case, spaces and punctuation (``" Phone Number "`` matches
  ``phone_number``). The phone column is the first of these that exists: phone,
  phone_number, phone_no, contact_number, contact_no, contact_phone, mobile, mobile_number,
  mobile_no, mobile_phone, number, to_number, msisdn, tel, telephone, telephone_number,
  tel_no, cell, cell_phone, cell_number, whatsapp, whatsapp_number, primary_phone, phone1,
  e164; or the one named by ``--phone-column``.
* The name column likewise: name, full_name, customer_name, contact_name, client_name,
  lead_name, or ``--name-column``; failing those, ``first_name`` and ``last_name`` joined
  with a space (either alone will do).
* A column named timezone, time_zone, tz or timezones overrides the number's time zones for
  its row (an IANA name such as ``Asia/Kolkata``, or several separated by commas).
* Every column, the phone column included, gets a metadata key: its header in snake_case
  (``Customer Name`` -> ``customer_name``; clashes get ``_2``, ``_3``; a header without
  letters or digits becomes ``column_N``). Each contact's metadata holds every column but
  the phone column, value exactly as written; empty cells are left out. The name column
  stays in the metadata too. A number written with an extension (``+1 415 555 0100 ext 12``)
  adds ``phone_extension`` (``"12"``) to the metadata; the main number is the one dialled.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from campaigns.errors import UserError

PHONE_NAMES = (
    "phone", "phonenumber", "phoneno", "contactnumber", "contactno", "contactphone",
    "mobile", "mobilenumber", "mobileno", "mobilephone", "number", "tonumber", "msisdn",
    "tel", "telephone", "telephonenumber", "telno", "cell", "cellphone", "cellnumber",
    "whatsapp", "whatsappnumber", "primaryphone", "phone1", "e164",
)  # fmt: skip
NAME_NAMES = ("name", "fullname", "customername", "contactname", "clientname", "leadname")
FIRST_NAMES = ("firstname", "givenname", "first")
LAST_NAMES = ("lastname", "surname", "familyname", "last")
TIMEZONE_NAMES = ("timezone", "tz", "timezones")

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _words(text: str) -> list[str]:
    """Runs of letters, combining marks and digits (any script); everything else separates."""
    words, current = [], []
    for ch in text:
        if unicodedata.category(ch)[0] in "LMN":
            current.append(ch)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return words


def snake_case(header: str) -> str:
    """``"Customer Name"`` -> ``customer_name``, ``"customerName"`` -> ``customer_name``,
    ``"E-mail (work)"`` -> ``e_mail_work``; letters of any script are kept."""
    return "_".join(_words(_CAMEL.sub("_", header.strip()))).lower()


def metadata_keys(headers: list[str]) -> list[str]:
    """One unique snake_case key per column: clashes get ``_2``, ``_3``...; a header with no
    letters or digits becomes ``column_N`` (its 1-based position)."""
    keys: list[str] = []
    used: set[str] = set()
    for i, header in enumerate(headers, start=1):
        base = snake_case(header) or f"column_{i}"
        key, n = base, 1
        while key in used:
            n += 1
            key = f"{base}_{n}"
        used.add(key)
        keys.append(key)
    return keys


def _norm(header: str) -> str:
    """A header for matching: letters and digits only, lower case."""
    return "".join(_words(header)).lower()


@dataclass(frozen=True, kw_only=True)
class ColumnMap:
    """Positions of the special columns, and each column's metadata key."""

    headers: list[str]
    keys: list[str]
    phone: int
    name: int | None
    first_name: int | None
    last_name: int | None
    timezone: int | None

    @property
    def metadata_columns(self) -> list[int]:
        """Every column but the phone one."""
        return [i for i in range(len(self.headers)) if i != self.phone]

    def columns_for_campaign(self) -> list[list[str]]:
        """``Campaign.columns``: ``[[header, key], ...]`` in file order."""
        return [[h, k] for h, k in zip(self.headers, self.keys, strict=True)]


def _find(headers: list[str], candidates: tuple[str, ...]) -> int | None:
    normed = [_norm(h) for h in headers]
    for cand in candidates:
        if cand in normed:
            return normed.index(cand)
    return None


def _given(path: Path, headers: list[str], keys: list[str], wanted: str, flag: str) -> int:
    target = _norm(wanted)
    for i, (h, k) in enumerate(zip(headers, keys, strict=True)):
        if h == wanted or _norm(h) == target or _norm(k) == target:
            return i
    raise UserError(
        f"{path}: there is no column {wanted!r} (given with {flag}). The columns are: "
        f"{_listing(headers)}."
    )


LISTING_CHARS = 300


def _listing(headers: list[str]) -> str:
    """The headers for a message, cut after about :data:`LISTING_CHARS` characters (a binary
    or mis-delimited file can have a "header" of thousands of columns)."""
    parts: list[str] = []
    size = 0
    for i, header in enumerate(headers):
        text = repr(header if len(header) <= 60 else header[:57] + "...")
        if parts and size + len(text) > LISTING_CHARS:
            return ", ".join(parts) + f", ... and {len(headers) - i} more"
        parts.append(text)
        size += len(text) + 2
    return ", ".join(parts) or "(none)"


def map_columns(
    path: Path, headers: list[str], *, phone_column: str | None, name_column: str | None
) -> ColumnMap:
    """Apply the mapping rules to ``headers``; a missing phone column is a UserError that
    lists the headers found and suggests ``--phone-column``."""
    keys = metadata_keys(headers)
    if phone_column:
        phone = _given(path, headers, keys, phone_column, "--phone-column")
    else:
        found = _find(headers, PHONE_NAMES)
        if found is None:
            raise UserError(
                f"{path}: no phone number column found. The columns are: {_listing(headers)}. "
                "Name the column that holds the numbers with --phone-column (e.g. "
                f"--phone-column {headers[0][:60]!r}), or rename it to 'phone'."
            )
        phone = found
    first = last = None
    if name_column:
        name: int | None = _given(path, headers, keys, name_column, "--name-column")
    else:
        name = _find(headers, NAME_NAMES)
        if name is None:
            first, last = _find(headers, FIRST_NAMES), _find(headers, LAST_NAMES)
    if name == phone:
        name = None
    timezone = _find(headers, TIMEZONE_NAMES)
    if timezone == phone:
        timezone = None
    return ColumnMap(
        headers=headers,
        keys=keys,
        phone=phone,
        name=name,
        first_name=first,
        last_name=last,
        timezone=timezone,
    )
