"""`npztui db migrate|status` in one place: the local catalog and, when configured, the server.

Thin wrappers so front ends (through the service) need not know which module
does what, and so psycopg is imported only when a server is involved.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import CatalogError
from .migrate import latest_version
from .models import DbStatus
from .repository import Catalog
from .util import default_catalog_path


def sqlite_status(path: str | os.PathLike[str]) -> DbStatus:
    """Status of a catalog file, without creating it when it does not exist yet."""
    p = Path(path).expanduser()
    if not p.exists():
        return DbStatus(backend="sqlite", location=str(p), reachable=True, schema_version=0,
                        latest_version=latest_version("sqlite"), error="not created yet (made on first use)")
    try:
        with Catalog(p) as cat:
            return cat.status()
    except CatalogError as exc:
        return DbStatus(backend="sqlite", location=str(p), reachable=False, error=str(exc),
                        latest_version=latest_version("sqlite"))


def server_status(url: str, *, connect_timeout: float = 5.0) -> DbStatus:
    """Reachability, schema version and role of the server (URL masked); never raises."""
    from .postgres import server_status as _status

    return _status(url, connect_timeout=connect_timeout)


def migrate_server(url: str, *, connect_timeout: float = 5.0) -> list[int]:
    """Apply pending server migrations (as the catalog administrator); returns versions applied."""
    from .postgres import migrate_server as _migrate

    return _migrate(url, connect_timeout=connect_timeout)


def db_status(sqlite_path: str | os.PathLike[str] | None = None, server_url: str | None = None) -> list[DbStatus]:
    """Status of the local catalog and, when a server is configured, of the server."""
    out = [sqlite_status(sqlite_path if sqlite_path is not None else default_catalog_path())]
    if server_url is not None:
        out.append(server_status(server_url))
    return out


def migrate(sqlite_path: str | os.PathLike[str] | None = None,
            server_url: str | None = None) -> dict[str, list[int]]:
    """`npztui db migrate`: {"sqlite": versions applied, "postgresql": versions applied}.

    Both are idempotent; an empty list means "already up to date".
    """
    with Catalog(sqlite_path if sqlite_path is not None else default_catalog_path()) as cat:
        out = {"sqlite": list(cat.store.applied_migrations)}
    if server_url is not None:
        out["postgresql"] = migrate_server(server_url)
    return out
