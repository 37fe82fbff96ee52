"""Shared test fixtures. PostgreSQL fixtures live in pg_fixtures.py (owned by the catalog work)."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
COMPAT = FIXTURES / "compat"
REAL = FIXTURES / "real" / "ptychopinn"

try:  # the PostgreSQL server fixture; absent until the catalog lands
    from pg_fixtures import *  # noqa: F401,F403
except ImportError:  # pragma: no cover
    pass


@pytest.fixture
def compat_dir() -> Path:
    return COMPAT


@pytest.fixture
def real_dir() -> Path:
    return REAL


ISOLATED_ENV = ("NPZTUI_DATABASE_URL", "NPZTUI_DATA_ROOT", "NPZTUI_THEME", "NPZTUI_OWNER",
                "PGSERVICE", "PGHOST", "PGDATABASE", "PGSERVICEFILE")


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory, monkeypatch):
    """No test ever reads or writes the real user's config or catalog.

    Settings resolve to a private directory per test (outside `tmp_path`, so
    tests asserting on `tmp_path` contents see only their own files), and no
    server is configured unless a test sets one.
    """
    home = tmp_path_factory.mktemp("npztui-home")
    monkeypatch.setenv("NPZTUI_CONFIG", str(home / "config.toml"))
    monkeypatch.setenv("NPZTUI_CATALOG", str(home / "catalog.sqlite3"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "xdg-data"))
    for var in ISOLATED_ENV:
        monkeypatch.delenv(var, raising=False)
    return home
