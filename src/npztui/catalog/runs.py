"""Runs (SPEC §8): a compute or optimiser recorded with its status and progress.

Status moves pending → running → completed | failed | cancelled (a pending run
may also fail or be cancelled before it starts); terminal states are final.
The database enforces the status values and the (run, iteration) uniqueness;
the transitions are enforced here, where a clear message can be given.
Scores are resnorms: lower is better, so the leaderboard sorts ascending.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import validate as v
from .base import CatalogBase
from .errors import ValidationError
from .models import Run, RunIteration
from .schema import DATASETS, RUN_ITERATIONS, RUN_TRANSITIONS, RUNS, TERMINAL_STATUSES
from .util import CLOCK


class RunsMixin(CatalogBase):
    """Run methods of `Catalog`."""

    def create_run(self, config: Mapping[str, Any] | None = None, *, name: str | None = None,
                   dataset_id: str | None = None, tags: Iterable[str] | None = None,
                   is_public: bool = False) -> str:
        """Record a new run in status "pending"; returns its id."""
        cfg = dict(v.json_object(config, "config"))
        tag_list = [str(t) for t in v.json_list(tags, "tags")]
        with self.store.write():
            self._live(DATASETS, dataset_id, what="dataset")
            saved = self._save(RUNS, {
                "name": name, "dataset_id": dataset_id, "status": "pending", "config": cfg,
                "best_score": None, "iterations": 0, "samples_evaluated": 0, "started_at": None,
                "finished_at": None, "error_message": None, "tags": tag_list, "is_public": is_public,
            }, existing=None)
        return saved["id"]

    def set_run_status(self, run_id: str, status: str, *, error_message: str | None = None,
                       best_score: float | None = None, samples_evaluated: int | None = None) -> Run:
        """Move a run to `status`, stamping started_at / finished_at.

        Raises ValidationError for an unknown status or a transition the
        lifecycle does not allow (e.g. completed → running).
        """
        status = v.run_status(status)
        with self.store.write():
            old = self._mine(RUNS, run_id, what="run")
            if status not in RUN_TRANSITIONS[old["status"]]:
                raise ValidationError(
                    f"a {old['status']} run cannot become {status}"
                    + (" (terminal states are final)" if old["status"] in TERMINAL_STATUSES else ""),
                    field="status", value=status,
                )
            new = dict(old, status=status)
            now = CLOCK.now()
            if status == "running":
                new["started_at"] = now
            if status in TERMINAL_STATUSES:
                new["finished_at"] = now
            if error_message is not None:
                new["error_message"] = str(error_message)
            if best_score is not None:
                new["best_score"] = v.number(best_score, "best_score")
            if samples_evaluated is not None:
                new["samples_evaluated"] = v.integer(samples_evaluated, "samples_evaluated", minimum=0)
            self._save(RUNS, new, existing=old)
        got = self.get_run(run_id)
        assert got is not None
        return got

    def start_run(self, run_id: str) -> Run:
        return self.set_run_status(run_id, "running")

    def link_run_dataset(self, run_id: str, dataset_id: str | None) -> Run:
        """Link a run to the dataset it produced (a compute's output file, once catalogued)."""
        with self.store.write():
            old = self._mine(RUNS, run_id, what="run")
            self._live(DATASETS, dataset_id, what="dataset")
            if old["dataset_id"] != dataset_id:
                self._save(RUNS, dict(old, dataset_id=dataset_id), existing=old)
        got = self.get_run(run_id)
        assert got is not None
        return got

    def add_iteration(self, run_id: str, iteration: int, *, best_score: float | None = None,
                      rows_done: int | None = None, elapsed_s: float | None = None) -> str:
        """Record one iteration of a running run and fold it into the run's totals.

        `rows_done` is cumulative (rows evaluated so far); the run keeps the
        iteration count, the best (lowest) score and the largest rows_done as
        samples_evaluated. A repeated iteration number raises ValidationError.
        """
        iteration = v.integer(iteration, "iteration", minimum=0, required=True)  # type: ignore[assignment]
        score = v.number(best_score, "best_score")
        rows = v.integer(rows_done, "rows_done", minimum=0)
        elapsed = v.number(elapsed_s, "elapsed_s")
        if elapsed is not None and elapsed < 0:
            raise ValidationError(f"elapsed_s must be ≥ 0, got {elapsed_s!r}", field="elapsed_s")
        with self.store.write():
            run = self._mine(RUNS, run_id, what="run")
            if run["status"] != "running":
                raise ValidationError(f"iterations can only be added to a running run (this one is {run['status']})",
                                      field="status")
            dup = self.store.select(RUN_ITERATIONS, "run_id = ? AND iteration = ?", (run_id, iteration))
            if dup:
                raise ValidationError(f"run {run_id} already has iteration {iteration}", field="iteration",
                                      value=iteration)
            saved = self._save(RUN_ITERATIONS, {
                "run_id": run_id, "iteration": iteration, "best_score": score, "rows_done": rows,
                "elapsed_s": elapsed, "is_public": run["is_public"],
            }, existing=None)
            new = dict(run, iterations=run["iterations"] + 1)
            if score is not None and (run["best_score"] is None or score < run["best_score"]):
                new["best_score"] = score
            if rows is not None and rows > run["samples_evaluated"]:
                new["samples_evaluated"] = rows
            self._save(RUNS, new, existing=run)
        return saved["id"]

    def get_run(self, run_id: str) -> Run | None:
        row = self.store.get(RUNS, run_id)
        return Run.from_row(row) if row and not row["deleted"] else None

    def list_runs(self, status: str | None = None, top: int | None = None, *,
                  owner: str | None = None, dataset_id: str | None = None) -> list[Run]:
        """The leaderboard: best (lowest) score first, runs without a score last, then newest."""
        where, params = ["deleted = 0"], []
        if status is not None:
            where.append("status = ?")
            params.append(v.run_status(status))
        if owner is not None:
            where.append("owner = ?")
            params.append(owner)
        if dataset_id is not None:
            where.append("dataset_id = ?")
            params.append(dataset_id)
        limit = -1 if top is None else v.integer(top, "top", minimum=0)
        params.append(limit)
        rows = self.store.select(RUNS, " AND ".join(where), params,
                                 suffix="ORDER BY best_score IS NULL, best_score ASC, created_at DESC, id LIMIT ?")
        return [Run.from_row(r) for r in rows]

    def list_iterations(self, run_id: str) -> list[RunIteration]:
        rows = self.store.select(RUN_ITERATIONS, "run_id = ? AND deleted = 0", (run_id,), suffix="ORDER BY iteration")
        return [RunIteration.from_row(r) for r in rows]

    def delete_run(self, run_id: str) -> None:
        """Tombstone a run and its iterations."""
        with self.store.write():
            old = self._mine(RUNS, run_id, what="run", allow_deleted=True)
            if old["deleted"]:
                return
            self._save(RUNS, dict(old, deleted=True), existing=old)
            for it in self.store.select(RUN_ITERATIONS, "run_id = ? AND deleted = 0", (run_id,)):
                self._save(RUN_ITERATIONS, dict(it, deleted=True), existing=it)
