"""Best-N, search and rank lookup over circuit files, sorted or not, without loading them.

Rank order is (resnorm ascending, row index ascending): rank 1 is the best row
and ties keep file order, so a file written sorted has rank r at row r − 1.
NaN resnorms rank last.

The resnorm vector (4 bytes a row) is streamed once in chunks while a running
top-k candidate set is kept with a partial sort (`np.partition`), so memory is
O(chunk + k) and unsorted files need no full sort. Sortedness is checked on
the way (cheaply: a sorted file never needs a partition after its first
chunk) and reported, but not trusted from metadata: a reordered file with
copied metadata would otherwise give wrong ranks. Only the parameter rows
actually returned are read (`NpzReader.read_rows`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..npz import kinds
from ..npz.reader import NpzReader
from .model import N_PARAMS, PARAM_NAMES, PARAM_UNITS, parameter_dict

SCAN_CHUNK_ROWS = 1 << 20
# Above this share of the rows, a full argsort beats repeated candidate merges.
_FULL_SORT_SHARE = 0.25


class NotCircuitError(ValueError):
    """The file is readable but is not a circuit grid (no (N, 5) `parameters` + `resnorms`)."""

    code = "NOT_CIRCUIT"


@dataclass(frozen=True)
class RankedRow:
    """One row of a circuit file, as shown in best-N and search results."""

    rank: int  # 1-based position in resnorm order
    row: int  # 0-based row index in the file
    resnorm: float
    parameters: dict[str, float]

    def to_json(self) -> dict:
        return {
            "rank": self.rank,
            "row": self.row,
            "resnorm": _json_float(self.resnorm),
            "parameters": {k: _json_float(v) for k, v in self.parameters.items()},
        }


@dataclass(frozen=True)
class RankingResult:
    """Rows returned by `best` or `search`, with what was learned about the file on the way."""

    path: Path
    rows: list[RankedRow]
    n_rows: int
    sorted: bool  # file order is rank order (resnorms ascending, NaN only at the end)
    resnorm_name: str  # "resnorms" or the legacy "resnorm"
    max_resnorm: float | None = None  # search threshold
    matches: int | None = None  # search: rows with resnorm ≤ max (before the limit)
    param_units: tuple[str, ...] = field(default=PARAM_UNITS)

    def to_json(self) -> dict:
        out = {
            "path": str(self.path),
            "n_rows": self.n_rows,
            "sorted": self.sorted,
            "resnorm_member": self.resnorm_name,
            "param_names": list(PARAM_NAMES),
            "param_units": list(self.param_units),
            "rows": [r.to_json() for r in self.rows],
        }
        if self.max_resnorm is not None:
            out["max_resnorm"] = _json_float(self.max_resnorm)
            out["matches"] = self.matches
        return out


@dataclass(frozen=True)
class _Scan:
    values: np.ndarray  # candidate resnorms (float64), rank order
    rows: np.ndarray  # their row indices (int64)
    n_rows: int
    sorted: bool
    matches: int | None


# --------------------------------------------------------------------------
# opening


@contextmanager
def open_circuit(source: str | os.PathLike | NpzReader) -> Iterator[NpzReader]:
    """An `NpzReader` on a circuit file (or the given one), validated as a circuit grid."""
    if isinstance(source, NpzReader):
        check_circuit(source)
        yield source
        return
    with NpzReader(source) as r:
        check_circuit(r)
        yield r


def check_circuit(reader: NpzReader) -> str:
    """Validate the circuit arrays' headers; returns the resnorm member's name."""
    info = reader.info
    name = kinds.resnorm_name(info)
    p = info.array("parameters")
    if p is None or name is None:
        missing = [x for x, a in (("parameters", p), ("resnorms", name)) if a is None]
        what = " or ".join(missing) + (" arrays" if len(missing) > 1 else " array")
        raise NotCircuitError(f"{reader.path}: not a circuit file (no {what})")
    if len(p.shape) != 2 or p.shape[1] != N_PARAMS or p.dtype.kind not in "fiu":
        raise NotCircuitError(f"{reader.path}: parameters is {p.shape} {p.dtype}, expected (rows, 5) numbers")
    rn = info.array(name)
    if rn.shape != (p.shape[0],) or rn.dtype.kind not in "fiu":
        raise NotCircuitError(f"{reader.path}: {name} is {rn.shape} {rn.dtype} for {p.shape[0]} parameter rows")
    return name


# --------------------------------------------------------------------------
# the scan


def _merge(cv: np.ndarray, ci: np.ndarray, v: np.ndarray, i: np.ndarray, k: int):
    """Keep the k smallest (value, index) pairs of two candidate sets, in ascending-index order.

    Inputs are in ascending-index order and every index in `i` exceeds those
    in `ci`, so boolean masks (which keep order) preserve that invariant and
    ties at the threshold go to the lowest indices.
    """
    vals = np.concatenate((cv, v))
    idx = np.concatenate((ci, i))
    if vals.shape[0] <= k:
        return vals, idx
    thr = np.partition(vals, k - 1)[k - 1]
    keep = vals < thr
    need = k - int(np.count_nonzero(keep))
    if need > 0:
        keep[np.flatnonzero(vals == thr)[:need]] = True
    return vals[keep], idx[keep]


def _scan(reader: NpzReader, name: str, k: int, max_value: float | None = None) -> _Scan:
    """Stream the resnorms once: the k best rows, sortedness and (optionally) the count ≤ max_value."""
    n = reader.array_info(name).shape[0]
    k = max(0, min(int(k), n))
    matches = 0 if max_value is not None else None
    ascending = True
    prev = -math.inf
    if k > _FULL_SORT_SHARE * n and k > SCAN_CHUNK_ROWS:
        allv = _as_rank_values(reader.read(name))
        ascending = bool(np.all(allv[1:] >= allv[:-1]))
        order = np.argsort(allv, kind="stable")[:k]
        if max_value is not None:
            matches = int(np.count_nonzero(allv <= max_value))
        return _Scan(allv[order], order.astype(np.int64), n, ascending, matches)
    cv = np.empty(0)
    ci = np.empty(0, dtype=np.int64)
    for start, chunk in reader.iter_rows(name, SCAN_CHUNK_ROWS):
        if chunk.shape[0] == 0:
            continue
        v = _as_rank_values(chunk)
        if ascending:
            ascending = bool(v[0] >= prev and np.all(v[1:] >= v[:-1]))
            prev = float(v[-1])
        if max_value is not None:
            matches += int(np.count_nonzero(v <= max_value))
        if k == 0:
            continue
        if cv.shape[0] == k and v.min() >= cv.max():
            continue  # nothing here beats the current top k (always true for sorted files)
        cv, ci = _merge(cv, ci, v, np.arange(start, start + v.shape[0], dtype=np.int64), k)
    order = np.lexsort((ci, cv))
    return _Scan(cv[order], ci[order], n, ascending, matches)


def _as_rank_values(chunk: np.ndarray) -> np.ndarray:
    """float64 copy with NaN → +inf, so NaN rows rank last."""
    v = np.array(chunk, dtype=np.float64, copy=True)
    v[np.isnan(v)] = np.inf
    return v


def _rows(reader: NpzReader, scan: _Scan, first_rank: int = 1) -> list[RankedRow]:
    if scan.rows.shape[0] == 0:
        return []
    params = reader.read_rows("parameters", scan.rows).astype(np.float64)
    raw = reader.read_rows(kinds.resnorm_name(reader.info), scan.rows).astype(np.float64)
    return [
        RankedRow(rank=first_rank + j, row=int(r), resnorm=float(raw[j]), parameters=parameter_dict(params[j]))
        for j, r in enumerate(scan.rows)
    ]


# --------------------------------------------------------------------------
# public API


def best(source: str | os.PathLike | NpzReader, n: int = 10) -> RankingResult:
    """The `n` rows with the lowest resnorm, in rank order (works on sorted and unsorted files)."""
    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer (got {n})")
    with open_circuit(source) as r:
        name = check_circuit(r)
        scan = _scan(r, name, int(n))
        return RankingResult(r.path, _rows(r, scan), scan.n_rows, scan.sorted, name)


def search(source: str | os.PathLike | NpzReader, max_resnorm: float, limit: int = 100) -> RankingResult:
    """Rows with resnorm ≤ `max_resnorm`, best first, at most `limit` of them.

    Matching rows form a prefix of the rank order, so their ranks are
    1..len(rows); `matches` counts every match before the limit.
    """
    max_resnorm = float(max_resnorm)
    if math.isnan(max_resnorm):
        raise ValueError("max_resnorm must be a number")
    if int(limit) != limit or limit < 0:
        raise ValueError(f"limit must be a non-negative integer (got {limit})")
    with open_circuit(source) as r:
        name = check_circuit(r)
        scan = _scan(r, name, int(limit), max_value=max_resnorm)
        keep = scan.values <= max_resnorm
        scan = _Scan(scan.values[keep], scan.rows[keep], scan.n_rows, scan.sorted, scan.matches)
        return RankingResult(r.path, _rows(r, scan), scan.n_rows, scan.sorted, name, max_resnorm, scan.matches)


def row_for_rank(source: str | os.PathLike | NpzReader, rank: int) -> RankedRow:
    """The row holding 1-based `rank` (IndexError if out of range)."""
    if int(rank) != rank or rank < 1:
        raise IndexError(f"rank must be a positive integer (got {rank})")
    rank = int(rank)
    with open_circuit(source) as r:
        name = check_circuit(r)
        n = r.array_info(name).shape[0]
        if rank > n:
            raise IndexError(f"rank {rank} is out of range: the file has {n} rows")
        scan = _scan(r, name, rank)
        last = _Scan(scan.values[-1:], scan.rows[-1:], n, scan.sorted, None)
        return _rows(r, last, first_rank=rank)[0]


def _json_float(x: float) -> float | None:
    """JSON has no NaN/inf: non-finite values become null."""
    x = float(x)
    return x if math.isfinite(x) else None


__all__ = [
    "NotCircuitError", "RankedRow", "RankingResult",
    "best", "search", "row_for_rank", "open_circuit", "check_circuit", "SCAN_CHUNK_ROWS",
]
