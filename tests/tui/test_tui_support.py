"""Shared helpers for the TUI tests (imported by the test_tui_* modules; no tests here).

Every test runs in its own temporary working directory with the shipped
samples copied under `data/npz/precomputed/`, and with `NPZTUI_CONFIG` /
`NPZTUI_CATALOG` pointing into that directory, so the real user config and
catalog are never touched and every path the UI shows is relative (the same on
every machine: snapshots stay deterministic).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data" / "npz" / "precomputed"
FIXTURES = REPO / "tests" / "fixtures"

GRID = "sample_grid_5_test.npz"
PTY_OK = "ptycho_sim_nphotons1e9.npz"
PTY_BAD_N = "ptycho_mismatch_N.npz"
PTY_LEGACY = "ptycho_legacy_no_metadata.npz"

_ENV_CLEAR = (
    "NPZTUI_DATABASE_URL", "NPZTUI_THEME", "NPZTUI_DATA_ROOT", "NPZTUI_OWNER",
    "NPZTUI_MAX_READ_BYTES", "NPZTUI_MAX_METADATA_BYTES",
    "PGSERVICE", "PGHOST", "PGDATABASE", "PGSERVICEFILE",
)


@dataclass
class TuiEnv:
    root: Path  # the temporary working directory
    data: Path  # root / "data/npz"
    config: Path
    catalog: Path

    def sample(self, name: str) -> Path:
        """Relative path (as a user would type it) of a copied sample."""
        return Path("data/npz/precomputed") / name


@pytest.fixture
def tui_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TuiEnv:
    for var in _ENV_CLEAR:
        monkeypatch.delenv(var, raising=False)
    config = tmp_path / "config" / "config.toml"
    catalog = tmp_path / "catalog.sqlite3"
    monkeypatch.setenv("NPZTUI_CONFIG", str(config))
    monkeypatch.setenv("NPZTUI_CATALOG", "catalog.sqlite3")  # relative: shown the same everywhere
    monkeypatch.setenv("NPZTUI_OWNER", "tester")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    dest = tmp_path / "data" / "npz" / "precomputed"
    dest.mkdir(parents=True)
    for f in sorted(SAMPLES.glob("*.npz")):
        shutil.copy2(f, dest / f.name)
    return TuiEnv(tmp_path, tmp_path / "data" / "npz", config, catalog)


def async_test(fn):
    """Run an `async def` test with asyncio (no asyncio pytest plugin is installed)."""
    import asyncio
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


def make_app(path: str | os.PathLike | None = "data/npz", **kw):
    from npztui.config import load_settings
    from npztui.service import Service
    from npztui.tui.app import NpzTuiApp

    kw.setdefault("cursor_blink", False)
    return NpzTuiApp(Service(load_settings()), path, **kw)


async def settle(pilot, timeout: float = 10.0) -> None:
    """Wait until no worker runs and no debounce timer is pending, then let the screen repaint."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        await pilot.pause(0.02)
        if app.is_busy:
            quiet = 0
            try:
                await app.workers.wait_for_complete()
            except Exception:  # noqa: BLE001 - an exclusive worker replaced by a newer one
                pass
            continue
        quiet += 1
        if quiet >= 2:
            break
    # widgets such as DataTable lay out new rows on idle: give them that turn before reading the screen
    await pilot.pause()
    await pilot.pause()


def screen_text(app) -> str:
    """The current screen as plain text (for asserting on what a user sees)."""
    import io

    from rich.console import Console

    w, h = app.size
    console = Console(width=w, height=h, file=io.StringIO(), force_terminal=True, color_system="truecolor",
                      record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def write_npz(path: Path, **arrays) -> Path:
    import numpy as np

    np.savez(path, **arrays)
    return path


__all__ = [
    "async_test", "FIXTURES", "GRID", "PTY_BAD_N", "PTY_LEGACY", "PTY_OK", "REPO", "SAMPLES", "TuiEnv",
    "make_app", "screen_text", "settle", "tui_env", "write_npz",
]
