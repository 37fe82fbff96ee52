"""The shared PostgreSQL catalog (psycopg 3): connection, schema, status, row I/O.

The server is a sync target, never the working copy: the TUI and CLI read and
write the local SQLite catalog and `sync.py` moves rows through the primitives
here. Every statement is parameterised; identifiers come from `schema.py`.

Connections are opened per operation rather than pooled: a sync is a handful
of round trips, and an idle pool would hold server connections open for every
TUI left running on a compute node.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from .errors import CatalogError, MigrationError, PermissionDenied, ServerUnavailable
from .migrate import PG_SCHEMA, latest_version, migrate_pg, pg_version
from .models import DbStatus
from .schema import JSON_COLUMNS, TIME_COLUMNS, UUID_COLUMNS, Table
from .util import mask_url, scrub

_TS = "YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\""


def qualified(table: Table | str) -> sql.Composable:
    name = table.name if isinstance(table, Table) else table
    return sql.Identifier(PG_SCHEMA, name)


def decode(table: Table, values: Sequence[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c, val in zip(table.columns, values):
        if val is not None and c in JSON_COLUMNS:
            val = json.loads(val)
        out[c] = val
    return out


# --------------------------------------------------------------------------- errors


def server_error(exc: BaseException, url: str | None) -> CatalogError:
    """A psycopg error as a typed catalog error, with any password scrubbed."""
    diag = getattr(exc, "diag", None)
    msg = (getattr(diag, "message_primary", None) or str(exc) or type(exc).__name__).strip()
    msg = scrub(msg, url)
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) and not isinstance(
        exc, psycopg.errors.InsufficientPrivilege
    ):
        return ServerUnavailable(f"catalog server {mask_url(url)} unavailable: {msg}")
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return PermissionDenied(f"the server refused: {msg}")
    return CatalogError(f"catalog server error: {msg}")


def is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) and not isinstance(
        exc, psycopg.errors.InsufficientPrivilege
    )


# --------------------------------------------------------------------------- connections


def connect(url: str, *, connect_timeout: float = 5.0, application_name: str = "npztui") -> psycopg.Connection:
    """An autocommit connection (transactions are explicit `conn.transaction()` blocks)."""
    try:
        return psycopg.connect(
            url, autocommit=True, connect_timeout=max(1, int(connect_timeout)),
            application_name=application_name,
        )
    except psycopg.Error as exc:
        raise server_error(exc, url) from None


@contextmanager
def session(url: str, *, connect_timeout: float = 5.0) -> Iterator[psycopg.Connection]:
    """A connection whose psycopg errors come out as catalog errors."""
    conn = connect(url, connect_timeout=connect_timeout)
    try:
        yield conn
    except psycopg.Error as exc:
        raise server_error(exc, url) from None
    finally:
        try:
            conn.close()
        except Exception:  # pragma: no cover - closing a dead connection
            pass


def ensure_schema(conn: psycopg.Connection, *, auto_migrate: bool = True) -> int:
    """Bring the server schema to this code's version (if allowed) and return it."""
    current = pg_version(conn)
    target = latest_version("postgres")
    if current < target and auto_migrate:
        migrate_pg(conn)
        current = pg_version(conn)
    if current != target:
        raise MigrationError(
            f"server catalog schema is version {current}, this npztui needs {target}; "
            "run `npztui db migrate` as the catalog administrator"
        )
    return current


def migrate_server(url: str, *, connect_timeout: float = 5.0) -> list[int]:
    """`npztui db migrate` against the server: returns the versions applied now."""
    with session(url, connect_timeout=connect_timeout) as conn:
        return migrate_pg(conn)


def identity(conn: psycopg.Connection) -> tuple[str, str]:
    """(server catalog id, current_user): who we are, and on which catalog."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT server_id::text, current_user::text FROM {}").format(qualified("server_info")))
        row = cur.fetchone()
    if row is None:
        raise CatalogError("server catalog has no identity row (npztui.server_info is empty)")
    return row[0], row[1]


def safe_revision(conn: psycopg.Connection) -> int:
    """The highest revision below which every row is committed (see the migration).

    Must run in its own transaction (autocommit): its snapshot must not be the
    one used to read rows.
    """
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT {}()").format(sql.Identifier(PG_SCHEMA, "safe_revision")))
        return int(cur.fetchone()[0])


# --------------------------------------------------------------------------- row I/O


def stage(conn: psycopg.Connection, table: Table, rows: Sequence[Sequence[Any]]) -> sql.Composable:
    """COPY rows into a temporary table shaped like `table` (dropped at commit).

    Rows come in SQLite storage form, in `table.columns` order: JSON is already
    text (parsed by the server), booleans are 0/1 (valid boolean input).
    """
    tmp = sql.Identifier(f"npztui_stage_{table.name}")
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(tmp))
        cur.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(tmp, qualified(table)))
        cols = sql.SQL(", ").join(map(sql.Identifier, table.columns))
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(tmp, cols)) as copy:
            for row in rows:
                copy.write_row(row)
    return tmp


def natural_collisions(conn: psycopg.Connection, table: Table, tmp: sql.Composable) -> list[tuple[str, dict[str, Any]]]:
    """Staged rows whose natural key already exists on the server under another id.

    Returns (local id, server row) pairs: the same file catalogued on two
    machines, the same row tagged twice. Sync re-points the local id to the
    server's so the two records become one.
    """
    if not table.natural_key:
        return []
    on = sql.SQL(" AND ").join(
        sql.SQL("t.{c} = s.{c}").format(c=sql.Identifier(c)) for c in table.natural_key
    )
    cols = sql.SQL(", ").join(_aliased(c, "t") for c in table.columns)
    q = sql.SQL("SELECT s.id::text, {cols} FROM {tmp} s JOIN {t} t ON {on} WHERE t.id <> s.id").format(
        cols=cols, tmp=tmp, t=qualified(table), on=on
    )
    with conn.cursor() as cur:
        cur.execute(q)
        return [(r[0], decode(table, r[1:])) for r in cur.fetchall()]


def _aliased(column: str, alias: str) -> sql.Composable:
    """How a column is read so it arrives in the local representation (text ids/JSON/UTC times)."""
    ident = sql.Identifier(alias, column)
    if column in UUID_COLUMNS or column in JSON_COLUMNS:
        return sql.SQL("{}::text").format(ident)
    if column in TIME_COLUMNS:
        return sql.SQL("to_char({} AT TIME ZONE 'UTC', {})").format(ident, sql.Literal(_TS))
    return ident


def current_versions(conn: psycopg.Connection, table: Table, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Server versions of these rows, locked until commit so the decision made on them holds."""
    cols = sql.SQL(", ").join(_aliased(c, "t") for c in table.columns)
    q = sql.SQL("SELECT {cols} FROM {t} t WHERE t.id = ANY(%s::uuid[]) FOR UPDATE").format(
        cols=cols, t=qualified(table)
    )
    with conn.cursor() as cur:
        cur.execute(q, (list(ids),))
        rows = [decode(table, r) for r in cur.fetchall()]
    return {r["id"]: r for r in rows}


def apply_staged(conn: psycopg.Connection, table: Table, tmp: sql.Composable, ids: Sequence[str]) -> dict[str, int]:
    """Upsert the staged rows with these ids by client UUID; returns {id: new server rev}.

    Upserting by the client's UUID is what makes a retried push harmless: the
    second attempt updates the row the first one created.
    """
    if not ids:
        return {}
    cols = [c for c in table.columns if c != "rev"]
    collist = sql.SQL(", ").join(map(sql.Identifier, cols))
    sets = sql.SQL(", ").join(
        sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in cols if c not in ("id", "created_at")
    )
    q = sql.SQL(
        "INSERT INTO {t} ({cols}) SELECT {cols} FROM {tmp} WHERE id = ANY(%s::uuid[]) "
        "ON CONFLICT (id) DO UPDATE SET {sets} RETURNING id::text, rev"
    ).format(t=qualified(table), cols=collist, tmp=tmp, sets=sets)
    with conn.cursor() as cur:
        cur.execute(q, (list(ids),))
        return {r[0]: int(r[1]) for r in cur.fetchall()}


def rows_between(conn: psycopg.Connection, table: Table, after: int, upto: int, *,
                 skip_origin: str | None = None, raw: bool = False,
                 batch: int = 5000) -> Iterator[Any]:
    """Visible rows of `table` with after < rev ≤ upto, oldest revision first.

    `skip_origin`: leave out versions written by that client — our own pushes,
    which the local catalog already holds (their revisions were recorded when
    the push was acknowledged). `raw`: tuples in `table.columns` order with
    JSON left as text, ready for SQLite; otherwise decoded dicts.
    """
    cols = sql.SQL(", ").join(_aliased(c, "t") for c in table.columns)
    q = sql.SQL(
        "SELECT {cols} FROM {t} t WHERE t.rev > %s AND t.rev <= %s "
        "AND t.origin IS DISTINCT FROM %s ORDER BY t.rev"
    ).format(cols=cols, t=qualified(table))
    with conn.cursor() as cur:
        cur.execute(q, (after, upto, skip_origin))
        while True:
            chunk = cur.fetchmany(batch)
            if not chunk:
                break
            for r in chunk:
                yield r if raw else decode(table, r)


def visible_ids(conn: psycopg.Connection, table: Table) -> set[str]:
    """Ids of every row this role can see (used by a full resync to forget hidden rows)."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT id::text FROM {}").format(qualified(table)))
        return {r[0] for r in cur.fetchall()}


# --------------------------------------------------------------------------- status


def server_status(url: str, *, connect_timeout: float = 5.0) -> DbStatus:
    """`db status` for the server: reachability, schema version, role; never raises."""
    location = mask_url(url)
    target = latest_version("postgres")
    try:
        with session(url, connect_timeout=connect_timeout) as conn:
            version = pg_version(conn)
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT current_setting('server_version'), current_user::text, "
                    "coalesce((SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user), false)"
                )
                server_version, user, bypass = cur.fetchone()
            return DbStatus(
                backend="postgresql", location=location, reachable=True, schema_version=version,
                latest_version=target, server_version=server_version, user=user, bypasses_rls=bool(bypass),
            )
    except CatalogError as exc:
        return DbStatus(backend="postgresql", location=location, reachable=False, latest_version=target,
                        error=str(exc))
