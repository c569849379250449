"""The product's exception root, and the errors of the storage layer.

Every error the product raises on purpose derives from :class:`CampaignsError`. It lives here,
in the bottom layer, because ``storage`` may import neither ``campaigns`` nor ``scheduler``;
``campaigns.errors`` re-exports it and draws the whole tree. Each class carries the exit code
the command line gives it and a message that names the object and says what to do.

::

    CampaignsError                  root (exit 1)
    └── StorageError                anything storage refuses or fails to do
        ├── NotFound                no campaign (or daemon) with that id
        ├── InvalidTransition       a lifecycle step not allowed from the current status
        ├── MigrationError          the schema cannot be brought to this program's version
        ├── DatabaseMissing         a read-only command named a SQLite file that does not exist
        ├── UnsupportedDatabase     a URL of a database this product does not speak (mysql://)
        └── DatabaseError           the database driver failed (wrapped where it enters)
            ├── DatabaseUnavailable cannot connect, locked, disk full, file gone
            └── IntegrityConflict   a unique or foreign key constraint refused a write

Driver errors (``sqlalchemy.exc.*`` and the DBAPI's) are converted into ``DatabaseError`` by an
engine event (:func:`storage.engine.make_engine` installs it), so nothing above ``storage``
ever sees or catches a library exception. Messages never carry the SQL or its parameters.
"""

from __future__ import annotations


class CampaignsError(Exception):
    """Root of every error the product raises on purpose; the CLI prints the message alone."""

    exit_code = 1

    def user_message(self) -> str:
        """The line the command line prints for this error (the message, by default)."""
        return str(self)


class StorageError(CampaignsError):
    """Root of the storage layer's errors."""


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


class DatabaseMissing(StorageError):
    """No database at the SQLite path given, and the command may not create one: a typo'd
    ``--db`` must not leave a new empty file behind (only the commands that write a campaign,
    migrate or run the daemon create the database)."""


class UnsupportedDatabase(StorageError):
    """The database URL names a kind of database this product does not support."""


class DatabaseError(StorageError):
    """The database driver failed; the message says what the database said, without SQL."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached or used right now (down, locked, disk full, gone)."""


class IntegrityConflict(DatabaseError):
    """A constraint refused the write (e.g. a second live attempt, a duplicate call id)."""
