"""Chunked grid computation: every combination of the grid, ranked by resnorm, streamed to disk.

Two passes keep memory bounded at any grid size (grid 20 = 3.2 M rows with a
full spectrum is ~5 GB on disk):

1. *resnorm*: rows are generated chunk by chunk from flat indices and their
   resnorms computed (float64); only the resnorm vector (8 bytes a row) is kept.
2. *sort*: one stable argsort of that vector gives the rank order (rank 1 =
   best; ties keep grid order).
3. *parameters* / *spectrum*: rows are regenerated in rank order, chunk by
   chunk, and streamed into an `NpzWriter` member; spectra are recomputed
   rather than kept from pass 1.

Peak memory ≈ 16 bytes × rows (resnorms + ordering) + one chunk
(chunk_rows × n_frequencies × 16 bytes for the spectrum buffer) + a few
cache-sized work blocks. The writer builds a temp file and renames it on
success; Ctrl-C or any error removes the temp file and propagates.

Numerics follow the circuit producer exactly: float64 grid values and
frequencies (np.logspace), float64 arithmetic, results cast to float32 on
write. A recompute of `sample_grid_5_test.npz` reproduces its resnorms bit for
bit.
"""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..npz.metadata import new_metadata
from ..npz.writer import NpzWriter
from .grid import Grid
from .model import (
    DEFAULT_FREQ_MAX,
    DEFAULT_FREQ_MIN,
    DEFAULT_GRID_SIZE,
    DEFAULT_N_FREQUENCIES,
    DEFAULT_REFERENCE,
    N_PARAMS,
    PARAM_NAMES,
    PARAM_UNITS,
    SPECTRUM_COLUMNS,
    frequencies,
    impedance,
    parameter_dict,
    parameter_vector,
    validate_parameters,
)

DEFAULT_OUT_DIR = Path("data/npz/user_generated")
DEFAULT_CHUNK_ROWS = 32_768
# Work blocks inside a chunk are sized to stay in cache (~1 MiB per buffer).
BLOCK_ELEMENTS = 1 << 17
# Branch tables (per (R, C) pair of a branch) are used when they are this small.
TABLE_MAX_BYTES = 64 << 20

PHASES = ("resnorm", "sort", "parameters", "spectrum")


# --------------------------------------------------------------------------
# options


@dataclass(frozen=True)
class SpectrumMode:
    """Which spectra a compute stores: all rows, none, or the K best (`top:K`)."""

    kind: str  # "full" | "none" | "top"
    k: int = 0

    @classmethod
    def parse(cls, value: str | SpectrumMode) -> SpectrumMode:
        if isinstance(value, SpectrumMode):
            return value
        text = str(value).strip().lower()
        if text in ("full", "none"):
            return cls(text)
        if text.startswith("top:"):
            try:
                k = int(text[4:])
            except ValueError:
                k = -1
            if k >= 1:
                return cls("top", k)
            raise ValueError(f"spectrum mode top:K needs a positive integer K (got {value!r})")
        raise ValueError(f"spectrum mode must be full, none or top:K (got {value!r})")

    def rows(self, n_rows: int) -> int:
        """How many rows get a stored spectrum."""
        if self.kind == "full":
            return n_rows
        if self.kind == "top":
            return min(self.k, n_rows)
        return 0

    def __str__(self) -> str:
        return f"top:{self.k}" if self.kind == "top" else self.kind


@dataclass(frozen=True)
class ComputeConfig:
    """Everything that determines a grid file's content."""

    grid_size: int = DEFAULT_GRID_SIZE
    freq_min: float = DEFAULT_FREQ_MIN
    freq_max: float = DEFAULT_FREQ_MAX
    n_frequencies: int = DEFAULT_N_FREQUENCIES
    reference: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_REFERENCE))
    ranges: Mapping[str, tuple[float, float]] | None = None  # None: SPEC §5 defaults
    spectrum: str | SpectrumMode = "full"
    compress: bool = False
    legacy_pickle: bool = False


@dataclass(frozen=True)
class ComputeProgress:
    """Reported once per chunk (and once for the sort) to the `progress` callback."""

    phase: str  # one of PHASES
    rows_done: int  # within this phase
    rows_total: int  # within this phase
    best_so_far: float  # lowest resnorm seen so far (inf before the first chunk)
    elapsed_s: float  # since the compute started
    iteration: int  # 1-based count of callbacks so far (a run's iteration number)
    phase_index: int  # position of `phase` in PHASES
    rows_per_s: float  # throughput of this phase so far

    @property
    def fraction(self) -> float:
        return self.rows_done / self.rows_total if self.rows_total else 1.0


ProgressCallback = Callable[[ComputeProgress], None]


@dataclass(frozen=True)
class ComputeResult:
    path: Path
    n_rows: int
    n_frequencies: int
    grid_size: int
    best_resnorm: float
    best_parameters: dict[str, float]
    spectrum: str
    spectrum_rows: int
    compressed: bool
    elapsed_s: float
    iterations: int
    chunk_rows: int

    @property
    def rows_per_s(self) -> float:
        return self.n_rows / self.elapsed_s if self.elapsed_s > 0 else math.inf

    def to_json(self) -> dict:
        return {
            "path": str(self.path),
            "rows": self.n_rows,
            "n_frequencies": self.n_frequencies,
            "grid_size": self.grid_size,
            "best_resnorm": self.best_resnorm,
            "best_parameters": self.best_parameters,
            "spectrum": self.spectrum,
            "spectrum_rows": self.spectrum_rows,
            "compressed": self.compressed,
            "elapsed_s": round(self.elapsed_s, 3),
            "rows_per_s": round(self.rows_per_s, 1) if math.isfinite(self.rows_per_s) else None,
            "iterations": self.iterations,
        }


# --------------------------------------------------------------------------
# file naming


def format_number(x: float) -> str:
    """Shortest exact decimal without exponent or trailing zeros: 0.1, 100000, 1.5, 0.001."""
    x = float(x)
    if x == int(x) and abs(x) < 1e18:
        return str(int(x))
    return np.format_float_positional(x, trim="-")


def output_filename(grid_size: int, freq_min: float, freq_max: float) -> str:
    """`grid_{size}_freq_{min}_{max}.npz`, e.g. `grid_5_freq_0.1_100000.npz`."""
    return f"grid_{int(grid_size)}_freq_{format_number(freq_min)}_{format_number(freq_max)}.npz"


# --------------------------------------------------------------------------
# evaluation


class GridEvaluator:
    """Impedance, resnorm and spectrum of grid rows given by flat index, in cache-sized blocks.

    Same formula as `model.impedance`, rewritten in real arithmetic with
    preallocated buffers (no per-block allocation): with S = Za + Zb and
    D = Rsh + S,  Re Z = Rsh (Re S · Re D + Im S²) / |D|²,  Im Z = Rsh² Im S / |D|².
    Each RC branch only depends on its (R, C) pair, so for the usual sizes the
    branch values of all grid_size² pairs are tabulated once and gathered.
    """

    def __init__(self, grid: Grid, freqs: np.ndarray, z_ref: np.ndarray, block_rows: int | None = None) -> None:
        self.grid = grid
        self.freqs = np.asarray(freqs, dtype=np.float64)
        self.omega = 2.0 * np.pi * self.freqs
        nf = self.freqs.shape[0]
        self.n_frequencies = nf
        self.block_rows = max(1, block_rows or BLOCK_ELEMENTS // max(nf, 1))
        z_ref = np.asarray(z_ref, dtype=np.complex128)
        self._zr = np.ascontiguousarray(z_ref.real)
        self._zi = np.ascontiguousarray(z_ref.imag)
        g = grid.size
        self.uses_tables = g * g * nf * 8 * 4 <= TABLE_MAX_BYTES
        if self.uses_tables:
            v = grid.values
            self._a = self._table(v[1], v[2])
            self._b = self._table(v[3], v[4])
        self._buf = [np.empty((self.block_rows, nf)) for _ in range(5)]
        v = grid.values
        self.symmetric = bool(np.array_equal(v[1], v[3]) and np.array_equal(v[2], v[4]))

    def _table(self, r: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g, nf = self.grid.size, self.n_frequencies
        re = np.empty((g * g, nf))
        im = np.empty((g * g, nf))
        rr = np.repeat(r, g)
        cc = np.tile(c, g)
        self._branch_direct(rr, cc, re, im, np.empty((g * g, nf)))
        return re, im

    def _branch_direct(self, r, c, re, im, tmp) -> None:
        """R / (1 + jωRC) into (re, im): x = ωRC, re = R / (1 + x²), im = −x·re."""
        np.multiply((r * c)[:, None], self.omega, out=im)
        np.multiply(im, im, out=tmp)
        tmp += 1.0
        np.divide(r[:, None], tmp, out=re)
        im *= re
        np.negative(im, out=im)

    def _impedance_block(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Re Z, Im Z) for at most `block_rows` rows; views into the work buffers."""
        n = flat.shape[0]
        i0, i1, i2, i3, i4 = self.grid.indices(flat)
        v = self.grid.values
        sr, si, t1, t2, t3 = (b[:n] for b in self._buf)
        rsh = v[0][i0][:, None]
        if self.uses_tables:
            g = self.grid.size
            a = i1 * g + i2
            b = i3 * g + i4
            # Rows sharing (Rsh, Ra, Ca) with consecutive (Rb, Cb) read a contiguous
            # slice of the b table: add slices directly (the grid pass), else gather.
            brk = np.empty(n, dtype=bool)
            brk[0] = True
            np.not_equal(np.diff(flat), 1, out=brk[1:])
            brk[1:] |= b[1:] == 0
            starts = np.flatnonzero(brk)
            if len(starts) * 8 < n:
                (are, aim), (bre, bim) = self._a, self._b
                bounds = [*starts.tolist(), n]
                for k, e in zip(bounds[:-1], bounds[1:]):
                    ak, bk = a[k], b[k]
                    np.add(are[ak], bre[bk : bk + e - k], out=sr[k:e])
                    np.add(aim[ak], bim[bk : bk + e - k], out=si[k:e])
            else:
                np.take(self._a[0], a, axis=0, out=sr)
                np.take(self._b[0], b, axis=0, out=t1)
                sr += t1
                np.take(self._a[1], a, axis=0, out=si)
                np.take(self._b[1], b, axis=0, out=t1)
                si += t1
        else:
            self._branch_direct(v[1][i1], v[2][i2], sr, si, t1)
            self._branch_direct(v[3][i3], v[4][i4], t1, t2, t3)
            sr += t1
            si += t2
        np.add(sr, rsh, out=t1)  # D = Rsh + S (real part; Im D = Im S)
        np.multiply(t1, t1, out=t2)
        sr *= t1
        np.multiply(si, si, out=t1)
        t2 += t1  # |D|²
        sr += t1  # Re S · Re D + Im S²
        np.divide(rsh, t2, out=t2)  # Rsh / |D|²
        sr *= t2
        si *= rsh
        si *= t2
        return sr, si

    def _blocks(self, flat: np.ndarray):
        flat = np.asarray(flat, dtype=np.int64).reshape(-1)
        for s in range(0, flat.shape[0], self.block_rows):
            yield s, flat[s : s + self.block_rows]

    def resnorms(self, flat, out: np.ndarray | None = None) -> np.ndarray:
        """mean_f |Z − Zref| (float64) of the rows with these flat indices."""
        flat = np.asarray(flat, dtype=np.int64).reshape(-1)
        if out is None:
            out = np.empty(flat.shape[0])
        for s, blk in self._blocks(flat):
            self._resnorm_block(blk, out[s : s + blk.shape[0]])
        return out

    def fill_resnorms(self, res: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Fill `res[start:stop]` of the whole-grid resnorm vector (the grid pass).

        Rows before `start` must already be filled: when the two RC branches
        span the same values, row (Rsh, a, b) with b < a is the mirror image
        of the earlier row (Rsh, b, a) — the same S = Za + Zb, bit for bit —
        so its resnorm is copied instead of computed (half the work).
        """
        flat = np.arange(start, stop, dtype=np.int64)
        if self.symmetric:
            g2 = self.grid.size**2
            a = (flat // g2) % g2
            b = flat % g2
            lower = b < a
            todo = flat[~lower]
        else:
            todo = flat
        tmp = np.empty(min(self.block_rows, todo.shape[0]))
        for s in range(0, todo.shape[0], self.block_rows):
            blk = todo[s : s + self.block_rows]
            self._resnorm_block(blk, tmp[: blk.shape[0]])
            res[blk] = tmp[: blk.shape[0]]
        if self.symmetric:
            f = flat[lower]
            res[f] = res[f + (b[lower] - a[lower]) * (g2 - 1)]
        return res[start:stop]

    def _resnorm_block(self, blk: np.ndarray, out: np.ndarray) -> None:
        zr, zi = self._impedance_block(blk)
        zr -= self._zr
        zi -= self._zi
        zr *= zr
        zi *= zi
        zr += zi
        np.sqrt(zr, out=zr)
        np.mean(zr, axis=1, out=out)

    def impedance(self, flat) -> np.ndarray:
        """Complex Z (n, F) of the rows with these flat indices (allocates; for tests and small sets)."""
        flat = np.asarray(flat, dtype=np.int64).reshape(-1)
        out = np.empty((flat.shape[0], self.n_frequencies), dtype=np.complex128)
        for s, blk in self._blocks(flat):
            zr, zi = self._impedance_block(blk)
            out.real[s : s + blk.shape[0]] = zr
            out.imag[s : s + blk.shape[0]] = zi
        return out

    def spectrum(self, flat, out: np.ndarray | None = None, dtype=np.float32) -> np.ndarray:
        """Spectrum rows (n, F, 4) [real, imag, magnitude, phase°] of the rows with these flat indices."""
        flat = np.asarray(flat, dtype=np.int64).reshape(-1)
        if out is None:
            out = np.empty((flat.shape[0], self.n_frequencies, 4), dtype=dtype)
        for s, blk in self._blocks(flat):
            n = blk.shape[0]
            zr, zi = self._impedance_block(blk)
            t = self._buf[2][:n]
            o = out[s : s + n]
            o[:, :, 0] = zr
            o[:, :, 1] = zi
            np.hypot(zr, zi, out=t)
            o[:, :, 2] = t
            np.arctan2(zi, zr, out=t)
            np.degrees(t, out=t)
            o[:, :, 3] = t
        return out


# --------------------------------------------------------------------------
# the computation


class _Reporter:
    def __init__(self, callback: ProgressCallback | None, t0: float) -> None:
        self.callback, self.t0 = callback, t0
        self.iteration = 0
        self._phase_t0: dict[str, float] = {}

    def start(self, phase: str) -> None:
        self._phase_t0[phase] = time.perf_counter()

    def emit(self, phase: str, done: int, total: int, best: float) -> None:
        self.iteration += 1
        if self.callback is None:
            return
        now = time.perf_counter()
        dt = now - self._phase_t0.get(phase, self.t0)
        self.callback(
            ComputeProgress(
                phase=phase,
                rows_done=done,
                rows_total=total,
                best_so_far=float(best),
                elapsed_s=now - self.t0,
                iteration=self.iteration,
                phase_index=PHASES.index(phase),
                rows_per_s=done / dt if dt > 0 else math.inf,
            )
        )


def compute_grid(
    config: ComputeConfig | None = None,
    out_dir: str | Path = DEFAULT_OUT_DIR,
    *,
    filename: str | None = None,
    overwrite: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: ProgressCallback | None = None,
    script: str = "npztui compute",
) -> ComputeResult:
    """Compute a full grid and write it (atomically) as `out_dir/grid_{size}_freq_{min}_{max}.npz`.

    Raises ValueError for invalid options, FileExistsError when the target
    exists and `overwrite` is false. Any exception (KeyboardInterrupt
    included, e.g. raised by `progress`) leaves no output or temp file.
    """
    cfg = config or ComputeConfig()
    if int(chunk_rows) != chunk_rows or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer (got {chunk_rows})")
    chunk_rows = int(chunk_rows)
    grid = Grid.from_ranges(cfg.grid_size, cfg.ranges)
    freqs = frequencies(cfg.freq_min, cfg.freq_max, cfg.n_frequencies)
    ref = parameter_vector(cfg.reference)
    validate_parameters(ref)
    mode = SpectrumMode.parse(cfg.spectrum)
    path = Path(out_dir) / (filename or output_filename(cfg.grid_size, cfg.freq_min, cfg.freq_max))
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists (pass overwrite / --force to replace it)")

    t0 = time.perf_counter()
    rep = _Reporter(progress, t0)
    n = grid.n_rows
    nf = freqs.shape[0]
    ev = GridEvaluator(grid, freqs, impedance(ref, freqs), block_rows=min(chunk_rows, BLOCK_ELEMENTS // nf or 1))

    # pass 1: resnorms
    rep.start("resnorm")
    res = np.empty(n, dtype=np.float64)
    best = math.inf
    for s, e in grid.chunks(chunk_rows):
        part = ev.fill_resnorms(res, s, e)
        best = min(best, float(part.min()))
        rep.emit("resnorm", e, n, best)

    # rank order
    rep.start("sort")
    order, res = _rank_order(res, ev, chunk_rows)  # the unsorted vector is released
    rep.emit("sort", n, n, best)
    best = float(res[0])
    best_params = parameter_dict(grid.parameters(order[:1])[0])

    k = mode.rows(n)
    with NpzWriter(path, compress=cfg.compress) as w:
        rep.start("parameters")
        with w.stream("parameters", (n, N_PARAMS), np.float32) as st:
            for s, e in grid.chunks(chunk_rows):
                st.write(grid.parameters(order[s:e], dtype=np.float32))
                rep.emit("parameters", e, n, best)
        with w.stream("resnorms", (n,), np.float32) as st:
            for s, e in grid.chunks(chunk_rows):
                st.write(res[s:e].astype(np.float32))
        if k:
            rep.start("spectrum")
            buf = np.empty((min(chunk_rows, k), nf, 4), dtype=np.float32)
            with w.stream("spectrum", (k, nf, 4), np.float32) as st:
                for s, e in grid.chunks(chunk_rows, k):
                    st.write(ev.spectrum(order[s:e], out=buf[: e - s]))
                    rep.emit("spectrum", e, k, best)
            if mode.kind == "top":
                w.add("spectrum_rows", np.arange(k, dtype=np.int64))
        w.add("frequencies", freqs.astype(np.float32))
        circuit = _circuit_section(cfg, grid, freqs, ref, best, mode)
        w.add_metadata(new_metadata(script=script, circuit=circuit))
        if cfg.legacy_pickle:
            w.add_legacy_pickled("metadata", _legacy_metadata(cfg, n, freqs, best, path.name))
    elapsed = time.perf_counter() - t0
    return ComputeResult(
        path=path,
        n_rows=n,
        n_frequencies=nf,
        grid_size=grid.size,
        best_resnorm=best,
        best_parameters=best_params,
        spectrum=str(mode),
        spectrum_rows=k,
        compressed=cfg.compress,
        elapsed_s=elapsed,
        iterations=rep.iteration,
        chunk_rows=chunk_rows,
    )


def _rank_order(res: np.ndarray, ev: GridEvaluator, chunk_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices in rank order and the sorted resnorms.

    Ties are broken by grid (flat index) order. For a symmetric grid only the
    canonical rows (Rb, Cb) ≥ (Ra, Ca) are sorted; each mirror row (same
    resnorm, bit for bit) is placed right after its twin — the same order as
    a stable sort unless two *different* models tie exactly.
    """
    if not ev.symmetric:
        order = np.argsort(res, kind="stable")
        return order, res[order]
    g2 = ev.grid.size**2
    parts = []
    for s, e in ev.grid.chunks(chunk_rows):
        flat = np.arange(s, e, dtype=np.int64)
        parts.append(flat[flat % g2 >= (flat // g2) % g2])
    up = np.concatenate(parts)
    del parts
    vals = res[up]
    o = np.argsort(vals, kind="stable")
    up = up[o]
    vals = vals[o]
    del o
    a = (up // g2) % g2
    b = up % g2
    counts = np.where(b != a, 2, 1)
    order = np.repeat(up, counts)
    last = np.cumsum(counts) - 1
    twin = counts == 2
    order[last[twin]] = up[twin] + (b[twin] - a[twin]) * (g2 - 1)
    return order, np.repeat(vals, counts)


def _circuit_section(cfg: ComputeConfig, grid: Grid, freqs: np.ndarray, ref: np.ndarray, best: float, mode: SpectrumMode) -> dict:
    return {
        "grid_size": grid.size,
        "n_parameter_sets": grid.n_rows,
        "freq_min": float(cfg.freq_min),
        "freq_max": float(cfg.freq_max),
        "n_frequencies": int(freqs.shape[0]),
        "frequency_spacing": "log",
        "param_names": list(PARAM_NAMES),
        "param_units": list(PARAM_UNITS),
        "parameter_ranges": grid.ranges_dict(),
        "grid_spacing": "log",
        "reference_parameters": parameter_dict(ref),
        "best_resnorm": best,
        "resnorm": "mean_f |Z - Zref|",
        "sorted_by_resnorm": True,
        "spectrum": str(mode),
        "spectrum_columns": list(SPECTRUM_COLUMNS),
        "phase_unit": "degree",
    }


def _legacy_metadata(cfg: ComputeConfig, n: int, freqs: np.ndarray, best: float, filename: str) -> dict:
    """The circuit producer's pickled dict, key for key (for `--legacy-pickle`)."""
    return {
        "grid_size": int(cfg.grid_size),
        "n_parameter_sets": int(n),
        "n_frequencies": int(freqs.shape[0]),
        "freq_min": float(cfg.freq_min),
        "freq_max": float(cfg.freq_max),
        "param_names": list(PARAM_NAMES),
        "param_units": list(PARAM_UNITS),
        "spectrum_columns": list(SPECTRUM_COLUMNS),
        "export_timestamp": datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds"),
        "best_resnorm": float(best),
        "computation_complete": True,
        "user_generated": True,
        "storage_location": "local",
        "filename": filename,
        "ready_for_registration": True,
    }


__all__ = [
    "ComputeConfig", "ComputeProgress", "ComputeResult", "GridEvaluator", "SpectrumMode",
    "ProgressCallback", "compute_grid", "output_filename", "format_number",
    "DEFAULT_OUT_DIR", "DEFAULT_CHUNK_ROWS", "PHASES",
]
