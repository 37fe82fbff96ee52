"""The one facade the CLI and the TUI call.

Front ends never touch the format layer, the circuit domain or the catalog
directly: they ask a `Service`, which returns plain reports and records. That
keeps the rules (what a check means, which files a directory expands to, which
data root a file belongs to, how a compute becomes a run) in one place, and
lets the TUI call exactly what the CLI calls, from its worker threads.

Every method is synchronous and safe to call from a worker thread; file
methods open their own reader, and the catalog is thread-safe.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import catalog as _catalog
from .catalog import (
    Catalog,
    CatalogError,
    CircuitConfig,
    Conflict,
    Dataset,
    DbStatus,
    NotFound,
    Run,
    RunIteration,
    ServerUnavailable,
    SyncResult,
    Tag,
    UserSession,
    ValidationError,
    mask_url,
)
from .circuit import compute as _compute
from .circuit import model as _model
from .circuit import plot as _plot
from .circuit import ranking as _ranking
from .circuit import spectrum as _spectrum
from .circuit import units as _units
from .config import Settings, load_settings
from .npz import checks, kinds
from .npz import tools as _tools
from .npz.errors import NpzError, error_from_os
from .npz.findings import Finding
from .npz.metadata import MetadataResult, discover, resolve
from .npz.reader import Limits, NpzInfo, NpzReader, fingerprint
from .npz.writer import TEMP_PREFIX

# --------------------------------------------------------------------------
# What front ends need from the layers below, re-exported so they import only this module.

CheckOptions = checks.CheckOptions
CHECK_MODES = checks.MODES
parse_expect_args = checks.parse_expect_args
load_expect_file = checks.load_expect_file

ToolError = _tools.ToolError  # refused as asked, nothing written (exit 2)
FindingsError = _tools.FindingsError  # refused because the data disagree (exit 1)
MetaEdit = _tools.MetaEdit
SplitResult = _tools.SplitResult
MergeResult = _tools.MergeResult
Lineage = _tools.Lineage
MERGE_STRATEGIES = _tools.STRATEGIES
SPLIT_AXES = _tools.SPLIT_AXES
describe_transformation = _tools.describe_transformation
show_value = _tools.show_value

ComputeConfig = _compute.ComputeConfig
ComputeProgress = _compute.ComputeProgress
ComputeResult = _compute.ComputeResult
SpectrumMode = _compute.SpectrumMode
COMPUTE_PHASES = _compute.PHASES
output_filename = _compute.output_filename
NotCircuitError = _ranking.NotCircuitError
RankingResult = _ranking.RankingResult
RankedRow = _ranking.RankedRow
RowSpectrum = _spectrum.RowSpectrum
PlotData = _plot.PlotData
PLOT_KINDS = _plot.PLOT_KINDS
PARAM_NAMES = _model.PARAM_NAMES
PARAM_UNITS = _model.PARAM_UNITS
DEFAULT_REFERENCE = _model.DEFAULT_REFERENCE
format_si = _units.format_si
format_parameter = _units.format_parameter
format_parameters = _units.format_parameters
parse_reference = _units.parse_reference
parse_quantity = _units.parse_quantity

__all__ = [
    "CHECK_MODES", "COMPUTE_PHASES", "CatalogError", "CatalogStatus", "CheckOptions", "CircuitConfig",
    "ComputeConfig", "ComputeProgress", "ComputeResult", "Conflict", "DEFAULT_REFERENCE", "Dataset", "DbStatus",
    "FileReport", "Finding", "FindingsError", "Lineage", "MERGE_STRATEGIES", "MergeResult", "MetaEdit",
    "NotCircuitError", "NotFound", "NpzError", "PARAM_NAMES", "PARAM_UNITS", "PLOT_KINDS", "PlotData",
    "RankedRow", "RankingResult", "RowSpectrum", "Run", "RunIteration", "SPLIT_AXES", "ScanResult",
    "ServerUnavailable", "Service", "SpectrumMode", "SplitResult", "SyncResult", "Tag", "ToolError",
    "UserSession", "ValidationError", "ArrayPreview", "describe_transformation", "expand_paths",
    "format_parameter", "format_parameters", "format_si", "load_expect_file", "mask_url", "output_filename",
    "parse_expect_args", "parse_quantity", "parse_reference", "rule_explanation", "show_value",
]

# Metadata stored in the catalog is capped: the file stays the source of truth.
MAX_CATALOG_METADATA_BYTES = 256 << 10
DEFAULT_DATA_ROOT = Path("data/npz")
MAX_CATALOG_ARRAYS = 200
SCAN_BATCH = 200
PREVIEW_BYTES = 4 << 20
ONLINE_TTL_S = 15.0


def rule_explanation(code: str) -> str:
    """What a finding's rule means (shown by the TUI's Findings pane)."""
    return checks.rule_explanation(code)


def os_error(path: str | os.PathLike, exc: OSError) -> NpzError:
    """The typed error (PERMISSION, NOT_FOUND, ...) for an OSError met while writing."""
    return error_from_os(path, exc)


# --------------------------------------------------------------------------
# reports


@dataclass
class FileReport:
    """Everything known about one file after inspection (and, optionally, checks)."""

    path: Path
    info: NpzInfo | None = None
    kind: str | None = None
    meta: MetadataResult | None = None
    findings: list[Finding] = field(default_factory=list)
    error: NpzError | None = None
    ok: bool | None = None

    @property
    def rows(self) -> int | None:
        return kinds.row_count(self.info, self.kind) if self.info and self.kind else None

    def severity_counts(self) -> dict[str, int]:
        counts = {"error": 0, "warning": 0, "info": 0}
        for f in self.findings:
            counts[f.severity] = counts.get(f.severity, 0) + 1
        return counts

    def error_json(self) -> dict[str, Any]:
        assert self.error is not None
        return {"path": str(self.path), "error": self.error.to_json()}

    def info_json(self) -> dict[str, Any]:
        if self.error is not None:
            return self.error_json()
        assert self.info is not None and self.meta is not None
        return {
            "path": str(self.path),
            "kind": self.kind,
            "size": self.info.size,
            "mtime_ns": self.info.mtime_ns,
            "rows": self.rows,
            "arrays": [a.to_json() for a in self.info.arrays],
            "other_members": list(self.info.other_members),
            "metadata": self.meta.data,
            "metadata_source": self.meta.to_json(),
            "metadata_findings": [f.to_json() for f in self.meta.findings],
        }

    def check_json(self) -> dict[str, Any]:
        if self.error is not None:
            return self.error_json()
        return {
            "path": str(self.path),
            "kind": self.kind,
            "ok": self.ok,
            "findings": [f.to_json() for f in self.findings],
            "metadata_source": self.meta.to_json() if self.meta else None,
        }


@dataclass
class ScanResult:
    """What one scan of a data root did."""

    root: Path
    files: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    unavailable: int = 0
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (path, code, message)
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "root": str(self.root), "files": self.files, "added": self.added, "updated": self.updated,
            "unchanged": self.unchanged, "unavailable": self.unavailable,
            "errors": [{"path": p, "code": c, "message": m} for p, c, m in self.errors],
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass(frozen=True)
class CatalogStatus:
    """What the status bar shows. `location` never holds a password."""

    backend: str  # "sqlite" (local only) or "postgresql" (a server is configured)
    location: str  # SQLite path, or the masked server URL
    catalog_path: str
    server: str | None  # masked URL
    server_configured: bool
    online: bool | None  # None: no server configured
    pending: int
    conflicts: int
    data_root: str | None
    last_sync_at: str | None = None


@dataclass(frozen=True)
class ArrayPreview:
    """A bounded look at one array: stats over at most `PREVIEW_BYTES` of it."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    values: tuple[Any, ...] = ()
    rows_read: int | None = None
    error: str | None = None


def walk_npz(root: str | os.PathLike) -> list[tuple[Path, os.stat_result]]:
    """Every `*.npz` under `root` with its stat, sorted; one `scandir` pass (temp files skipped)."""
    found: list[tuple[Path, os.stat_result]] = []
    stack = [os.fspath(root)]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):  # no symlink loops
                    stack.append(e.path)
                elif e.name.endswith(".npz") and not e.name.startswith(TEMP_PREFIX) and e.is_file():
                    found.append((Path(e.path), e.stat()))
            except OSError:
                continue
    found.sort(key=lambda item: item[0])
    return found


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given; a directory means every `*.npz` under it (sorted, temp files skipped)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(path for path, _ in walk_npz(p))
        else:
            out.append(p)
    return out


def _within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def _finite(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class Service:
    """Facade over the format layer, the circuit domain and the catalog."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self.limits = Limits(
            max_read_bytes=self.settings.max_read_bytes,
            max_metadata_bytes=self.settings.max_metadata_bytes,
        )
        self._catalog: Catalog | None = None
        self._catalog_lock = threading.Lock()
        self._online: tuple[float, bool] | None = None

    def close(self) -> None:
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None

    # ================================================================== files
    def open(self, path: str | os.PathLike) -> NpzReader:
        return NpzReader(path, self.limits)

    def inspect(self, path: str | os.PathLike) -> FileReport:
        """Header-only report; a typed error is captured, never raised."""
        report = FileReport(Path(path))
        try:
            with self.open(path) as r:
                self._fill(report, r)
        except NpzError as exc:
            report.error = exc
        return report

    @staticmethod
    def _fill(report: FileReport, reader: NpzReader) -> None:
        report.info = reader.info
        report.kind = kinds.detect_kind(reader.info)
        report.meta = discover(reader)

    def check(self, paths: Sequence[str | os.PathLike], options: checks.CheckOptions | None = None, *,
              use_catalog: bool = True) -> list[FileReport]:
        """Every applicable rule on each file; files given together form a set for `consistent`.

        With `use_catalog`, a file linked to a circuit configuration in an
        existing catalog is also compared with it (CONFIG_MISMATCH).
        """
        options = options or checks.CheckOptions()
        reports: list[FileReport] = []
        for path in paths:
            report = FileReport(Path(path))
            try:
                with self.open(path) as r:
                    self._fill(report, r)
                    report.findings = checks.intrinsic(r, report.meta, report.kind, deep=options.deep)
            except NpzError as exc:
                report.error = exc
                report.findings = []
            if report.error is None and options.expect:
                report.findings += checks.compare(report.meta.data, options.expect, rel_tol=options.rel_tol)
            if report.error is None and use_catalog:
                report.findings += self._config_findings(report, options.rel_tol)
            reports.append(report)
        if options.consistent:
            readable = [r for r in reports if r.error is None]
            per_file = checks.consistency(
                [(str(r.path), r.meta.data) for r in readable], options.consistent, rel_tol=options.rel_tol
            )
            for r in readable:
                r.findings += per_file[str(r.path)]
        for r in reports:
            r.ok = r.error is None and checks.passes(r.findings, options.mode)
        return reports

    def _config_findings(self, report: FileReport, rel_tol: float) -> list[Finding]:
        """CONFIG_MISMATCH against the configuration the dataset is linked to (if any)."""
        if not self.settings.catalog.exists():
            return []
        try:
            dataset = self.find_dataset(report.path)
            if dataset is None or not dataset.circuit_config_id:
                return []
            config = self.catalog.get_config(dataset.circuit_config_id)
        except CatalogError:  # a broken catalog must not stop file checks; `db status` reports it
            return []
        if config is None:
            return []
        expected: dict[str, Any] = {
            "grid_size": config.grid_size,
            "freq_min": config.min_freq,
            "freq_max": config.max_freq,
            "n_frequencies": config.num_points,
        }
        for name, value in (config.circuit_parameters or {}).items():
            expected[f"circuit.reference_parameters.{name}"] = value
        data = report.meta.data if report.meta else None
        present = {k: v for k, v in expected.items() if resolve(data, k) is not None}
        # Frequencies are stored as float32 by the producers: compare like CIRC_FREQS does.
        return checks.compare(data, present, rel_tol=max(rel_tol, 1e-6), code="CONFIG_MISMATCH",
                              against=f"configuration {config.name!r} has")

    # ================================================================== previews
    def preview(self, path: str | os.PathLike, *, max_bytes: int = PREVIEW_BYTES) -> list[ArrayPreview]:
        """First rows of every array with min/max/mean over what was read (bounded)."""
        out: list[ArrayPreview] = []
        with self.open(path) as r:
            for a in r.info.arrays:
                shape, dtype = tuple(a.shape), a.dtype.str
                if a.is_object:
                    out.append(ArrayPreview(a.name, shape, dtype, error="Python objects: not loaded"))
                    continue
                try:
                    if not a.shape:
                        arr = r.read(a.name, max_bytes=max_bytes)
                        rows = None
                    else:
                        rows = max(1, min(a.shape[0], max_bytes // max(a.row_bytes, 1)))
                        arr = r.read(a.name, rows=slice(0, rows), max_bytes=max(max_bytes, a.row_bytes))
                except NpzError as exc:
                    out.append(ArrayPreview(a.name, shape, dtype, error=exc.message))
                    continue
                out.append(self._stats(a.name, shape, dtype, arr, rows))
        return out

    @staticmethod
    def _stats(name: str, shape: tuple[int, ...], dtype: str, arr: np.ndarray, rows: int | None) -> ArrayPreview:
        flat = arr.reshape(-1)
        values = tuple(v.item() if hasattr(v, "item") else v for v in flat[:8])
        if arr.dtype.kind in "biuf" and flat.size and arr.dtype.names is None:
            data = flat.astype(np.float64)
            finite = data[np.isfinite(data)]
            if finite.size:
                return ArrayPreview(name, shape, dtype, float(finite.min()), float(finite.max()),
                                    float(finite.mean()), values, rows)
        if arr.dtype.kind == "c" and flat.size:
            mag = np.abs(flat)
            finite = mag[np.isfinite(mag)]
            if finite.size:
                return ArrayPreview(name, shape, dtype, float(finite.min()), float(finite.max()),
                                    float(finite.mean()), values, rows)
        return ArrayPreview(name, shape, dtype, values=values, rows_read=rows)

    def image(self, path: str | os.PathLike, mode: str = "image", index: int = 0) -> tuple[np.ndarray, str]:
        """A 2-d float image to draw as a heatmap, and a caption saying what it is.

        `diffraction`: pattern `index` (first channel of 4-d data); `probe`:
        |probeGuess|; `image`: the first 2-d slice of the first numeric array
        with at least two dimensions. Reads one pattern, never the whole stack.
        """
        with self.open(path) as r:
            info = r.info
            if mode == "probe" and "probeGuess" in info:
                img = np.abs(r.read("probeGuess"))
                return self._as_image(img), f"|probeGuess| {img.shape[-2]}×{img.shape[-1]}"
            if mode in ("diffraction", "probe"):
                name = kinds.diffraction_name(info)
                if name is not None:
                    a = r.array_info(name)
                    i = min(max(index, 0), a.shape[0] - 1)
                    img = r.read(name, rows=slice(i, i + 1))[0]
                    if img.ndim == 3:
                        img = img[..., 0]
                    return self._as_image(img), f"{name}[{i}] of {a.shape[0]}"
            for a in info.arrays:
                if len(a.shape) >= 2 and not a.is_object and a.dtype.kind in "biufc" and a.dtype.names is None:
                    first = r.read(a.name, rows=slice(0, 1)) if len(a.shape) > 2 else r.read(a.name)
                    img = first.reshape(first.shape[-2:]) if first.ndim > 2 else first
                    if img.dtype.kind == "c":
                        img = np.abs(img)
                    label = a.name + ("[0" + ", 0" * (len(a.shape) - 3) + "]" if len(a.shape) > 2 else "")
                    return self._as_image(img), f"{label} {img.shape[0]}×{img.shape[1]}"
        raise ToolError("no 2-d numeric array to draw in this file")

    @staticmethod
    def _as_image(img: np.ndarray) -> np.ndarray:
        out = np.asarray(img, dtype=np.float64)
        return np.where(np.isfinite(out), out, np.nan)

    # ================================================================== circuit
    @staticmethod
    def circuit_parameter_names() -> tuple[str, ...]:
        return tuple(PARAM_NAMES)

    @staticmethod
    def format_parameter(name: str, value: float) -> str:
        return _units.format_parameter(name, value)

    def best(self, path: str | os.PathLike, n: int = 10) -> RankingResult:
        """Top-N rows by resnorm (partial sort; sorted or not on disk)."""
        with self.open(path) as r:
            return _ranking.best(r, n)

    def search(self, path: str | os.PathLike, max_resnorm: float, limit: int = 100) -> RankingResult:
        with self.open(path) as r:
            return _ranking.search(r, max_resnorm, limit)

    def row_spectrum(self, path: str | os.PathLike, rank: int, *,
                     reference: Mapping[str, float] | None = None) -> RowSpectrum:
        """A row's spectrum recomputed from its parameters (and checked against a stored one)."""
        with self.open(path) as r:
            return _spectrum.row_spectrum(r, rank, reference=dict(reference) if reference else None)

    def spectrum_plot(self, path: str | os.PathLike, ranks: Sequence[int], kind: str = "nyquist") -> PlotData:
        """Nyquist or Bode series for several ranks of one file, the reference overlaid."""
        curves, ref = [], None
        freqs = None
        with self.open(path) as r:
            for rank in ranks:
                rs = _spectrum.row_spectrum(r, rank, compare=False)
                curves.append(_plot.Curve(f"rank {rs.rank}", rs.spectrum))
                freqs = rs.frequencies
                ref = ref or _reference_curve(rs)
        if freqs is None:
            return PlotData(kind)
        return _plot.plot_data(kind, freqs, curves, ref)

    @staticmethod
    def render_spectrum(rs: RowSpectrum, kind: str, width: int = 80, height: int = 24, *,
                        color: bool = True) -> str:
        """The CLI's terminal plot of one row with its reference (plotext text)."""
        row = _plot.Curve(f"rank {rs.rank}", rs.spectrum)
        data = _plot.plot_data(kind, rs.frequencies, [row], _reference_curve(rs))
        return _plot.render(data, width, height, color=color)

    def default_compute_dir(self) -> Path:
        """`<data root>/user_generated` (data root from settings, else `data/npz`)."""
        return Path(self.settings.data_root or DEFAULT_DATA_ROOT) / "user_generated"

    def compute(
        self,
        config: ComputeConfig,
        out_dir: str | os.PathLike | None = None,
        *,
        overwrite: bool = False,
        chunk_rows: int | None = None,
        progress: Callable[[ComputeProgress], None] | None = None,
        record_run: bool = True,
        run_name: str | None = None,
        script: str = "npztui compute",
    ) -> tuple[ComputeResult, Run | None]:
        """Compute a grid file atomically and record it as a run (SPEC §8).

        The run goes pending → running (one iteration row per resnorm chunk:
        best score so far, rows done, elapsed) → completed with the output
        dataset linked, failed with the error message, or cancelled on Ctrl-C.
        The file is the user's result: if the catalog fails mid-compute, the
        compute goes on and the run keeps what was recorded.
        """
        out = Path(out_dir) if out_dir is not None else self.default_compute_dir()
        run_id: str | None = None
        cat: Catalog | None = None
        if record_run:
            cat = self.catalog
            run_id = cat.create_run(self._run_config(config, out), name=run_name or f"grid {config.grid_size}")
            cat.start_run(run_id)
        recorder = _RunRecorder(cat, run_id)

        def on_progress(p: ComputeProgress) -> None:
            recorder(p)
            if progress is not None:
                progress(p)

        try:
            result = _compute.compute_grid(
                config, out, overwrite=overwrite, chunk_rows=chunk_rows or _compute.DEFAULT_CHUNK_ROWS,
                progress=on_progress, script=script,
            )
        except KeyboardInterrupt:
            recorder.finish("cancelled", error="interrupted (Ctrl-C); no file written")
            raise
        except BaseException as exc:
            recorder.finish("failed", error=f"{exc.__class__.__name__}: {exc}")
            raise
        run = None
        if cat is not None and run_id is not None:
            dataset = self.register_file(result.path)
            run = recorder.finish(
                "completed", best=result.best_resnorm, samples=result.n_rows,
                dataset_id=dataset.id if dataset else None,
            )
        return result, run

    @staticmethod
    def _run_config(config: ComputeConfig, out: Path) -> dict[str, Any]:
        return {
            "kind": "grid",
            "grid_size": config.grid_size,
            "freq_min": config.freq_min,
            "freq_max": config.freq_max,
            "n_frequencies": config.n_frequencies,
            "reference": dict(config.reference),
            "spectrum": str(SpectrumMode.parse(config.spectrum)),
            "compress": config.compress,
            "out_dir": str(out),
        }

    # ================================================================== tools
    def meta_set(self, path: str | os.PathLike, updates: dict[str, Any], *, dry_run: bool = False) -> MetaEdit:
        return _tools.set_metadata(path, updates, dry_run=dry_run, limits=self.limits)

    def meta_migrate(self, path: str | os.PathLike, *, updates: dict[str, Any] | None = None, estimate: bool = False,
                     drop_legacy: bool = False, dry_run: bool = False) -> MetaEdit:
        return _tools.migrate(path, updates=updates, estimate_values=estimate, drop_legacy=drop_legacy,
                              dry_run=dry_run, limits=self.limits)

    def split(self, path: str | os.PathLike, *, fraction: float = 0.8, axis: str | None = None,
              out_dir: str | os.PathLike | None = None, force: bool = False) -> SplitResult:
        return _tools.split(path, fraction=fraction, axis=axis, out_dir=out_dir, force=force, limits=self.limits)

    def merge(self, paths: Sequence[str | os.PathLike], output: str | os.PathLike, *,
              strategy: str = "preserve_first", force: bool = False) -> MergeResult:
        return _tools.merge(paths, output, strategy=strategy, force=force, limits=self.limits)

    def lineage(self, path: str | os.PathLike) -> Lineage:
        return _tools.lineage(path, limits=self.limits)

    @staticmethod
    def parse_set_args(items: Sequence[str]) -> dict[str, Any]:
        """`K=V` assignments for `meta set` / `meta migrate --set` (values parsed like `--expect`)."""
        return checks.parse_expect_args(items)

    # ================================================================== catalog
    @property
    def catalog(self) -> Catalog:
        """The local SQLite catalog, opened (and created/migrated) on first use."""
        if self._catalog is None:
            with self._catalog_lock:
                if self._catalog is None:
                    self._catalog = _catalog.open_catalog(self.settings.catalog, owner=self.settings.owner)
        return self._catalog

    # -- datasets ------------------------------------------------------------
    def _my_datasets(self) -> dict[str, Dataset]:
        """{path: dataset} of my live datasets (one query, for root resolution and collisions)."""
        cat = self.catalog
        return {d.path: d for d in cat.list_datasets(owner=cat.owner, limit=None)}

    def _resolve_root(self, target: Path, index: Mapping[str, Dataset] | None) -> Path:
        """The data root `target` is catalogued under.

        Paths are stored relative to a data root so a team sees one dataset for
        one file layout. The configured `data_root` wins when it contains the
        target; else a root already known to the catalog that contains it
        (so scanning a sub-directory does not duplicate records); else the
        default data root (`data/npz` under the working directory, where `make run`
        and `compute` look) when it contains the target; else the target
        directory itself. Among known roots the broadest wins, so records
        converge on one project root.
        """
        target = target.resolve()
        configured = Path(self.settings.data_root).resolve() if self.settings.data_root else None
        if configured is not None and _within(target, configured):
            return configured
        roots = {Path(d.data_root) for d in (index or {}).values() if d.data_root}
        containing = [r for r in roots if _within(target, r)]
        if containing:
            return min(containing, key=lambda r: len(r.parts))
        default = DEFAULT_DATA_ROOT.resolve()
        if _within(target, default):
            return default
        return target if target.is_dir() else target.parent

    def scan(self, root: str | os.PathLike, *, progress: Callable[[int, int, Path], None] | None = None,
             files: Sequence[Path] | None = None) -> ScanResult:
        """Register new and changed `*.npz` files under `root`; unchanged ones (size, mtime_ns) are skipped.

        Files that vanished are marked unavailable, never deleted (their tags
        stay). An unreadable file is still registered, with its typed error in
        the findings summary, so the list shows it. `files` limits the scan to
        those paths (no unavailability marking then).
        """
        started = time.monotonic()
        root_path = Path(root).resolve()
        if not root_path.exists():
            raise NotFound(f"{root}: no such directory")
        cat = self.catalog
        index: dict[str, Dataset] | None = None
        by_file: dict[str, Dataset] | None = None
        base = self._resolve_root(root_path, None)
        state = cat.file_state(base)
        if not state:  # maybe a sub-directory of a root the catalog already knows
            index = self._my_datasets()
            base = self._resolve_root(root_path, index)
            state = cat.file_state(base)
        if files is not None:
            listed: list[tuple[Path, os.stat_result | None]] = [(Path(f).resolve(), None) for f in files]
        else:  # paths under the resolved root are absolute already: no per-file resolve
            listed = list(walk_npz(root_path))
        result = ScanResult(base, files=len(listed))
        present: set[str] = set()
        batch: list[Dataset] = []
        prefix = str(base).rstrip(os.sep) + os.sep
        for i, (abs_path, st) in enumerate(listed):
            path = abs_path
            text = str(abs_path)
            rel = Path(text[len(prefix):]).as_posix() if text.startswith(prefix) else text
            if st is None:
                try:
                    st = abs_path.stat()
                except OSError as exc:
                    e = error_from_os(path, exc)
                    result.errors.append((str(path), e.code, e.message))
                    continue
            present.add(rel)
            old = state.get(rel)
            if old == (st.st_size, st.st_mtime_ns):
                result.unchanged += 1
            else:
                if old is None:
                    index = index if index is not None else self._my_datasets()
                    if by_file is None:
                        by_file = {str(Path(d.data_root) / d.path): d for d in index.values() if d.data_root}
                    known = by_file.get(text)
                    if known is not None and known.data_root != str(base):
                        # Catalogued under another root (e.g. a sub-directory scanned first): one record per file.
                        if (known.size, known.mtime_ns) == (st.st_size, st.st_mtime_ns):
                            result.unchanged += 1
                        else:
                            batch.append(self._dataset_record(Path(known.data_root), known.path, abs_path, st))
                            result.updated += 1
                        if progress is not None:
                            progress(i + 1, len(listed), path)
                        continue
                    other = index.get(rel)
                    if other is not None and other.data_root != str(base):
                        result.errors.append((str(path), "PATH_TAKEN",
                                              f"{rel} is already catalogued under {other.data_root}; "
                                              "set data_root or use a separate --catalog"))
                        continue
                record = self._dataset_record(base, rel, abs_path, st)
                if record.findings.get("unreadable"):
                    code, _, message = record.findings["unreadable"].partition(": ")
                    result.errors.append((str(path), code, message))
                batch.append(record)
                result.added += old is None
                result.updated += old is not None
                if len(batch) >= SCAN_BATCH:
                    cat.upsert_datasets(batch)
                    batch.clear()
            if progress is not None:
                progress(i + 1, len(listed), path)
        if batch:
            cat.upsert_datasets(batch)
        if files is None:
            # Only what lies under the scanned directory can have vanished from it.
            sub = root_path.relative_to(base).as_posix() if root_path != base else ""
            outside = [p for p in state if sub and not p.startswith(sub + "/")]
            result.unavailable = cat.mark_unavailable(base, present.union(outside))
        result.elapsed_s = time.monotonic() - started
        return result

    def _dataset_record(self, root: Path, rel: str, path: Path, st: os.stat_result) -> Dataset:
        """One file's catalog record: inspection, intrinsic checks and summary from one open reader."""
        record = Dataset(path=rel, data_root=str(root), filename=path.name, size=st.st_size, mtime_ns=st.st_mtime_ns)
        try:
            record.sha256_16 = fingerprint(path)
        except NpzError:
            record.sha256_16 = None
        report = FileReport(path)
        try:
            with self.open(path) as r:
                self._fill(report, r)
                report.findings = checks.intrinsic(r, report.meta, report.kind)
                if report.kind == kinds.CIRCUIT:
                    self._circuit_summary(r, report, record)
        except NpzError as exc:
            record.findings = {"error": 1, "warning": 0, "info": 0, "codes": [exc.code],
                               "unreadable": f"{exc.code}: {exc.message}"}
            return record
        assert report.info is not None and report.meta is not None
        record.kind = report.kind or kinds.GENERIC
        record.rows = report.rows
        record.findings = {**report.severity_counts(), "codes": sorted({f.code for f in report.findings})}
        record.metadata = _bounded_metadata(report.meta.data)
        record.arrays = [a.to_json() for a in report.info.arrays[:MAX_CATALOG_ARRAYS]]
        return record

    @staticmethod
    def _circuit_summary(reader: NpzReader, report: FileReport, record: Dataset) -> None:
        """grid size, frequency range and best resnorm: metadata first, the arrays otherwise."""
        data = report.meta.data if report.meta else None
        gs = resolve(data, "grid_size")
        rows = report.rows or 0
        root5 = round(rows ** 0.2) if rows else 0
        record.grid_size = checks.as_int(gs[1]) if gs else (root5 if root5**5 == rows and rows else None)
        try:
            f = reader.info.array("frequencies")
            if f is not None and len(f.shape) == 1 and f.dtype.kind in "fiu" and f.shape[0]:
                freqs = reader.read("frequencies", max_bytes=16 << 20).astype(np.float64)
                record.n_frequencies = int(freqs.shape[0])
                record.freq_min, record.freq_max = _finite(freqs.min()), _finite(freqs.max())
            best = _ranking.best(reader, 1)
            record.best_resnorm = _finite(best.rows[0].resnorm) if best.rows else None
        except (NpzError, NotCircuitError, ValueError):  # a summary gap, not an unreadable file
            pass

    def register_file(self, path: str | os.PathLike) -> Dataset | None:
        """Catalogue one file (now), returning its dataset record."""
        p = Path(path).resolve()
        root = self._resolve_root(p, self._my_datasets())
        self.scan(root, files=[p])
        rel = p.relative_to(root).as_posix() if _within(p, root) else str(p)
        return self.catalog.dataset_by_path(root, rel)

    def find_dataset(self, path: str | os.PathLike) -> Dataset | None:
        """The catalogued dataset for a file on disk, if any."""
        p = Path(path).resolve()
        for d in self.catalog.list_datasets(filter_text=p.name, limit=None):
            if d.data_root and (Path(d.data_root) / d.path).resolve() == p:
                return d
        return None

    def dataset_for_file(self, path: str | os.PathLike) -> Dataset:
        """The dataset for a file, registering it first if the catalog does not know it yet."""
        found = self.find_dataset(path)
        if found is not None:
            return found
        registered = self.register_file(path)
        if registered is None:
            raise NotFound(f"{path}: could not register the file in the catalog")
        return registered

    def list_datasets(self, filter_text: str | None = None, kind: str | None = None, *, offset: int = 0,
                      limit: int | None = 100, order_by: str = "path", root: str | os.PathLike | None = None,
                      available: bool | None = None) -> list[Dataset]:
        """One page of catalogued datasets, filtered and ordered in SQL.

        Each `Dataset` carries filename, path (relative to `data_root`), kind,
        rows, size, tag_count, findings ({"error": n, "warning": n, "info": n,
        "codes": [...], "unreadable"?}), sync_status ("local" | "pending" |
        "synced") and is_available.
        """
        return self.catalog.list_datasets(filter_text, kind, offset=offset, limit=limit, order_by=order_by,
                                          root=str(Path(root).resolve()) if root else None, available=available)

    def count_datasets(self, filter_text: str | None = None, kind: str | None = None, *,
                       root: str | os.PathLike | None = None, available: bool | None = None) -> int:
        return self.catalog.count_datasets(filter_text, kind, root=str(Path(root).resolve()) if root else None,
                                           available=available)

    def get_dataset(self, dataset_id: str) -> Dataset | None:
        return self.catalog.get_dataset(dataset_id)

    # -- tags ----------------------------------------------------------------
    def list_tags(self, dataset_id: str | None = None) -> list[Tag]:
        return self.catalog.list_tags(dataset_id)

    def add_tag(self, dataset_id: str, row_index: int, label: str, **fields: Any) -> Tag:
        """Tag one row (circuit data: the 1-based rank); the row and its outbox entry commit together."""
        tag_id = self.catalog.add_tag(dataset_id, row_index, label, **fields)
        tag = self.catalog.get_tag(tag_id)
        assert tag is not None
        return tag

    def tag_file(self, path: str | os.PathLike, *, label: str, rank: int | None = None, row: int | None = None,
                 **fields: Any) -> Tag:
        """`tag add`: tag a rank of a circuit file (storing its resnorm and parameters) or a row of another."""
        dataset = self.dataset_for_file(path)
        if dataset.kind == kinds.CIRCUIT:
            if rank is None:
                raise ValidationError("circuit data is tagged by --rank (1 = best)", field="rank")
            with self.open(path) as r:
                ranked = _ranking.row_for_rank(r, rank)
            fields.setdefault("resnorm", _finite(ranked.resnorm))
            fields.setdefault("parameters", {k: float(v) for k, v in ranked.parameters.items()})
            index = rank
        else:
            if row is None and rank is None:
                raise ValidationError("tag a row with --row I (0-based)", field="row")
            index = row if row is not None else rank
            rows = dataset.rows
            if rows is not None and not 0 <= index < rows:
                raise ValidationError(f"row {index} is out of range (0–{rows - 1})", field="row")
        assert dataset.id is not None and index is not None
        return self.add_tag(dataset.id, index, label, **fields)

    def update_tag(self, tag_id: str, **changes: Any) -> Tag:
        return self.catalog.update_tag(self.resolve_tag_id(tag_id), **changes)

    def delete_tag(self, tag_id: str) -> None:
        self.catalog.delete_tag(self.resolve_tag_id(tag_id))

    def resolve_tag_id(self, prefix: str) -> str:
        """A full tag id from an unambiguous prefix (the CLI shows 8 characters)."""
        if self.catalog.get_tag(prefix) is not None:
            return prefix
        matches = [t.id for t in self.catalog.list_tags() if t.id and t.id.startswith(prefix)]
        if len(matches) == 1:
            return matches[0]
        raise NotFound(f"no tag {prefix!r}" if not matches else f"tag id {prefix!r} is ambiguous")

    # -- configurations and sessions ------------------------------------------------
    def add_config(self, name: str, reference: Mapping[str, float] | None = None, **fields: Any) -> CircuitConfig:
        config_id = self.catalog.add_config(name, dict(reference or DEFAULT_REFERENCE), **fields)
        config = self.catalog.get_config(config_id)
        assert config is not None
        return config

    def list_configs(self) -> list[CircuitConfig]:
        return self.catalog.list_configs()

    def resolve_config(self, key: str) -> CircuitConfig:
        """A configuration by id, id prefix or exact name."""
        configs = self.catalog.list_configs()
        exact = [c for c in configs if c.id == key or c.name == key]
        found = exact or [c for c in configs if c.id and c.id.startswith(key)]
        if len(found) == 1:
            return found[0]
        raise NotFound(f"no configuration {key!r}" if not found else f"configuration {key!r} is ambiguous")

    def link_config(self, path: str | os.PathLike, config_key: str | None) -> Dataset:
        dataset = self.dataset_for_file(path)
        config_id = self.resolve_config(config_key).id if config_key else None
        assert dataset.id is not None
        return self.catalog.link_dataset_config(dataset.id, config_id)

    def add_session(self, name: str, config_key: str | None = None) -> UserSession:
        config_id = self.resolve_config(config_key).id if config_key else None
        session_id = self.catalog.create_session(name, current_circuit_config_id=config_id)
        session = self.catalog.get_session(session_id)
        assert session is not None
        return session

    def list_sessions(self) -> list[UserSession]:
        return self.catalog.list_sessions()

    # -- runs ----------------------------------------------------------------
    def list_runs(self, status: str | None = None, top: int | None = None) -> list[Run]:
        return self.catalog.list_runs(status, top)

    def get_run(self, key: str) -> tuple[Run, list[RunIteration], Dataset | None]:
        """A run by id or unambiguous id prefix, its iterations and its linked dataset."""
        run = self.catalog.get_run(key)
        if run is None:
            matches = [r for r in self.catalog.list_runs() if r.id and r.id.startswith(key)]
            if len(matches) != 1:
                raise NotFound(f"no run {key!r}" if not matches else f"run id {key!r} is ambiguous")
            run = matches[0]
        assert run.id is not None
        dataset = self.catalog.get_dataset(run.dataset_id) if run.dataset_id else None
        return run, self.catalog.list_iterations(run.id), dataset

    # -- sync and status -------------------------------------------------------
    def _server_url(self) -> str:
        if self.settings.database_url is None:
            raise ValidationError("no server configured: set NPZTUI_DATABASE_URL (or the libpq PG* variables)")
        return self.settings.database_url

    def sync(self, *, full: bool = False) -> SyncResult:
        """Push the outbox, then pull newer server rows. Raises ServerUnavailable when offline."""
        url = self._server_url()
        try:
            result = _catalog.sync(self.catalog, url, full=full)
        except ServerUnavailable:
            self._online = (time.monotonic(), False)
            raise
        self._online = (time.monotonic(), True)
        return result

    def online(self, *, max_age_s: float = ONLINE_TTL_S) -> bool | None:
        """Whether the server answers (cached briefly so a status bar does not hammer it)."""
        if self.settings.database_url is None:
            return None
        now = time.monotonic()
        if self._online is not None and now - self._online[0] < max_age_s:
            return self._online[1]
        reachable = _catalog.server_status(self.settings.database_url, connect_timeout=2.0).reachable
        self._online = (now, reachable)
        return reachable

    def status(self) -> CatalogStatus:
        """Backend, masked location, online/offline, pending outbox, conflicts, data root."""
        cat = self.catalog
        server = mask_url(self.settings.database_url) if self.settings.database_url is not None else None
        local = cat.status()
        return CatalogStatus(
            backend="postgresql" if server is not None else "sqlite",
            location=server if server is not None else str(cat.path),
            catalog_path=str(cat.path),
            server=server,
            server_configured=server is not None,
            online=self.online(),
            pending=local.pending_outbox or 0,
            conflicts=len(cat.conflicts()),
            data_root=str(self.settings.data_root) if self.settings.data_root else None,
            last_sync_at=local.last_sync_at,
        )

    def conflicts(self) -> list[Conflict]:
        return self.catalog.conflicts()

    def db_status(self) -> list[DbStatus]:
        """The local catalog (without creating it) and, if configured, the server."""
        return _catalog.db_status(self.settings.catalog, self.settings.database_url)

    def db_migrate(self) -> dict[str, list[int]]:
        """Migrations applied now, per backend (an empty list: already up to date)."""
        return _catalog.migrate(self.settings.catalog, self.settings.database_url)


class _RunRecorder:
    """Turns compute progress into run iterations; never lets the catalog break the compute."""

    def __init__(self, catalog: Catalog | None, run_id: str | None) -> None:
        self.catalog, self.run_id = catalog, run_id
        self.iteration = 0
        self.rows_done = 0
        self.best: float | None = None
        self.error: str | None = None

    def __call__(self, p: ComputeProgress) -> None:
        if p.phase != "resnorm":
            return
        self.rows_done = p.rows_done
        self.best = _finite(p.best_so_far)
        if self.catalog is None or self.run_id is None or self.error is not None:
            return
        self.iteration += 1
        try:
            self.catalog.add_iteration(self.run_id, self.iteration, best_score=self.best,
                                       rows_done=p.rows_done, elapsed_s=p.elapsed_s)
        except CatalogError as exc:  # keep computing: the file matters more than the log
            self.error = str(exc)

    def finish(self, status: str, *, error: str | None = None, best: float | None = None,
               samples: int | None = None, dataset_id: str | None = None) -> Run | None:
        if self.catalog is None or self.run_id is None:
            return None
        try:
            if dataset_id is not None:
                self.catalog.link_run_dataset(self.run_id, dataset_id)
            return self.catalog.set_run_status(
                self.run_id, status, error_message=error, best_score=_finite(best) if best is not None else self.best,
                samples_evaluated=samples if samples is not None else self.rows_done,
            )
        except CatalogError:
            return None


def _reference_curve(rs: RowSpectrum) -> _plot.Curve:
    """The reference drawn under a row's spectrum; "assumed" when the file records none."""
    label = "reference" + (" (assumed)" if rs.reference_source == "default" else "")
    return _plot.Curve(label, rs.reference_spectrum, reference=True)


def _bounded_metadata(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """Metadata for the catalog: whole when small, else its top-level keys (the file keeps the rest)."""
    if not data:
        return {}
    import json

    text = json.dumps(data, default=str)
    if len(text) <= MAX_CATALOG_METADATA_BYTES:
        return json.loads(text)
    return {"_truncated": True, "_size": len(text), "_keys": sorted(map(str, data))[:200]}
