"""The catalog: datasets, tags, circuit configurations, sessions and runs.

An embedded SQLite file is always the working copy (`open_catalog`); a shared
PostgreSQL server is an optional sync target (`sync`). The catalog takes
explicit locations only — resolving settings and environment variables is
`npztui.config`'s job — and knows nothing about files on disk: the service
layer scans and hands over plain records.
"""

from __future__ import annotations

from .errors import (
    CatalogError, MigrationError, NotFound, PermissionDenied, ServerUnavailable, SyncInProgress, ValidationError,
)
from .models import (
    CircuitConfig, Conflict, Dataset, DatasetRecord, DbStatus, Run, RunIteration, SyncResult, Tag, UserProfile,
    UserSession,
)
from .repository import Catalog, open_catalog, sqlite_status
from .sync import sync
from .util import default_catalog_path, mask_url

__all__ = [
    "Catalog", "CatalogError", "CircuitConfig", "Conflict", "Dataset", "DatasetRecord", "DbStatus",
    "MigrationError", "NotFound", "PermissionDenied", "Run", "RunIteration", "ServerUnavailable",
    "SyncInProgress", "SyncResult", "Tag", "UserProfile", "UserSession", "ValidationError",
    "db_status", "default_catalog_path", "mask_url", "migrate_server", "open_catalog", "server_status",
    "sqlite_status", "sync",
]


def __getattr__(name: str):  # psycopg is imported only when a server is actually used
    if name in ("server_status", "migrate_server", "db_status"):
        from . import postgres

        return getattr(postgres, name)
    raise AttributeError(name)
