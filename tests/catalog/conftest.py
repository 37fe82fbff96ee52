"""Helpers shared by the catalog tests (the PostgreSQL server comes from tests/pg_fixtures.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from catalog_helpers import Team

from npztui.catalog import Catalog, open_catalog


@pytest.fixture
def make_catalog(tmp_path: Path) -> Iterator[Callable[..., Catalog]]:
    """Open catalogs under tmp_path by short name ("a", "b"...); closed after the test."""
    opened: list[Catalog] = []

    def make(name: str = "cat", owner: str | None = "tester") -> Catalog:
        cat = open_catalog(tmp_path / name / "catalog.sqlite3", owner=owner)
        opened.append(cat)
        return cat

    yield make
    for cat in opened:
        cat.close()


@pytest.fixture
def cat(make_catalog: Callable[..., Catalog]) -> Catalog:
    return make_catalog()


@pytest.fixture
def team(pg_catalog_db, pg_roles) -> Team:  # noqa: ANN001
    return Team(pg_catalog_db, pg_roles)
