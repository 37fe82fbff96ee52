"""The embedded SQLite store: connection, pragmas, transactions, row codec.

Why these settings:
* WAL lets readers (the TUI listing) run while a writer (a scan, a sync) works.
* `busy_timeout` + `BEGIN IMMEDIATE` make a second writer wait for the lock
  instead of failing: a deferred transaction that later upgrades to a write can
  hit SQLITE_BUSY without the busy handler ever being called.
* `synchronous=FULL`: a tag the user saw saved survives a power cut.
* Foreign keys are on; they are declared DEFERRABLE so that re-pointing an id
  (sync merging two records of the same file) can update parent and children
  in either order inside one transaction.

The connection is shared by the threads of one process behind an RLock (the
TUI runs catalog calls in workers); other processes get their own connection
and meet at the SQLite file lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import CatalogError, ValidationError
from .migrate import migrate_sqlite
from .schema import BOOL_COLUMNS, JSON_COLUMNS, Table
from .util import dumps


def encode_value(column: str, value: Any) -> Any:
    """Python value -> SQLite storage value for `column`."""
    if value is None:
        return None
    if column in JSON_COLUMNS:
        return dumps(value)
    if column in BOOL_COLUMNS:
        return 1 if value else 0
    return value


def decode_value(column: str, value: Any) -> Any:
    """SQLite storage value -> Python value for `column`."""
    if value is None:
        return None
    if column in JSON_COLUMNS:
        return json.loads(value)
    if column in BOOL_COLUMNS:
        return bool(value)
    return value


def decode_row(columns: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    return {c: decode_value(c, v) for c, v in zip(columns, values)}


def translate(exc: sqlite3.Error) -> CatalogError:
    """A sqlite3 error as the typed error callers handle."""
    msg = str(exc)
    if isinstance(exc, sqlite3.IntegrityError):
        return ValidationError(f"rejected by the catalog: {msg}")
    if "locked" in msg or "busy" in msg:
        return CatalogError(f"the catalog is busy (another process holds the write lock too long): {msg}")
    return CatalogError(f"SQLite error: {msg}")


class SQLiteStore:
    """One SQLite catalog file, migrated and ready for use."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path).expanduser()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(
                str(self.path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise CatalogError(f"cannot open catalog {self.path}: {exc}") from None
        self.lock = threading.RLock()
        self._depth = 0
        try:
            self._configure(busy_timeout)
            # Versions this open applied (empty: already up to date); `db migrate` reports them.
            self.applied_migrations: list[int] = migrate_sqlite(self.conn)
        except sqlite3.Error as exc:
            self.conn.close()
            raise translate(exc) from None

    def _configure(self, busy_timeout: float) -> None:
        c = self.conn
        c.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        # Switching to WAL needs a moment of exclusive access; another process
        # creating the same file at the same time can make it report "locked".
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                mode = c.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        if str(mode).lower() != "wal":
            raise CatalogError(f"cannot use WAL journal mode on {self.path} (got {mode!r})")
        c.execute("PRAGMA synchronous = FULL")
        c.execute("PRAGMA foreign_keys = ON")

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (nested calls join the outer one).

        Everything done inside commits together or not at all: that is how a
        row change and its outbox entry stay inseparable.
        """
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise translate(exc) from None
            self._depth = 1
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise translate(exc) from None
                raise
            finally:
                self._depth = 0

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several SELECTs (a deferred transaction)."""
        with self.lock:
            if self._depth:
                yield self.conn
                return
            try:
                self.conn.execute("BEGIN")
                self._depth = 1
                yield self.conn
            except sqlite3.Error as exc:
                raise translate(exc) from None
            finally:
                self._depth = 0
                if self.conn.in_transaction:
                    self.conn.execute("COMMIT")

    # ------------------------------------------------------------------ rows

    def select(self, table: Table, where: str = "1", params: Sequence[Any] = (), *,
               suffix: str = "") -> list[dict[str, Any]]:
        """Rows of `table` as dicts; `where`/`suffix` are code constants, values are params."""
        cols = table.columns
        sql = f"SELECT {', '.join(cols)} FROM {table.name} WHERE {where} {suffix}"
        with self.lock:
            try:
                return [decode_row(cols, r) for r in self.conn.execute(sql, tuple(params))]
            except sqlite3.Error as exc:
                raise translate(exc) from None

    def get(self, table: Table, row_id: str) -> dict[str, Any] | None:
        rows = self.select(table, "id = ?", (row_id,))
        return rows[0] if rows else None

    def insert(self, table: Table, row: dict[str, Any]) -> None:
        cols = table.columns
        self.conn.execute(
            f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [encode_value(c, row.get(c)) for c in cols],
        )

    def update(self, table: Table, row: dict[str, Any]) -> None:
        cols = [c for c in table.columns if c != "id"]
        self.conn.execute(
            f"UPDATE {table.name} SET {', '.join(f'{c} = ?' for c in cols)} WHERE id = ?",
            [encode_value(c, row.get(c)) for c in cols] + [row["id"]],
        )

    def upsert_many(self, table: Table, rows: Iterable[dict[str, Any]]) -> None:
        """Insert-or-replace whole rows by id (used when applying pulled rows)."""
        cols = table.columns
        sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c != "id")
        self.conn.executemany(
            f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            f"ON CONFLICT (id) DO UPDATE SET {sets}",
            ([encode_value(c, r.get(c)) for c in cols] for r in rows),
        )

    def upsert_raw(self, table: Table, rows: Iterable[Sequence[Any]]) -> None:
        """`upsert_many` for rows already in storage form (JSON text), in column order."""
        cols = table.columns
        sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c != "id")
        self.conn.executemany(
            f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            f"ON CONFLICT (id) DO UPDATE SET {sets}",
            rows,
        )

    def enqueue(self, table: Table, row_id: str, op: str, at: str) -> None:
        self.conn.execute(
            "INSERT INTO outbox (table_name, row_id, op, created_at) VALUES (?, ?, ?, ?)",
            (table.name, row_id, op, at),
        )

    # ------------------------------------------------------------------ key/value state

    def meta(self, key: str, default: str | None = None) -> str | None:
        with self.lock:
            row = self.conn.execute("SELECT value FROM sync_state WHERE key = ?", (key,)).fetchone()
        return default if row is None or row[0] is None else row[0]

    def set_meta(self, key: str, value: Any) -> None:
        """Must run inside `write()`; None stores SQL NULL."""
        self.conn.execute(
            "INSERT INTO sync_state (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, None if value is None else str(value)),
        )
