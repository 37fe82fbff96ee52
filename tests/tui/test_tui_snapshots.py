"""SVG snapshots at 80×24 (panes as tabs) and 160×48 (list beside the details).

Deterministic by construction: a temporary working directory holding copies of
the shipped samples, relative paths everywhere on screen, the config and the
catalog isolated there, no cursor blink, no animations, and every worker
finished before the screenshot. Update with `pytest tests/tui --snapshot-update`
after checking the report.
"""

from __future__ import annotations

from test_tui_support import GRID, PTY_BAD_N, PTY_OK, make_app, settle, tui_env  # noqa: F401

NARROW = (80, 24)
WIDE = (160, 48)


def steps(*keys: str, filter_to: str | None = None):
    """A run_before that waits for the start-up scan, optionally filters to one dataset, presses keys."""

    async def run(pilot) -> None:
        await settle(pilot)
        if filter_to is not None:
            await pilot.press("slash")
            pilot.app.query_one("#dataset-filter").value = filter_to
            await pilot.press("enter")
            await settle(pilot)
            await pilot.press("enter")
            await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run


def test_snapshot_datasets_narrow(tui_env, snap_compare):
    assert snap_compare(make_app(), terminal_size=NARROW, run_before=steps())


def test_snapshot_metadata_narrow(tui_env, snap_compare):
    assert snap_compare(make_app(), terminal_size=NARROW, run_before=steps(filter_to=PTY_OK))


def test_snapshot_findings_narrow(tui_env, snap_compare):
    assert snap_compare(make_app(), terminal_size=NARROW, run_before=steps("3", filter_to=PTY_BAD_N))


def test_snapshot_results_narrow(tui_env, snap_compare):
    assert snap_compare(make_app(), terminal_size=NARROW, run_before=steps("4", "j", filter_to=GRID))


def test_snapshot_nyquist_narrow(tui_env, snap_compare):
    assert snap_compare(make_app(), terminal_size=NARROW, run_before=steps("p", filter_to=GRID))


def test_snapshot_tag_editor_narrow(tui_env, snap_compare):
    assert snap_compare(make_app(), terminal_size=NARROW, run_before=steps("4", "t", "b", "e", "s", "t", filter_to=GRID))


def test_snapshot_help_narrow(tui_env, snap_compare):
    assert snap_compare(make_app(), terminal_size=NARROW, run_before=steps("question_mark"))


def test_snapshot_unreadable_file_narrow(tui_env, snap_compare):
    (tui_env.data / "precomputed" / "broken.npz").write_bytes(b"PK\x03\x04 not really a zip")
    assert snap_compare(make_app(), terminal_size=NARROW, run_before=steps(filter_to="broken"))


def test_snapshot_circuit_wide(tui_env, snap_compare):
    assert snap_compare(make_app(), terminal_size=WIDE, run_before=steps("4", "j", "j", filter_to=GRID))


def test_snapshot_bode_wide(tui_env, snap_compare):
    assert snap_compare(make_app(), terminal_size=WIDE, run_before=steps("p", "p", filter_to=GRID))


def test_snapshot_ptycho_heatmap_wide_light(tui_env, snap_compare, monkeypatch):
    monkeypatch.setenv("NPZTUI_THEME", "light")
    assert snap_compare(make_app(), terminal_size=WIDE, run_before=steps("p", filter_to=PTY_OK))


def test_snapshot_findings_high_contrast_wide(tui_env, snap_compare, monkeypatch):
    monkeypatch.setenv("NPZTUI_THEME", "high-contrast")
    assert snap_compare(make_app(), terminal_size=WIDE, run_before=steps("3", filter_to=PTY_BAD_N))
