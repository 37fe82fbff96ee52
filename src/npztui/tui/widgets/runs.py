"""The Runs pane: recorded computations and optimiser runs (SPEC §8), newest first.

Until a run is recorded it shows an empty state that says so and how one is
made; it never shows placeholder rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from npztui.textfmt import shorten

EMPTY = "No runs recorded yet. `npztui compute` records one; runs appear here with their status and best score."


class RunsTable(DataTable):
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def on_mount(self) -> None:
        self.cursor_type = "row"
        for label, key in (("status", "status"), ("name", "name"), ("best", "best"), ("iterations", "iterations"), ("samples", "samples")):
            self.add_column(Text(label), key=key)


class RunsPane(Vertical):
    def compose(self) -> ComposeResult:
        yield Static(Text(EMPTY, style="italic"), id="runs-caption", classes="pane-caption")
        yield RunsTable(id="runs-table")

    def show_error(self, message: str) -> None:
        self.query_one(RunsTable).clear()
        self.add_class("-empty")
        self.query_one("#runs-caption", Static).update(Text(f"Cannot read runs: {message}", style="italic"))

    def show_runs(self, runs: Sequence[Any]) -> None:
        table = self.query_one(RunsTable)
        table.clear()
        caption = self.query_one("#runs-caption", Static)
        if not runs:
            caption.update(Text(EMPTY, style="italic"))
            self.add_class("-empty")
            return
        self.remove_class("-empty")
        caption.update(Text(f"{len(runs)} run{'s' if len(runs) != 1 else ''}, best score first"))
        for r in runs:
            table.add_row(
                Text(str(getattr(r, "status", ""))),
                Text(shorten(str(getattr(r, "name", "") or getattr(r, "id", "")), 40)),
                Text("-" if getattr(r, "best_score", None) is None else f"{float(r.best_score):.6g}", justify="right"),
                Text(str(getattr(r, "iterations", "") or 0)),
                Text(str(getattr(r, "samples_evaluated", "") or 0)),
            )
