"""The errors the storage layer raises for expected problems.

::

    StorageError                 root: anything storage refuses to do
    ├── NotFound                 no campaign (or daemon) with that id
    ├── InvalidTransition        a lifecycle step not allowed from the current status
    └── MigrationError           the database schema cannot be brought to this program's version

Callers (the CLI) map these to a one-line user-facing message; each message names the object
and says what to do. Database driver errors (``sqlalchemy.exc.*``) are not wrapped here: they
are unexpected and the CLI reports them separately.
"""

from __future__ import annotations


class StorageError(Exception):
    """Root of the storage layer's expected errors."""


class NotFound(StorageError):
    """The object asked for does not exist (e.g. an unknown campaign id)."""


class InvalidTransition(StorageError):
    """The lifecycle step is not allowed from the object's current status."""

    def __init__(self, message: str, *, current: str, requested: str) -> None:
        super().__init__(message)
        self.current = current
        self.requested = requested


class MigrationError(StorageError):
    """The database schema cannot be brought to the version this program expects."""
