"""Typed catalog errors.

Front ends map every `CatalogError` to exit code 4 (CLI) or an error/offline
state (TUI), so callers never have to catch `sqlite3` or `psycopg` exceptions:
the catalog translates them here, with passwords already scrubbed.
"""

from __future__ import annotations

from typing import Any


class CatalogError(Exception):
    """Base class for everything the catalog raises on purpose."""


class ValidationError(CatalogError, ValueError):
    """A value was refused before it reached the database (e.g. quality_score 1.5).

    `field` names the offending field so a form can highlight it.
    """

    def __init__(self, message: str, *, field: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class NotFound(CatalogError, LookupError):
    """The id does not name a live row of that kind in this catalog."""


class PermissionDenied(CatalogError):
    """The row belongs to another owner: it is readable (public) but not changeable."""


class MigrationError(CatalogError):
    """The schema could not be brought to the version this code needs."""


class ServerUnavailable(CatalogError):
    """The PostgreSQL server cannot be reached (or went away mid-operation).

    Local work is never lost when this is raised: the outbox keeps every change
    that the server has not acknowledged. `partial` carries what a sync managed
    before the connection failed, if anything.
    """

    def __init__(self, message: str, *, partial: Any = None) -> None:
        super().__init__(message)
        self.partial = partial


class SyncInProgress(CatalogError):
    """Another sync of the same local catalog holds the sync lock."""
