"""Sync state in the status bar against a real PostgreSQL server (skipped when none can be started)."""

from __future__ import annotations

import pytest

from test_tui_support import async_test, make_app, screen_text, settle, tui_env  # noqa: F401

from npztui.tui.widgets.datasets import DatasetTable
from npztui.tui.widgets.status import StatusBar


@pytest.mark.postgres
def test_sync_pushes_the_outbox_and_shows_online(tui_env, pg_catalog_db, pg_roles, monkeypatch):
    url = pg_catalog_db.url_as(pg_roles.alice)
    password = pg_roles.alice.password
    monkeypatch.setenv("NPZTUI_DATABASE_URL", url)
    monkeypatch.delenv("NPZTUI_OWNER")  # the server decides who we are

    @async_test
    async def run() -> None:
        app = make_app()
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot, timeout=30)
            bar = app.query_one(StatusBar)
            assert bar.status.server_configured and bar.status.online is True
            await pilot.press("s")  # whatever the start-up sync did not see yet (the scan's records)
            await settle(pilot, timeout=30)
            assert app.last_sync_error is None
            assert bar.status.pending == 0
            table = app.query_one(DatasetTable)
            assert {table.row_at(i).sync_status for i in range(table.total)} == {"synced"}
            text = screen_text(app)
            assert "● online" in text and "0 pending" in text and "synced" in text
            assert password not in text
            assert pg_catalog_db.name in text  # host/db, never user or password

    run()
