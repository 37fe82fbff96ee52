"""Versioned migrations: applied on first use, recorded, idempotent, safe when concurrent."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import psycopg
import pytest

from npztui.catalog import MigrationError, open_catalog
from npztui.catalog.migrate import latest_version, load_migrations, migrate_pg, migrate_sqlite, pg_version
from npztui.catalog.postgres import migrate_server

SYNCED = ["circuit_configurations", "datasets", "run_iterations", "runs", "tags", "user_profiles", "user_sessions"]


def _sqlite_objects(path: Path) -> tuple[set[str], set[str]]:
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        views = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'view'")}
    return tables, views


def test_sqlite_catalog_is_created_with_parents_and_migrated_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "catalog.sqlite3"
    with open_catalog(path) as cat:
        journal = cat.store.conn.execute("PRAGMA journal_mode").fetchone()[0]
        fks = cat.store.conn.execute("PRAGMA foreign_keys").fetchone()[0]
        busy = cat.store.conn.execute("PRAGMA busy_timeout").fetchone()[0]
    assert path.exists()
    assert (journal, fks) == ("wal", 1) and busy >= 1000
    tables, views = _sqlite_objects(path)
    assert set(SYNCED) | {"outbox", "sync_state", "conflicts", "schema_migrations"} <= tables
    assert {"datasets_with_config", "tag_summary"} <= views
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
    assert rows == [(1, "initial", load_migrations("sqlite")[0].checksum)]


def test_sqlite_migrate_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    open_catalog(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert migrate_sqlite(conn) == []
        assert migrate_sqlite(conn) == []
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == latest_version("sqlite")
    finally:
        conn.close()
    with open_catalog(path) as cat:  # reopening neither fails nor re-applies
        assert cat.status().schema_version == latest_version("sqlite")


def test_sqlite_concurrent_first_opens_apply_each_migration_once(tmp_path: Path) -> None:
    path = tmp_path / "race.sqlite3"
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            barrier.wait()
            with open_catalog(path, owner="x") as cat:
                cat.upsert_dataset({"path": f"{threading.get_ident()}.npz"})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [(1,)]
        assert conn.execute("SELECT count(*) FROM datasets").fetchone()[0] == 6


def test_sqlite_catalog_from_a_newer_npztui_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    open_catalog(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'future', 'x')")
    with pytest.raises(MigrationError, match="newer"):
        open_catalog(path)


@pytest.mark.postgres
def test_pg_migrate_applies_once_and_records_version(pg_db) -> None:
    assert migrate_server(pg_db.url) == [1]
    assert migrate_server(pg_db.url) == []
    with pg_db.admin() as conn:
        assert pg_version(conn) == latest_version("postgres") == 1
        rows = conn.execute("SELECT version, name, checksum FROM npztui.schema_migrations").fetchall()
        assert rows == [(1, "initial", load_migrations("postgres")[0].checksum)]
        rls = dict(conn.execute(
            "SELECT c.relname, c.relrowsecurity AND c.relforcerowsecurity FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'npztui' AND c.relkind = 'r'"
        ).fetchall())
        views = {r[0] for r in conn.execute(
            "SELECT viewname FROM pg_views WHERE schemaname = 'npztui'").fetchall()}
    assert all(rls[t] for t in SYNCED), rls
    assert {"datasets_with_config", "tag_summary"} <= views


@pytest.mark.postgres
def test_pg_concurrent_migrations_serialise(pg_db) -> None:
    results: list[list[int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        try:
            with psycopg.connect(pg_db.url, autocommit=True) as conn:
                barrier.wait()
                results.append(migrate_pg(conn))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [[], [], [1]]


@pytest.mark.postgres
def test_pg_revision_trigger_assigns_increasing_server_revisions(pg_catalog_db) -> None:
    with pg_catalog_db.admin() as conn:
        conn.execute("INSERT INTO npztui.datasets (id, owner, path, filename) VALUES "
                     "(gen_random_uuid(), 'x', 'a.npz', 'a.npz'), (gen_random_uuid(), 'x', 'b.npz', 'b.npz')")
        first = [r[0] for r in conn.execute("SELECT rev FROM npztui.datasets ORDER BY path")]
        conn.execute("UPDATE npztui.datasets SET kind = 'ptycho' WHERE path = 'a.npz'")
        after = conn.execute("SELECT rev FROM npztui.datasets WHERE path = 'a.npz'").fetchone()[0]
        safe = conn.execute("SELECT npztui.safe_revision()").fetchone()[0]
    assert first[0] < first[1] < after == safe


@pytest.mark.postgres
def test_pg_role_without_privileges_gets_a_clear_migration_error(pg_db, pg_roles, tmp_path: Path) -> None:
    from npztui.catalog import sync

    with open_catalog(tmp_path / "c.sqlite3") as cat, pytest.raises(MigrationError, match="db migrate"):
        sync(cat, pg_db.url_as(pg_roles.alice))


def test_db_migrate_and_status_for_the_local_catalog(tmp_path: Path) -> None:
    from npztui.catalog import db_status, migrate

    path = tmp_path / "new" / "catalog.sqlite3"
    [before] = db_status(path)
    assert (before.backend, before.schema_version, before.reachable) == ("sqlite", 0, True)
    assert not path.exists()  # status does not create the catalog
    assert migrate(path) == {"sqlite": [1]}
    assert migrate(path) == {"sqlite": []}
    [after] = db_status(path)
    assert after.up_to_date and after.pending_outbox == 0 and after.to_json()["up_to_date"] is True


@pytest.mark.postgres
def test_db_migrate_and_status_for_the_server_mask_the_password(tmp_path: Path, pg_db, pg_roles) -> None:
    from npztui.catalog import db_status, migrate

    admin_url = pg_db.url
    assert migrate(tmp_path / "c.sqlite3", admin_url)["postgresql"] == [1]
    url = pg_db.url_as(pg_roles.alice)
    local, server = db_status(tmp_path / "c.sqlite3", url)
    assert local.up_to_date and server.reachable and server.up_to_date
    assert server.user == pg_roles.alice.name and server.bypasses_rls is False
    assert pg_roles.alice.password not in server.location and "***" in server.location
    down = db_status(tmp_path / "c.sqlite3", f"postgresql://x:{pg_roles.alice.password}@/db?host=/nonexistent")[1]
    assert not down.reachable and down.schema_version is None
    assert pg_roles.alice.password not in (down.error or "") + down.location
