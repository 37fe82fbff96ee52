"""Offline-first sync between the local catalog and the shared server (SPEC §6).

One `sync()`:

1. connects, migrates the server schema if needed, learns the server's
   identity and our role; a catalog that meets a different server offers all
   its own rows again, and the local owner becomes the server role;
2. pushes the outbox table by table (parents first) in chunks. Each chunk is
   one server transaction: stage the rows (COPY), merge records that are the
   same thing under two ids (same file from two machines), lock the server
   versions, decide per row, upsert the winners by client UUID, commit. Only
   then are the chunk's outbox entries removed, so a push interrupted anywhere
   is simply retried, and a retry never duplicates (same UUIDs, and a row the
   server already holds in this exact version is just acknowledged);
3. pulls every row with `last pulled revision < rev ≤ safe revision`, applies
   it locally without creating outbox entries, and advances the cursor in the
   same local transaction.

Concurrent edits: a local row carries the server revision it was based on. If
the server's revision moved since (someone else wrote), the version with the
later `updated_at` wins (ties: the server) and the loser is stored in the
local `conflicts` table. Deletes are tombstones, so they travel the same way.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CatalogError, ServerUnavailable, SyncInProgress
from .models import SyncResult
from .repository import Catalog
from .schema import SYNC_ORDER, Table, children_of
from .sqlite import decode_row
from .util import CLOCK, dumps, new_id

if TYPE_CHECKING:
    import psycopg

# Test seam: called at named points ("push:staged", "push:before_commit",
# "push:after_commit", "pull:table", "pull:fetched") so tests can make the
# server disappear exactly there.
_checkpoint: Callable[[str], None] = lambda name: None


class _Restart(Exception):
    """A chunk met natural-key twins on the server: merge locally, then redo it."""

    def __init__(self, twins: list[tuple[str, dict[str, Any]]]) -> None:
        super().__init__(f"{len(twins)} records to merge")
        self.twins = twins


@dataclass
class _Decision:
    local: dict[str, Any]
    action: str  # "apply" | "ack" | "server"
    server: dict[str, Any] | None = None
    conflict: str | None = None  # winner, when this was a concurrent edit


@dataclass
class _Chunk:
    """Pending rows of one table in SQLite storage form (JSON as text: sent as is)."""

    table: Table
    raw: list[tuple[Any, ...]]
    max_seq: dict[str, int] = field(default_factory=dict)

    def ids(self) -> list[str]:
        return [r[0] for r in self.raw]

    def decoded(self, i: int) -> dict[str, Any]:
        return decode_row(self.table.columns, self.raw[i])


# --------------------------------------------------------------------------- entry point


def sync(catalog: Catalog, server_url: str, *, batch_size: int = 5000, full: bool = False,
         connect_timeout: float = 5.0, auto_migrate: bool = True, lock_timeout: float = 30.0) -> SyncResult:
    """Push the outbox, then pull newer server rows. See the module docstring.

    Raises ServerUnavailable (with `.partial` = what was done) if the server
    cannot be reached or goes away; everything not yet acknowledged stays in
    the outbox for the next sync. Per-table refusals (e.g. a row the server's
    policies reject) are reported in `result.errors` without stopping the rest.
    `full=True` pulls everything again and forgets other owners' rows that are
    no longer visible (made private or removed on the server).
    """
    import psycopg  # imported here: opening a catalog must not pay for the driver

    from . import postgres as pg

    started = time.monotonic()
    result = SyncResult()
    with _sync_lock(catalog.path, lock_timeout):
        conn = None
        try:
            try:
                conn = pg.connect(server_url, connect_timeout=connect_timeout)
                pg.ensure_schema(conn, auto_migrate=auto_migrate)
                server_id, role = pg.identity(conn)
                _adopt_server(catalog, server_id, role, result)
                for table in SYNC_ORDER:
                    _push_table(catalog, conn, table, batch_size, result, server_url)
                _pull(catalog, conn, result, full=full)
            except psycopg.Error as exc:
                raise pg.server_error(exc, server_url) from None
        except CatalogError as exc:
            result.duration_s = time.monotonic() - started
            if isinstance(exc, ServerUnavailable):
                exc.partial = result
            _note(catalog, last_sync_error=str(exc))
            raise
        finally:
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # pragma: no cover - closing a dead connection
                    pass
        _note(catalog, last_sync_at=CLOCK.now(), last_sync_error="; ".join(result.errors) or None)
    result.duration_s = time.monotonic() - started
    return result


def _note(catalog: Catalog, **values: str | None) -> None:
    """Record sync outcome in sync_state (what `db status` and the TUI show)."""
    try:
        with catalog.store.write():
            for key, value in values.items():
                catalog.store.set_meta(key, value)
    except CatalogError:  # pragma: no cover - best effort, never hides the real error
        pass


@contextmanager
def _sync_lock(catalog_path: Path, timeout: float) -> Iterator[None]:
    """One sync per catalog file at a time (the TUI's background sync vs `npztui sync`)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the algorithm is idempotent anyway
        yield
        return
    lock_path = Path(str(catalog_path) + ".sync-lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SyncInProgress(f"another sync of {catalog_path} is running") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- identity


def _adopt_server(catalog: Catalog, server_id: str, role: str, result: SyncResult) -> None:
    """Remember the server; on a different server, offer every own row again; align the owner."""
    s = catalog.store
    known = s.meta("server_id")
    if known != server_id:
        with s.write() as c:
            if known is not None:
                now = CLOCK.now()
                for table in SYNC_ORDER:
                    c.execute(f"UPDATE {table.name} SET rev = 0")
                    c.execute(
                        f"INSERT INTO outbox (table_name, row_id, op, created_at) SELECT ?, id, "
                        f"CASE WHEN deleted THEN 'delete' ELSE 'upsert' END, ? FROM {table.name} WHERE owner = ?",
                        (table.name, now, catalog.owner),
                    )
            s.set_meta("last_pulled_rev", 0)
            s.set_meta("server_id", server_id)
    if catalog.owner != role:
        catalog.set_owner(role)
    result.owner = role


# --------------------------------------------------------------------------- push


def _next_chunk(catalog: Catalog, table: Table, size: int, skip: set[str]) -> _Chunk | None:
    """The next `size` pending rows of `table`, oldest change first, in their current state."""
    s = catalog.store
    with s.read() as c:
        got = c.execute(
            "SELECT row_id, max(seq) FROM outbox WHERE table_name = ? GROUP BY row_id ORDER BY min(seq)",
            (table.name,),
        ).fetchall()
        picked = [(rid, seq) for rid, seq in got if rid not in skip][:size]
        if not picked:
            return None
        by_id = _raw_rows(c, table, [rid for rid, _ in picked])
    chunk = _Chunk(table, [])
    for rid, seq in picked:
        if rid in by_id:
            chunk.raw.append(by_id[rid])
            chunk.max_seq[rid] = seq
    return chunk if chunk.raw else None


def _raw_rows(c: sqlite3.Connection, table: Table, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    got = c.execute(f"SELECT {', '.join(table.columns)} FROM {table.name} "
                    "WHERE id IN (SELECT value FROM json_each(?))", (dumps(ids),)).fetchall()
    return {r[0]: r for r in got}


def _drop_orphan_entries(catalog: Catalog, table: Table) -> None:
    """Outbox entries whose row is gone (cannot normally happen: deletes are tombstones)."""
    with catalog.store.write() as c:
        c.execute(f"DELETE FROM outbox WHERE table_name = ? AND row_id NOT IN (SELECT id FROM {table.name})",
                  (table.name,))


def _push_table(catalog: Catalog, conn: psycopg.Connection, table: Table, size: int,
                result: SyncResult, url: str) -> None:
    import psycopg

    from . import postgres as pg

    failed: set[str] = set()
    role = catalog.owner
    _drop_orphan_entries(catalog, table)
    while True:
        chunk = _next_chunk(catalog, table, size, failed)
        if chunk is None:
            return
        foreign = [r[0] for r in chunk.raw if r[1] != role]  # (id, owner, ...)
        if foreign:
            # The API never lets these be edited; they can only come from an
            # owner change. The server would refuse them: drop and report.
            _forget_outbox(catalog, table, {rid: chunk.max_seq[rid] for rid in foreign})
            result.errors.append(f"{table.name}: {len(foreign)} rows owned by another role were not pushed")
            chunk.raw = [r for r in chunk.raw if r[1] == role]
            if not chunk.raw:
                continue
        try:
            _push_chunk(catalog, conn, chunk, result)
        except psycopg.Error as exc:
            if pg.is_connection_error(exc) or conn.closed or conn.broken:
                raise
            err = pg.server_error(exc, url)
            result.errors.append(f"{table.name}: {err}")
            failed.update(chunk.ids())


def _push_chunk(catalog: Catalog, conn: psycopg.Connection, chunk: _Chunk, result: SyncResult) -> None:
    from . import postgres as pg

    table = chunk.table
    for _attempt in range(5):
        try:
            with conn.transaction():
                tmp = pg.stage(conn, table, chunk.raw)
                _checkpoint("push:staged")
                twins = pg.natural_collisions(conn, table, tmp)
                if twins:
                    raise _Restart(twins)
                ids = chunk.ids()
                server = pg.current_versions(conn, table, ids)
                me = catalog.client_id
                decisions = [
                    _decide(table, chunk.decoded(i), server[rid], me) if rid in server
                    else _Decision({"id": rid}, "apply")
                    for i, rid in enumerate(ids)
                ]
                revs = pg.apply_staged(conn, table, tmp, [d.local["id"] for d in decisions if d.action == "apply"])
                _checkpoint("push:before_commit")
        except _Restart as restart:
            _merge_twins(catalog, table, restart.twins)
            remap = {local_id: srow["id"] for local_id, srow in restart.twins}
            refreshed = _Chunk(table, [])
            with catalog.store.read() as c:
                fresh = _raw_rows(c, table, [remap.get(rid, rid) for rid in chunk.ids()])
            for rid in chunk.ids():
                new = remap.get(rid, rid)
                if new in fresh:
                    refreshed.raw.append(fresh[new])
                    refreshed.max_seq[new] = chunk.max_seq[rid]
            chunk = refreshed
            continue
        _checkpoint("push:after_commit")
        _acknowledge(catalog, chunk, decisions, revs, result)
        return
    raise CatalogError(f"{table.name}: could not settle duplicate records with the server")


def _same(table: Table, a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(c) == b.get(c) for c in table.content_columns)


def _decide(table: Table, local: dict[str, Any], server: dict[str, Any] | None, me: str) -> _Decision:
    """What to do with one pushed row given the server's current version."""
    if server is None:
        return _Decision(local, "apply")
    if _same(table, local, server):
        return _Decision(local, "ack", server)  # already there: a retried push, or an identical twin
    if server["rev"] == local["rev"] or server["origin"] == me:
        # Nobody else wrote since the version we based our edit on (or the
        # newer server version is our own push whose acknowledgement was lost).
        return _Decision(local, "apply", server)
    if local["updated_at"] > server["updated_at"]:
        return _Decision(local, "apply", server, conflict="local")
    return _Decision(local, "server", server, conflict="server")


def _acknowledge(catalog: Catalog, chunk: _Chunk, decisions: list[_Decision], revs: dict[str, int],
                 result: SyncResult) -> None:
    """After the server committed: record revisions and conflicts, clear the outbox entries.

    A row edited again locally while the push was in flight keeps its newer
    outbox entries (seq > the pushed max) and goes out with the next sync.
    """
    s = catalog.store
    table = chunk.table
    new_revs: list[tuple[int, str]] = []
    with s.write() as c:
        for d in decisions:
            row_id = d.local["id"]
            if d.action == "apply":
                result.pushed += 1
                new_revs.append((revs[row_id], row_id))
            elif d.action == "ack":
                assert d.server is not None
                new_revs.append((d.server["rev"], row_id))
            else:  # the server's version won: it replaces ours unless we edited again meanwhile
                assert d.server is not None
                current = s.get(table, row_id)
                if current is not None and current["updated_at"] == d.local["updated_at"]:
                    s.upsert_many(table, [d.server])
            if d.conflict:
                assert d.server is not None
                _record_conflict(c, table, d.local, d.server, d.conflict)
                result.conflicts += 1
        c.executemany(f"UPDATE {table.name} SET rev = ? WHERE id = ?", new_revs)
        c.executemany(
            "DELETE FROM outbox WHERE table_name = ? AND row_id = ? AND seq <= ?",
            [(table.name, rid, seq) for rid, seq in chunk.max_seq.items()],
        )


def _record_conflict(c: sqlite3.Connection, table: Table, local: dict[str, Any], server: dict[str, Any],
                     winner: str) -> None:
    c.execute(
        "INSERT INTO conflicts (id, table_name, row_id, winner, local_version, server_version, detected_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (new_id(), table.name, local["id"], winner, dumps(local), dumps(server), CLOCK.now()),
    )


def _forget_outbox(catalog: Catalog, table: Table, max_seq: dict[str, int]) -> None:
    with catalog.store.write() as c:
        for row_id, seq in max_seq.items():
            c.execute("DELETE FROM outbox WHERE table_name = ? AND row_id = ? AND seq <= ?",
                      (table.name, row_id, seq))


def _merge_twins(catalog: Catalog, table: Table, twins: list[tuple[str, dict[str, Any]]]) -> None:
    """Give local records the id of their server twin (same owner+path, same tagged row...).

    The local content is kept and stays pending; its base revision becomes
    "unknown" (0), so the next push weighs it against the server version by
    updated_at like any concurrent edit — unless both are identical.
    """
    with catalog.store.write() as c:
        for local_id, server_row in twins:
            _remap(c, table, local_id, server_row["id"])
            c.execute(f"UPDATE {table.name} SET rev = 0 WHERE id = ?", (server_row["id"],))


def _remap(c: sqlite3.Connection, table: Table, old: str, new: str) -> None:
    """Change a row's id locally, with every reference to it (FKs are deferred)."""
    c.execute(f"UPDATE {table.name} SET id = ? WHERE id = ?", (new, old))
    for child, column in children_of(table.name):
        c.execute(f"UPDATE {child.name} SET {column} = ? WHERE {column} = ?", (new, old))
    c.execute("UPDATE outbox SET row_id = ? WHERE table_name = ? AND row_id = ?", (new, table.name, old))
    c.execute("UPDATE conflicts SET row_id = ? WHERE table_name = ? AND row_id = ?", (new, table.name, old))


# --------------------------------------------------------------------------- pull


def _pull(catalog: Catalog, conn: psycopg.Connection, result: SyncResult, *, full: bool) -> None:
    from . import postgres as pg

    s = catalog.store
    upto = pg.safe_revision(conn)
    after = 0 if full else int(s.meta("last_pulled_rev") or 0)
    result.server_revision = upto
    fetched: dict[str, list[tuple[Any, ...]]] = {}
    visible: dict[str, set[str]] = {}
    if upto > after:
        with conn.transaction():
            for table in SYNC_ORDER:
                _checkpoint("pull:table")
                fetched[table.name] = list(pg.rows_between(
                    conn, table, after, upto, skip_origin=None if full else catalog.client_id, raw=True))
                if full:
                    visible[table.name] = pg.visible_ids(conn, table)
    _checkpoint("pull:fetched")
    with s.lock:
        # A pulled row may reference a row hidden from us by the server's
        # policies (my tag on a dataset its owner made private): accept it.
        s.conn.execute("PRAGMA foreign_keys = OFF")
        try:
            with s.write() as c:
                pending = {(t, r) for t, r in c.execute("SELECT table_name, row_id FROM outbox")}
                for table in SYNC_ORDER:
                    result.pulled += _apply_pulled(c, catalog, table, fetched.get(table.name, []), pending)
                    if full and table.name in visible:
                        _forget_hidden(c, catalog, table, visible[table.name], pending)
                s.set_meta("last_pulled_rev", max(upto, after))
        finally:
            s.conn.execute("PRAGMA foreign_keys = ON")


def _apply_pulled(c: sqlite3.Connection, catalog: Catalog, table: Table, rows: list[tuple[Any, ...]],
                  pending: set[tuple[str, str]]) -> int:
    """Store pulled rows (storage form, JSON as text) without touching the outbox."""
    if not rows:
        return 0
    rev_at = table.columns.index("rev")
    key_at = [table.columns.index(k) for k in table.natural_key]
    revs = {r[0]: r[1] for r in c.execute(f"SELECT id, rev FROM {table.name}")}
    keys: dict[tuple[Any, ...], str] = {}
    if table.natural_key:
        cols = ", ".join(table.natural_key)
        keys = {tuple(r[1:]): r[0] for r in c.execute(f"SELECT id, {cols} FROM {table.name}")}
    todo: list[tuple[Any, ...]] = []
    for row in rows:
        rid, rev = row[0], row[rev_at]
        if (table.name, rid) in pending:
            continue  # a local edit is waiting: the next push settles it against this version
        if rid in revs and revs[rid] >= rev:
            continue  # already have this version
        if key_at:
            key = tuple(row[i] for i in key_at)
            twin = keys.get(key)
            keys[key] = rid
            if twin is not None and twin != rid:
                # the same record under a local id (made here before it was pulled): adopt the server's id
                _remap(c, table, twin, rid)
                revs[rid] = revs.pop(twin, 0)
                if (table.name, twin) in pending:
                    pending.add((table.name, rid))
                    c.execute(f"UPDATE {table.name} SET rev = 0 WHERE id = ?", (rid,))
                    continue
        todo.append(row)
        revs[rid] = rev
    catalog.store.upsert_raw(table, todo)
    return len(todo)


def _forget_hidden(c: sqlite3.Connection, catalog: Catalog, table: Table, visible: set[str],
                   pending: set[tuple[str, str]]) -> None:
    """Full resync: drop other owners' rows the server no longer shows us."""
    me = catalog.owner
    for (rid,) in c.execute(f"SELECT id FROM {table.name} WHERE owner <> ?", (me,)).fetchall():
        if rid not in visible and (table.name, rid) not in pending:
            c.execute(f"DELETE FROM {table.name} WHERE id = ?", (rid,))
