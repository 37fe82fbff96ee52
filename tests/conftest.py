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
