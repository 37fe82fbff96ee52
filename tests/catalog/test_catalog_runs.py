"""Runs (SPEC §8): lifecycle, database constraints, iterations, leaderboard."""

from __future__ import annotations

import sqlite3

import pytest
from catalog_helpers import record

from npztui.catalog import Catalog, ValidationError


def test_lifecycle_stamps_times_and_folds_iterations_into_the_run(cat: Catalog) -> None:
    ds = cat.upsert_dataset(record(1))
    run_id = cat.create_run({"grid": 5, "fmin": 0.1}, name="grid-5", dataset_id=ds, tags=["baseline"])
    run = cat.get_run(run_id)
    assert run is not None and run.status == "pending" and run.started_at is None and run.tags == ["baseline"]

    running = cat.start_run(run_id)
    assert running.status == "running" and running.started_at is not None
    for i, (score, rows) in enumerate([(5.0, 1000), (3.0, 2000), (4.0, 3125)]):
        cat.add_iteration(run_id, i, best_score=score, rows_done=rows, elapsed_s=0.5 * (i + 1))
    mid = cat.get_run(run_id)
    assert mid is not None and (mid.iterations, mid.best_score, mid.samples_evaluated) == (3, 3.0, 3125)
    assert [it.iteration for it in cat.list_iterations(run_id)] == [0, 1, 2]

    done = cat.set_run_status(run_id, "completed")
    assert done.finished_at is not None and done.finished_at >= done.started_at  # type: ignore[operator]
    with pytest.raises(ValidationError, match="terminal"):
        cat.set_run_status(run_id, "running")
    with pytest.raises(ValidationError, match="running run"):
        cat.add_iteration(run_id, 3, best_score=1.0)


@pytest.mark.parametrize(("path", "final"), [
    (["running", "failed"], "failed"), (["running", "cancelled"], "cancelled"), (["cancelled"], "cancelled"),
    (["failed"], "failed"),
])
def test_allowed_transitions(cat: Catalog, path: list[str], final: str) -> None:
    run_id = cat.create_run()
    for status in path:
        cat.set_run_status(run_id, status, error_message="boom" if status == "failed" else None)
    run = cat.get_run(run_id)
    assert run is not None and run.status == final and run.finished_at is not None
    if final == "failed":
        assert run.error_message == "boom"


def test_invalid_transitions_and_statuses_are_refused(cat: Catalog) -> None:
    run_id = cat.create_run()
    with pytest.raises(ValidationError, match="pending run cannot become completed"):
        cat.set_run_status(run_id, "completed")
    with pytest.raises(ValidationError) as err:
        cat.set_run_status(run_id, "paused")
    assert err.value.field == "status"
    with pytest.raises(ValidationError):
        cat.add_iteration(run_id, 0)  # not running yet
    assert cat.get_run(run_id).status == "pending"  # type: ignore[union-attr]


def test_iteration_numbers_are_unique_per_run(cat: Catalog) -> None:
    a, b = cat.create_run(), cat.create_run()
    cat.start_run(a)
    cat.start_run(b)
    cat.add_iteration(a, 0, best_score=1.0)
    cat.add_iteration(b, 0, best_score=2.0)  # same number, other run: fine
    with pytest.raises(ValidationError) as err:
        cat.add_iteration(a, 0, best_score=0.5)
    assert err.value.field == "iteration"
    assert cat.get_run(a).iterations == 1 and cat.get_run(a).best_score == 1.0  # type: ignore[union-attr]


def test_database_enforces_status_values_and_iteration_uniqueness(cat: Catalog) -> None:
    run_id = cat.create_run()
    cat.start_run(run_id)
    it = cat.add_iteration(run_id, 0)
    conn = cat.store.conn
    with cat.store.lock:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute("UPDATE runs SET status = 'bogus' WHERE id = ?", (run_id,))
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute("UPDATE runs SET finished_at = '2026-01-01T00:00:00.000000Z' WHERE id = ?", (run_id,))
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            conn.execute("INSERT INTO run_iterations (id, owner, run_id, iteration) VALUES ('x', 'tester', ?, 0)",
                         (run_id,))
    assert cat.list_iterations(run_id)[0].id == it


def test_leaderboard_orders_by_best_score_ascending(cat: Catalog) -> None:
    scores = {"mid": 2.0, "none": None, "best": 0.5, "worst": 9.0, "second": 1.0}
    ids = {}
    for name, score in scores.items():
        ids[name] = cat.create_run(name=name)
        cat.start_run(ids[name])
        if score is not None:
            cat.add_iteration(ids[name], 0, best_score=score)
        cat.set_run_status(ids[name], "completed" if name != "worst" else "failed")
    assert [r.name for r in cat.list_runs()] == ["best", "second", "mid", "worst", "none"]
    assert [r.name for r in cat.list_runs(top=2)] == ["best", "second"]
    assert [r.name for r in cat.list_runs(status="failed")] == ["worst"]
    assert [r.name for r in cat.list_runs(status="completed", top=10)] == ["best", "second", "mid", "none"]
    cat.delete_run(ids["best"])
    assert cat.list_runs(top=1)[0].name == "second"
    with pytest.raises(ValidationError):
        cat.list_runs(status="winning")
