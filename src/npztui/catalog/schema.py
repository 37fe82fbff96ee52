"""The logical schema, described once in Python for both dialects.

The DDL lives in the per-dialect migration files; this module only lists what
generic code needs to move rows around without hand-written SQL per table:
column order, which columns hold JSON / booleans / timestamps / UUIDs, the
natural (unique) key and the parent references. Sync walks `SYNC_ORDER` so a
parent always reaches the server before the rows that reference it.

Identifiers built from these tuples are constants of this module, never user
input, so composing them into SQL text is safe; values are always parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

HEAD = ("id", "owner")
TAIL = ("is_public", "origin", "created_at", "updated_at", "rev", "deleted")
# Columns that describe the row's life rather than its content.
META = frozenset({"created_at", "updated_at", "rev", "origin"})

JSON_COLUMNS = frozenset(
    {"settings", "circuit_parameters", "metadata", "arrays", "findings", "parameters", "config", "tags"}
)
BOOL_COLUMNS = frozenset({"is_public", "deleted", "is_available", "is_reference"})
TIME_COLUMNS = frozenset({"created_at", "updated_at", "last_active", "started_at", "finished_at"})
UUID_COLUMNS = frozenset(
    {"id", "current_circuit_config_id", "circuit_config_id", "session_id", "dataset_id", "run_id"}
)


@dataclass(frozen=True)
class Table:
    """One syncable table: columns in storage order plus the keys sync cares about."""

    name: str
    body: tuple[str, ...]
    natural_key: tuple[str, ...] = ()
    parents: tuple[tuple[str, str], ...] = ()  # (column, parent table)

    @property
    def columns(self) -> tuple[str, ...]:
        return HEAD + self.body + TAIL

    @property
    def content_columns(self) -> tuple[str, ...]:
        """Columns whose change is a real edit (used to skip no-op writes)."""
        return tuple(c for c in self.columns if c not in META)


USER_PROFILES = Table(
    "user_profiles",
    ("display_name", "default_grid_size", "default_min_freq", "default_max_freq",
     "default_num_points", "settings"),
    natural_key=("owner",),
)
CIRCUIT_CONFIGURATIONS = Table(
    "circuit_configurations",
    ("name", "description", "circuit_parameters", "grid_size", "min_freq", "max_freq", "num_points"),
)
USER_SESSIONS = Table(
    "user_sessions",
    ("session_name", "current_circuit_config_id", "settings", "total_computations",
     "total_models_generated", "total_tagged", "last_active"),
    parents=(("current_circuit_config_id", "circuit_configurations"),),
)
DATASETS = Table(
    "datasets",
    ("data_root", "path", "filename", "kind", "sha256_16", "size", "mtime_ns", "rows",
     "n_frequencies", "grid_size", "freq_min", "freq_max", "best_resnorm", "metadata",
     "arrays", "findings", "storage_location", "is_available", "circuit_config_id", "session_id"),
    natural_key=("owner", "path"),
    parents=(("circuit_config_id", "circuit_configurations"), ("session_id", "user_sessions")),
)
TAGS = Table(
    "tags",
    ("dataset_id", "row_index", "label", "category", "notes", "quality_score", "is_reference",
     "resnorm", "parameters", "frequency_index_start", "frequency_index_end"),
    natural_key=("dataset_id", "owner", "row_index"),
    parents=(("dataset_id", "datasets"),),
)
RUNS = Table(
    "runs",
    ("name", "dataset_id", "status", "config", "best_score", "iterations", "samples_evaluated",
     "started_at", "finished_at", "error_message", "tags"),
    parents=(("dataset_id", "datasets"),),
)
RUN_ITERATIONS = Table(
    "run_iterations",
    ("run_id", "iteration", "best_score", "rows_done", "elapsed_s"),
    natural_key=("run_id", "iteration"),
    parents=(("run_id", "runs"),),
)

# Parents before children: the order rows are pushed and pulled in.
SYNC_ORDER: tuple[Table, ...] = (
    USER_PROFILES, CIRCUIT_CONFIGURATIONS, USER_SESSIONS, DATASETS, TAGS, RUNS, RUN_ITERATIONS,
)
TABLES: dict[str, Table] = {t.name: t for t in SYNC_ORDER}


def children_of(table: str) -> list[tuple[Table, str]]:
    """(child table, column) pairs that reference `table` — used to re-point ids."""
    return [(t, col) for t in SYNC_ORDER for col, parent in t.parents if parent == table]


RUN_STATUSES = ("pending", "running", "completed", "failed", "cancelled")
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
# Allowed status changes; a terminal run never changes status again.
RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"running", "failed", "cancelled"}),
    "running": frozenset({"completed", "failed", "cancelled"}),
    "completed": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}
STORAGE_LOCATIONS = ("local", "cloud", "hybrid")
