"""The Datasets pane: a filter box and a virtual table of catalogued datasets.

The table never holds more than a few pages of rows; the app answers its
`PageNeeded` messages from a worker (SQL offset/limit through the service),
so 10 000 datasets cost what 100 do. Typing in the filter posts
`FilterChanged` after a short pause (one query per pause, not per key).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Static

from npztui.textfmt import human_bytes

from .virtual_table import Column, VirtualTable

FILTER_DEBOUNCE = 0.12

COLUMNS = [
    Column("name", "path", None, min_width=16, shorten="middle"),
    Column("kind", "kind", 7, priority=4),
    Column("rows", "rows", 8, "right", priority=2),
    Column("size", "size", 9, "right", priority=1),
    Column("tags", "tags", 4, "right", priority=5),
    Column("findings", "check", 6, priority=6),
    Column("sync", "sync", 7, priority=3),
]

SYNC_LABELS = {"synced": "synced", "pending": "pending", "local": "local", "conflict": "CONFLICT", "missing": "missing"}


def finding_counts(row: Any) -> tuple[int, int, int]:
    """(errors, warnings, info) from a dataset's findings summary ({"error": n, ...})."""
    counts = getattr(row, "findings", None)
    if not isinstance(counts, dict):
        return 0, 0, 0
    return tuple(int(counts.get(k, 0) or 0) for k in ("error", "warning", "info"))  # type: ignore[return-value]


class DatasetTable(VirtualTable):
    """The virtual table with the dataset columns and the theme's badge colours."""

    COMPONENT_CLASSES = VirtualTable.COMPONENT_CLASSES | {
        "datasets--error", "datasets--warning", "datasets--ok", "datasets--muted", "datasets--unavailable",
    }

    def __init__(self, *, page_size: int = 100, id: str | None = None) -> None:
        super().__init__(COLUMNS, self._format, page_size=page_size, empty_text="No datasets.", id=id)

    def _style(self, name: str):
        return self.get_component_rich_style(name, partial=True)

    def _format(self, row: Any) -> list[Text]:
        name = Text(str(getattr(row, "path", None) or getattr(row, "filename", "?")))
        if getattr(row, "is_available", True) is False:
            name.stylize(self._style("datasets--unavailable"))
        rows = getattr(row, "rows", None)
        err, warn, info = finding_counts(row)
        findings = getattr(row, "findings", None)
        if isinstance(findings, dict) and findings.get("unreadable"):
            badge = Text("unread", style=self._style("datasets--error"))
        elif err:
            badge = Text(f"E{err}", style=self._style("datasets--error"))
            if warn:
                badge.append(f" W{warn}", style=self._style("datasets--warning"))
        elif warn:
            badge = Text(f"W{warn}", style=self._style("datasets--warning"))
        elif not findings:
            badge = Text("·", style=self._style("datasets--muted"))  # never checked
        else:
            badge = Text("ok", style=self._style("datasets--ok"))
        sync = str(getattr(row, "sync_status", "") or "")
        sync_text = Text(SYNC_LABELS.get(sync, sync))
        if sync == "conflict":
            sync_text.stylize(self._style("datasets--error"))
        elif sync in ("local", "pending"):
            sync_text.stylize(self._style("datasets--muted"))
        tags = int(getattr(row, "tag_count", 0) or 0)
        return [
            name,
            Text(str(getattr(row, "kind", "") or "")),
            Text("-" if rows is None else f"{rows:,}"),
            Text(human_bytes(getattr(row, "size", None))),
            Text(str(tags) if tags else ""),
            badge,
            sync_text,
        ]


class DatasetsPane(Vertical):
    """Filter + caption + table. The app owns the data; this widget only displays and asks."""

    BINDINGS = [Binding("escape", "clear_filter", "Clear filter", show=False)]

    class FilterChanged(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, *, page_size: int = 100, id: str | None = None) -> None:
        super().__init__(id=id)
        self._page_size = page_size
        self._debounce: Timer | None = None
        self.filter_text = ""

    def compose(self) -> ComposeResult:
        box = Input(placeholder="/ filter: name, kind, tag", id="dataset-filter", compact=True)
        box.cursor_blink = getattr(self.app, "cursor_blink", True)
        yield box
        yield DatasetTable(page_size=self._page_size, id="dataset-table")
        yield Static(Text("Loading the catalog …", style="italic"), id="datasets-caption", classes="pane-caption")

    @property
    def table(self) -> DatasetTable:
        return self.query_one(DatasetTable)

    def set_caption(self, text: Text | str) -> None:
        self.query_one("#datasets-caption", Static).update(text if isinstance(text, Text) else Text(text))

    def focus_filter(self) -> None:
        self.query_one("#dataset-filter", Input).focus()

    @on(Input.Changed, "#dataset-filter")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(FILTER_DEBOUNCE, lambda: self._emit(event.value))

    @on(Input.Submitted, "#dataset-filter")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._debounce is not None:
            self._debounce.stop()
        self._emit(event.value)
        self.table.focus()

    @property
    def filter_pending(self) -> bool:
        return self._debounce is not None

    def _emit(self, text: str) -> None:
        self._debounce = None
        text = text.strip()
        if text != self.filter_text:
            self.filter_text = text
            self.post_message(self.FilterChanged(text))

    def action_clear_filter(self) -> None:
        box = self.query_one("#dataset-filter", Input)
        if box.value:
            box.value = ""
            self._emit("")
        self.table.focus()
