"""Datasets: what a scan registers, and the paged, filtered listing the TUI shows.

Filtering, ordering and paging happen in SQL (the Datasets pane shows 10 000
rows lazily); an unchanged rescan writes nothing, and a vanished file is
marked unavailable rather than deleted so its tags and runs survive.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import fields as dc_fields
from typing import Any

from . import validate as v
from .base import CatalogBase
from .errors import ValidationError
from .models import Dataset
from .schema import CIRCUIT_CONFIGURATIONS, DATASETS, TAGS, USER_SESSIONS
from .sqlite import decode_row

# Fields a scan owns (always refreshed from the file) vs. fields the user owns
# (kept on rescan unless the record sets them).
SCAN_FIELDS = (
    "data_root", "filename", "kind", "sha256_16", "size", "mtime_ns", "rows", "n_frequencies",
    "grid_size", "freq_min", "freq_max", "best_resnorm", "metadata", "arrays", "findings",
    "storage_location", "is_available",
)
USER_FIELDS = ("circuit_config_id", "session_id", "is_public")

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


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class DatasetsMixin(CatalogBase):
    """Dataset methods of `Catalog`."""

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
            # Only the rows whose availability flips are decoded and saved: an
            # unchanged rescan of a large root stays a single narrow query.
            states = s.conn.execute(
                "SELECT id, path, is_available FROM datasets WHERE owner = ? AND data_root = ? AND deleted = 0",
                (self.owner, str(root)),
            ).fetchall()
            flips = [row_id for row_id, path, available in states if (path in present) != bool(available)]
            for row_id in flips:
                row = s.get(DATASETS, row_id)
                now_available = row["path"] in present
                self._save(DATASETS, dict(row, is_available=now_available), existing=row)
                marked += 0 if now_available else 1
        return marked
