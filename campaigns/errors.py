"""The product's one exception tree, and the errors of the ``campaigns`` layer.

The root, :class:`CampaignsError`, is defined in the bottom layer (``storage.errors``: storage
may import nothing above it) and re-exported here. Every error the product raises on purpose is
in this tree; the command line and the web console catch the root alone, print its message
(never a traceback, never a secret) and exit with its ``exit_code``::

    CampaignsError                      root                                    exit 1
    ├── UserError                       a bad file, flag value or campaign id   exit 1
    ├── StorageError                    storage.errors                           exit 1
    │   ├── NotFound, InvalidTransition, MigrationError
    │   └── DatabaseError               the driver failed (wrapped at the engine)
    │       ├── DatabaseUnavailable     cannot connect, locked, disk full, gone
    │       └── IntegrityConflict       a constraint refused a write
    └── VaaniError                      scheduler.errors: a provider request      exit 3
        ├── NotSentError, AnswerLostError, ProtocolError
        └── APIStatusError              AccountError (401/402/403), 404, 422, 429, 5xx

Click's own usage errors exit 2. Messages name the file, row and column where they apply.
"""

from __future__ import annotations

from storage.errors import CampaignsError

__all__ = ["CampaignsError", "UserError"]


class UserError(CampaignsError):
    """Something the user can fix (input file, option, unknown id)."""

    exit_code = 1
