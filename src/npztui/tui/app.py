"""The npztui Textual application.

Layout (see docs/tui.md): a tab bar, the Datasets pane and the detail panes
(Metadata, Findings, Results, Plot, Tags, Runs), a status bar and the footer.
Below 120 columns every pane is a tab; from 120 columns the Datasets list
stays on the left and the detail panes are tabs on the right.

All file and catalog work runs in thread workers (the service is synchronous)
and comes back as typed messages (`messages.py`) handled with `@on`; nothing
in `compose` or `on_mount` touches a file or the database. The app imports
only the service facade (plus settings and text formatting) from npztui.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import ContentSwitcher, Footer, Tab, Tabs
from textual.worker import get_current_worker

from npztui import config as npz_config
from npztui.service import FileReport, Service, rule_explanation

from .messages import (
    DatasetResolved,
    DatasetsLoaded,
    DatasetsPage,
    Failure,
    PlotLoaded,
    ReportLoaded,
    ResultsLoaded,
    RunDetailLoaded,
    RunsLoaded,
    ScanFinished,
    StatusLoaded,
    SyncFinished,
    TagChanged,
    TagsLoaded,
    WorkFailed,
)
from .screens.confirm import ConfirmScreen
from .screens.help import HelpScreen, binding_rows
from .screens.tag_editor import TagEditor, TagForm
from .themes import DEFAULT_THEME, ThemeSet, default_theme_dirs, load_themes
from .widgets.datasets import DatasetsPane, DatasetTable
from .widgets.findings import FindingsList, FindingsPane
from .widgets.metadata import ArraysTable, MetadataPane, MetadataTree
from .widgets.plot import PlotPane
from .widgets.results import REFERENCE_MARK, TAG_MARK, ResultsPane, ResultsTable
from .widgets.runs import RunsPane, RunsTable
from .widgets.status import StatusBar, display_path
from .widgets.tags import TagsPane, TagsTable
from .widgets.virtual_table import VirtualTable

WIDE_MIN_WIDTH = 120
PANES = ("datasets", "metadata", "findings", "results", "plot", "tags", "runs")
PANE_TITLES = {
    "datasets": "Datasets", "metadata": "Metadata", "findings": "Findings", "results": "Results",
    "plot": "Plot", "tags": "Tags", "runs": "Runs",
}
PLOT_MODES = {"circuit": ("nyquist", "bode"), "ptycho": ("diffraction", "probe"), "generic": ("image",)}
BEST_N = 50
DATASET_PAGE = 100  # rows per SQL page (the table's page size)
MAX_PLOTTED_ROWS = 6
OPEN_DELAY = 0.2  # highlight → open, so scrolling through the list does not read every file
PLOT_DELAY = 0.15
STATUS_INTERVAL = 15.0
SYNC_INTERVAL = 120.0
FIRST_ROW = 0  # non-circuit data is tagged by 0-based data row (the editor asks which)


@dataclass(frozen=True)
class Current:
    """The dataset whose details are shown."""

    key: str  # absolute path, as text
    path: Path
    name: str
    dataset_id: str | None = None
    kind: str | None = None


def dataset_path(row: Any) -> Path:
    """Absolute path of a catalogued dataset (`path` is relative to its data root)."""
    p = Path(str(getattr(row, "path", "")))
    root = getattr(row, "data_root", None)
    return p if p.is_absolute() or not root else Path(str(root)) / p


class _Body(Horizontal):
    """The area under the tab bar; its resize (the terminal's) switches tabs ↔ side by side."""

    def on_resize(self) -> None:
        app = self.app
        if isinstance(app, NpzTuiApp):
            app._apply_width(app.size.width)


class NpzTuiApp(App[int]):
    """Browse, inspect, check, plot and tag `.npz` datasets."""

    CSS_PATH = "app.tcss"
    TITLE = "npztui"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE_MIN_WIDTH, "-wide")]

    BINDINGS = [
        Binding("q", "quit", "Quit", tooltip="Quit"),
        Binding("question_mark", "help", "Help", tooltip="Help: this list of keys"),
        Binding("slash", "filter", "Filter", tooltip="Filter the datasets (name, kind, tag)"),
        Binding("t", "tag", "Tag", tooltip="Tag the current row (or edit its tag)"),
        Binding("d", "delete_tag", "Del tag", tooltip="Delete tag (asks first)"),
        Binding("r", "toggle_reference", "Ref", tooltip="Toggle reference on the current tag"),
        Binding("p", "switch_plot", "Plot", tooltip="Plot: show it, then switch Nyquist/Bode (image/probe)"),
        Binding("s", "sync", "Sync", tooltip="Sync the catalog with the server now"),
        Binding("escape", "back", "Back", show=False, tooltip="Back to the datasets list"),
        Binding("1", "show_pane('datasets')", "Datasets", show=False, tooltip="Datasets pane"),
        Binding("2", "show_pane('metadata')", "Metadata", show=False, tooltip="Metadata pane"),
        Binding("3", "show_pane('findings')", "Findings", show=False, tooltip="Findings pane"),
        Binding("4", "show_pane('results')", "Results", show=False, tooltip="Results pane"),
        Binding("5", "show_pane('plot')", "Plot pane", show=False, tooltip="Plot pane"),
        Binding("6", "show_pane('tags')", "Tags", show=False, tooltip="Tags pane"),
        Binding("7", "show_pane('runs')", "Runs", show=False, tooltip="Runs pane"),
        Binding("ctrl+r", "rescan", "Rescan", show=False, tooltip="Rescan the data root for new and changed files"),
    ]

    def __init__(
        self,
        service: Service,
        path: Path | str | None = None,
        *,
        themes: ThemeSet | None = None,
        scan_on_start: bool = True,
        cursor_blink: bool = True,
    ) -> None:
        super().__init__()
        self.cursor_blink = cursor_blink  # off in snapshots, and kinder to slow links
        # No animations: over SSH every animation frame is a repaint sent down the wire.
        self.animation_level = "none"
        self.service = service
        settings = service.settings
        start = Path(path) if path is not None else Path(settings.data_root or ".")
        self.start_file: Path | None = start if start.suffix.lower() in (".npz", ".npy") else None
        # the path given wins; the configured data root is the default when none is
        self.data_root: Path = start.parent if self.start_file else start
        self.scan_on_start = scan_on_start
        self.themes = themes if themes is not None else load_themes(default_theme_dirs(settings.config_file))
        for theme in self.themes.themes:
            self.register_theme(theme)
        wanted = settings.theme
        resolved = self.themes.resolve(wanted, set(self.available_themes)) or self.themes.resolve(DEFAULT_THEME)
        self._theme_note = None if resolved == self.themes.resolve(wanted, set(self.available_themes)) else wanted
        self.theme = resolved or "textual-dark"
        self._remember_theme = False

        self.current: Current | None = None
        self.report: FileReport | None = None
        self.tags: list[Any] = []
        self.results_payload: Any | None = None
        self.run_detail: RunDetailLoaded | None = None
        self.plot_mode: str | None = None
        self.plot_index = 0  # which diffraction pattern (ptycho)
        self.filter_text = ""
        self.total_datasets: int | None = None
        self.pane = "datasets"
        self.wide = False
        self.syncing = False
        self.last_sync_error: str | None = None
        self._debouncers: dict[str, Timer] = {}
        self._layout_applied = False
        self._background_started = False
        self._pending_select: str | None = str(self.start_file.resolve()) if self.start_file else None

    # ------------------------------------------------------------------ timers
    def _later(self, name: str, delay: float, callback: Any) -> None:
        """Run `callback` after `delay` unless re-scheduled (debounce) or cancelled."""
        self._cancel_later(name)

        def fire() -> None:
            self._debouncers.pop(name, None)
            callback()

        self._debouncers[name] = self.set_timer(delay, fire)

    def _cancel_later(self, name: str) -> None:
        timer = self._debouncers.pop(name, None)
        if timer is not None:
            timer.stop()

    @property
    def is_busy(self) -> bool:
        """Work still under way: a worker running or a debounce waiting (tests and the bench wait on this)."""
        from textual.worker import WorkerState

        if not self._background_started or self._debouncers or self.query_one(DatasetsPane).filter_pending:
            return True
        return any(w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in self.workers)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Tabs(*(Tab(PANE_TITLES[p], id=f"tab-{p}") for p in PANES), id="nav")
        with _Body(id="body"):
            yield DatasetsPane(page_size=DATASET_PAGE, id="datasets")
            with ContentSwitcher(initial="metadata", id="detail"):
                yield MetadataPane(id="metadata")
                yield FindingsPane(rule_explanation, id="findings")
                yield ResultsPane(id="results")
                yield PlotPane(id="plot")
                yield TagsPane(id="tags")
                yield RunsPane(id="runs")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(StatusBar).set_data_root(display_path(self.data_root))
        self.wide = self.size.width >= WIDE_MIN_WIDTH
        self._show("datasets")
        self._apply_width(self.size.width)
        self.query_one(DatasetsPane).set_caption(Text("Loading the catalog …", style="italic"))
        # First screen first: the list's count + first page, and the file given on the command line.
        # The scan, status, runs and sync start once the list is on screen (_start_background).
        self.load_datasets("", select_path=self._pending_select)
        if self.start_file is not None and self._pending_select is not None:
            self.open_current(Current(self._pending_select, self.start_file, self.start_file.name), switch=True)
        if self._theme_note:
            self.notify(f"Unknown theme {self._theme_note!r}; using {self.theme}.", severity="warning")
        for problem in self.themes.problems:
            self.notify(problem, severity="warning")
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self._remember_theme = True

    def _start_background(self) -> None:
        """Work that must not delay the first screen: scan, status, runs, background sync."""
        if self._background_started:
            return
        self._background_started = True
        if self.scan_on_start:
            self.scan_root()
        self.refresh_status()
        self.load_runs()
        self.set_interval(STATUS_INTERVAL, self.refresh_status)
        if self.service.settings.server_configured:
            self.call_later(self.action_sync, quiet=True)
            self.set_interval(SYNC_INTERVAL, lambda: self.action_sync(quiet=True))

    def _apply_width(self, width: int) -> None:
        wide = width >= WIDE_MIN_WIDTH
        if wide == self.wide and self.is_mounted and self._layout_applied:
            return
        self._layout_applied = True
        tabs = self.query_one("#nav", Tabs)
        if wide:
            tabs.hide("tab-datasets")
        else:
            tabs.show("tab-datasets")
        self.wide = wide
        if wide and self.pane == "datasets":
            self._show(self._detail_pane(), focus=False)
        elif not wide and tabs.active != f"tab-{self.pane}":
            tabs.active = f"tab-{self.pane}"

    def _detail_pane(self) -> str:
        detail = self.query_one("#detail", ContentSwitcher)
        return detail.current or "metadata"

    def _show(self, pane: str, *, focus: bool = True) -> None:
        """Make `pane` the visible one (a tab; in the wide layout Datasets is always visible)."""
        self.pane = pane
        tabs = self.query_one("#nav", Tabs)
        if pane != "datasets":
            self.query_one("#detail", ContentSwitcher).current = pane
        if self.default_screen.has_class("-datasets-active") != (pane == "datasets"):
            self.default_screen.set_class(pane == "datasets", "-datasets-active")
        tab_id = f"tab-{pane}"
        if tabs.active != tab_id and not (self.wide and pane == "datasets"):
            tabs.active = tab_id
        if focus:
            self._focus_pane(pane)
        if pane == "runs" and self.is_mounted:
            self.load_runs()  # runs are recorded outside the app (compute): fetch when looked at

    def _focus_pane(self, pane: str) -> None:
        target = {
            "datasets": DatasetTable, "metadata": MetadataTree, "findings": FindingsList,
            "results": ResultsTable, "plot": PlotPane, "tags": TagsTable, "runs": RunsTable,
        }.get(pane)
        if target is not None:
            self.query_one(target).focus()

    @on(Tabs.TabActivated, "#nav")
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tab.id != event.tabs.active:
            return  # a stale activation (we moved on since): following it would ping-pong
        pane = (event.tab.id or "tab-metadata").removeprefix("tab-")
        if pane != self.pane and event.tabs.is_attached and self.screen.query("#detail"):
            self._show(pane, focus=False)

    # ------------------------------------------------------------------ datasets
    @work(thread=True, exclusive=True, group="datasets")
    def load_datasets(self, filter_text: str, select_path: str | None = None) -> None:
        """Count + first page for `filter_text` (SQL paging through the service)."""
        worker = get_current_worker()
        try:
            svc = self.service
            total = svc.count_datasets(filter_text or None)
            rows = svc.list_datasets(filter_text or None, offset=0, limit=DATASET_PAGE)
        except Exception as exc:  # noqa: BLE001 - shown in the pane, the app keeps running
            self.post_message(WorkFailed(Failure("datasets", None, _one_line(exc))))
            return
        if not worker.is_cancelled:
            self.post_message(DatasetsLoaded(filter_text, total, list(rows), select_path))

    @on(DatasetsLoaded)
    def _datasets_loaded(self, message: DatasetsLoaded) -> None:
        if message.filter_text != self.filter_text:
            return
        table = self.query_one(DatasetTable)
        keep = None
        if self.current is not None and message.select_path is None:
            keep = self.current.key
        self.total_datasets = message.total
        table.reset(message.total, message.rows)
        target = message.select_path or keep
        if target is not None:
            index = table.find_index(lambda r: _row_key(r) == target)
            if index is not None:
                table.cursor = index
        self._datasets_caption()
        self.call_after_refresh(self._start_background)

    def _datasets_caption(self) -> None:
        total = self.total_datasets or 0
        caption = Text()
        if self.filter_text:
            caption.append(f"{total:,} match{'es' if total != 1 else ''} for ")
            caption.append(self.filter_text, style="bold")
            caption.append("  ·  Esc clears", style="dim")
        elif total:
            caption.append(f"{total:,} dataset{'s' if total != 1 else ''}")
            caption.append("  ·  / filter  ·  Enter open", style="dim")
        else:
            caption.append("No datasets catalogued under this root yet.", style="italic")
        self.query_one(DatasetsPane).set_caption(caption)

    @on(VirtualTable.PageNeeded, "#dataset-table")
    def _page_needed(self, message: VirtualTable.PageNeeded) -> None:
        self.load_page(self.filter_text, message.generation, message.page, message.offset, message.limit)

    @work(thread=True, group="dataset-pages")
    def load_page(self, filter_text: str, generation: int, page: int, offset: int, limit: int) -> None:
        try:
            rows = self.service.list_datasets(filter_text or None, offset=offset, limit=limit)
        except Exception as exc:  # noqa: BLE001
            self.post_message(WorkFailed(Failure("datasets", None, _one_line(exc))))
            return
        self.post_message(DatasetsPage(generation, page, list(rows)))

    @on(DatasetsPage)
    def _page_loaded(self, message: DatasetsPage) -> None:
        self.query_one(DatasetTable).set_page(message.generation, message.page, message.rows)

    @on(DatasetsPane.FilterChanged)
    def _filter_changed(self, message: DatasetsPane.FilterChanged) -> None:
        self.filter_text = message.text
        self.load_datasets(message.text)

    @work(thread=True, exclusive=True, group="scan")
    def scan_root(self) -> None:
        """Register new and changed files under the data root (unchanged ones are skipped)."""
        try:
            result = self.service.scan(self.data_root)
        except Exception as exc:  # noqa: BLE001
            self.post_message(WorkFailed(Failure("scan", None, _one_line(exc))))
            return
        self.post_message(ScanFinished(result))

    @on(ScanFinished)
    def _scan_finished(self, message: ScanFinished) -> None:
        self.load_datasets(self.filter_text, select_path=self._pending_select)
        self._pending_select = None
        self.refresh_status()
        if self.current is not None and not self.current.dataset_id:
            self.resolve_dataset(self.current)  # the file opened from the command line, now catalogued

    @work(thread=True, exclusive=True, group="resolve")
    def resolve_dataset(self, current: Current) -> None:
        """The catalog record of the open file (wherever it sits in the list), so it can be tagged."""
        try:
            dataset = self.service.find_dataset(current.path)
        except Exception as exc:  # noqa: BLE001
            self.post_message(WorkFailed(Failure("tags", current.key, _one_line(exc))))
            return
        if dataset is not None:
            self.post_message(DatasetResolved(current.key, dataset))

    @on(DatasetResolved)
    def _dataset_resolved(self, message: DatasetResolved) -> None:
        current = self.current
        if current is None or message.key != current.key or current.dataset_id:
            return
        self.current = Current(current.key, current.path, current.name, message.dataset.id, current.kind)
        self.load_tags(self.current)

    @on(VirtualTable.Highlighted, "#dataset-table")
    def _dataset_highlighted(self, message: VirtualTable.Highlighted) -> None:
        row = message.row
        if row is None:
            return
        current = self._current_for_row(row)
        if self.current is not None and current.key == self.current.key:
            if current.dataset_id and not self.current.dataset_id:
                # the file opened from the command line has just been catalogued: tags now work
                self.current = Current(current.key, current.path, current.name, current.dataset_id, self.current.kind)
                self.load_tags(self.current)
            return
        if not message.moved and self.current is not None:
            return  # rows reloaded (filter, sync, tag count): keep showing what is open
        self._cancel_later("open")
        self._later("open", OPEN_DELAY, lambda: self.open_current(current))

    @on(VirtualTable.Selected, "#dataset-table")
    def _dataset_selected(self, message: VirtualTable.Selected) -> None:
        self._cancel_later("open")
        if message.row is None:
            return
        current = self._current_for_row(message.row)
        if self.current is None or current.key != self.current.key:
            self.open_current(current)
        target = "metadata" if self.pane == "datasets" else self.pane
        self._show(target)

    def _current_for_row(self, row: Any) -> Current:
        path = dataset_path(row)
        return Current(
            key=_row_key(row),
            path=path,
            name=str(getattr(row, "filename", "") or path.name),
            dataset_id=getattr(row, "id", None),
            kind=getattr(row, "kind", None),
        )

    # ------------------------------------------------------------------ one dataset
    def open_current(self, current: Current, *, switch: bool = False) -> None:
        """Show `current` in the detail panes: everything is read in workers."""
        self.current = current
        self.report = None
        self.results_payload = None
        self.tags = []
        self.plot_mode = None
        self.plot_index = 0
        self.query_one(MetadataPane).show_loading(current.name)
        self.query_one(FindingsPane).show_loading()
        self.query_one(ResultsPane).show_message(f"Reading {current.name} …")
        self.query_one(PlotPane).show_message("", caption=f"{current.name}")
        if current.dataset_id:
            self.load_tags(current)
        else:
            self.query_one(TagsPane).show_message("This file is not in the catalog yet; tags need a catalogued dataset.")
        self.load_report(current)
        if switch and not self.wide:
            self._show("metadata")

    @work(thread=True, exclusive=True, group="report")
    def load_report(self, current: Current) -> None:
        worker = get_current_worker()
        try:
            report = self.service.check([current.path])[0]
        except Exception as exc:  # noqa: BLE001
            self.post_message(WorkFailed(Failure("report", current.key, _one_line(exc))))
            return
        if not worker.is_cancelled:
            self.post_message(ReportLoaded(current.key, report))

    @on(ReportLoaded)
    def _report_loaded(self, message: ReportLoaded) -> None:
        current = self.current
        if current is None or message.key != current.key:
            return
        report: FileReport = message.report
        self.report = report
        if report.error is not None:
            code, text = report.error.code, report.error.message
            self.query_one(MetadataPane).show_error(current.name, code, text)
            self.query_one(FindingsPane).show_error(code, text)
            self.query_one(ResultsPane).show_message(f"{code}: {text}")
            self.query_one(PlotPane).show_message(f"{code}: {text}", caption=current.name)
            self._findings_tab_label(None)
            return
        kind = report.kind or current.kind or "generic"
        if kind != current.kind:
            self.current = current = Current(current.key, current.path, current.name, current.dataset_id, kind)
        self.query_one(MetadataPane).show_report(current.name, report)
        self.query_one(FindingsPane).show_findings(report.findings, report.ok)
        self._findings_tab_label(report)
        self.plot_mode = PLOT_MODES.get(kind, PLOT_MODES["generic"])[0]
        self.load_results(current)

    def _findings_tab_label(self, report: FileReport | None) -> None:
        label = "Findings"
        if report is not None and report.error is None:
            counts = report.severity_counts()
            n = counts.get("error", 0) + counts.get("warning", 0)
            if n:
                label = f"Findings {n}"
        elif report is not None:
            label = "Findings !"
        self.query_one("#nav", Tabs).query_one("#tab-findings", Tab).label = label

    @on(FindingsPane.JumpToKey)
    def _jump_to_key(self, message: FindingsPane.JumpToKey) -> None:
        self._show("metadata")
        tree = self.query_one(MetadataTree)
        if tree.select_key(message.key):
            tree.focus()
            return
        arrays = self.query_one(ArraysTable)
        names = [str(k.value) for k in arrays.rows]
        if message.key in names:
            arrays.move_cursor(row=names.index(message.key), animate=False)
            arrays.focus()
            return
        tree.focus()
        self.notify(f"{message.key!s} is not in the metadata (the finding is about a missing key).", timeout=4)

    # -- results ----------------------------------------------------------------
    @work(thread=True, exclusive=True, group="results")
    def load_results(self, current: Current) -> None:
        worker = get_current_worker()
        try:
            if current.kind == "circuit":
                payload: Any = self.service.best(current.path, BEST_N)
                kind = "circuit"
            else:
                payload = self.service.preview(current.path)
                kind = "arrays"
        except Exception as exc:  # noqa: BLE001
            self.post_message(WorkFailed(Failure("results", current.key, _one_line(exc))))
            return
        if not worker.is_cancelled:
            self.post_message(ResultsLoaded(current.key, kind, payload))

    @on(ResultsLoaded)
    def _results_loaded(self, message: ResultsLoaded) -> None:
        current = self.current
        if current is None or message.key != current.key:
            return
        self.results_payload = message.payload
        pane = self.query_one(ResultsPane)
        if message.kind == "circuit":
            result = message.payload
            caption = Text()
            caption.append(f"best {len(result.rows)} of {result.n_rows:,} rows", style="bold")
            caption.append("  ·  t tag · r reference · p plot", style="dim")
            pane.show_circuit(
                result.rows,
                param_names=self.service.circuit_parameter_names(),
                fmt_param=self.service.format_parameter,
                marks=self._marks(),
                caption=caption,
            )
        else:
            caption = Text()
            caption.append("array preview", style="bold")
            caption.append("  ·  stats over a bounded read", style="dim")
            pane.show_arrays(message.payload, caption)
        self.schedule_plot(0)

    def _marks(self) -> dict[int, str]:
        return {t.row_index: (REFERENCE_MARK if t.is_reference else TAG_MARK) for t in self.tags}

    @on(ResultsTable.RowSelected, "#results-table")
    def _result_selected(self) -> None:
        self._show("plot")  # Enter on a result row: see it plotted

    @on(TagsTable.RowSelected, "#tags-table")
    def _tag_selected(self) -> None:
        self.action_tag()  # Enter on a tag: edit it

    @on(ResultsTable.RowHighlighted, "#results-table")
    def _result_highlighted(self) -> None:
        if self.current is not None and self.current.kind == "circuit" and self.results_payload is not None:
            self.schedule_plot()

    # -- plot -------------------------------------------------------------------
    def schedule_plot(self, delay: float = PLOT_DELAY) -> None:
        if delay <= 0:
            self._cancel_later("plot")
            self._start_plot()
        else:
            self._later("plot", delay, self._start_plot)

    def _start_plot(self) -> None:
        current = self.current
        if current is None or self.plot_mode is None or self.report is None or self.report.error is not None:
            return
        ranks: list[int] = []
        if current.kind == "circuit":
            row = self.query_one(ResultsPane).current_row
            if row is not None:
                ranks.append(int(row.rank))
            for t in sorted(self.tags, key=lambda t: (not t.is_reference, t.row_index)):
                if t.row_index not in ranks and t.row_index >= 1 and len(ranks) < MAX_PLOTTED_ROWS:
                    ranks.append(int(t.row_index))
        self.load_plot(current, self.plot_mode, tuple(ranks), self.plot_index)

    @on(PlotPane.Step)
    def _plot_step(self, message: PlotPane.Step) -> None:
        current = self.current
        if current is None or self.report is None or self.report.error is not None:
            return
        if current.kind == "circuit":
            table = self.query_one(ResultsTable)
            if table.row_count:
                table.move_cursor(row=max(0, min(table.cursor_row + message.delta, table.row_count - 1)))
        elif self.plot_mode == "diffraction":
            rows = self.report.rows or 1
            index = max(0, min(self.plot_index + message.delta, rows - 1))
            if index != self.plot_index:
                self.plot_index = index
                self.schedule_plot()

    @work(thread=True, exclusive=True, group="plot")
    def load_plot(self, current: Current, mode: str, ranks: tuple[int, ...], index: int = 0) -> None:
        worker = get_current_worker()
        try:
            if current.kind == "circuit":
                if not ranks:
                    return
                payload: Any = self.service.spectrum_plot(current.path, list(ranks), kind=mode)
                caption = f"{mode.capitalize()} · rank {', '.join(map(str, ranks))} · reference muted"
            else:
                payload, caption = self.service.image(current.path, mode, index)
        except Exception as exc:  # noqa: BLE001
            self.post_message(WorkFailed(Failure("plot", current.key, _one_line(exc))))
            return
        if not worker.is_cancelled:
            self.post_message(PlotLoaded(current.key, mode, payload, caption))

    @on(PlotLoaded)
    def _plot_loaded(self, message: PlotLoaded) -> None:
        if self.current is None or message.key != self.current.key or message.mode != self.plot_mode:
            return
        pane = self.query_one(PlotPane)
        caption = Text(message.caption)
        hint = "j/k row" if self.current.kind == "circuit" else ("j/k pattern" if message.mode == "diffraction" else "")
        caption.append("  ·  p switches" + (f" · {hint}" if hint else ""), style="dim")
        if message.payload is None:
            pane.show_message("Nothing to plot in this dataset.", caption=self.current.name)
        elif hasattr(message.payload, "panels"):
            pane.show_spectra(message.payload, caption)
        else:
            pane.show_image(message.payload, caption, log=message.mode == "diffraction")

    # -- tags -------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="tags")
    def load_tags(self, current: Current) -> None:
        worker = get_current_worker()
        try:
            tags = self.service.list_tags(current.dataset_id)
        except Exception as exc:  # noqa: BLE001
            self.post_message(WorkFailed(Failure("tags", current.key, _one_line(exc))))
            return
        if not worker.is_cancelled:
            self.post_message(TagsLoaded(current.key, list(tags)))

    @on(TagsLoaded)
    def _tags_loaded(self, message: TagsLoaded) -> None:
        if self.current is None or message.key != self.current.key:
            return
        self.tags = message.tags
        self.query_one(TagsPane).show_tags(self.tags, self.current.name)
        self.query_one(ResultsPane).set_marks(self._marks())
        if self.current.kind == "circuit" and self.results_payload is not None:
            self.schedule_plot()

    def _target_row(self) -> tuple[int, Any | None] | None:
        """(row_index, ranked row or None) that `t`/`r` act on, or None when nothing is open."""
        if self.current is None:
            return None
        if self.current.kind == "circuit":
            row = self.query_one(ResultsPane).current_row
            if row is None:
                return None
            return int(row.rank), row
        # non-circuit data: the pattern on the Plot pane (ptycho), else the first row
        return (self.plot_index if self.plot_mode == "diffraction" else FIRST_ROW), None

    def _focused_tag(self) -> Any | None:
        """The tag selected in the Tags pane if it has focus, else the tag on the current row."""
        if self.pane == "tags" and isinstance(self.focused, TagsTable):
            return self.query_one(TagsPane).current
        target = self._target_row()
        if target is None:
            return None
        return next((t for t in self.tags if t.row_index == target[0]), None)

    def action_tag(self) -> None:
        current = self.current
        if current is None:
            self.notify("Open a dataset first.", timeout=3)
            return
        if not current.dataset_id:
            self.notify("This file is not catalogued yet (scan the data root first).", severity="warning")
            return
        tag = self._focused_tag()
        if tag is not None:
            title = Text(f"Edit tag · row {tag.row_index} of ")
            title.append(current.name, style="bold")
            initial = TagForm(tag.label, tag.category, tag.quality_score, bool(tag.is_reference), tag.notes)
            self.push_screen(TagEditor(title, initial), lambda form: self._tag_form_done(current, tag, None, form))
            return
        target = self._target_row()
        if target is None:
            self.notify("No result row selected.", timeout=3)
            return
        row_index, ranked = target
        title = Text("New tag · " + (f"rank {row_index} of " if ranked is not None else ""))
        title.append(current.name, style="bold")
        initial = None if ranked is not None else TagForm("", None, None, False, None, row_index)
        editor = TagEditor(title, initial, rows=self._data_rows(), ask_row=ranked is None)
        self.push_screen(editor, lambda form: self._tag_form_done(current, None, (row_index, ranked), form))

    def _data_rows(self) -> int | None:
        return self.report.rows if self.report is not None and self.report.error is None else None

    def _tag_form_done(self, current: Current, tag: Any | None, target: tuple[int, Any] | None, form: TagForm | None) -> None:
        if form is None:
            return
        if tag is None and target is not None and target[1] is None and form.row is not None:
            # a new tag on a row that already has one (non-circuit data: the row was typed): edit that one
            tag = next((t for t in self.tags if t.row_index == form.row), None)
        self.save_tag(current, tag, target, form)

    @work(thread=True, group="tag-write")
    def save_tag(self, current: Current, tag: Any | None, target: tuple[int, Any] | None, form: TagForm) -> None:
        svc = self.service
        try:
            if tag is not None:
                saved = svc.update_tag(
                    tag.id, label=form.label, category=form.category, quality_score=form.quality_score,
                    is_reference=form.is_reference, notes=form.notes,
                )
                action = "updated"
            else:
                assert target is not None
                row_index, ranked = target
                if ranked is None and form.row is not None:
                    row_index = form.row
                saved = svc.add_tag(
                    current.dataset_id, row_index, form.label, category=form.category, notes=form.notes,
                    quality_score=form.quality_score, is_reference=form.is_reference,
                    resnorm=None if ranked is None else float(ranked.resnorm),
                    parameters=None if ranked is None else dict(ranked.parameters),
                )
                action = "added"
        except Exception as exc:  # noqa: BLE001
            self.post_message(WorkFailed(Failure("tag", current.key, _one_line(exc))))
            return
        self.post_message(TagChanged(current.key, action, saved))

    def action_delete_tag(self) -> None:
        current = self.current
        tag = self._focused_tag()
        if current is None or tag is None:
            self.notify("No tag here to delete.", timeout=3)
            return
        question = Text("Delete the tag ")
        question.append(tag.label or "", style="bold")
        question.append(f" on row {tag.row_index} of ")
        question.append(current.name, style="bold")
        question.append("?")
        self.push_screen(ConfirmScreen(question), lambda yes: self.remove_tag(current, tag) if yes else None)

    @work(thread=True, group="tag-write")
    def remove_tag(self, current: Current, tag: Any) -> None:
        try:
            self.service.delete_tag(tag.id)
        except Exception as exc:  # noqa: BLE001
            self.post_message(WorkFailed(Failure("tag", current.key, _one_line(exc))))
            return
        self.post_message(TagChanged(current.key, "deleted", tag))

    def action_toggle_reference(self) -> None:
        current = self.current
        if current is None or not current.dataset_id:
            self.notify("Open a catalogued dataset first.", timeout=3)
            return
        tag = self._focused_tag()
        if tag is None:
            # nothing to toggle yet: tag the row, with "reference" already ticked
            target = self._target_row()
            if target is None:
                return
            title = Text("New reference tag · ")
            title.append(current.name, style="bold")
            initial = TagForm("reference", None, None, True, None)
            editor = TagEditor(title, initial, rows=self._data_rows(), ask_row=target[1] is None)
            self.push_screen(editor, lambda form: self._tag_form_done(current, None, target, form))
            return
        self.set_reference(current, tag, not tag.is_reference)

    @work(thread=True, group="tag-write")
    def set_reference(self, current: Current, tag: Any, value: bool) -> None:
        try:
            saved = self.service.update_tag(tag.id, is_reference=value)
        except Exception as exc:  # noqa: BLE001
            self.post_message(WorkFailed(Failure("tag", current.key, _one_line(exc))))
            return
        self.post_message(TagChanged(current.key, "updated", saved))

    @on(TagChanged)
    def _tag_changed(self, message: TagChanged) -> None:
        label = getattr(message.tag, "label", "") if message.tag is not None else ""
        self.notify(f"Tag {label!s} {message.action}.", timeout=3)
        if self.current is not None and message.key == self.current.key:
            self.load_tags(self.current)
        self.load_datasets(self.filter_text)  # the tag count column
        self.refresh_status()

    # ------------------------------------------------------------------ runs
    @work(thread=True, exclusive=True, group="runs")
    def load_runs(self) -> None:
        try:
            runs = self.service.list_runs()
        except Exception as exc:  # noqa: BLE001
            self.post_message(WorkFailed(Failure("runs", None, _one_line(exc))))
            return
        self.post_message(RunsLoaded(list(runs)))

    @on(RunsLoaded)
    def _runs_loaded(self, message: RunsLoaded) -> None:
        pane = self.query_one(RunsPane)
        pane.show_runs(message.runs)
        if pane.current_run is not None:
            self.load_run_detail(pane.current_run.id)

    @on(RunsTable.RowHighlighted, "#runs-table")
    def _run_highlighted(self) -> None:
        run = self.query_one(RunsPane).current_run
        if run is not None:
            self.load_run_detail(run.id)

    @work(thread=True, exclusive=True, group="run-detail")
    def load_run_detail(self, run_id: str) -> None:
        try:
            run, iterations, dataset = self.service.get_run(run_id)
        except Exception as exc:  # noqa: BLE001
            self.post_message(WorkFailed(Failure("runs", None, _one_line(exc))))
            return
        self.post_message(RunDetailLoaded(run, list(iterations), dataset))

    @on(RunDetailLoaded)
    def _run_detail_loaded(self, message: RunDetailLoaded) -> None:
        self.run_detail = message
        self.query_one(RunsPane).show_detail(message.run, message.iterations, message.dataset)

    @on(RunsTable.RowSelected, "#runs-table")
    def _run_selected(self) -> None:
        """Enter on a run opens the dataset it produced."""
        run = self.query_one(RunsPane).current_run
        detail = self.run_detail
        dataset = detail.dataset if detail is not None and run is not None and detail.run.id == run.id else None
        if dataset is None:
            self.notify("This run has no linked dataset (it did not complete).", timeout=3)
            return
        self.open_current(self._current_for_row(dataset))
        self._show("metadata")

    # ------------------------------------------------------------------ status and sync
    @work(thread=True, exclusive=True, group="status")
    def refresh_status(self) -> None:
        try:
            status = self.service.status()
        except Exception as exc:  # noqa: BLE001
            self.post_message(WorkFailed(Failure("status", None, _one_line(exc))))
            return
        self.post_message(StatusLoaded(status))

    @on(StatusLoaded)
    def _status_loaded(self, message: StatusLoaded) -> None:
        self.query_one(StatusBar).set_status(message.status)

    def action_sync(self, quiet: bool = False) -> None:
        if not self.service.settings.server_configured:
            if not quiet:
                self.notify("No server configured: the local catalog is the working copy. Set NPZTUI_DATABASE_URL to sync.", timeout=5)
            return
        if self.syncing:
            return
        self.syncing = True
        self.query_one(StatusBar).syncing = True
        self.run_sync(quiet)

    @work(thread=True, exclusive=True, group="sync")
    def run_sync(self, quiet: bool) -> None:
        try:
            result = self.service.sync()
            error = None
        except Exception as exc:  # noqa: BLE001 - offline is a state, not a dialog
            result, error = None, _one_line(exc)
        self.post_message(SyncFinished(result, error))

    @on(SyncFinished)
    def _sync_finished(self, message: SyncFinished) -> None:
        self.syncing = False
        bar = self.query_one(StatusBar)
        bar.syncing = False
        self.last_sync_error = message.error
        bar.set_note("" if message.error is None else "sync failed")
        self.refresh_status()
        if message.error is None:
            self.load_datasets(self.filter_text)
            if self.current is not None and self.current.dataset_id:
                self.load_tags(self.current)

    # ------------------------------------------------------------------ failures
    @on(WorkFailed)
    def _work_failed(self, message: WorkFailed) -> None:
        f = message.failure
        if f.key is not None and (self.current is None or f.key != self.current.key):
            return
        if f.what == "datasets":
            self.query_one(DatasetsPane).set_caption(Text(f"Catalog unavailable: {f.message}", style="bold"))
            self.query_one(DatasetTable).reset(0, [])
            self._start_background()
        elif f.what == "scan":
            self.query_one(StatusBar).set_note(f"scan failed: {f.message}")
        elif f.what == "report":
            name = self.current.name if self.current else "?"
            self.query_one(MetadataPane).show_error(name, "ERROR", f.message)
            self.query_one(FindingsPane).show_error("ERROR", f.message)
        elif f.what == "results":
            self.query_one(ResultsPane).show_message(f"Cannot show results: {f.message}")
        elif f.what == "plot":
            self.query_one(PlotPane).show_message(f"Cannot plot: {f.message}")
        elif f.what == "tags":
            self.query_one(TagsPane).show_message(f"Cannot read tags: {f.message}")
        elif f.what == "runs":
            self.query_one(RunsPane).show_error(f.message)
        elif f.what == "status":
            self.query_one(StatusBar).set_note(f"catalog: {f.message}")
        else:
            self.notify(f.message, title=f.what.capitalize(), severity="error", timeout=6)

    # ------------------------------------------------------------------ actions
    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.help_sections()))

    def help_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """Every binding, from the binding tables, grouped by where it works."""
        return [
            ("Everywhere", binding_rows(self, self.BINDINGS) + [
                ("^p", "Command palette: every action by name"), ("tab shift+tab", "Next / previous area"),
            ]),
            ("Lists and tables", binding_rows(self, VirtualTable.BINDINGS)),
            ("Datasets filter", [("/", "Type to filter by name, kind, tag; Enter goes to the list")]
             + binding_rows(self, DatasetsPane.BINDINGS)),
            ("Findings", [("⏎", "Show the finding's key in the Metadata pane")]),
            ("Metadata tree", [("⏎ space", "Expand / collapse"), ("↓ j ↑ k", "Down / up")]),
            ("Results", [("⏎", "Plot this row")]),
            ("Plot", binding_rows(self, PlotPane.BINDINGS)),
            ("Tags", [("⏎ t", "Edit the selected tag")]),
            ("Tag editor", binding_rows(self, TagEditor.BINDINGS) + [("tab", "Next field")]),
            ("Confirm", binding_rows(self, ConfirmScreen.BINDINGS)),
            ("Help", binding_rows(self, HelpScreen.BINDINGS)),
        ]

    def action_filter(self) -> None:
        if not self.wide:
            self._show("datasets", focus=False)
        self.query_one(DatasetsPane).focus_filter()

    def action_back(self) -> None:
        if self.wide:
            self.query_one(DatasetTable).focus()
        else:
            self._show("datasets")

    def action_show_pane(self, pane: str) -> None:
        if pane == "datasets" and self.wide:
            self.query_one(DatasetTable).focus()
            return
        self._show(pane)

    def action_switch_plot(self) -> None:
        if self.pane != "plot":
            self._show("plot")
            return
        current = self.current
        if current is None or self.plot_mode is None:
            return
        modes = PLOT_MODES.get(current.kind or "generic", PLOT_MODES["generic"])
        self.plot_mode = modes[(modes.index(self.plot_mode) + 1) % len(modes)] if self.plot_mode in modes else modes[0]
        self.schedule_plot(0)

    def action_rescan(self) -> None:
        self.query_one(StatusBar).set_note("scanning …")
        self.scan_root()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Filter datasets", "Focus the filter box (/)", self.action_filter)
        yield SystemCommand("Tag the current row", "Add or edit a tag (t)", self.action_tag)
        yield SystemCommand("Delete tag", "Delete the current tag (d)", self.action_delete_tag)
        yield SystemCommand("Toggle reference", "Mark or unmark the current tag as reference (r)", self.action_toggle_reference)
        yield SystemCommand("Switch plot", "Show the Plot pane / next plot kind (p)", self.action_switch_plot)
        yield SystemCommand("Sync now", "Push and pull the catalog with the server (s)", self.action_sync)
        yield SystemCommand("Rescan data root", "Register new and changed files (ctrl+r)", self.action_rescan)
        yield SystemCommand("Help: keys", "Every key binding (?)", self.action_help)
        for pane in PANES:
            yield SystemCommand(f"Show {PANE_TITLES[pane]}", f"Switch to the {PANE_TITLES[pane]} pane ({PANES.index(pane) + 1})", lambda p=pane: self.action_show_pane(p))
        for theme in sorted(t.name for t in self.themes.themes):
            yield SystemCommand(f"Theme: {theme}", "Use this colour theme (remembered)", lambda n=theme: setattr(self, "theme", n))

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Notifications are plain text by default: they often quote file names, keys and labels."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    # ------------------------------------------------------------------ theme
    def _theme_changed(self, theme: Any) -> None:
        if self._remember_theme:
            self.save_theme(theme.name)

    @work(thread=True, exclusive=True, group="theme")
    def save_theme(self, name: str) -> None:
        try:
            self.service.settings = npz_config.remember(self.service.settings, theme=name)
        except Exception as exc:  # noqa: BLE001
            self.post_message(WorkFailed(Failure("theme", None, f"cannot remember the theme: {_one_line(exc)}")))


def _row_key(row: Any) -> str:
    """The key of a catalogued dataset: its absolute path (the catalog stores resolved roots)."""
    path = dataset_path(row)
    return str(path if path.is_absolute() else path.resolve())


def _one_line(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
    text = f"{code}: {message}" if isinstance(code, str) and code else message
    return " ".join(str(text).split())


def run_app(service: Service, path: Path | str | None) -> int:
    """Entry point for `npztui [PATH]`; returns the process exit code."""
    themes = load_themes(default_theme_dirs(service.settings.config_file))  # small files, read before the UI starts
    app = NpzTuiApp(service, path, themes=themes)
    app.run()
    return int(app.return_code or 0)  # 1 if the app itself failed (Textual prints why)
