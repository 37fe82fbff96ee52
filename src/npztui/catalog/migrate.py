"""Versioned, per-dialect migrations applied automatically on first use.

Each dialect has `migrations/<dialect>/NNNN_name.sql`; the applied versions are
recorded in `schema_migrations` with a checksum of the file. Applying is
idempotent and safe when two processes open the same catalog at once: SQLite
takes the write lock (BEGIN IMMEDIATE) before looking at what is applied, and
PostgreSQL serialises on an advisory transaction lock, so the second process
waits and then finds nothing left to do.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from .errors import MigrationError

PG_SCHEMA = "npztui"
PG_MIGRATE_LOCK = (7263, 2)
_NAME = re.compile(r"^(\d+)_([A-Za-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


@cache
def load_migrations(dialect: str) -> tuple[Migration, ...]:
    """The dialect's migration files in version order (shipped as package data)."""
    folder = resources.files(__package__).joinpath("migrations", dialect)
    found: list[Migration] = []
    for entry in folder.iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate {dialect} migration versions: {versions}")
    return tuple(found)


def latest_version(dialect: str) -> int:
    migs = load_migrations(dialect)
    return migs[-1].version if migs else 0


def split_sqlite_script(sql: str) -> list[str]:
    """Split a script into complete statements (triggers' inner `;` included).

    `executescript` would commit the surrounding transaction, which would break
    the all-or-nothing application of a migration.
    """
    statements: list[str] = []
    buf = ""
    for line in sql.splitlines(keepends=True):
        if not buf and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    if buf.strip():
        raise MigrationError(f"incomplete SQL statement at end of migration: {buf[:80]!r}")
    return statements


# --------------------------------------------------------------------------- SQLite

_SQLITE_LEDGER = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)"""


def sqlite_version(conn: sqlite3.Connection) -> int:
    """Applied schema version of a SQLite catalog (0 when nothing is applied)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def _up_to_date(what: str, current: int, target: int) -> bool:
    """True when nothing is to apply; a schema newer than this npztui knows is refused."""
    if current > target:
        raise MigrationError(
            f"{what} schema version {current} is newer than this npztui supports ({target}); upgrade npztui"
        )
    return current == target


def migrate_sqlite(conn: sqlite3.Connection) -> list[int]:
    """Apply pending SQLite migrations; returns the versions applied by this call.

    `conn` must be in autocommit mode (isolation_level=None): transactions are
    managed here explicitly.
    """
    if _up_to_date("catalog", sqlite_version(conn), latest_version("sqlite")):
        return []
    applied: list[int] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_SQLITE_LEDGER)
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        for mig in load_migrations("sqlite"):
            if mig.version in done:
                continue
            for stmt in split_sqlite_script(mig.sql):
                conn.execute(stmt)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)",
                (mig.version, mig.name, mig.checksum),
            )
            applied.append(mig.version)
        conn.execute("COMMIT")
    except BaseException as exc:
        conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise MigrationError(f"SQLite migration failed: {exc}") from exc
        raise
    return applied


# --------------------------------------------------------------------------- PostgreSQL


def pg_version(conn: Any) -> int:
    """Applied schema version on the server (0 when the npztui schema is absent)."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{PG_SCHEMA}.schema_migrations",))
        if not cur.fetchone()[0]:
            return 0
        cur.execute(f"SELECT coalesce(max(version), 0) FROM {PG_SCHEMA}.schema_migrations")
        return int(cur.fetchone()[0])


def migrate_pg(conn: Any) -> list[int]:
    """Apply pending PostgreSQL migrations in one transaction per call.

    Needs CREATE on the database (the first time) and ownership of the npztui
    objects afterwards: run it as the catalog administrator (`npztui db
    migrate`). Clients call it automatically and get a clear MigrationError if
    they lack the privileges.
    """
    import psycopg

    current, target = pg_version(conn), latest_version("postgres")
    if _up_to_date("server", current, target):
        return []
    applied: list[int] = []
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", PG_MIGRATE_LOCK)
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}")
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {PG_SCHEMA}.schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur.execute(f"GRANT USAGE ON SCHEMA {PG_SCHEMA} TO PUBLIC")
            cur.execute(f"GRANT SELECT ON {PG_SCHEMA}.schema_migrations TO PUBLIC")
            cur.execute(f"SELECT version FROM {PG_SCHEMA}.schema_migrations")
            done = {r[0] for r in cur.fetchall()}
            for mig in load_migrations("postgres"):
                if mig.version in done:
                    continue
                cur.execute(mig.sql)  # no parameters: psycopg sends it as one multi-statement script
                cur.execute(
                    f"INSERT INTO {PG_SCHEMA}.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (mig.version, mig.name, mig.checksum),
                )
                applied.append(mig.version)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise MigrationError(
            f"the server catalog is at schema version {current}, this npztui needs {target}, and this role "
            f"may not migrate it ({exc.diag.message_primary}); ask the catalog administrator to run "
            "`npztui db migrate`"
        ) from None
    except psycopg.OperationalError:
        raise
    except psycopg.Error as exc:
        raise MigrationError(f"PostgreSQL migration failed: {exc.diag.message_primary or exc}") from None
    return applied
