"""Opening one file: metadata tree, arrays table, findings, jump to key, bad files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from rich.text import Text

from test_tui_support import GRID, async_test, PTY_BAD_N, PTY_OK, make_app, screen_text, settle, tui_env, write_npz  # noqa: F401

from npztui.tui.widgets.findings import FindingsList
from npztui.tui.widgets.metadata import ArraysTable, MetadataPane, MetadataTree


@async_test
async def test_open_file_shows_metadata_and_arrays(tui_env):
    app = make_app(tui_env.sample(PTY_OK))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.current is not None and app.current.name == PTY_OK
        assert app.report is not None and app.report.error is None and app.report.kind == "ptycho"
        assert app.pane == "metadata"  # a file on the command line opens straight into its details
        tree = app.query_one(MetadataTree)
        node = tree.find_key("physics_parameters.N")
        assert node is not None and node.data.value == 64
        arrays = app.query_one(ArraysTable)
        names = [str(k.value) for k in arrays.rows]
        assert {"diffraction", "Y", "probeGuess", "xcoords"} <= set(names)
        text = screen_text(app)
        assert "physics_parameters" in text and "diffraction" in text


@async_test
async def test_findings_explained_and_enter_jumps_to_key(tui_env):
    app = make_app(tui_env.sample(PTY_BAD_N))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        assert app.pane == "findings"
        findings = app.query_one(FindingsList)
        assert [f.code for f in findings.findings] == ["PTY_N_SHAPE"]
        text = screen_text(app)
        assert "PTY_N_SHAPE" in text
        assert "diffraction patch size" in text  # the rule explained (service.rule_explanation)
        assert "Findings 1" in text  # the tab carries the count
        await pilot.press("enter")
        await settle(pilot)
        assert app.pane == "metadata"
        tree = app.query_one(MetadataTree)
        assert tree.has_focus
        assert tree.cursor_key == "physics_parameters.N"


@async_test
async def test_finding_about_an_array_jumps_to_the_arrays_table(tui_env):
    # a ptycho file whose probe is the wrong shape: PTY_ARRAY_SHAPES names the array `probeGuess`
    path = tui_env.root / "probe.npz"
    d = np.zeros((4, 8, 8), np.float32)
    write_npz(path, diffraction=d, probeGuess=np.zeros((5, 5), np.complex64),
              xcoords=np.zeros(4), ycoords=np.zeros(4),
              _metadata=np.array('{"schema_version": "1.0.0", "physics_parameters": {"N": 8, "nphotons": 1e9, "gridsize": 1}}'))
    app = make_app(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        codes = [f.code for f in app.report.findings]
        assert "PTY_ARRAY_SHAPES" in codes
        await pilot.press("3")
        lst = app.query_one(FindingsList)
        lst.highlighted = next(i for i, f in enumerate(lst.findings) if f.key == "probeGuess")
        await pilot.press("enter")
        await settle(pilot)
        arrays = app.query_one(ArraysTable)
        assert arrays.has_focus
        assert str(list(arrays.rows)[arrays.cursor_row].value) == "probeGuess"


@async_test
async def test_brackets_in_names_and_values_are_text_not_markup(tui_env):
    path = tui_env.root / "brackets.npz"
    write_npz(
        path,
        **{"[bold]x[/bold]": np.arange(3), "a[red]": np.zeros((2, 2)), "[/]": np.ones(1)},
        _metadata=np.array('{"schema_version": "1.0.0", "[key]": "[value", "nested": {"[/]": [1, "[x]"]}}'),
    )
    app = make_app(path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.report.error is None
        names = [str(k.value) for k in app.query_one(ArraysTable).rows]
        assert "[bold]x[/bold]" in names and "[/]" in names
        text = screen_text(app)
        assert "[bold]x[/bold]" in text and "a[red]" in text
        assert "[key]: [value" in text
        tree = app.query_one(MetadataTree)
        assert tree.select_key("nested.[/]")  # dotted keys with brackets resolve too
        assert tree.select_key("[/]") and tree.cursor_key == "nested.[/]"  # short keys are found where they live
        assert not tree.select_key("absent")
        await pilot.press("3")
        await settle(pilot)
        assert app.is_running


@async_test
async def test_corrupt_file_shows_typed_error_and_app_keeps_running(tui_env):
    bad = tui_env.root / "broken.npz"
    bad.write_bytes(b"PK\x03\x04 definitely not a zip")
    app = make_app(bad)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.report is not None and app.report.error is not None
        code = app.report.error.code
        assert code in ("NOT_NPZ", "CORRUPT", "TRUNCATED")
        assert app.query_one(MetadataPane).has_class("-error")
        text = screen_text(app)
        assert code in text
        await pilot.press("3")
        await settle(pilot)
        assert code in screen_text(app)
        await pilot.press("4", "5", "p", "t", "d", "r")  # nothing here crashes on an unreadable file
        await settle(pilot)
        assert app.is_running


@async_test
async def test_missing_and_truncated_files(tui_env):
    grid = tui_env.data / "precomputed" / GRID
    cut = tui_env.root / "cut.npz"
    cut.write_bytes(grid.read_bytes()[: grid.stat().st_size // 2])
    for path, codes in ((tui_env.root / "nope.npz", {"NOT_FOUND"}), (cut, {"TRUNCATED", "CORRUPT", "NOT_NPZ"})):
        app = make_app(path)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            assert app.report.error is not None and app.report.error.code in codes
            assert app.report.error.code in screen_text(app)


@async_test
async def test_hostile_pickle_is_a_finding_and_arrays_still_listed(tui_env):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tui_env.root / "evil.npz"
    meta = np.empty((), dtype=object)
    meta[()] = Evil()
    with zipfile.ZipFile(path, "w") as z:
        for name, arr in (("data", np.arange(5)), ("metadata", meta)):
            with z.open(name + ".npy", "w") as f:
                np.lib.format.write_array(f, arr, allow_pickle=True)
    app = make_app(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.report.error is None
        assert "UNSAFE_PICKLE" in [f.code for f in app.report.findings]
        assert "data" in [str(k.value) for k in app.query_one(ArraysTable).rows]


@async_test
async def test_bracket_file_names_in_the_list(tui_env):
    write_npz(tui_env.data / "precomputed" / "[red]odd[b].npz", x=np.arange(4))
    app = make_app()
    async with app.run_test(size=(100, 24)) as pilot:
        await settle(pilot)
        assert "[red]odd[b].npz" in screen_text(app)
