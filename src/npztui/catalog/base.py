"""The core every part of `Catalog` builds on: the store, the owner, stamped writes.

`_save` is the one way rows are written by the API: it stamps origin and
timestamps and writes the row plus its outbox entry inside the caller's
transaction, which is what keeps "the change" and "the change will be pushed"
inseparable. The sync bookkeeping the TUI shows (outbox count, conflicts,
status) lives here too.
"""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path
from typing import Any, Self

from . import validate as v
from .errors import NotFound, PermissionDenied
from .migrate import latest_version, sqlite_version
from .models import Conflict, DbStatus
from .schema import SYNC_ORDER, TABLES, Table
from .sqlite import SQLiteStore
from .util import CLOCK, new_id


def os_user() -> str:
    """The local owner name before any server says otherwise."""
    try:
        return getpass.getuser() or "npztui"
    except Exception:  # no USER/LOGNAME and no passwd entry (containers)
        return "npztui"


class CatalogBase:
    """Store, identity and the stamped write path shared by the Catalog mixins."""

    def __init__(self, path: str | os.PathLike[str], *, owner: str | None = None,
                 busy_timeout: float = 30.0) -> None:
        self.store = SQLiteStore(Path(path), busy_timeout=busy_timeout)
        self.path = self.store.path
        s = self.store
        if s.meta("client_id") is None or s.meta("owner") is None:
            with s.write():
                if s.meta("client_id") is None:
                    s.set_meta("client_id", new_id())
                if s.meta("owner") is None:
                    s.set_meta("owner", owner or os_user())
        self._client_id = s.meta("client_id")
        stored = s.meta("owner")
        if owner and owner != stored and s.meta("server_id") is None:
            self.set_owner(owner)

    # ------------------------------------------------------------------ basics

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def owner(self) -> str:
        """Who new rows belong to (the server role once synced)."""
        return self.store.meta("owner") or os_user()

    @property
    def client_id(self) -> str:
        """This catalog file's identity, stamped as `origin` on rows it writes."""
        assert self._client_id is not None
        return self._client_id

    def set_owner(self, new_owner: str) -> int:
        """Rename the local owner; never-synced rows of the old owner move along.

        Rows already on a server keep their owner: the server would refuse to
        re-own them. Returns the number of rows re-owned.
        """
        v.text(new_owner, "owner")
        s = self.store
        moved = 0
        with s.write() as c:
            old = s.meta("owner")
            if old == new_owner:
                return 0
            for table in SYNC_ORDER:
                ids = [r[0] for r in c.execute(
                    f"SELECT id FROM {table.name} WHERE owner = ? AND rev = 0", (old,))]
                for row_id in ids:
                    row = s.get(table, row_id)
                    assert row is not None
                    row["owner"] = new_owner
                    self._save(table, row, existing=row)
                moved += len(ids)
            s.set_meta("owner", new_owner)
        return moved

    def _save(self, table: Table, row: dict[str, Any], *, existing: dict[str, Any] | None) -> dict[str, Any]:
        """Stamp and write one row plus its outbox entry (caller holds `store.write()`).

        updated_at is strictly later than the version being replaced, even if
        that version came from a machine whose clock runs ahead: an edit made
        after seeing a version must win over it under last-writer-wins.
        """
        now = CLOCK.now(after=existing["updated_at"] if existing else None)
        row["origin"] = self.client_id
        row["updated_at"] = now
        row["deleted"] = bool(row.get("deleted", False))
        row["is_public"] = bool(row.get("is_public", False))
        if existing is None:
            row.setdefault("id", new_id())
            row["owner"] = row.get("owner") or self.owner
            row["created_at"] = now
            row["rev"] = 0
            self.store.insert(table, row)
        else:
            row["created_at"] = existing["created_at"]
            row["rev"] = existing["rev"]
            self.store.update(table, row)
        self.store.enqueue(table, row["id"], "delete" if row["deleted"] else "upsert", now)
        return row

    def _mine(self, table: Table, row_id: str, *, what: str, allow_deleted: bool = False) -> dict[str, Any]:
        row = self.store.get(table, row_id)
        if row is None or (row["deleted"] and not allow_deleted):
            raise NotFound(f"no {what} with id {row_id}")
        if row["owner"] != self.owner:
            raise PermissionDenied(f"{what} {row_id} belongs to {row['owner']}; only its owner may change it")
        return row

    def _live(self, table: Table, row_id: str | None, *, what: str) -> dict[str, Any] | None:
        if row_id is None:
            return None
        row = self.store.get(table, row_id)
        if row is None or row["deleted"]:
            raise NotFound(f"no {what} with id {row_id}")
        return row

    # ------------------------------------------------------------------ sync bookkeeping

    def pending_outbox_count(self) -> int:
        """Local changes not yet acknowledged by a server (distinct rows)."""
        with self.store.lock:
            return int(self.store.conn.execute(
                "SELECT count(*) FROM (SELECT DISTINCT table_name, row_id FROM outbox)").fetchone()[0])

    def conflicts(self, *, include_resolved: bool = False) -> list[Conflict]:
        """Concurrent edits found by sync, newest first: both versions and the winner."""
        sql = ("SELECT id, table_name, row_id, winner, local_version, server_version, detected_at, resolved "
               "FROM conflicts" + ("" if include_resolved else " WHERE resolved = 0") +
               " ORDER BY detected_at DESC, id")
        with self.store.lock:
            rows = self.store.conn.execute(sql).fetchall()
        return [Conflict(r[0], r[1], r[2], r[3], json.loads(r[4]), json.loads(r[5]), r[6], bool(r[7]))
                for r in rows]

    def resolve_conflict(self, conflict_id: str, *, restore_loser: bool = False) -> None:
        """Dismiss a conflict; with `restore_loser`, the losing version becomes a new local edit."""
        s = self.store
        with s.write() as c:
            got = c.execute("SELECT table_name, row_id, winner, local_version, server_version FROM conflicts "
                            "WHERE id = ?", (conflict_id,)).fetchone()
            if got is None:
                raise NotFound(f"no conflict with id {conflict_id}")
            table_name, row_id, winner, local_v, server_v = got
            if restore_loser:
                table = TABLES[table_name]
                loser = json.loads(server_v if winner == "local" else local_v)
                current = self._mine(table, row_id, what=f"{table_name} row", allow_deleted=True)
                restored = dict(current)
                restored.update({k: loser[k] for k in table.content_columns if k in loser and k != "owner"})
                self._save(table, restored, existing=current)
            c.execute("UPDATE conflicts SET resolved = 1 WHERE id = ?", (conflict_id,))

    def status(self) -> DbStatus:
        """`db status` for the local catalog."""
        with self.store.lock:
            version = sqlite_version(self.store.conn)
        rev = self.store.meta("last_pulled_rev")
        return DbStatus(
            backend="sqlite", location=str(self.path), reachable=True, schema_version=version,
            latest_version=latest_version("sqlite"), user=self.owner,
            pending_outbox=self.pending_outbox_count(),
            last_pulled_revision=int(rev) if rev is not None else None,
            last_sync_at=self.store.meta("last_sync_at"),
            last_sync_error=self.store.meta("last_sync_error"),
        )
