"""Workflows against a real catalog: filter, open, tag create/edit/delete, plot switch, sync state."""

from __future__ import annotations

from textual.widgets import Input

from test_tui_support import GRID, PTY_BAD_N, PTY_OK, async_test, make_app, screen_text, settle, tui_env  # noqa: F401

from npztui.tui.screens.confirm import ConfirmScreen
from npztui.tui.screens.tag_editor import TagEditor
from npztui.tui.widgets.datasets import DatasetsPane, DatasetTable
from npztui.tui.widgets.plot import Heatmap, PlotPane, SpectrumPlot
from npztui.tui.widgets.results import REFERENCE_MARK, TAG_MARK, ResultsPane
from npztui.tui.widgets.status import StatusBar
from npztui.tui.widgets.tags import TagsPane


async def open_dataset(pilot, name: str) -> None:
    """Filter down to `name`, open it with Enter (typing is tested once, in test_filter_in_sql_and_clear)."""
    app = pilot.app
    await pilot.press("slash")
    app.query_one("#dataset-filter", Input).value = name
    await pilot.press("enter")
    await settle(pilot)
    table = app.query_one(DatasetTable)
    assert table.total == 1, table.total
    await pilot.press("enter")
    await settle(pilot)
    assert app.current is not None and app.current.name == name


@async_test
async def test_start_scans_the_root_and_lists_datasets(tui_env):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.query_one(DatasetTable)
        assert table.total == 4
        names = [table.row_at(i).filename for i in range(4)]
        assert GRID in names and PTY_BAD_N in names
        text = screen_text(app)
        assert "4 datasets" in text
        assert "E1" in text  # the mismatch file's badge
        assert "circuit" in text and "3,125" in text
        # the first dataset opens in the background, without leaving the list
        assert app.current is not None and app.pane == "datasets"


@async_test
async def test_filter_in_sql_and_clear(tui_env):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.query_one(DatasetTable)
        await pilot.press("slash")
        assert app.query_one("#dataset-filter", Input).has_focus
        await pilot.press(*"ptycho")
        await settle(pilot)
        assert table.total == 3
        assert "3 matches for ptycho" in screen_text(app)
        await pilot.press("space", *"mismatch")
        await settle(pilot)
        assert table.total == 1 and table.cursor_row.filename == PTY_BAD_N
        await pilot.press("enter")  # back to the list
        assert table.has_focus
        await pilot.press("slash", *"zzz-nothing")
        await settle(pilot)
        assert table.total == 0 and "0 matches" in screen_text(app)
        await pilot.press("escape")  # clears the filter
        await settle(pilot)
        assert table.total == 4 and app.query_one(DatasetsPane).filter_text == ""


@async_test
async def test_open_circuit_dataset_shows_best_rows(tui_env):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_dataset(pilot, GRID)
        assert app.pane == "metadata"
        await pilot.press("4")
        await settle(pilot)
        results = app.query_one(ResultsPane)
        assert results.mode == "circuit" and results.rows[0].rank == 1
        text = screen_text(app)
        assert "best 50 of 3,125 rows" in text
        assert "kΩ" in text and "µF" in text  # engineering units


@async_test
async def test_tag_create_edit_reference_delete(tui_env):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await open_dataset(pilot, GRID)
        await pilot.press("4", "j")  # rank 2
        await settle(pilot)
        # --- create
        await pilot.press("t")
        await settle(pilot)
        assert isinstance(app.screen, TagEditor)
        await pilot.press(*"good fit", "tab", *"fit", "tab", *"1.5")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, TagEditor)  # quality 1.5 refused, the form stays
        assert "between 0 and 1" in screen_text(app)
        quality = app.screen.query_one("#tag-quality", Input)
        quality.value = "0.9"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert not isinstance(app.screen, TagEditor)
        tags = app.service.list_tags()
        assert len(tags) == 1
        tag = tags[0]
        assert (tag.row_index, tag.label, tag.category, tag.quality_score, tag.is_reference) == (2, "good fit", "fit", 0.9, False)
        assert tag.resnorm is not None and set(tag.parameters) == {"Rsh", "Ra", "Ca", "Rb", "Cb"}
        pending_after_add = app.service.status().pending
        assert pending_after_add >= 1  # the outbox has it
        assert app.query_one(ResultsPane).table.get_cell("2", "tag").plain == TAG_MARK
        assert app.query_one(DatasetTable).cursor_row.tag_count == 1
        # --- edit from the Tags pane
        await pilot.press("6")
        await settle(pilot)
        assert app.query_one(TagsPane).current.id == tag.id
        await pilot.press("t")
        await settle(pilot)
        assert isinstance(app.screen, TagEditor)
        label = app.screen.query_one("#tag-label", Input)
        assert label.value == "good fit"
        label.value = "better fit"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.service.list_tags()[0].label == "better fit"
        assert [t.label for t in app.query_one(TagsPane).tags] == ["better fit"]
        # --- reference toggle
        await pilot.press("r")
        await settle(pilot)
        assert app.service.list_tags()[0].is_reference is True
        assert app.query_one(ResultsPane).table.get_cell("2", "tag").plain == REFERENCE_MARK
        await pilot.press("r")
        await settle(pilot)
        assert app.service.list_tags()[0].is_reference is False
        # --- delete, declining first
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(pilot)
        assert len(app.service.list_tags()) == 1
        await pilot.press("d")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert app.service.list_tags() == []
        assert "No tags on" in screen_text(app)
        assert app.query_one(ResultsPane).table.get_cell("2", "tag").plain == ""


@async_test
async def test_tag_on_ptycho_data_names_a_row(tui_env):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await open_dataset(pilot, PTY_OK)
        await pilot.press("t")
        await settle(pilot)
        assert isinstance(app.screen, TagEditor)
        assert "Row 0–15" in screen_text(app)
        app.screen.query_one("#tag-label", Input).value = "nice [/] pattern"  # markup-looking text is just text
        app.screen.query_one("#tag-row-index", Input).value = "16"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, TagEditor)  # out of range
        app.screen.query_one("#tag-row-index", Input).value = "7"
        await pilot.press("ctrl+s")
        await settle(pilot)
        [tag] = app.service.list_tags()
        assert (tag.row_index, tag.label) == (7, "nice [/] pattern")
        await pilot.press("6")
        await settle(pilot)
        assert "nice [/] pattern" in screen_text(app)


@async_test
async def test_escape_cancels_the_editor_without_writing(tui_env):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await open_dataset(pilot, GRID)
        await pilot.press("4", "t", *"scratch", "escape")
        await settle(pilot)
        assert not isinstance(app.screen, TagEditor)
        assert app.service.list_tags() == []


@async_test
async def test_plot_switch_circuit_and_ptycho(tui_env):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await open_dataset(pilot, GRID)
        await pilot.press("p")
        await settle(pilot)
        assert app.pane == "plot" and app.plot_mode == "nyquist"
        plot = app.query_one(SpectrumPlot)
        assert [p.title for p in plot.data.panels] == ["Nyquist"]
        labels = [s.label for s in plot.data.panels[0].series]
        assert labels[0].startswith("reference") and "rank 1" in labels
        await pilot.press("p")
        await settle(pilot)
        assert app.plot_mode == "bode"
        assert [p.title for p in plot.data.panels] == ["Bode |Z|", "Bode phase"]
        await pilot.press("p")
        await settle(pilot)
        assert app.plot_mode == "nyquist"
        # highlighting another result row re-plots it
        await pilot.press("4", "j", "j")
        await settle(pilot)
        assert "rank 3" in [s.label for s in plot.data.panels[0].series]
        # ptycho: a heatmap of a diffraction pattern, then the probe
        await pilot.press("escape")
        await open_dataset(pilot, PTY_OK)
        await pilot.press("p")
        await settle(pilot)
        assert app.plot_mode == "diffraction"
        heat = app.query_one(Heatmap)
        assert heat._image is not None and heat._image.shape == (64, 64)
        assert "diffraction" in screen_text(app)
        await pilot.press("p")
        await settle(pilot)
        assert app.plot_mode == "probe"
        assert "probeGuess" in screen_text(app)


@async_test
async def test_status_without_a_server_is_local_only(tui_env):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        bar = app.query_one(StatusBar)
        assert bar.status is not None and bar.status.server_configured is False
        text = screen_text(app)
        assert "sqlite catalog.sqlite3" in text and "local only" in text and "root: data/npz" in text
        await pilot.press("s")
        await settle(pilot)
        assert app.is_running and any("No server configured" in n.message for n in app._notifications)


@async_test
async def test_status_offline_server_never_shows_password_or_dialog(tui_env, monkeypatch):
    # nothing listens on port 9: the server is "down"
    monkeypatch.setenv("NPZTUI_DATABASE_URL", "postgresql://alice:s3cret-pw@127.0.0.1:9/npz")
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, timeout=20)
        bar = app.query_one(StatusBar)
        assert bar.status is not None and bar.status.server_configured and bar.status.online is False
        text = screen_text(app)
        assert "offline" in text and "s3cret-pw" not in text
        assert "127.0.0.1" in text
        await pilot.press("s")
        await settle(pilot, timeout=20)
        assert app.last_sync_error is not None
        text = screen_text(app)
        assert "sync failed" in text and "s3cret-pw" not in text
        assert len(app.screen_stack) == 1  # no dialog
        assert all("s3cret-pw" not in n.message for n in app._notifications)


@async_test
async def test_runs_pane_empty_state(tui_env):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        assert "No runs recorded yet" in screen_text(app)


@async_test
async def test_ten_thousand_catalogued_datasets_are_paged(tui_env):
    from npztui.catalog import Dataset, open_catalog  # test set-up only: write records straight in

    root = tui_env.root / "elsewhere"
    with open_catalog(tui_env.root / "catalog.sqlite3", owner="tester") as cat:
        cat.upsert_datasets([
            Dataset(path=f"p{i // 100:03d}/run_{i:05d}.npz", data_root=str(root), filename=f"run_{i:05d}.npz",
                    kind="generic", size=1000 + i, rows=i, findings={"error": 0, "warning": 0, "info": 0})
            for i in range(10_000)
        ])
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.query_one(DatasetTable)
        assert table.total == 10_004  # and the 4 samples the scan added
        assert len(table._pages) == 1 and len(table._pages[0]) == table.page_size
        await pilot.press("end")
        await settle(pilot)
        assert table.cursor == 10_003 and table.cursor_row is not None
        assert len(table._pages) <= 3  # the first page and the last one(s), never all 100
        await pilot.press("slash")
        app.query_one("#dataset-filter", Input).value = "run_0999"
        await pilot.press("enter")
        await settle(pilot)
        assert table.total == 10 and table.cursor_row.filename.startswith("run_0999")


@async_test
async def test_runs_pane_lists_recorded_runs_best_first(tui_env):
    from npztui.catalog import open_catalog  # test set-up only: record runs as a compute would

    with open_catalog(tui_env.root / "catalog.sqlite3", owner="tester") as cat:
        for name, score in (("grid 5 [fast]", 230.15), ("grid 8", 12.5)):
            run_id = cat.create_run({"grid_size": 5}, name=name)
            cat.start_run(run_id)
            cat.set_run_status(run_id, "completed", best_score=score, samples_evaluated=3125)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        from npztui.tui.widgets.runs import RunsTable

        table = app.query_one(RunsTable)
        assert table.row_count == 2 and table.display
        assert [table.get_row_at(i)[1].plain for i in range(2)] == ["grid 8", "grid 5 [fast]"]
        assert "2 runs, best score first" in screen_text(app)


@async_test
async def test_file_given_on_the_command_line_can_be_tagged(tui_env):
    app = make_app(tui_env.sample(GRID))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.current.name == GRID and app.current.dataset_id is not None  # catalogued by the scan
        await pilot.press("4", "t")
        await settle(pilot)
        app.screen.query_one("#tag-label", Input).value = "from the command line"
        await pilot.press("ctrl+s")
        await settle(pilot)
        [tag] = app.service.list_tags()
        assert (tag.row_index, tag.label, tag.dataset_id) == (1, "from the command line", app.current.dataset_id)


@async_test
async def test_runs_pane_shows_iterations_and_enter_opens_the_linked_dataset(tui_env):
    from npztui.config import load_settings
    from npztui.service import ComputeConfig, Service

    svc = Service(load_settings())  # a real compute, recorded the way `npztui compute` records it
    result, run = svc.compute(ComputeConfig(grid_size=4, n_frequencies=10, spectrum="none"),
                              tui_env.data / "user_generated", chunk_rows=128)
    svc.catalog.start_run(failed := svc.catalog.create_run({"kind": "manual"}, name="broken"))
    svc.catalog.set_run_status(failed, "failed", error_message="disk on fire")
    svc.close()
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        from textual.widgets import Sparkline

        from npztui.tui.widgets.runs import RunsPane, RunsTable

        pane = app.query_one(RunsPane)
        assert [r.status for r in pane.runs] == ["completed", "failed"]
        assert app.run_detail is not None and app.run_detail.run.id == run.id
        spark = app.query_one("#runs-sparkline", Sparkline)
        assert len(spark.data) == run.iterations > 1 and spark.data[-1] == min(spark.data)
        table = app.query_one(RunsTable)
        assert table.get_row_at(1)[0].style  # failed is coloured, not plain
        await pilot.press("down")
        await settle(pilot)
        assert "disk on fire" in screen_text(app)
        before = app.current
        await pilot.press("enter")  # no dataset: a note, nothing opened, still on Runs
        await settle(pilot)
        assert app.current is before and app.pane == "runs"
        assert any("no linked dataset" in n.message for n in app._notifications)
        await pilot.press("up", "enter")
        await settle(pilot)
        assert app.current is not None and app.current.path == result.path.resolve()
        assert app.pane == "metadata" and app.current.kind == "circuit"
        assert app.report is not None and app.report.path == app.current.path
