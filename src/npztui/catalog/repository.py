"""The catalog API: datasets, tags, circuit configurations, sessions, profiles.

`Catalog` is the local working copy (SQLite). Every mutating method writes the
row and an outbox entry in one transaction, so a change either exists and will
be pushed, or does not exist at all; the server never has to be up. Runs live
in `runs.py` (mixed in here) and sync in `sync.py`.

Ownership mirrors the server's row-level security: rows are created with the
catalog's `owner`; rows owned by someone else (pulled because they are public)
are readable but every change raises `PermissionDenied` — locally, before the
server would refuse it.
"""

from __future__ import annotations

import getpass
import json
import os
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import fields as dc_fields
from pathlib import Path
from typing import Any

from . import validate as v
from .errors import NotFound, PermissionDenied, ValidationError
from .migrate import latest_version, sqlite_version
from .models import CircuitConfig, Conflict, Dataset, DbStatus, Tag, UserProfile, UserSession
from .runs import RunsMixin
from .schema import (
    CIRCUIT_CONFIGURATIONS, DATASETS, SYNC_ORDER, TABLES, TAGS, USER_PROFILES, USER_SESSIONS, Table,
)
from .sqlite import SQLiteStore, decode_row
from .util import CLOCK, default_catalog_path, new_id

_UNSET: Any = object()

# Fields a scan owns (always refreshed from the file) vs. fields the user owns
# (kept on rescan unless the record sets them).
SCAN_FIELDS = (
    "data_root", "filename", "kind", "sha256_16", "size", "mtime_ns", "rows", "n_frequencies",
    "grid_size", "freq_min", "freq_max", "best_resnorm", "metadata", "arrays", "findings",
    "storage_location", "is_available",
)
USER_FIELDS = ("circuit_config_id", "session_id", "is_public")
TAG_FIELDS = (
    "label", "category", "notes", "quality_score", "is_reference", "resnorm", "parameters",
    "frequency_index_start", "frequency_index_end", "is_public",
)
CONFIG_FIELDS = (
    "name", "description", "circuit_parameters", "grid_size", "min_freq", "max_freq", "num_points", "is_public",
)
PROFILE_FIELDS = (
    "display_name", "default_grid_size", "default_min_freq", "default_max_freq", "default_num_points", "settings",
)

_ORDER = {
    "path": "d.path", "filename": "d.filename", "kind": "d.kind", "rows": "d.rows", "size": "d.size",
    "mtime": "d.mtime_ns", "best_resnorm": "d.best_resnorm", "updated": "d.updated_at",
    "created": "d.created_at", "tag_count": "tag_count", "owner": "d.owner",
}

_DATASET_SELECT = (
    "SELECT " + ", ".join(f"d.{c}" for c in DATASETS.columns) + ", "
    "(SELECT count(*) FROM tags t WHERE t.dataset_id = d.id AND t.deleted = 0) AS tag_count, "
    "CASE WHEN EXISTS (SELECT 1 FROM outbox o WHERE o.table_name = 'datasets' AND o.row_id = d.id) "
    "THEN 'pending' WHEN d.rev > 0 THEN 'synced' ELSE 'local' END AS sync_status "
    "FROM datasets d"
)


def os_user() -> str:
    """The local owner name before any server says otherwise."""
    try:
        return getpass.getuser() or "npztui"
    except Exception:  # no USER/LOGNAME and no passwd entry (containers)
        return "npztui"


def open_catalog(path: str | os.PathLike[str] | None = None, *, owner: str | None = None,
                 busy_timeout: float = 30.0) -> "Catalog":
    """Open (creating and migrating on first use) the SQLite catalog at `path`.

    `path` defaults to `default_catalog_path()`. `owner` names the local owner
    of new rows (default: the OS user); once the catalog has synced with a
    server, the server role is the owner and `owner` is ignored.
    """
    return Catalog(path if path is not None else default_catalog_path(), owner=owner, busy_timeout=busy_timeout)


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class Catalog(RunsMixin):
    """The local catalog. Thread-safe; one instance per process and file is enough."""

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

    def __enter__(self) -> "Catalog":
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

    # ------------------------------------------------------------------ datasets

    def _dataset_fields(self, record: Dataset | Mapping[str, Any]) -> tuple[dict[str, Any], set[str]]:
        """Normalise a scan record; returns (fields, names the caller explicitly set)."""
        if isinstance(record, Dataset):
            given = {f.name: getattr(record, f.name) for f in dc_fields(record)}
            explicit = {k for k in USER_FIELDS if given.get(k) not in (None, False)}
        elif isinstance(record, Mapping):
            known = {f.name for f in dc_fields(Dataset)}
            unknown = set(record) - known
            if unknown:
                raise ValidationError(f"unknown dataset fields: {', '.join(sorted(unknown))}")
            given = dict(Dataset(**record).to_dict())  # defaults for what is missing
            explicit = {k for k in USER_FIELDS if k in record}
        else:
            raise ValidationError(f"a dataset record must be a Dataset or a mapping, not {type(record).__name__}")
        path = v.text(given["path"], "path")
        assert path is not None
        path = path.replace(os.sep, "/") if os.sep != "/" else path
        out: dict[str, Any] = {
            "path": path,
            "data_root": str(given.get("data_root") or ""),
            "filename": given.get("filename") or posixpath.basename(path),
            "kind": v.text(given.get("kind") or "generic", "kind"),
            "sha256_16": given.get("sha256_16"),
            "size": v.integer(given.get("size"), "size", minimum=0),
            "mtime_ns": v.integer(given.get("mtime_ns"), "mtime_ns"),
            "rows": v.integer(given.get("rows"), "rows", minimum=0),
            "n_frequencies": v.integer(given.get("n_frequencies"), "n_frequencies", minimum=0),
            "grid_size": v.integer(given.get("grid_size"), "grid_size", minimum=0),
            "freq_min": v.number(given.get("freq_min"), "freq_min"),
            "freq_max": v.number(given.get("freq_max"), "freq_max"),
            "best_resnorm": v.number(given.get("best_resnorm"), "best_resnorm"),
            "metadata": v.json_object(given.get("metadata"), "metadata"),
            "arrays": v.json_list(given.get("arrays"), "arrays"),
            "findings": v.json_object(given.get("findings"), "findings"),
            "storage_location": v.storage_location(given.get("storage_location") or "local"),
            "is_available": bool(given.get("is_available", True)),
            "circuit_config_id": given.get("circuit_config_id"),
            "session_id": given.get("session_id"),
            "is_public": bool(given.get("is_public", False)),
        }
        return out, explicit

    def upsert_dataset(self, record: Dataset | Mapping[str, Any]) -> str:
        """Register or refresh one dataset, keyed by (owner, path); returns its id.

        Scan fields (size, mtime, kind, metadata, findings...) are replaced;
        user fields (linked configuration, session, is_public) are kept unless
        the record sets them. An identical record writes nothing (no outbox
        churn on an unchanged rescan); a tombstoned path comes back to life.
        """
        return self.upsert_datasets([record])[0]

    def upsert_datasets(self, records: Iterable[Dataset | Mapping[str, Any]]) -> list[str]:
        """`upsert_dataset` for many records in one transaction (a whole scan)."""
        prepared = [self._dataset_fields(r) for r in records]
        ids: list[str] = []
        s = self.store
        with s.write():
            owner = self.owner
            for fields, explicit in prepared:
                self._live(CIRCUIT_CONFIGURATIONS, fields["circuit_config_id"], what="circuit configuration")
                self._live(USER_SESSIONS, fields["session_id"], what="session")
                found = s.select(DATASETS, "owner = ? AND path = ?", (owner, fields["path"]))
                if not found:
                    row = self._save(DATASETS, dict(fields), existing=None)
                    ids.append(row["id"])
                    continue
                old = found[0]
                new = dict(old)
                new.update({k: fields[k] for k in SCAN_FIELDS})
                new.update({k: fields[k] for k in explicit})
                new["deleted"] = False
                if any(new[c] != old[c] for c in DATASETS.content_columns):
                    self._save(DATASETS, new, existing=old)
                ids.append(old["id"])
        return ids

    def update_dataset(self, dataset_id: str, **changes: Any) -> Dataset:
        """Change user fields of one of my datasets (is_public, links, storage_location)."""
        allowed = set(USER_FIELDS) | {"storage_location", "is_available"}
        bad = set(changes) - allowed
        if bad:
            raise ValidationError(f"cannot change dataset fields: {', '.join(sorted(bad))}")
        with self.store.write():
            old = self._mine(DATASETS, dataset_id, what="dataset")
            new = dict(old)
            if "storage_location" in changes:
                changes["storage_location"] = v.storage_location(changes["storage_location"])
            self._live(CIRCUIT_CONFIGURATIONS, changes.get("circuit_config_id"), what="circuit configuration")
            self._live(USER_SESSIONS, changes.get("session_id"), what="session")
            new.update(changes)
            if any(new[c] != old[c] for c in DATASETS.content_columns):
                self._save(DATASETS, new, existing=old)
        got = self.get_dataset(dataset_id)
        assert got is not None
        return got

    def link_dataset_config(self, dataset_id: str, config_id: str | None) -> Dataset:
        """Link a dataset to the circuit configuration it was computed with (None unlinks)."""
        return self.update_dataset(dataset_id, circuit_config_id=config_id)

    def delete_dataset(self, dataset_id: str) -> None:
        """Tombstone one of my datasets and my tags on it (other owners' tags are theirs)."""
        with self.store.write():
            old = self._mine(DATASETS, dataset_id, what="dataset", allow_deleted=True)
            if old["deleted"]:
                return
            self._save(DATASETS, dict(old, deleted=True), existing=old)
            for tag in self.store.select(TAGS, "dataset_id = ? AND owner = ? AND deleted = 0",
                                         (dataset_id, self.owner)):
                self._save(TAGS, dict(tag, deleted=True), existing=tag)

    def _datasets(self, where: str, params: list[Any], suffix: str = "") -> list[Dataset]:
        cols = DATASETS.columns + ("tag_count", "sync_status")
        sql = f"{_DATASET_SELECT} WHERE {where} {suffix}"
        with self.store.lock:
            rows = self.store.conn.execute(sql, params).fetchall()
        return [Dataset.from_row(decode_row(cols, r)) for r in rows]

    def get_dataset(self, dataset_id: str, *, include_deleted: bool = False) -> Dataset | None:
        found = self._datasets("d.id = ?" + ("" if include_deleted else " AND d.deleted = 0"), [dataset_id])
        return found[0] if found else None

    def dataset_by_path(self, root: str | os.PathLike[str], path: str) -> Dataset | None:
        """My live dataset at `path` (relative) under data root `root`, if catalogued."""
        found = self._datasets(
            "d.owner = ? AND d.path = ? AND d.data_root = ? AND d.deleted = 0", [self.owner, path, str(root)]
        )
        return found[0] if found else None

    def _dataset_filter(self, filter_text: str | None, kind: str | None, available: bool | None,
                        owner: str | None, root: str | None) -> tuple[str, list[Any]]:
        where = ["d.deleted = 0"]
        params: list[Any] = []
        for term in (filter_text or "").split():
            pat = _like(term)
            where.append(
                "(d.path LIKE ? ESCAPE '\\' OR d.kind LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM tags t "
                "WHERE t.dataset_id = d.id AND t.deleted = 0 AND (t.label LIKE ? ESCAPE '\\' "
                "OR t.category LIKE ? ESCAPE '\\')))"
            )
            params += [pat] * 4
        if kind is not None:
            where.append("d.kind = ?")
            params.append(kind)
        if available is not None:
            where.append("d.is_available = ?")
            params.append(1 if available else 0)
        if owner is not None:
            where.append("d.owner = ?")
            params.append(owner)
        if root is not None:
            where.append("d.data_root = ?")
            params.append(str(root))
        return " AND ".join(where), params

    def list_datasets(self, filter_text: str | None = None, kind: str | None = None, *,
                      available: bool | None = None, owner: str | None = None, root: str | None = None,
                      limit: int | None = 200, offset: int = 0, order_by: str = "path") -> list[Dataset]:
        """One page of live datasets, filtered and ordered in SQL.

        `filter_text`: whitespace-separated terms, each matched (case-insensitive
        substring) against path, kind, tag labels and categories. `order_by`:
        one of path, filename, kind, rows, size, mtime, best_resnorm, updated,
        created, tag_count, owner; prefix "-" for descending.
        """
        key = order_by.lstrip("-")
        if key not in _ORDER:
            raise ValidationError(f"cannot order datasets by {order_by!r}; use one of {', '.join(_ORDER)}",
                                  field="order_by")
        direction = "DESC" if order_by.startswith("-") else "ASC"
        where, params = self._dataset_filter(filter_text, kind, available, owner, root)
        lim = -1 if limit is None else v.integer(limit, "limit", minimum=0)
        off = v.integer(offset, "offset", minimum=0)
        suffix = f"ORDER BY {_ORDER[key]} {direction} NULLS LAST, d.path, d.id LIMIT ? OFFSET ?"
        return self._datasets(where, params + [lim, off], suffix)

    def count_datasets(self, filter_text: str | None = None, kind: str | None = None, *,
                       available: bool | None = None, owner: str | None = None, root: str | None = None) -> int:
        """How many datasets `list_datasets` would page through with the same filter."""
        where, params = self._dataset_filter(filter_text, kind, available, owner, root)
        with self.store.lock:
            return int(self.store.conn.execute(f"SELECT count(*) FROM datasets d WHERE {where}", params).fetchone()[0])

    def file_state(self, root: str | os.PathLike[str]) -> dict[str, tuple[int | None, int | None]]:
        """{path: (size, mtime_ns)} of my live datasets under `root`: lets a rescan skip unchanged files."""
        with self.store.lock:
            rows = self.store.conn.execute(
                "SELECT path, size, mtime_ns FROM datasets WHERE owner = ? AND data_root = ? AND deleted = 0",
                (self.owner, str(root)),
            ).fetchall()
        return {p: (size, mtime) for p, size, mtime in rows}

    def mark_unavailable(self, root: str | os.PathLike[str], present_paths: Iterable[str]) -> int:
        """After a scan of `root`: datasets whose file vanished become unavailable (not deleted).

        Their tags and history stay; a file that reappears (present again) is
        marked available again. Returns how many were marked unavailable.
        """
        present = set(present_paths)
        marked = 0
        s = self.store
        with s.write():
            for row in s.select(DATASETS, "owner = ? AND data_root = ? AND deleted = 0", (self.owner, str(root))):
                now_available = row["path"] in present
                if now_available != row["is_available"]:
                    self._save(DATASETS, dict(row, is_available=now_available), existing=row)
                    marked += 0 if now_available else 1
        return marked

    # ------------------------------------------------------------------ tags

    def _tag_fields(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        bad = set(changes) - set(TAG_FIELDS)
        if bad:
            raise ValidationError(f"unknown tag fields: {', '.join(sorted(bad))}")
        out = dict(changes)
        if "label" in out:
            out["label"] = v.text(out["label"], "label")
        if "quality_score" in out:
            out["quality_score"] = v.quality(out["quality_score"])
        if "resnorm" in out:
            out["resnorm"] = v.number(out["resnorm"], "resnorm")
        for k in ("is_reference", "is_public"):
            if k in out:
                out[k] = bool(out[k])
        for k in ("frequency_index_start", "frequency_index_end"):
            if k in out:
                out[k] = v.integer(out[k], k, minimum=0)
        if "parameters" in out:
            out["parameters"] = v.json_object(out["parameters"], "parameters", allow_none=True)
        return out

    @staticmethod
    def _check_freq_span(row: Mapping[str, Any]) -> None:
        lo, hi = row.get("frequency_index_start"), row.get("frequency_index_end")
        if lo is not None and hi is not None and hi < lo:
            raise ValidationError(
                f"frequency_index_end ({hi}) must be ≥ frequency_index_start ({lo})", field="frequency_index_end"
            )

    def add_tag(self, dataset_id: str, row_index: int, label: str, *, category: str | None = None,
                notes: str | None = None, quality_score: float | None = None, is_reference: bool = False,
                resnorm: float | None = None, parameters: Mapping[str, Any] | None = None,
                frequency_index_start: int | None = None, frequency_index_end: int | None = None,
                is_public: bool = False) -> str:
        """Tag one row of a dataset (circuit data: `row_index` is the 1-based resnorm rank).

        One tag per (dataset, owner, row): tagging an already tagged row raises
        ValidationError (use `update_tag`); a deleted tag on that row is revived.
        """
        row_index = v.integer(row_index, "row_index", minimum=0, required=True)  # type: ignore[assignment]
        fields = self._tag_fields({
            "label": label, "category": category, "notes": notes, "quality_score": quality_score,
            "is_reference": is_reference, "resnorm": resnorm,
            "parameters": dict(parameters) if parameters is not None else None,
            "frequency_index_start": frequency_index_start, "frequency_index_end": frequency_index_end,
            "is_public": is_public,
        })
        self._check_freq_span(fields)
        s = self.store
        with s.write():
            self._live(DATASETS, dataset_id, what="dataset")
            existing = s.select(TAGS, "dataset_id = ? AND owner = ? AND row_index = ?",
                                (dataset_id, self.owner, row_index))
            if existing and not existing[0]["deleted"]:
                raise ValidationError(
                    f"row {row_index} of this dataset is already tagged (tag {existing[0]['id']}); "
                    "use update_tag to change it", field="row_index", value=row_index,
                )
            row = {"dataset_id": dataset_id, "row_index": row_index, **fields}
            if existing:
                old = existing[0]
                saved = self._save(TAGS, dict(old, **row, deleted=False), existing=old)
            else:
                saved = self._save(TAGS, row, existing=None)
        return saved["id"]

    def update_tag(self, tag_id: str, **changes: Any) -> Tag:
        """Change fields of one of my tags (label, category, notes, quality_score, ...)."""
        fields = self._tag_fields(changes)
        with self.store.write():
            old = self._mine(TAGS, tag_id, what="tag")
            new = dict(old, **fields)
            self._check_freq_span(new)
            if any(new[c] != old[c] for c in TAGS.content_columns):
                self._save(TAGS, new, existing=old)
        tag = self.get_tag(tag_id)
        assert tag is not None
        return tag

    def delete_tag(self, tag_id: str) -> None:
        """Delete one of my tags (a tombstone, so the delete reaches other machines)."""
        with self.store.write():
            old = self._mine(TAGS, tag_id, what="tag", allow_deleted=True)
            if not old["deleted"]:
                self._save(TAGS, dict(old, deleted=True), existing=old)

    def _tags(self, where: str, params: list[Any]) -> list[Tag]:
        cols = TAGS.columns + ("dataset_path",)
        sql = ("SELECT " + ", ".join(f"t.{c}" for c in TAGS.columns) + ", d.path FROM tags t "
               f"LEFT JOIN datasets d ON d.id = t.dataset_id WHERE {where} "
               "ORDER BY d.path, t.row_index, t.owner")
        with self.store.lock:
            rows = self.store.conn.execute(sql, params).fetchall()
        return [Tag.from_row(decode_row(cols, r)) for r in rows]

    def get_tag(self, tag_id: str, *, include_deleted: bool = False) -> Tag | None:
        found = self._tags("t.id = ?" + ("" if include_deleted else " AND t.deleted = 0"), [tag_id])
        return found[0] if found else None

    def list_tags(self, dataset_id: str | None = None, *, owner: str | None = None,
                  reference_only: bool = False, include_deleted: bool = False) -> list[Tag]:
        """Tags (mine and others' public ones), ordered by dataset path and row."""
        where, params = ["1"], []
        if not include_deleted:
            where.append("t.deleted = 0")
        if dataset_id is not None:
            where.append("t.dataset_id = ?")
            params.append(dataset_id)
        if owner is not None:
            where.append("t.owner = ?")
            params.append(owner)
        if reference_only:
            where.append("t.is_reference = 1")
        return self._tags(" AND ".join(where), params)

    def tag_for_row(self, dataset_id: str, row_index: int) -> Tag | None:
        """My live tag on that row, if any (what the TUI's `t` key edits)."""
        found = self._tags("t.dataset_id = ? AND t.row_index = ? AND t.owner = ? AND t.deleted = 0",
                           [dataset_id, row_index, self.owner])
        return found[0] if found else None

    # ------------------------------------------------------------------ circuit configurations

    def _config_fields(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        bad = set(changes) - set(CONFIG_FIELDS)
        if bad:
            raise ValidationError(f"unknown configuration fields: {', '.join(sorted(bad))}")
        out = dict(changes)
        if "name" in out:
            out["name"] = v.text(out["name"], "name")
        if "circuit_parameters" in out:
            out["circuit_parameters"] = dict(v.json_object(out["circuit_parameters"], "circuit_parameters"))
        if "grid_size" in out:
            out["grid_size"] = v.integer(out["grid_size"], "grid_size", minimum=1, required=True)
        if "num_points" in out:
            out["num_points"] = v.integer(out["num_points"], "num_points", minimum=1, required=True)
        if "is_public" in out:
            out["is_public"] = bool(out["is_public"])
        return out

    def add_config(self, name: str, circuit_parameters: Mapping[str, Any] | None = None, *,
                   grid_size: int | None = None, min_freq: float | None = None, max_freq: float | None = None,
                   num_points: int | None = None, description: str | None = None,
                   is_public: bool = False) -> str:
        """Save a circuit configuration; unspecified grid/frequency values come from my profile."""
        prof = self.get_profile()
        fields = self._config_fields({
            "name": name, "description": description,
            "circuit_parameters": dict(circuit_parameters or {}),
            "grid_size": prof.default_grid_size if grid_size is None else grid_size,
            "num_points": prof.default_num_points if num_points is None else num_points,
            "is_public": is_public,
        })
        fields["min_freq"], fields["max_freq"] = v.freq_range(
            prof.default_min_freq if min_freq is None else min_freq,
            prof.default_max_freq if max_freq is None else max_freq,
        )
        with self.store.write():
            saved = self._save(CIRCUIT_CONFIGURATIONS, fields, existing=None)
        return saved["id"]

    def update_config(self, config_id: str, **changes: Any) -> CircuitConfig:
        fields = self._config_fields(changes)
        with self.store.write():
            old = self._mine(CIRCUIT_CONFIGURATIONS, config_id, what="circuit configuration")
            new = dict(old, **fields)
            new["min_freq"], new["max_freq"] = v.freq_range(new["min_freq"], new["max_freq"])
            if any(new[c] != old[c] for c in CIRCUIT_CONFIGURATIONS.content_columns):
                self._save(CIRCUIT_CONFIGURATIONS, new, existing=old)
        got = self.get_config(config_id)
        assert got is not None
        return got

    def delete_config(self, config_id: str) -> None:
        with self.store.write():
            old = self._mine(CIRCUIT_CONFIGURATIONS, config_id, what="circuit configuration", allow_deleted=True)
            if not old["deleted"]:
                self._save(CIRCUIT_CONFIGURATIONS, dict(old, deleted=True), existing=old)

    def get_config(self, config_id: str) -> CircuitConfig | None:
        row = self.store.get(CIRCUIT_CONFIGURATIONS, config_id)
        return CircuitConfig.from_row(row) if row and not row["deleted"] else None

    def list_configs(self, *, owner: str | None = None, public_only: bool = False) -> list[CircuitConfig]:
        """Live configurations: mine and the public ones of others (by name)."""
        where, params = ["deleted = 0"], []
        if owner is not None:
            where.append("owner = ?")
            params.append(owner)
        if public_only:
            where.append("is_public = 1")
        rows = self.store.select(CIRCUIT_CONFIGURATIONS, " AND ".join(where), params, suffix="ORDER BY name, id")
        return [CircuitConfig.from_row(r) for r in rows]

    # ------------------------------------------------------------------ sessions

    def create_session(self, session_name: str, *, current_circuit_config_id: str | None = None,
                       settings: Mapping[str, Any] | None = None) -> str:
        v.text(session_name, "session_name")
        with self.store.write():
            self._live(CIRCUIT_CONFIGURATIONS, current_circuit_config_id, what="circuit configuration")
            saved = self._save(USER_SESSIONS, {
                "session_name": session_name, "current_circuit_config_id": current_circuit_config_id,
                "settings": dict(v.json_object(settings, "settings")), "total_computations": 0,
                "total_models_generated": 0, "total_tagged": 0, "last_active": CLOCK.now(),
            }, existing=None)
        return saved["id"]

    def touch_session(self, session_id: str, *, computations: int = 0, models_generated: int = 0,
                      tagged: int = 0, settings: Mapping[str, Any] | None = None,
                      current_circuit_config_id: Any = _UNSET) -> UserSession:
        """Mark a session active now, adding to its running totals (and merging settings)."""
        for name, n in (("computations", computations), ("models_generated", models_generated),
                        ("tagged", tagged)):
            v.integer(n, name, minimum=0)
        with self.store.write():
            old = self._mine(USER_SESSIONS, session_id, what="session")
            new = dict(old)
            new["total_computations"] += computations
            new["total_models_generated"] += models_generated
            new["total_tagged"] += tagged
            if settings:
                new["settings"] = {**old["settings"], **v.json_object(settings, "settings")}
            if current_circuit_config_id is not _UNSET:
                self._live(CIRCUIT_CONFIGURATIONS, current_circuit_config_id, what="circuit configuration")
                new["current_circuit_config_id"] = current_circuit_config_id
            new["last_active"] = CLOCK.now()
            self._save(USER_SESSIONS, new, existing=old)
        got = self.get_session(session_id)
        assert got is not None
        return got

    def get_session(self, session_id: str) -> UserSession | None:
        row = self.store.get(USER_SESSIONS, session_id)
        return UserSession.from_row(row) if row and not row["deleted"] else None

    def list_sessions(self) -> list[UserSession]:
        """My live sessions, most recently active first."""
        rows = self.store.select(USER_SESSIONS, "owner = ? AND deleted = 0", (self.owner,),
                                 suffix="ORDER BY last_active DESC, created_at DESC")
        return [UserSession.from_row(r) for r in rows]

    def delete_session(self, session_id: str) -> None:
        with self.store.write():
            old = self._mine(USER_SESSIONS, session_id, what="session", allow_deleted=True)
            if not old["deleted"]:
                self._save(USER_SESSIONS, dict(old, deleted=True), existing=old)

    # ------------------------------------------------------------------ profile

    def get_profile(self) -> UserProfile:
        """My profile; the defaults (unsaved, id None) until `update_profile` is called."""
        rows = self.store.select(USER_PROFILES, "owner = ? AND deleted = 0", (self.owner,))
        return UserProfile.from_row(rows[0]) if rows else UserProfile(owner=self.owner)

    def update_profile(self, **changes: Any) -> UserProfile:
        bad = set(changes) - set(PROFILE_FIELDS)
        if bad:
            raise ValidationError(f"unknown profile fields: {', '.join(sorted(bad))}")
        with self.store.write():
            found = self.store.select(USER_PROFILES, "owner = ?", (self.owner,))
            old = found[0] if found else None
            new = dict(old) if old else {k: getattr(UserProfile(), k) for k in PROFILE_FIELDS}
            new.update(changes)
            new["default_grid_size"] = v.integer(new["default_grid_size"], "default_grid_size", minimum=1,
                                                 required=True)
            new["default_num_points"] = v.integer(new["default_num_points"], "default_num_points", minimum=1,
                                                  required=True)
            new["default_min_freq"], new["default_max_freq"] = v.freq_range(
                new["default_min_freq"], new["default_max_freq"], prefix="default_")
            new["settings"] = dict(v.json_object(new["settings"], "settings"))
            new["deleted"] = False
            if old is None or any(new[c] != old[c] for c in USER_PROFILES.content_columns):
                self._save(USER_PROFILES, new, existing=old)
        return self.get_profile()

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
