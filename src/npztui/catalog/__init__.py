"""The catalog: datasets, tags, circuit configurations, sessions and runs.

An embedded SQLite file is always the working copy (`open_catalog`); a shared
PostgreSQL server is an optional sync target (`sync`). The catalog takes
explicit locations only — resolving settings and environment variables is
`npztui.config`'s job — and knows nothing about files on disk: the service
layer scans and hands over plain records.
"""

from __future__ import annotations

from .admin import db_status, migrate, migrate_server, server_status, sqlite_status
from .errors import (
    CatalogError, MigrationError, NotFound, PermissionDenied, ServerUnavailable, SyncInProgress, ValidationError,
)
from .models import (
    CircuitConfig, Conflict, Dataset, DatasetRecord, DbStatus, Run, RunIteration, SyncResult, Tag, UserProfile,
    UserSession,
)
from .repository import Catalog, open_catalog
from .sync import sync
from .util import default_catalog_path, mask_url

__all__ = [
    "Catalog", "CatalogError", "CircuitConfig", "Conflict", "Dataset", "DatasetRecord", "DbStatus",
    "MigrationError", "NotFound", "PermissionDenied", "Run", "RunIteration", "ServerUnavailable",
    "SyncInProgress", "SyncResult", "Tag", "UserProfile", "UserSession", "ValidationError",
    "db_status", "default_catalog_path", "mask_url", "migrate", "migrate_server", "open_catalog",
    "server_status", "sqlite_status", "sync",
]

