"""Records the catalog accepts and returns.

Plain dataclasses so the service layer can build them from scan results and
the TUI can show them without knowing anything about SQL. The bookkeeping
fields every syncable row carries (id, owner, timestamps, rev, deleted) are
keyword-only and filled in by the catalog; callers usually leave them alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

R = TypeVar("R", bound="Row")


@dataclass(kw_only=True)
class Row:
    """Bookkeeping shared by every syncable row.

    `rev` is the server revision this row was last seen at (0: never synced);
    `deleted` rows are tombstones, kept so deletes can propagate.
    """

    id: str | None = None
    owner: str | None = None
    is_public: bool = False
    origin: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    rev: int = 0
    deleted: bool = False

    @classmethod
    def from_row(cls: type[R], row: dict[str, Any]) -> R:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Dataset(Row):
    """One catalogued `.npz` file; `path` is relative to `data_root`.

    `findings` holds counts by severity ({"error": 1, "warning": 0, ...}), and
    `arrays` a short summary per array (name, shape, dtype...), so the list view
    never has to open the file. `tag_count` and `sync_status` ("local": never
    synced, "pending": local change not yet pushed, "synced") are computed when
    listing and ignored when writing.
    """

    path: str
    data_root: str = ""
    filename: str = ""
    kind: str = "generic"
    sha256_16: str | None = None
    size: int | None = None
    mtime_ns: int | None = None
    rows: int | None = None
    n_frequencies: int | None = None
    grid_size: int | None = None
    freq_min: float | None = None
    freq_max: float | None = None
    best_resnorm: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    arrays: list[Any] = field(default_factory=list)
    findings: dict[str, Any] = field(default_factory=dict)
    storage_location: str = "local"
    is_available: bool = True
    circuit_config_id: str | None = None
    session_id: str | None = None
    tag_count: int = 0
    sync_status: str = "local"


# What a scan hands to `Catalog.upsert_dataset`: the same record, without ids.
DatasetRecord = Dataset


@dataclass
class Tag(Row):
    """A label on one row of a dataset (for circuit data: the 1-based resnorm rank)."""

    dataset_id: str
    row_index: int
    label: str
    category: str | None = None
    notes: str | None = None
    quality_score: float | None = None
    is_reference: bool = False
    resnorm: float | None = None
    parameters: dict[str, Any] | None = None
    frequency_index_start: int | None = None
    frequency_index_end: int | None = None
    dataset_path: str | None = None  # computed when listing


@dataclass
class CircuitConfig(Row):
    """A saved circuit simulation setup (reference parameters + grid + frequency range)."""

    name: str
    circuit_parameters: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    grid_size: int = 5
    min_freq: float = 0.1
    max_freq: float = 100000.0
    num_points: int = 100


@dataclass
class UserSession(Row):
    """A working session: which configuration is current, UI settings, running totals."""

    session_name: str
    current_circuit_config_id: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    total_computations: int = 0
    total_models_generated: int = 0
    total_tagged: int = 0
    last_active: str | None = None


@dataclass
class UserProfile(Row):
    """Per-owner defaults for new computations (grid 5, 0.1–100 000 Hz, 100 points)."""

    display_name: str | None = None
    default_grid_size: int = 5
    default_min_freq: float = 0.1
    default_max_freq: float = 100000.0
    default_num_points: int = 100
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run(Row):
    """A compute/optimiser run: pending → running → completed | failed | cancelled.

    `best_score` is a resnorm: lower is better, which is how leaderboards sort.
    """

    status: str = "pending"
    name: str | None = None
    dataset_id: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    best_score: float | None = None
    iterations: int = 0
    samples_evaluated: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    error_message: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class RunIteration(Row):
    """Progress of one iteration of a run; unique on (run_id, iteration)."""

    run_id: str
    iteration: int
    best_score: float | None = None
    rows_done: int | None = None
    elapsed_s: float | None = None


@dataclass(frozen=True)
class Conflict:
    """A concurrent edit found during sync: both versions, and which one won.

    The winner is the version with the later `updated_at` (ties go to the
    server); the loser is never discarded, it stays here until resolved.
    """

    id: str
    table_name: str
    row_id: str
    winner: str  # "local" or "server"
    local_version: dict[str, Any]
    server_version: dict[str, Any]
    detected_at: str
    resolved: bool = False

    @property
    def loser(self) -> dict[str, Any]:
        return self.server_version if self.winner == "local" else self.local_version

    @property
    def kept(self) -> dict[str, Any]:
        return self.local_version if self.winner == "local" else self.server_version


@dataclass
class SyncResult:
    """What one `sync()` did. `errors` holds per-table problems that did not stop it."""

    pushed: int = 0
    pulled: int = 0
    conflicts: int = 0
    errors: list[str] = field(default_factory=list)
    server_revision: int | None = None
    owner: str | None = None
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class DbStatus:
    """What `npztui db status` prints for one backend. `location` never holds a password."""

    backend: str  # "sqlite" or "postgresql"
    location: str
    reachable: bool
    schema_version: int | None = None
    latest_version: int | None = None
    error: str | None = None
    server_version: str | None = None
    user: str | None = None
    bypasses_rls: bool | None = None
    pending_outbox: int | None = None
    last_pulled_revision: int | None = None
    last_sync_at: str | None = None
    last_sync_error: str | None = None

    @property
    def up_to_date(self) -> bool:
        return self.schema_version is not None and self.schema_version == self.latest_version

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["up_to_date"] = self.up_to_date
        return out
