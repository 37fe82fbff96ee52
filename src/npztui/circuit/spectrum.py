"""The spectrum of one ranked row, recomputed from its parameters with the exact model.

Display never depends on the stored `spectrum` member (which may be 5 GB and
deflated): the row's five parameters are read and the model evaluated at the
file's frequencies. Where the file does store that row's spectrum (full, or
`top:K` with `spectrum_rows`), it is compared with the recomputation and a
disagreement is described (→ finding `CIRC_SPECTRUM_STORED`). The comparison
reads the stored row only when that is cheap: always for stored (memory-mapped)
members, and for deflated members only when inflating up to that row stays
within `max_inflate_bytes`; otherwise it is skipped and the reason given.

Sources, in order of preference:
* frequencies: the `frequencies` array; else metadata (freq_min, freq_max,
  n_frequencies, log-spaced); else the SPEC defaults.
* reference: the caller's; else metadata `circuit.reference_parameters` (or a
  legacy top-level `reference_parameters`); else the producers' reference
  model, reported as assumed (`reference_source == "default"`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..npz import metadata as npz_metadata
from ..npz.findings import Finding
from ..npz.reader import NpzReader
from .model import (
    DEFAULT_FREQ_MAX,
    DEFAULT_FREQ_MIN,
    DEFAULT_N_FREQUENCIES,
    DEFAULT_REFERENCE,
    PARAM_NAMES,
    SPECTRUM_COLUMNS,
    frequencies as log_frequencies,
    impedance,
    parameter_dict,
    parameter_vector,
    spectrum_columns,
)
from .ranking import RankedRow, check_circuit, open_circuit, row_for_rank

STORED_RTOL = 1e-3
DEFAULT_MAX_INFLATE_BYTES = 64 << 20


@dataclass(frozen=True)
class StoredComparison:
    """Outcome of comparing a stored spectrum row with the recomputed one."""

    status: str  # "agrees" | "disagrees" | "not stored" | "skipped"
    detail: str = ""
    stored_index: int | None = None  # row of the `spectrum` member that was compared
    max_rel_diff: float | None = None

    def to_json(self) -> dict:
        return {
            "status": self.status,
            "detail": self.detail,
            "stored_index": self.stored_index,
            "max_rel_diff": self.max_rel_diff,
        }


@dataclass(frozen=True)
class RowSpectrum:
    path: Path
    rank: int
    row: int
    resnorm: float  # as stored
    parameters: dict[str, float]
    frequencies: np.ndarray  # (F,) float64, Hz
    spectrum: np.ndarray  # (F, 4) float64 [real, imag, magnitude, phase°], recomputed
    reference: dict[str, float]
    reference_source: str  # "argument" | "metadata" | "default"
    reference_spectrum: np.ndarray  # (F, 4)
    frequency_source: str  # "array" | "metadata" | "default"
    recomputed_resnorm: float  # mean_f |Z − Zref| from the parameters and this reference
    stored: StoredComparison

    @property
    def disagreement(self) -> str | None:
        return self.stored.detail if self.stored.status == "disagrees" else None

    def findings(self) -> list[Finding]:
        """`CIRC_SPECTRUM_STORED` when the stored row disagrees with the model."""
        if self.stored.status != "disagrees":
            return []
        return [
            Finding.make(
                "CIRC_SPECTRUM_STORED", self.stored.detail, key="spectrum",
                expected="model (rel 1e-3)", actual=self.stored.max_rel_diff,
            )
        ]

    def to_json(self) -> dict:
        return {
            "path": str(self.path),
            "rank": self.rank,
            "row": self.row,
            "resnorm": _finite(self.resnorm),
            "recomputed_resnorm": _finite(self.recomputed_resnorm),
            "parameters": self.parameters,
            "reference": self.reference,
            "reference_source": self.reference_source,
            "frequency_source": self.frequency_source,
            "columns": ["frequency", *SPECTRUM_COLUMNS],
            "spectrum": [
                [float(f), *map(float, row)] for f, row in zip(self.frequencies, self.spectrum, strict=True)
            ],
            "stored": self.stored.to_json(),
            "findings": [f.to_json() for f in self.findings()],
        }


def file_frequencies(reader: NpzReader, meta: Mapping | None = None) -> tuple[np.ndarray, str]:
    """The file's frequencies (float64) and where they came from."""
    a = reader.info.array("frequencies")
    if a is not None and len(a.shape) == 1 and a.shape[0] > 0 and a.dtype.kind in "fiu":
        return reader.read("frequencies", max_bytes=64 << 20).astype(np.float64), "array"
    fmin = npz_metadata.lookup(meta, "freq_min")
    fmax = npz_metadata.lookup(meta, "freq_max")
    nf = npz_metadata.lookup(meta, "n_frequencies")
    try:
        return log_frequencies(float(fmin), float(fmax), int(nf)), "metadata"
    except (TypeError, ValueError):
        return log_frequencies(DEFAULT_FREQ_MIN, DEFAULT_FREQ_MAX, DEFAULT_N_FREQUENCIES), "default"


def file_reference(meta: Mapping | None) -> tuple[dict[str, float], str]:
    """The reference parameters recorded in metadata, else the default (marked as such)."""
    for path in ("circuit.reference_parameters", "reference_parameters"):
        v = npz_metadata.get_path(meta, path)
        if isinstance(v, Mapping):
            try:
                return parameter_dict(parameter_vector({k: v[k] for k in PARAM_NAMES})), "metadata"
            except (KeyError, TypeError, ValueError):
                pass
    return dict(DEFAULT_REFERENCE), "default"


def compare_stored(
    reader: NpzReader,
    row: int,
    computed: np.ndarray,
    freqs: np.ndarray,
    *,
    rtol: float = STORED_RTOL,
    max_inflate_bytes: int = DEFAULT_MAX_INFLATE_BYTES,
) -> StoredComparison:
    """Compare the stored spectrum of file row `row` (if any) with `computed` (F, 4)."""
    info = reader.info
    spec = info.array("spectrum")
    if spec is None:
        return StoredComparison("not stored", "the file stores no spectrum")
    nf = computed.shape[0]
    if len(spec.shape) != 3 or spec.shape[1:] != (nf, 4) or spec.dtype.kind not in "fiu":
        return StoredComparison("skipped", f"stored spectrum is {spec.shape} {spec.dtype}, expected (rows, {nf}, 4)")
    rows_member = info.array("spectrum_rows")
    if rows_member is not None:
        if len(rows_member.shape) != 1 or rows_member.dtype.kind not in "iu" or rows_member.shape[0] != spec.shape[0]:
            return StoredComparison("skipped", "spectrum_rows does not match the stored spectrum")
        stored_rows = reader.read("spectrum_rows", max_bytes=256 << 20)
        hits = np.flatnonzero(stored_rows == row)
        if hits.size == 0:
            return StoredComparison("not stored", f"row {row} is not among the {spec.shape[0]} stored spectra")
        pos = int(hits[0])
    else:
        if spec.shape[0] != reader.info.array("parameters").shape[0]:
            return StoredComparison("skipped", "spectrum rows do not match parameter rows and there is no spectrum_rows")
        pos = row
    if spec.compressed and (pos + 1) * spec.row_bytes > max_inflate_bytes:
        return StoredComparison(
            "skipped",
            f"stored spectrum is {spec.compression}; checking row {pos} would inflate "
            f"{(pos + 1) * spec.row_bytes / (1 << 20):.0f} MiB",
            pos,
        )
    stored = reader.read_rows("spectrum", [pos])[0].astype(np.float64)
    return _compare(stored, computed, freqs, rtol, row, pos)


def _compare(stored: np.ndarray, computed: np.ndarray, freqs: np.ndarray, rtol: float, row: int, pos: int) -> StoredComparison:
    """real/imag as one complex value, magnitude relatively, phase in degrees against rtol radians."""
    tiny = np.finfo(np.float32).tiny
    zc = computed[:, 0] + 1j * computed[:, 1]
    zs = stored[:, 0] + 1j * stored[:, 1]
    scale = np.maximum(np.abs(zc), tiny)
    rel = {
        "real/imag": np.abs(zs - zc) / scale,
        "magnitude": np.abs(stored[:, 2] - computed[:, 2]) / np.maximum(np.abs(computed[:, 2]), tiny),
        # a relative error ε in Z moves the phase by at most ~ε radians
        "phase": np.radians(np.abs((stored[:, 3] - computed[:, 3] + 180.0) % 360.0 - 180.0)),
    }
    bad = np.zeros(freqs.shape[0], dtype=bool)
    worst_col, worst, worst_at = "", 0.0, 0
    for col, r in rel.items():
        r = np.where(np.isfinite(r), r, np.inf)
        bad |= r > rtol
        j = int(np.argmax(r))
        if r[j] > worst:
            worst_col, worst, worst_at = col, float(r[j]), j
    if not bad.any():
        return StoredComparison("agrees", f"stored spectrum row {pos} agrees with the model (rel {rtol:g})", pos, worst)
    worst_json = worst if math.isfinite(worst) else None
    return StoredComparison(
        "disagrees",
        f"stored spectrum of row {row} disagrees with the model at {int(bad.sum())} of {bad.size} frequencies "
        f"(worst: {worst_col} off by {worst:.3g} relative at {freqs[worst_at]:g} Hz)",
        pos,
        worst_json,
    )


def row_spectrum(
    source: str | os.PathLike | NpzReader,
    rank: int | None = None,
    *,
    row: int | None = None,
    reference: Mapping[str, float] | None = None,
    compare: bool = True,
    max_inflate_bytes: int = DEFAULT_MAX_INFLATE_BYTES,
) -> RowSpectrum:
    """Spectrum of the row at 1-based `rank` (or at file row `row`), recomputed with the exact model."""
    if (rank is None) == (row is None):
        raise ValueError("give exactly one of rank or row")
    with open_circuit(source) as r:
        name = check_circuit(r)
        if rank is not None:
            ranked = row_for_rank(r, rank)
        else:
            n = r.array_info(name).shape[0]
            if not 0 <= int(row) < n:
                raise IndexError(f"row {row} is out of range: the file has {n} rows")
            ranked = _ranked_by_row(r, name, int(row))
        meta = npz_metadata.discover(r).data
        freqs, fsource = file_frequencies(r, meta)
        if reference is not None:
            ref, rsource = parameter_dict(parameter_vector(reference)), "argument"
        else:
            ref, rsource = file_reference(meta)
        p = parameter_vector(ranked.parameters)
        z = impedance(p, freqs)
        zref = impedance(parameter_vector(ref), freqs)
        table = spectrum_columns(z)
        stored = (
            compare_stored(r, ranked.row, table, freqs, max_inflate_bytes=max_inflate_bytes)
            if compare
            else StoredComparison("skipped", "comparison not requested")
        )
        return RowSpectrum(
            path=r.path,
            rank=ranked.rank,
            row=ranked.row,
            resnorm=ranked.resnorm,
            parameters=ranked.parameters,
            frequencies=freqs,
            spectrum=table,
            reference=ref,
            reference_source=rsource,
            reference_spectrum=spectrum_columns(zref),
            frequency_source=fsource,
            recomputed_resnorm=float(np.abs(z - zref).mean()),
            stored=stored,
        )


def _ranked_by_row(reader: NpzReader, name: str, row: int) -> RankedRow:
    """A file row with its rank: 1 + rows that sort before it (streamed count)."""
    v = float(reader.read_rows(name, [row])[0])
    key = math.inf if math.isnan(v) else v
    before = 0
    for start, chunk in reader.iter_rows(name):
        c = np.asarray(chunk, dtype=np.float64)
        c = np.where(np.isnan(c), np.inf, c)
        before += int(np.count_nonzero(c < key))
        # ties rank by row index
        idx = np.arange(start, start + c.shape[0])
        before += int(np.count_nonzero((c == key) & (idx < row)))
    params = reader.read_rows("parameters", [row])[0].astype(np.float64)
    return RankedRow(rank=before + 1, row=row, resnorm=v, parameters=parameter_dict(params))


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


__all__ = [
    "RowSpectrum", "StoredComparison", "row_spectrum", "compare_stored",
    "file_frequencies", "file_reference", "STORED_RTOL",
]
