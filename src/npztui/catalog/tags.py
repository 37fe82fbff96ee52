"""Tags: a label on one row of a dataset (circuit data: the 1-based resnorm rank).

One tag per (dataset, owner, row); quality_score is None or within [0, 1],
checked here with a clear error before the database's CHECK would refuse it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import validate as v
from .base import CatalogBase
from .errors import ValidationError
from .models import Tag
from .schema import DATASETS, TAGS
from .sqlite import decode_row

TAG_FIELDS = (
    "label", "category", "notes", "quality_score", "is_reference", "resnorm", "parameters",
    "frequency_index_start", "frequency_index_end", "is_public",
)


class TagsMixin(CatalogBase):
    """Tag methods of `Catalog`."""

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
