"""Errors the command line turns into a message and an exit code, never a traceback.

``UserError`` (exit 1) is a problem the user can fix: a bad file, flag value or campaign id.
``ServiceError`` (exit 3) is a problem with the service or the account (down, wrong key, no
balance). Click's own usage errors exit 2. Messages name the file, row and column where they
apply, and never contain the API key.
"""

from __future__ import annotations


class CampaignsError(Exception):
    """Root of the errors the CLI reports without a traceback."""

    exit_code = 1


class UserError(CampaignsError):
    """Something the user can fix (input file, option, unknown id)."""

    exit_code = 1


class ServiceError(CampaignsError):
    """The Vaani service or the account stands in the way (down, 401, 402, 403)."""

    exit_code = 3
