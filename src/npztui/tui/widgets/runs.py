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
from textual.widgets import DataTable, Sparkline, Static

from npztui.textfmt import shorten

EMPTY = "No runs recorded yet. `npztui compute` records one; runs appear here with their status and best score."


STATUS_CLASSES = {
    "completed": "runs--completed",
    "failed": "runs--failed",
    "cancelled": "runs--cancelled",
    "running": "runs--running",
    "pending": "runs--pending",
}


class RunsTable(DataTable):
    """The leaderboard; Enter opens the run's dataset, the highlight shows its iterations."""

    COMPONENT_CLASSES = set(STATUS_CLASSES.values())
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def on_mount(self) -> None:
        self.cursor_type = "row"
        for label, key in (("status", "status"), ("name", "name"), ("best", "best"), ("iterations", "iterations"), ("samples", "samples")):
            self.add_column(Text(label), key=key)

    def status_text(self, status: str) -> Text:
        cls = STATUS_CLASSES.get(status)
        style = self.get_component_rich_style(cls, partial=True) if cls and self.is_mounted else ""
        return Text(status, style=style)


class RunsPane(Vertical):
    def compose(self) -> ComposeResult:
        yield Static(Text(EMPTY, style="italic"), id="runs-caption", classes="pane-caption")
        yield RunsTable(id="runs-table")
        yield Static(Text(""), id="runs-detail")
        yield Sparkline([], id="runs-sparkline", summary_function=min)

    @property
    def runs(self) -> list[Any]:
        return list(getattr(self, "_runs", []))

    @property
    def current_run(self) -> Any | None:
        runs = self.runs
        row = self.query_one(RunsTable).cursor_row
        return runs[row] if runs and 0 <= row < len(runs) else None

    def show_error(self, message: str) -> None:
        self._runs = []
        self.query_one(RunsTable).clear()
        self.add_class("-empty")
        self.query_one("#runs-caption", Static).update(Text(f"Cannot read runs: {message}", style="italic"))

    def show_runs(self, runs: Sequence[Any]) -> None:
        table = self.query_one(RunsTable)
        table.clear()
        self._runs = list(runs)
        caption = self.query_one("#runs-caption", Static)
        if not runs:
            caption.update(Text(EMPTY, style="italic"))
            self.add_class("-empty")
            return
        self.remove_class("-empty")
        caption.update(Text(f"{len(runs)} run{'s' if len(runs) != 1 else ''}, best score first · Enter opens the dataset"))
        for r in runs:
            table.add_row(
                table.status_text(str(getattr(r, "status", ""))),
                Text(shorten(str(getattr(r, "name", "") or getattr(r, "id", "")), 40)),
                Text("-" if getattr(r, "best_score", None) is None else f"{float(r.best_score):.6g}", justify="right"),
                Text(str(getattr(r, "iterations", "") or 0), justify="right"),
                Text(f"{int(getattr(r, 'samples_evaluated', 0) or 0):,}", justify="right"),
            )

    def show_detail(self, run: Any, iterations: Sequence[Any], dataset: Any | None) -> None:
        """Timeline, error, linked dataset, and best score per iteration as a sparkline."""
        text = Text()
        text.append(f"{getattr(run, 'status', '')}", style="bold")
        text.append(f"  started {str(getattr(run, 'started_at', '') or '-')[:19]}")
        text.append(f"  finished {str(getattr(run, 'finished_at', '') or '-')[:19]}")
        error = getattr(run, "error_message", None)
        if error:
            text.append(f"\nerror: {error}", style="italic")
        if dataset is not None:
            text.append("\ndataset ")
            text.append(str(getattr(dataset, "path", "")))
        scores = [float(it.best_score) for it in iterations if getattr(it, "best_score", None) is not None]
        if scores:
            text.append(f"\nbest score per iteration: {scores[0]:.6g} → {scores[-1]:.6g} over {len(scores)}")
        self.query_one("#runs-detail", Static).update(text)
        self.query_one("#runs-sparkline", Sparkline).data = scores
