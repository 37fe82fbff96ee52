"""The server disappears mid-sync: nothing is lost, nothing is duplicated."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

import psycopg
import pytest
from catalog_helpers import record, server_rows

from npztui.catalog import ServerUnavailable, sync

pytestmark = pytest.mark.postgres
sync_module = importlib.import_module("npztui.catalog.sync")


def _at(monkeypatch: pytest.MonkeyPatch, point: str, action: Callable[[], None], *, nth: int = 1) -> list[str]:
    """Run `action` the nth time sync reaches checkpoint `point`; returns the checkpoints seen."""
    seen: list[str] = []

    def hook(name: str) -> None:
        seen.append(name)
        if name == point and seen.count(point) == nth:
            action()

    monkeypatch.setattr(sync_module, "_checkpoint", hook)
    return seen


def _kill_sync_backends(team) -> Callable[[], None]:  # noqa: ANN001
    def kill() -> None:
        with team.db.admin() as conn:
            killed = conn.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND application_name = 'npztui'", (team.db.name,)).fetchone()[0]
        assert killed == 1

    return kill


def test_connection_killed_before_commit_of_second_chunk(make_catalog, team, monkeypatch) -> None:  # noqa: ANN001
    cat = make_catalog("a", owner=team.alice)
    cat.upsert_datasets([record(i) for i in range(35)])
    _at(monkeypatch, "push:before_commit", _kill_sync_backends(team), nth=2)
    with pytest.raises(ServerUnavailable) as err:
        sync(cat, team.alice_url, batch_size=10)
    assert err.value.partial.pushed == 10  # the first chunk was committed and acknowledged
    assert server_rows(team.db, "SELECT count(*) FROM npztui.datasets") == [(10,)]
    assert cat.pending_outbox_count() == 25

    cat.add_tag(cat.list_datasets(limit=1)[0].id, 1, "made while offline")
    monkeypatch.setattr(sync_module, "_checkpoint", lambda name: None)
    res = sync(cat, team.alice_url, batch_size=10)
    assert (res.pushed, res.conflicts, res.errors) == (26, 0, [])
    assert server_rows(team.db, "SELECT count(*), count(DISTINCT path) FROM npztui.datasets") == [(35, 35)]
    assert server_rows(team.db, "SELECT count(*) FROM npztui.tags") == [(1,)]
    assert cat.pending_outbox_count() == 0


def test_acknowledgement_lost_after_commit_is_retried_without_duplicates(make_catalog, team, monkeypatch) -> None:  # noqa: ANN001
    cat = make_catalog("a", owner=team.alice)
    ds = cat.upsert_datasets([record(i) for i in range(5)])
    tag = cat.add_tag(ds[0], 1, "t")

    def lose_ack() -> None:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    _at(monkeypatch, "push:after_commit", lose_ack)
    with pytest.raises(ServerUnavailable):
        sync(cat, team.alice_url)
    assert server_rows(team.db, "SELECT count(*) FROM npztui.datasets") == [(5,)]  # committed...
    assert cat.pending_outbox_count() == 6  # ...but not acknowledged, so still queued

    cat.update_tag(tag, label="edited meanwhile")
    monkeypatch.setattr(sync_module, "_checkpoint", lambda name: None)
    res = sync(cat, team.alice_url)
    assert res.conflicts == 0 and res.errors == []
    assert server_rows(team.db, "SELECT count(*) FROM npztui.datasets") == [(5,)]
    assert server_rows(team.db, "SELECT label FROM npztui.tags") == [("edited meanwhile",)]
    assert cat.pending_outbox_count() == 0
    assert sync(cat, team.alice_url).pushed == 0


def test_connection_killed_during_pull_applies_nothing_and_keeps_the_cursor(make_catalog, team, monkeypatch) -> None:  # noqa: ANN001
    a = make_catalog("a", owner=team.alice)
    a.add_tag(a.upsert_dataset(record(1)), 1, "t")
    a.create_run(name="r")
    sync(a, team.alice_url)
    b = make_catalog("b", owner=team.alice)
    _at(monkeypatch, "pull:table", _kill_sync_backends(team), nth=4)  # after 3 tables were read
    with pytest.raises(ServerUnavailable):
        sync(b, team.alice_url)
    assert b.count_datasets() == 0 and b.list_runs() == []  # all-or-nothing locally
    assert b.store.meta("last_pulled_rev") in (None, "0")
    monkeypatch.setattr(sync_module, "_checkpoint", lambda name: None)
    assert sync(b, team.alice_url).pulled == 3
    assert len(b.list_tags()) == 1 and len(b.list_runs()) == 1


@pytest.mark.slow
def test_real_server_stopped_mid_push_then_restarted(make_catalog, monkeypatch) -> None:  # noqa: ANN001
    from pg_fixtures import start_private_server

    from npztui.catalog.postgres import migrate_server

    try:
        server = start_private_server()
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI"):
            raise
        pytest.skip(f"cannot start a private PostgreSQL to stop and restart: {exc}")
    try:
        with server.admin() as conn:
            conn.execute("CREATE ROLE npztui_restart LOGIN")
            conn.execute("CREATE DATABASE npztui_restart")
        migrate_server(server.url_for("npztui_restart"))
        url = server.url_for("npztui_restart", "npztui_restart")
        cat = make_catalog("a", owner="npztui_restart")
        ids = cat.upsert_datasets([record(i) for i in range(30)])
        for i in ids[:12]:
            cat.add_tag(i, 1, "t")

        _at(monkeypatch, "push:before_commit", server.stop, nth=2)
        with pytest.raises(ServerUnavailable):
            sync(cat, url, batch_size=10)
        monkeypatch.setattr(sync_module, "_checkpoint", lambda name: None)
        with pytest.raises(ServerUnavailable):  # still down
            sync(cat, url, batch_size=10, connect_timeout=1)
        cat.add_tag(ids[20], 1, "tagged while the server was down")
        assert cat.pending_outbox_count() == 30 - 10 + 12 + 1

        server.start()
        res = sync(cat, server.url_for("npztui_restart", "npztui_restart"), batch_size=10)
        assert res.errors == [] and res.pushed == 33
        with server.admin("npztui_restart") as conn:
            assert conn.execute("SELECT count(*), count(DISTINCT id) FROM npztui.datasets").fetchone() == (30, 30)
            assert conn.execute("SELECT count(*) FROM npztui.tags").fetchone() == (13,)
        assert cat.pending_outbox_count() == 0
    finally:
        server.shutdown()
