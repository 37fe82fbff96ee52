"""Shell behaviour: layout at 80×24 and 160×48, keys, help, command palette, themes."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.widgets import ContentSwitcher, Tabs

from test_tui_support import GRID, async_test, make_app, screen_text, settle, tui_env  # noqa: F401

from npztui.tui.app import PANES, NpzTuiApp
from npztui.tui.screens.help import HelpScreen
from npztui.tui.themes import load_themes, shipped_theme_dir, theme_from_table
from npztui.tui.widgets.datasets import DatasetTable


def test_shipped_themes_load_and_validate():
    themes = load_themes([shipped_theme_dir()])
    assert not themes.problems
    names = {t.name for t in themes.themes}
    assert {"npztui-dark", "npztui-light", "npztui-high-contrast"} <= names
    assert themes.resolve("light") == "npztui-light"
    assert themes.resolve("high-contrast") == "npztui-high-contrast"
    assert themes.resolve("npztui-dark") == "npztui-dark"
    assert themes.resolve("no-such-theme") is None


def test_bad_theme_files_are_reported_not_fatal(tmp_path):
    (tmp_path / "broken.toml").write_text("name = [")
    (tmp_path / "nocolour.toml").write_text('name = "x"\n')
    (tmp_path / "badcolour.toml").write_text('primary = "not-a-colour"\n')
    (tmp_path / "extra.toml").write_text('primary = "#112233"\nsparkle = "yes"\n')
    (tmp_path / "ok.toml").write_text('primary = "#112233"\n[variables]\n"border" = "#ffffff"\n')
    themes = load_themes([tmp_path])
    assert [t.name for t in themes.themes] == ["npztui-ok"]
    assert len(themes.problems) == 4
    with pytest.raises(ValueError):
        theme_from_table("x", {"primary": "#000000", "dark": "yes"})


@async_test
async def test_narrow_layout_is_tabs(tui_env):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.screen.has_class("-narrow") and not app.wide
        tabs = app.query_one("#nav", Tabs)
        assert tabs.active == "tab-datasets"
        assert app.query_one("#datasets").display and not app.query_one("#detail").display
        await pilot.press("2")
        assert app.pane == "metadata"
        assert not app.query_one("#datasets").display and app.query_one("#detail").display
        assert app.query_one("#detail", ContentSwitcher).current == "metadata"
        await pilot.press("escape")
        assert app.pane == "datasets" and app.query_one(DatasetTable).has_focus
        for i, pane in enumerate(PANES, start=1):
            await pilot.press(str(i))
            assert app.pane == pane and tabs.active == f"tab-{pane}"


@async_test
async def test_wide_layout_keeps_the_list_beside_the_details(tui_env):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert app.screen.has_class("-wide") and app.wide
        assert app.query_one("#datasets").display and app.query_one("#detail").display
        datasets_region = app.query_one("#datasets").region
        detail_region = app.query_one("#detail").region
        assert datasets_region.right <= detail_region.x  # side by side
        assert app.query_one("#nav", Tabs).active != "tab-datasets"
        await pilot.press("3")
        assert app.pane == "findings" and app.query_one("#datasets").display
        await pilot.press("escape")
        assert app.query_one(DatasetTable).has_focus
        # shrinking the terminal turns the layout back into tabs
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert not app.wide and app.screen.has_class("-narrow")


@async_test
async def test_help_lists_every_binding(tui_env):
    app = make_app()
    async with app.run_test(size=(100, 90)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for binding in NpzTuiApp.BINDINGS:
            assert (binding.tooltip or binding.description) in text, binding
        for key in ("^p", "Command palette", "Delete tag", "Toggle", "Cancel", "Save"):
            assert key.lower() in text.lower(), key
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


@async_test
async def test_command_palette_offers_every_action(tui_env):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for wanted in ("Filter datasets", "Tag the current row", "Delete tag", "Toggle reference", "Switch plot",
                       "Sync now", "Help: keys", "Show Findings", "Theme: npztui-light", "Quit"):
            assert any(t.startswith(wanted) for t in titles), wanted
        await pilot.press("ctrl+p")
        await settle(pilot)
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"Show Findings")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert app.pane == "findings"


@async_test
async def test_theme_flag_and_palette_choice_is_remembered(tui_env, monkeypatch):
    monkeypatch.setenv("NPZTUI_THEME", "high-contrast")  # what --theme high-contrast resolves to
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.theme == "npztui-high-contrast"
        assert not tui_env.config.exists()  # starting with a flag does not write the config
        await pilot.press("ctrl+p")
        await pilot.press(*"Theme: npztui-light")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert app.theme == "npztui-light"
    with open(tui_env.config, "rb") as f:
        assert tomllib.load(f)["theme"] == "npztui-light"
    monkeypatch.delenv("NPZTUI_THEME")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.theme == "npztui-light"  # remembered


@async_test
async def test_unknown_theme_falls_back_with_a_notice(tui_env, monkeypatch):
    monkeypatch.setenv("NPZTUI_THEME", "sparkles")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.theme == "npztui-dark"
        assert any("sparkles" in n.message for n in app._notifications)
