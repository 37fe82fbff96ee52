"""best-N, search and rank lookup on sorted, unsorted, legacy and compressed files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import npztui.circuit.ranking as ranking
from npztui.circuit.ranking import NotCircuitError, best, row_for_rank, search
from npztui.npz.reader import NpzReader
from npztui.npz.writer import NpzWriter


def _write(path: Path, resnorms, params=None, *, name="resnorms", compress=False) -> Path:
    resnorms = np.asarray(resnorms, dtype=np.float32)
    if params is None:  # parameters encode the row index so results can be traced back
        params = np.repeat(np.arange(len(resnorms), dtype=np.float32)[:, None], 5, axis=1)
    with NpzWriter(path, compress=compress) as w:
        w.add("parameters", np.asarray(params, dtype=np.float32))
        w.add(name, resnorms)
    return path


def _expected_order(values: np.ndarray) -> np.ndarray:
    v = values.astype(np.float64)
    v = np.where(np.isnan(v), np.inf, v)
    return np.lexsort((np.arange(len(v)), v))


@pytest.fixture
def shuffled(tmp_path, compat_dir):
    """The producer's file with its rows in a random order."""
    with NpzReader(compat_dir / "sample_grid_5_test.npz") as r:
        p, rn, f = r.read("parameters"), r.read("resnorms"), r.read("frequencies")
    perm = np.random.default_rng(7).permutation(len(rn))
    path = tmp_path / "shuffled.npz"
    with NpzWriter(path) as w:
        w.add("parameters", p[perm])
        w.add("resnorms", rn[perm])
        w.add("frequencies", f)
    return path, p, rn, perm


def test_best_on_the_sorted_fixture(compat_dir):
    res = best(compat_dir / "sample_grid_5_test.npz", 5)
    assert res.sorted and res.n_rows == 3125 and res.resnorm_name == "resnorms"
    assert [r.rank for r in res.rows] == [1, 2, 3, 4, 5]
    assert [r.row for r in res.rows] == [0, 1, 2, 3, 4]
    with NpzReader(compat_dir / "sample_grid_5_test.npz") as r:
        p, rn = r.read("parameters"), r.read("resnorms")
    assert [r.resnorm for r in res.rows] == rn[:5].astype(np.float64).tolist()
    assert res.rows[0].parameters == dict(zip(["Rsh", "Ra", "Ca", "Rb", "Cb"], p[0].astype(np.float64).tolist()))
    j = res.to_json()
    assert j["rows"][0]["rank"] == 1 and j["param_units"] == ["ohm", "ohm", "farad", "ohm", "farad"]


def test_best_on_an_unsorted_copy(shuffled):
    path, p, rn, perm = shuffled
    res = best(path, 10)
    assert not res.sorted
    assert [r.resnorm for r in res.rows] == rn[:10].astype(np.float64).tolist()
    # file rows map back to the original sorted rows through the permutation (ties in file order)
    original = perm[[r.row for r in res.rows]]
    for r, o in zip(res.rows, original):
        assert rn[o] == np.float32(r.resnorm)
        assert list(r.parameters.values()) == p[o].astype(np.float64).tolist()
    rows = [r.row for r in res.rows]
    for a, b in zip(res.rows, res.rows[1:]):  # ties keep file order
        if a.resnorm == b.resnorm:
            assert a.row < b.row
    assert len(set(rows)) == 10


def test_only_the_returned_parameter_rows_are_read(shuffled, monkeypatch):
    path = shuffled[0]
    calls = []
    original = NpzReader.read_rows

    def spy(self, name, index):
        calls.append((name, np.asarray(index).size))
        return original(self, name, index)

    def no_full_read(self, name, rows=None, max_bytes=None):
        raise AssertionError(f"full read of {name}")

    monkeypatch.setattr(NpzReader, "read_rows", spy)
    monkeypatch.setattr(NpzReader, "read", no_full_read)
    best(path, 4)
    assert ("parameters", 4) in calls and all(n == 4 for _, n in calls)


def test_legacy_resnorm_name_and_compressed_members(tmp_path):
    rn = np.array([5.0, 1.0, 3.0, 2.0, 4.0])
    path = _write(tmp_path / "legacy.npz", rn, name="resnorm", compress=True)
    res = best(path, 3)
    assert res.resnorm_name == "resnorm"
    assert [r.row for r in res.rows] == [1, 3, 2]
    assert [r.parameters["Rsh"] for r in res.rows] == [1.0, 3.0, 2.0]


def test_n_larger_than_the_file_and_zero(tmp_path):
    path = _write(tmp_path / "a.npz", [3.0, 1.0, 2.0])
    assert [r.row for r in best(path, 10).rows] == [1, 2, 0]
    assert best(path, 0).rows == []
    with pytest.raises(ValueError):
        best(path, -1)


def test_nan_ranks_last(tmp_path):
    path = _write(tmp_path / "nan.npz", [np.nan, 2.0, np.nan, 1.0])
    res = best(path, 4)
    assert [r.row for r in res.rows] == [3, 1, 0, 2]
    assert np.isnan(res.rows[2].resnorm)
    assert res.to_json()["rows"][2]["resnorm"] is None
    s = search(path, 100.0, 10)
    assert [r.row for r in s.rows] == [3, 1] and s.matches == 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(st.sampled_from([0.5, 1.0, 1.0, 2.0, 3.0, 7.25, float("nan")]) | st.floats(0, 100, width=32),
                    min_size=1, max_size=60),
    k=st.integers(0, 70),
    chunk=st.integers(1, 9),
)
def test_best_matches_a_full_sort_across_chunk_boundaries(tmp_path_factory, monkeypatch, values, k, chunk):
    monkeypatch.setattr(ranking, "SCAN_CHUNK_ROWS", chunk)
    path = _write(tmp_path_factory.mktemp("h") / "h.npz", values)
    arr = np.asarray(values, dtype=np.float32)
    want = _expected_order(arr)[: min(k, len(arr))]
    res = best(path, k)
    assert [r.row for r in res.rows] == want.tolist()
    assert [r.rank for r in res.rows] == list(range(1, len(want) + 1))
    as_inf = np.where(np.isnan(arr), np.inf, arr)  # "sorted" = file order is rank order (NaN last)
    assert res.sorted == bool(np.all(as_inf[1:] >= as_inf[:-1]))
    if len(arr):
        r1 = row_for_rank(path, max(1, min(k, len(arr))))
        assert r1.row == _expected_order(arr)[max(1, min(k, len(arr))) - 1]


def test_search_threshold_and_limit(shuffled):
    path, _, rn, _ = shuffled
    thr = float(rn[40])  # rows 0..40 plus any ties of row 40
    n_match = int(np.count_nonzero(rn <= np.float32(thr)))
    res = search(path, thr, limit=10)
    assert res.matches == n_match and len(res.rows) == 10
    assert [r.rank for r in res.rows] == list(range(1, 11))
    assert all(r.resnorm <= thr for r in res.rows)
    assert [r.resnorm for r in res.rows] == rn[:10].astype(np.float64).tolist()
    everything = search(path, thr, limit=10_000)
    assert len(everything.rows) == n_match
    assert search(path, float(rn[0]) - 1e-3, limit=5).rows == []
    assert search(path, float(rn[0]) - 1e-3, limit=5).matches == 0
    zero = search(path, thr, limit=0)
    assert zero.rows == [] and zero.matches == n_match
    j = res.to_json()
    assert j["max_resnorm"] == thr and j["matches"] == n_match
    with pytest.raises(ValueError):
        search(path, float("nan"))
    with pytest.raises(ValueError):
        search(path, 1.0, limit=-2)


def test_row_for_rank(shuffled, compat_dir):
    path, _, rn, _ = shuffled
    ten = best(path, 10).rows
    r = row_for_rank(path, 10)
    assert (r.rank, r.row, r.resnorm) == (10, ten[-1].row, ten[-1].resnorm)
    last = row_for_rank(path, 3125)
    assert last.resnorm == float(rn[-1])
    assert row_for_rank(compat_dir / "sample_grid_5_test.npz", 17).row == 16  # sorted: row = rank − 1
    for bad in (0, 3126, -1):
        with pytest.raises(IndexError):
            row_for_rank(path, bad)


def test_large_k_uses_a_full_sort(tmp_path, monkeypatch):
    monkeypatch.setattr(ranking, "SCAN_CHUNK_ROWS", 4)
    vals = np.random.default_rng(3).integers(0, 20, 50).astype(np.float32)
    path = _write(tmp_path / "k.npz", vals)
    res = best(path, 40)  # > 25 % of the rows and > one chunk: full-sort path
    assert [r.row for r in res.rows] == _expected_order(vals)[:40].tolist()


def test_not_a_circuit_file(compat_dir, tmp_path):
    with pytest.raises(NotCircuitError):
        best(compat_dir / "ptycho_sim_nphotons1e9.npz", 3)
    bad = tmp_path / "bad.npz"
    with NpzWriter(bad) as w:
        w.add("parameters", np.zeros((4, 5), np.float32))
        w.add("resnorms", np.zeros(3, np.float32))
    with pytest.raises(NotCircuitError, match="resnorms"):
        best(bad, 1)
