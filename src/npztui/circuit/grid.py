"""The brute-force parameter grid: `grid_size` log-spaced values per parameter, all combinations.

Rows are addressed by a flat index in C order over (Rsh, Ra, Ca, Rb, Cb), so
Cb varies fastest. Any slice or arbitrary set of rows is generated from its
flat indices with integer arithmetic — the full grid (grid_size⁵ rows) is
never materialised, and no Python tuple per row is ever built.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from .model import DEFAULT_RANGES, N_PARAMS, PARAM_NAMES

# Ranks and row indices are int64 and the global ordering is held in memory
# (16 bytes a row); 2**31 rows (grid 73) is far beyond any useful grid.
MAX_ROWS = 2**31 - 1


def grid_values(size: int, lo: float, hi: float) -> np.ndarray:
    """`size` log-spaced values from `lo` to `hi` (both included; size 1 gives [lo])."""
    if lo <= 0 or hi <= 0 or not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"grid ranges must be positive and finite (got {lo:g}..{hi:g})")
    if hi < lo:
        raise ValueError(f"grid range upper bound {hi:g} is below the lower bound {lo:g}")
    return np.logspace(math.log10(lo), math.log10(hi), int(size))


@dataclass(frozen=True, eq=False)
class Grid:
    """A grid over the five circuit parameters; `values[i]` are the values of parameter i."""

    size: int
    values: np.ndarray  # (5, size) float64, read-only
    ranges: tuple[tuple[float, float], ...]

    @classmethod
    def from_ranges(cls, size: int, ranges: Mapping[str, tuple[float, float]] | None = None) -> Grid:
        if int(size) != size or size < 1:
            raise ValueError(f"grid size must be a positive integer (got {size})")
        size = int(size)
        if size**N_PARAMS > MAX_ROWS:
            raise ValueError(f"grid size {size} means {size**N_PARAMS:,} rows, over the {MAX_ROWS:,}-row limit")
        merged = dict(DEFAULT_RANGES)
        if ranges:
            unknown = [k for k in ranges if k not in PARAM_NAMES]
            if unknown:
                raise ValueError(f"unknown circuit parameter(s) in ranges: {', '.join(unknown)}")
            merged.update({k: (float(v[0]), float(v[1])) for k, v in ranges.items()})
        rng = tuple((float(merged[n][0]), float(merged[n][1])) for n in PARAM_NAMES)
        vals = np.stack([grid_values(size, lo, hi) for lo, hi in rng])
        vals.setflags(write=False)
        return cls(size, vals, rng)

    @property
    def n_rows(self) -> int:
        return self.size**N_PARAMS

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.size,) * N_PARAMS

    def indices(self, flat) -> tuple[np.ndarray, ...]:
        """Per-parameter value indices (5 int arrays) of rows given by flat index."""
        flat = np.asarray(flat, dtype=np.int64)
        if flat.size and (flat.min() < 0 or flat.max() >= self.n_rows):
            raise IndexError(f"grid row index out of range for {self.n_rows} rows")
        return np.unravel_index(flat, self.shape)

    def parameters(self, flat, dtype=np.float64) -> np.ndarray:
        """Parameter rows (n, 5) for the given flat indices."""
        idx = self.indices(flat)
        out = np.empty((np.size(flat), N_PARAMS), dtype=dtype)
        for i in range(N_PARAMS):
            out[:, i] = self.values[i][idx[i]]
        return out

    def chunks(self, chunk_rows: int, n_rows: int | None = None) -> Iterator[tuple[int, int]]:
        """(start, stop) ranges covering `n_rows` (default: the whole grid), `chunk_rows` at a time."""
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be at least 1")
        n = self.n_rows if n_rows is None else n_rows
        for start in range(0, n, chunk_rows):
            yield start, min(start + chunk_rows, n)

    def ranges_dict(self) -> dict[str, list[float]]:
        return {n: [lo, hi] for n, (lo, hi) in zip(PARAM_NAMES, self.ranges, strict=True)}


__all__ = ["Grid", "grid_values", "MAX_ROWS"]
