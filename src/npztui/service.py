"""The one facade the CLI and the TUI call.

Front ends never touch the format layer, the circuit domain or the catalog
directly: they ask the service, which returns plain reports. That keeps the
rules (what a check means, which files a directory expands to, how errors are
captured) in one place and lets the TUI call the same code from its workers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Settings, load_settings
from .npz import checks, kinds
from .npz.errors import NpzError
from .npz.findings import Finding
from .npz.metadata import MetadataResult, discover
from .npz.reader import Limits, NpzInfo, NpzReader
from .npz.writer import TEMP_PREFIX

# What front ends need from the layers below, re-exported so they import only this module.
CheckOptions = checks.CheckOptions
CHECK_MODES = checks.MODES
parse_expect_args = checks.parse_expect_args
load_expect_file = checks.load_expect_file
__all__ = [
    "CHECK_MODES", "CheckOptions", "FileReport", "Finding", "NpzError", "Service",
    "expand_paths", "load_expect_file", "parse_expect_args", "rule_explanation",
]


def rule_explanation(code: str) -> str:
    """What a finding's rule means (shown by the TUI and `check --explain`)."""
    return checks.rule_explanation(code)


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


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given; a directory means every `*.npz` under it (sorted, temp files skipped)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(
                q for q in p.rglob("*.npz") if q.is_file() and not q.name.startswith(TEMP_PREFIX)
            )
            out.extend(found)
        else:
            out.append(p)
    return out


class Service:
    """Facade over the format layer, the circuit domain and the catalog."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self.limits = Limits(
            max_read_bytes=self.settings.max_read_bytes,
            max_metadata_bytes=self.settings.max_metadata_bytes,
        )

    # -- files ---------------------------------------------------------------
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

    def _fill(self, report: FileReport, reader: NpzReader) -> None:
        report.info = reader.info
        report.kind = kinds.detect_kind(reader.info)
        report.meta = discover(reader)

    def check(self, paths: Sequence[str | os.PathLike], options: checks.CheckOptions | None = None) -> list[FileReport]:
        """Run every applicable rule on each file; files given together form a set for --consistent."""
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


# --- tools commands ---
# Metadata edits, legacy migration, split, merge and lineage (npz/tools.py).
# Every write is atomic (temp file in the same directory, fsync, rename).
from .npz import tools as _tools  # noqa: E402

ToolError = _tools.ToolError  # refused as asked, nothing written (usage: exit 2)
FindingsError = _tools.FindingsError  # refused because the data disagree (exit 1)
MetaEdit = _tools.MetaEdit
SplitResult = _tools.SplitResult
MergeResult = _tools.MergeResult
Lineage = _tools.Lineage
MERGE_STRATEGIES = _tools.STRATEGIES
SPLIT_AXES = _tools.SPLIT_AXES
describe_transformation = _tools.describe_transformation
show_value = _tools.show_value


def parse_set_args(items: Sequence[str]) -> dict[str, Any]:
    """`K=V` assignments for `meta set` / `meta migrate --set` (values parsed like `--expect`)."""
    return checks.parse_expect_args(items)


def _tool_limits(service: Service | None) -> Limits:
    return (service or Service()).limits


def meta_set(path: str | os.PathLike, updates: dict[str, Any], *, dry_run: bool = False,
             service: Service | None = None) -> MetaEdit:
    return _tools.set_metadata(path, updates, dry_run=dry_run, limits=_tool_limits(service))


def meta_migrate(path: str | os.PathLike, *, updates: dict[str, Any] | None = None, estimate: bool = False,
                 drop_legacy: bool = False, dry_run: bool = False, service: Service | None = None) -> MetaEdit:
    return _tools.migrate(path, updates=updates, estimate_values=estimate, drop_legacy=drop_legacy,
                          dry_run=dry_run, limits=_tool_limits(service))


def split_file(path: str | os.PathLike, *, fraction: float = 0.8, axis: str | None = None,
               out_dir: str | os.PathLike | None = None, force: bool = False,
               service: Service | None = None) -> SplitResult:
    return _tools.split(path, fraction=fraction, axis=axis, out_dir=out_dir, force=force, limits=_tool_limits(service))


def merge_files(paths: Sequence[str | os.PathLike], output: str | os.PathLike, *, strategy: str = "preserve_first",
                force: bool = False, service: Service | None = None) -> MergeResult:
    return _tools.merge(paths, output, strategy=strategy, force=force, limits=_tool_limits(service))


def file_lineage(path: str | os.PathLike, *, service: Service | None = None) -> Lineage:
    return _tools.lineage(path, limits=_tool_limits(service))
# --- end tools commands ---


# --- circuit commands ---
# compute / best / search / spectrum (SPEC §5, §7): thin wrappers over npztui.circuit,
# re-exporting what the front ends need so they import only this module.
from . import circuit as _circuit  # noqa: E402
from .circuit import compute as _compute, plot as _plot, ranking as _ranking  # noqa: E402
from .circuit import spectrum as _spectrum, units as _units  # noqa: E402
from .npz.errors import error_from_os as _error_from_os  # noqa: E402

ComputeConfig = _compute.ComputeConfig
ComputeProgress = _compute.ComputeProgress
ComputeResult = _compute.ComputeResult
SpectrumMode = _compute.SpectrumMode
COMPUTE_PHASES = _compute.PHASES
NotCircuitError = _ranking.NotCircuitError
RankingResult = _ranking.RankingResult
RowSpectrum = _spectrum.RowSpectrum
PLOT_KINDS = _plot.PLOT_KINDS
PARAM_NAMES = _circuit.PARAM_NAMES
PARAM_UNITS = _circuit.PARAM_UNITS
DEFAULT_REFERENCE = _circuit.DEFAULT_REFERENCE
format_si = _units.format_si
format_parameter = _units.format_parameter
format_parameters = _units.format_parameters
parse_reference = _units.parse_reference
parse_quantity = _units.parse_quantity
output_filename = _compute.output_filename


def os_error(path: str | os.PathLike, exc: OSError) -> NpzError:
    """The typed error (PERMISSION, NOT_FOUND, ...) for an OSError met while writing."""
    return _error_from_os(path, exc)


def default_compute_dir(service: Service | None = None) -> Path:
    """`<data root>/user_generated` (data root from settings, else `data/npz`)."""
    root = (service or Service()).settings.data_root or Path("data/npz")
    return Path(root) / "user_generated"


def compute_grid(config: ComputeConfig, out_dir: str | os.PathLike | None = None, *, overwrite: bool = False,
                 chunk_rows: int | None = None, progress=None, script: str = "npztui compute",
                 service: Service | None = None) -> ComputeResult:
    """Compute a grid file atomically (see `npztui.circuit.compute.compute_grid`)."""
    return _compute.compute_grid(
        config, out_dir if out_dir is not None else default_compute_dir(service), overwrite=overwrite,
        chunk_rows=chunk_rows or _compute.DEFAULT_CHUNK_ROWS, progress=progress, script=script,
    )


def best_rows(path: str | os.PathLike, n: int = 10, *, service: Service | None = None) -> RankingResult:
    with (service or Service()).open(path) as r:
        return _ranking.best(r, n)


def search_rows(path: str | os.PathLike, max_resnorm: float, limit: int = 100, *,
                service: Service | None = None) -> RankingResult:
    with (service or Service()).open(path) as r:
        return _ranking.search(r, max_resnorm, limit)


def row_spectrum(path: str | os.PathLike, rank: int, *, reference: dict[str, float] | None = None,
                 service: Service | None = None) -> RowSpectrum:
    with (service or Service()).open(path) as r:
        return _spectrum.row_spectrum(r, rank, reference=reference)


def spectrum_plot(rs: RowSpectrum, kind: str, width: int = 80, height: int = 24, *, color: bool = True) -> str:
    """Nyquist or Bode plot of a row with its reference overlaid (plotext text)."""
    row = _plot.Curve(f"rank {rs.rank}", rs.spectrum)
    ref = _plot.Curve("reference" + (" (assumed)" if rs.reference_source == "default" else ""),
                      rs.reference_spectrum, reference=True)
    return _plot.render(_plot.plot_data(kind, rs.frequencies, [row], ref), width, height, color=color)
# --- end circuit commands ---
