"""Offline-first sync against a real PostgreSQL: round trips, conflicts, deletes, twins, runs."""

from __future__ import annotations

import threading

import pytest
from catalog_helpers import outbox_rows, record, server_rows

from npztui.catalog import ServerUnavailable, SyncInProgress, sync
from npztui.catalog.sync import _sync_lock

pytestmark = pytest.mark.postgres


def test_round_trip_between_two_machines_of_the_same_user(make_catalog, team) -> None:  # noqa: ANN001
    a = make_catalog("a", owner="laptop-user")
    cfg = a.add_config("reference", {"Rsh": 5005.0, "Ca": 2.505e-5}, is_public=True)
    sess = a.create_session("s1", current_circuit_config_id=cfg)
    ds = a.upsert_dataset(record(1, circuit_config_id=cfg, session_id=sess))
    tag = a.add_tag(ds, 1, "best", quality_score=0.25, parameters={"Rsh": 5005.0}, is_reference=True)
    a.update_profile(default_grid_size=7)

    first = sync(a, team.alice_url)
    assert (first.pushed, first.pulled, first.conflicts, first.errors) == (5, 0, 0, [])
    assert first.owner == team.alice and a.owner == team.alice  # local owner aligned to the server role
    assert a.pending_outbox_count() == 0
    assert a.get_dataset(ds).sync_status == "synced"  # type: ignore[union-attr]
    assert server_rows(team.db, "SELECT owner, path FROM npztui.datasets") == [(team.alice, "runs/grid_0001.npz")]

    b = make_catalog("b", owner=team.alice)
    pulled = sync(b, team.alice_url)
    assert (pulled.pushed, pulled.pulled) == (0, 5)
    assert b.pending_outbox_count() == 0 and outbox_rows(b) == []  # pulled rows are not re-queued
    for getter, row_id in ((lambda c, i: c.get_dataset(i), ds), (lambda c, i: c.get_tag(i), tag),
                           (lambda c, i: c.get_config(i), cfg), (lambda c, i: c.get_session(i), sess)):
        left, right = getter(a, row_id).to_dict(), getter(b, row_id).to_dict()
        left.pop("dataset_path", None), right.pop("dataset_path", None)
        assert left == right
    assert b.get_profile().default_grid_size == 7

    again = sync(b, team.alice_url)
    assert (again.pushed, again.pulled, again.conflicts) == (0, 0, 0)
    assert sync(a, team.alice_url).pulled == 0  # a's own pushes do not come back


def test_concurrent_edits_of_one_tag_last_writer_wins_and_loser_is_kept(make_catalog, team) -> None:  # noqa: ANN001
    a = make_catalog("a", owner=team.alice)
    b = make_catalog("b", owner=team.alice)
    ds = a.upsert_dataset(record(1))
    tag = a.add_tag(ds, 1, "original", quality_score=0.5)
    sync(a, team.alice_url)
    sync(b, team.alice_url)

    a.update_tag(tag, label="from A", quality_score=0.6)  # earlier edit
    b.update_tag(tag, label="from B", notes="later")  # later edit: must win
    assert sync(a, team.alice_url).conflicts == 0  # first to push: nothing concurrent yet
    res = sync(b, team.alice_url)
    assert res.conflicts == 1 and res.pushed == 1

    [conflict] = b.conflicts()
    assert (conflict.table_name, conflict.row_id, conflict.winner) == ("tags", tag, "local")
    assert conflict.loser["label"] == "from A" and conflict.kept["label"] == "from B"
    assert server_rows(team.db, "SELECT label, notes, quality_score FROM npztui.tags") == [("from B", "later", 0.5)]

    assert sync(a, team.alice_url).pulled == 1
    assert a.get_tag(tag).label == "from B"  # type: ignore[union-attr]
    assert a.conflicts() == []  # one conflict, recorded once
    assert server_rows(team.db, "SELECT count(*) FROM npztui.tags") == [(1,)]


def test_when_the_server_version_is_newer_the_local_edit_loses_but_is_kept(make_catalog, team) -> None:  # noqa: ANN001
    a = make_catalog("a", owner=team.alice)
    b = make_catalog("b", owner=team.alice)
    ds = a.upsert_dataset(record(1))
    tag = a.add_tag(ds, 1, "original")
    sync(a, team.alice_url)
    sync(b, team.alice_url)

    a.update_tag(tag, label="A, earlier")
    b.update_tag(tag, label="B, later")
    sync(b, team.alice_url)
    res = sync(a, team.alice_url)
    assert (res.conflicts, res.pushed) == (1, 0)
    assert a.get_tag(tag).label == "B, later"  # type: ignore[union-attr]
    [conflict] = a.conflicts()
    assert conflict.winner == "server" and conflict.loser["label"] == "A, earlier"
    assert a.pending_outbox_count() == 0

    # the user can bring the losing version back: it becomes a new edit and wins
    a.resolve_conflict(conflict.id, restore_loser=True)
    assert a.conflicts() == [] and len(a.conflicts(include_resolved=True)) == 1
    assert sync(a, team.alice_url).conflicts == 0
    sync(b, team.alice_url)
    assert b.get_tag(tag).label == "A, earlier"  # type: ignore[union-attr]


def test_deletes_propagate_as_tombstones(make_catalog, team) -> None:  # noqa: ANN001
    a = make_catalog("a", owner=team.alice)
    b = make_catalog("b", owner=team.alice)
    ds = a.upsert_dataset(record(1))
    keep = a.upsert_dataset(record(2))
    t1 = a.add_tag(ds, 1, "one")
    t2 = a.add_tag(keep, 1, "two")
    sync(a, team.alice_url)
    sync(b, team.alice_url)
    assert len(b.list_tags()) == 2

    b.delete_tag(t2)
    a.delete_dataset(ds)
    sync(a, team.alice_url)
    sync(b, team.alice_url)
    sync(a, team.alice_url)
    for cat in (a, b):
        assert [d.id for d in cat.list_datasets()] == [keep]
        assert cat.list_tags() == []
        assert cat.get_tag(t1, include_deleted=True).deleted  # type: ignore[union-attr]
    assert sorted(server_rows(team.db, "SELECT label, deleted FROM npztui.tags")) == [("one", True), ("two", True)]


def test_edit_after_a_remote_delete_wins_and_revives_the_row(make_catalog, team) -> None:  # noqa: ANN001
    a = make_catalog("a", owner=team.alice)
    b = make_catalog("b", owner=team.alice)
    tag = a.add_tag(a.upsert_dataset(record(1)), 1, "t")
    sync(a, team.alice_url)
    sync(b, team.alice_url)
    a.delete_tag(tag)
    b.update_tag(tag, label="still useful")  # later than the delete
    sync(a, team.alice_url)
    assert sync(b, team.alice_url).conflicts == 1
    sync(a, team.alice_url)
    assert a.get_tag(tag).label == "still useful"  # type: ignore[union-attr]
    assert b.conflicts()[0].loser["deleted"] is True


def test_same_file_catalogued_on_two_machines_merges_into_one_record(make_catalog, team) -> None:  # noqa: ANN001
    a = make_catalog("a", owner=team.alice)
    b = make_catalog("b", owner=team.alice)
    ds_a = a.upsert_dataset(record(1))
    ds_b = b.upsert_dataset(record(1))  # same owner + path, different client-side UUID
    tag_b = b.add_tag(ds_b, 4, "tagged on b")
    sync(a, team.alice_url)
    res = sync(b, team.alice_url)
    assert res.errors == [] and res.conflicts == 0  # identical scans are not a conflict
    assert server_rows(team.db, "SELECT id::text FROM npztui.datasets") == [(ds_a,)]
    assert [d.id for d in b.list_datasets()] == [ds_a]
    assert b.get_tag(tag_b).dataset_id == ds_a  # type: ignore[union-attr]
    assert server_rows(team.db, "SELECT dataset_id::text FROM npztui.tags") == [(ds_a,)]
    sync(a, team.alice_url)
    assert [t.label for t in a.list_tags(ds_a)] == ["tagged on b"]


def test_a_new_server_receives_everything_again(make_catalog, team, pg_server, pg_roles) -> None:  # noqa: ANN001
    from psycopg import sql

    from npztui.catalog.postgres import migrate_server

    a = make_catalog("a", owner=team.alice)
    a.add_tag(a.upsert_dataset(record(1)), 1, "t")
    sync(a, team.alice_url)
    other = f"{team.db.name}_b"
    with pg_server.admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(other)))
    try:
        migrate_server(pg_server.url_for(other))
        res = sync(a, pg_server.url_for(other, pg_roles.alice.name, pg_roles.alice.password))
        assert res.pushed == 2
        with pg_server.admin(other) as conn:
            assert conn.execute("SELECT count(*) FROM npztui.tags").fetchone()[0] == 1
    finally:
        with pg_server.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(other)))


def test_full_resync_forgets_rows_that_became_private(make_catalog, team) -> None:  # noqa: ANN001
    alice = make_catalog("alice", owner=team.alice)
    ds = alice.upsert_dataset(record(1, is_public=True))
    sync(alice, team.alice_url)
    bob = make_catalog("bob", owner=team.bob)
    sync(bob, team.bob_url)
    assert bob.count_datasets() == 1
    alice.update_dataset(ds, is_public=False)
    sync(alice, team.alice_url)
    sync(bob, team.bob_url)
    assert bob.count_datasets() == 1  # an incremental pull cannot see what it may no longer see
    sync(bob, team.bob_url, full=True)
    assert bob.count_datasets() == 0


def test_runs_sync_to_postgres_with_their_iterations(make_catalog, team) -> None:  # noqa: ANN001
    a = make_catalog("a", owner=team.alice)
    ds = a.upsert_dataset(record(1))
    good, bad = a.create_run({"grid": 5}, name="good", dataset_id=ds, tags=["g5"]), a.create_run(name="bad")
    for run_id, scores in ((good, [3.0, 1.5]), (bad, [7.0])):
        a.start_run(run_id)
        for i, s in enumerate(scores):
            a.add_iteration(run_id, i, best_score=s, rows_done=100 * (i + 1), elapsed_s=0.1)
    a.set_run_status(good, "completed")
    a.set_run_status(bad, "failed", error_message="diverged")
    sync(a, team.alice_url)

    assert sorted(server_rows(team.db, "SELECT name, status, best_score, iterations, samples_evaluated, "
                                       "error_message, finished_at IS NOT NULL FROM npztui.runs")) == [
        ("bad", "failed", 7.0, 1, 100, "diverged", True), ("good", "completed", 1.5, 2, 200, None, True)]
    assert server_rows(team.db, "SELECT count(*) FROM npztui.run_iterations WHERE run_id = %s", (good,)) == [(2,)]

    b = make_catalog("b", owner=team.alice)
    sync(b, team.alice_url)
    assert [(r.name, r.best_score) for r in b.list_runs()] == [("good", 1.5), ("bad", 7.0)]
    assert [it.best_score for it in b.list_iterations(good)] == [3.0, 1.5]
    assert b.get_run(good).config == {"grid": 5} and b.get_run(good).tags == ["g5"]  # type: ignore[union-attr]


def test_server_enforces_run_constraints(team) -> None:  # noqa: ANN001
    import uuid

    import psycopg

    run = str(uuid.uuid4())
    with team.connect("alice") as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO npztui.runs (id, owner, status) VALUES (%s, %s, 'bogus')", (run, team.alice))
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO npztui.runs (id, owner, status, finished_at) VALUES (%s, %s, 'running', now())",
                         (run, team.alice))
        conn.execute("INSERT INTO npztui.runs (id, owner, status) VALUES (%s, %s, 'running')", (run, team.alice))
        conn.execute("INSERT INTO npztui.run_iterations (id, owner, run_id, iteration) VALUES (%s, %s, %s, 0)",
                     (str(uuid.uuid4()), team.alice, run))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO npztui.run_iterations (id, owner, run_id, iteration) VALUES (%s, %s, %s, 0)",
                         (str(uuid.uuid4()), team.alice, run))
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO npztui.tags (id, owner, dataset_id, row_index, label, quality_score) "
                         "SELECT %s, %s, %s, 1, 'x', 1.5", (str(uuid.uuid4()), team.alice, run))


def test_unreachable_server_leaves_local_work_intact(cat) -> None:  # noqa: ANN001
    ds = cat.upsert_dataset(record(1))
    cat.add_tag(ds, 1, "offline tag")
    url = "postgresql://alice:TopSecret99@/npztui?host=/nonexistent-socket-dir&connect_timeout=1"
    with pytest.raises(ServerUnavailable) as err:
        sync(cat, url)
    assert "TopSecret99" not in str(err.value)
    assert err.value.partial is not None and err.value.partial.pushed == 0
    assert cat.pending_outbox_count() == 2 and len(cat.list_tags()) == 1
    status = cat.status()
    assert status.pending_outbox == 2 and "unavailable" in (status.last_sync_error or "")
    assert "TopSecret99" not in (status.last_sync_error or "")


def test_one_sync_at_a_time_per_catalog(cat, team) -> None:  # noqa: ANN001
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with _sync_lock(cat.path, 1):
            held.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    try:
        with pytest.raises(SyncInProgress):
            sync(cat, team.alice_url, lock_timeout=0.2)
    finally:
        release.set()
        t.join()
    assert sync(cat, team.alice_url).errors == []


def test_pull_never_skips_a_row_committed_late_with_a_lower_revision(make_catalog, team) -> None:  # noqa: ANN001
    import uuid

    insert = "INSERT INTO npztui.datasets (id, owner, path, filename, updated_at) VALUES (%s, %s, %s, 'f', now())"
    slow = team.connect("alice")
    fast = team.connect("alice")
    try:
        slow_tx = slow.transaction()
        slow_tx.__enter__()
        slow.execute(insert, (str(uuid.uuid4()), team.alice, "slow.npz"))  # takes the lower revision...
        fast.execute(insert, (str(uuid.uuid4()), team.alice, "fast.npz"))  # ...this one commits first
        b = make_catalog("b", owner=team.alice)
        results: list[object] = []
        t = threading.Thread(target=lambda: results.append(sync(b, team.alice_url)))
        t.start()
        t.join(0.5)
        assert t.is_alive()  # the pull waits for the open writer instead of racing past it
        slow_tx.__exit__(None, None, None)
        t.join(10)
    finally:
        slow.close()
        fast.close()
    assert sorted(d.path for d in b.list_datasets()) == ["fast.npz", "slow.npz"]
    assert sync(b, team.alice_url).pulled == 0
