"""The Results pane: best-N circuit rows, or an array preview with basic stats.

For circuit data: rank, resnorm, the five parameters in engineering units and a
tag marker (★ reference, ● tagged). For other kinds: one row per array with
min/max/mean computed over a bounded read, and the first values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from npztui.textfmt import shape_str, shorten

TAG_MARK = "●"
REFERENCE_MARK = "★"


class ResultsTable(DataTable):
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def on_mount(self) -> None:
        self.cursor_type = "row"


def _num(value: Any) -> str:
    if value is None:
        return "-"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if v != v:  # NaN
        return "nan"
    if v == 0 or 1e-3 <= abs(v) < 1e6:
        return f"{v:.6g}"
    return f"{v:.3e}"


class ResultsPane(Vertical):
    """Caption + one table whose columns depend on the dataset kind."""

    def compose(self) -> ComposeResult:
        yield Static(Text("Open a dataset to see its results."), id="results-caption", classes="pane-caption")
        yield ResultsTable(id="results-table")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.mode: str | None = None  # "circuit" | "arrays" | None
        self.rows: list[Any] = []

    @property
    def table(self) -> ResultsTable:
        return self.query_one(ResultsTable)

    def _caption(self, text: Text | str) -> None:
        self.query_one("#results-caption", Static).update(text if isinstance(text, Text) else Text(text))

    def show_message(self, message: str) -> None:
        self.mode = None
        self.rows = []
        self.table.clear(columns=True)
        self._caption(Text(message, style="italic"))

    def show_circuit(
        self,
        rows: Sequence[Any],
        *,
        param_names: Sequence[str],
        fmt_param: Callable[[str, float], str],
        marks: Mapping[int, str],
        caption: Text | str,
    ) -> None:
        """`rows` have .rank, .resnorm, .parameters (name -> value); `marks` rank -> marker."""
        table = self.table
        keep = table.cursor_row if self.mode == "circuit" else 0
        self.mode = "circuit"
        self.rows = list(rows)
        table.clear(columns=True)
        table.add_column(Text("rank", justify="right"), key="rank")
        table.add_column(Text("resnorm", justify="right"), key="resnorm")
        for name in param_names:
            table.add_column(Text(str(name), justify="right"), key=f"p:{name}")
        table.add_column(Text("tag"), key="tag")
        for r in self.rows:
            cells: list[Text] = [Text(str(r.rank), justify="right"), Text(_num(r.resnorm), justify="right")]
            for name in param_names:
                value = r.parameters.get(name)
                cells.append(Text(fmt_param(name, value) if value is not None else "-", justify="right"))
            cells.append(Text(marks.get(r.rank, ""), style="bold"))
            table.add_row(*cells, key=str(r.rank))
        if self.rows:
            table.move_cursor(row=min(keep, len(self.rows) - 1), animate=False)
        self._caption(caption)

    def set_marks(self, marks: Mapping[int, str]) -> None:
        """Update only the tag column (after a tag change), not the whole table."""
        if self.mode != "circuit":
            return
        for r in self.rows:
            try:
                self.table.update_cell(str(r.rank), "tag", Text(marks.get(r.rank, ""), style="bold"))
            except Exception:  # noqa: BLE001 - row not present
                pass

    @property
    def current_row(self) -> Any | None:
        if self.mode is None or not self.rows:
            return None
        i = self.table.cursor_row
        return self.rows[i] if 0 <= i < len(self.rows) else None

    def show_arrays(self, previews: Iterable[Any], caption: Text | str) -> None:
        """`previews` have .name, .shape, .dtype (str), .min, .max, .mean, .values (first few), .error."""
        table = self.table
        self.mode = "arrays"
        self.rows = list(previews)
        table.clear(columns=True)
        for label, key, right in (
            ("array", "name", False), ("shape", "shape", False), ("dtype", "dtype", False),
            ("min", "min", True), ("max", "max", True), ("mean", "mean", True), ("first values", "values", False),
        ):
            table.add_column(Text(label, justify="right" if right else "left"), key=key)
        for p in self.rows:
            error = getattr(p, "error", None)
            values = getattr(p, "values", None)
            if error:
                first = Text(str(error), style="italic")
            else:
                first = Text(shorten(", ".join(_num(v) for v in (values or [])), 48))
            table.add_row(
                Text(shorten(str(p.name), 28)),
                Text(shape_str(p.shape) if p.shape else "()"),
                Text(str(p.dtype)),
                Text(_num(getattr(p, "min", None)), justify="right"),
                Text(_num(getattr(p, "max", None)), justify="right"),
                Text(_num(getattr(p, "mean", None)), justify="right"),
                first,
                key=str(p.name),
            )
        self._caption(caption)
