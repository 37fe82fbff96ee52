"""Runs (SPEC §8): a compute is recorded with its lifecycle, iterations and linked dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from npztui import cli
from npztui.service import ComputeConfig, Service, ValidationError


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def small(grid: int = 4, **kw) -> ComputeConfig:
    return ComputeConfig(grid_size=grid, n_frequencies=12, spectrum="none", **kw)


def test_completed_run_has_one_iteration_per_chunk_and_links_the_dataset(tmp_path):
    svc = Service()
    seen = []
    result, run = svc.compute(small(), tmp_path, chunk_rows=100, progress=seen.append)
    chunks = [p for p in seen if p.phase == "resnorm"]
    assert run is not None and run.status == "completed"
    assert run.iterations == len(chunks) > 1
    assert run.best_score == pytest.approx(result.best_resnorm)
    assert run.samples_evaluated == result.n_rows == 4**5
    assert run.started_at and run.finished_at and run.started_at <= run.finished_at
    got, iterations, dataset = svc.get_run(run.id[:8])
    assert [it.iteration for it in iterations] == list(range(1, len(chunks) + 1))
    assert [it.rows_done for it in iterations] == [p.rows_done for p in chunks]
    best = [it.best_score for it in iterations]
    assert best == sorted(best, reverse=True)  # best so far only improves
    assert dataset is not None and Path(dataset.data_root, dataset.path) == result.path.resolve()
    assert dataset.kind == "circuit" and dataset.best_resnorm == pytest.approx(result.best_resnorm, rel=1e-6)


def test_failure_records_the_error_and_writes_no_file(tmp_path):
    svc = Service()
    calls = []

    def explode(p):
        calls.append(p)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        svc.compute(small(), tmp_path, chunk_rows=100, progress=explode)
    (run,) = svc.list_runs()
    assert run.status == "failed" and "disk on fire" in run.error_message
    assert run.finished_at is not None and run.dataset_id is None
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_cancels_the_run(tmp_path):
    svc = Service()

    def interrupt(p):
        if p.phase == "parameters":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        svc.compute(small(), tmp_path, chunk_rows=100, progress=interrupt)
    (run,) = svc.list_runs(status="cancelled")
    assert run.iterations > 0 and run.samples_evaluated == 4**5
    assert list(tmp_path.iterdir()) == []


def test_terminal_states_are_final_and_iterations_unique(tmp_path):
    svc = Service()
    _, run = svc.compute(small(3), tmp_path)
    with pytest.raises(ValidationError):
        svc.catalog.set_run_status(run.id, "running")
    rid = svc.catalog.create_run({"kind": "manual"})
    svc.catalog.start_run(rid)
    svc.catalog.add_iteration(rid, 1, best_score=3.0)
    with pytest.raises(ValidationError):
        svc.catalog.add_iteration(rid, 1, best_score=2.0)


def test_leaderboard_orders_by_best_score_and_filters_by_status(tmp_path, capsys):
    svc = Service()
    near = {"Rsh": 5005, "Ra": 5005, "Ca": 25.05e-6, "Rb": 5005, "Cb": 25.05e-6}
    far = {"Rsh": 50, "Ra": 20, "Ca": 1e-7, "Rb": 20, "Cb": 1e-7}
    _, worse = svc.compute(small(3, reference=far), tmp_path / "a")
    _, better = svc.compute(small(4, reference=near), tmp_path / "b")
    rid = svc.catalog.create_run({"kind": "manual"}, name="never started")
    assert [r.id for r in svc.list_runs()][:2] == sorted([worse.id, better.id],
                                                          key=lambda i: svc.get_run(i)[0].best_score)
    assert svc.list_runs()[-1].id == rid  # no score: last
    assert [r.id for r in svc.list_runs(status="pending")] == [rid]

    assert cli.main(["runs", "list", "--top", "1", "--json"]) == 0
    top = json_lines(capsys.readouterr().out)
    assert len(top) == 1 and top[0]["best_score"] == min(worse.best_score, better.best_score)
    assert cli.main(["runs", "show", better.id[:8], "--json"]) == 0
    shown = json_lines(capsys.readouterr().out)[0]
    assert shown["status"] == "completed" and shown["iterations_table"]
    assert shown["dataset"]["path"].endswith(".npz")


def test_compute_cli_reports_the_run_and_no_run_skips_it(tmp_path, capsys):
    assert cli.main(["compute", "--grid", "3", "--points", "10", "--spectrum", "none", "--out", str(tmp_path / "x"),
                     "--json"]) == 0
    out = json_lines(capsys.readouterr().out)[0]
    assert out["run_id"]
    assert cli.main(["compute", "--grid", "3", "--points", "11", "--spectrum", "none", "--out",
                     str(tmp_path / "y"), "--no-run", "--json"]) == 0
    assert json_lines(capsys.readouterr().out)[0]["run_id"] is None
    assert len(Service().list_runs()) == 1


@pytest.mark.postgres
def test_runs_sync_to_postgres_with_their_iterations(tmp_path, pg_catalog_db, pg_roles, monkeypatch):
    monkeypatch.setenv("NPZTUI_DATABASE_URL", pg_catalog_db.url_as(pg_roles.bob))
    svc = Service()
    _, run = svc.compute(small(), tmp_path, chunk_rows=200)
    assert svc.sync().ok
    monkeypatch.setenv("NPZTUI_CATALOG", str(tmp_path / "other.sqlite3"))
    other = Service()
    other.sync()
    pulled, iterations, dataset = other.get_run(run.id)
    assert pulled.status == "completed" and pulled.best_score == pytest.approx(run.best_score)
    assert len(iterations) == run.iterations and dataset is not None
