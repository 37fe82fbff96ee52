"""The Tags pane: the open dataset's tags; Enter or `t` edits, `d` deletes, `r` toggles reference."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from npztui.textfmt import shorten


class TagsTable(DataTable):
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def on_mount(self) -> None:
        self.cursor_type = "row"
        for label, key, right in (
            ("ref", "ref", False), ("rank", "rank", True), ("label", "label", False),
            ("category", "category", False), ("quality", "quality", True),
            ("resnorm", "resnorm", True), ("notes", "notes", False),
        ):
            self.add_column(Text(label, justify="right" if right else "left"), key=key)


def _quality(q: Any) -> str:
    return "-" if q is None else f"{float(q):.2f}"


def _resnorm(v: Any) -> str:
    return "-" if v is None else f"{float(v):.6g}"


class TagsPane(Vertical):
    def compose(self) -> ComposeResult:
        yield Static(Text("Open a dataset to see its tags."), id="tags-caption", classes="pane-caption")
        yield TagsTable(id="tags-table")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.tags: list[Any] = []

    @property
    def table(self) -> TagsTable:
        return self.query_one(TagsTable)

    def show_message(self, message: str) -> None:
        self.tags = []
        self.table.clear()
        self.query_one("#tags-caption", Static).update(Text(message, style="italic"))

    def show_tags(self, tags: Sequence[Any], dataset_name: str) -> None:
        table = self.table
        keep = table.cursor_row
        self.tags = sorted(tags, key=lambda t: (t.row_index is None, t.row_index or 0, t.label or ""))
        table.clear()
        for t in self.tags:
            table.add_row(
                Text("★" if t.is_reference else ""),
                Text("-" if t.row_index is None else str(t.row_index), justify="right"),
                Text(shorten(t.label or "", 30)),
                Text(shorten(t.category or "", 16)),
                Text(_quality(t.quality_score), justify="right"),
                Text(_resnorm(getattr(t, "resnorm", None)), justify="right"),
                Text(shorten((t.notes or "").replace("\n", " "), 40)),
                key=str(t.id),
            )
        caption = Text()
        if self.tags:
            caption.append(f"{len(self.tags)} tag{'s' if len(self.tags) != 1 else ''} on ")
            caption.append(dataset_name, style="bold")
            caption.append("  ·  Enter/t edit · d delete · r reference", style="dim")
            table.move_cursor(row=min(keep, len(self.tags) - 1), animate=False)
        else:
            caption.append("No tags on ")
            caption.append(dataset_name, style="bold")
            caption.append(" yet. Press t on a result row (or here) to add one.", style="dim")
        self.query_one("#tags-caption", Static).update(caption)

    @property
    def current(self) -> Any | None:
        i = self.table.cursor_row
        return self.tags[i] if self.tags and 0 <= i < len(self.tags) else None
