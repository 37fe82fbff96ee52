"""Grid computation: content, format, options, progress, Ctrl-C safety and bounded memory."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from npztui.circuit import model
from npztui.circuit.compute import (
    PHASES,
    ComputeConfig,
    SpectrumMode,
    compute_grid,
    format_number,
    output_filename,
)
from npztui.circuit.ranking import best
from npztui.npz import checks, kinds, metadata
from npztui.npz.reader import NpzReader

SMALL = dict(grid_size=4, freq_min=1.0, freq_max=10_000.0, n_frequencies=20)


def _load(path: Path) -> dict[str, np.ndarray]:
    with NpzReader(path) as r:
        return {a.name: r.read(a.name) for a in r.info.arrays if not a.is_object}


def _intrinsic(path: Path):
    with NpzReader(path) as r:
        meta = metadata.discover(r)
        return meta, checks.intrinsic(r, meta, kinds.detect_kind(r.info), deep=True)


def test_reproduces_the_producer_file_bit_for_bit(tmp_path, compat_dir):
    res = compute_grid(ComputeConfig(grid_size=5, freq_min=1, freq_max=10_000, n_frequencies=50), tmp_path)
    ours = _load(res.path)
    theirs = _load(compat_dir / "sample_grid_5_test.npz")
    assert res.path.name == "grid_5_freq_1_10000.npz"
    np.testing.assert_array_equal(ours["resnorms"], theirs["resnorms"])
    np.testing.assert_array_equal(ours["frequencies"], theirs["frequencies"])
    # ties (a↔b branch swaps) may be ordered differently: compare rows keyed by parameters
    key = {ours["parameters"][i].tobytes(): i for i in range(len(ours["parameters"]))}
    assert len(key) == 3125
    perm = np.array([key[theirs["parameters"][i].tobytes()] for i in range(3125)])
    np.testing.assert_array_equal(ours["spectrum"][perm], theirs["spectrum"])
    np.testing.assert_array_equal(ours["resnorms"][perm], theirs["resnorms"])
    assert res.best_resnorm == pytest.approx(230.1529716797405, rel=1e-12)


def test_round_trip_full(tmp_path):
    res = compute_grid(ComputeConfig(**SMALL), tmp_path, chunk_rows=50)
    n = 4**5
    assert res.path == tmp_path / "grid_4_freq_1_10000.npz" and res.path.exists()
    assert (res.n_rows, res.n_frequencies, res.spectrum, res.spectrum_rows) == (n, 20, "full", n)
    with NpzReader(res.path) as r:
        info = {a.name: a for a in r.info.arrays}
        assert set(info) == {"parameters", "resnorms", "spectrum", "frequencies", "_metadata"}
        assert (info["parameters"].shape, info["parameters"].dtype.str) == ((n, 5), "<f4")
        assert (info["resnorms"].shape, info["resnorms"].dtype.str) == ((n,), "<f4")
        assert (info["spectrum"].shape, info["spectrum"].dtype.str) == ((n, 20, 4), "<f4")
        assert (info["frequencies"].shape, info["frequencies"].dtype.str) == ((20,), "<f4")
        assert not any(a.compressed for a in r.info.arrays)
        assert all(a.dtype.kind != "O" for a in r.info.arrays)
    a = _load(res.path)
    assert np.all(np.diff(a["resnorms"]) >= 0)
    assert len(np.unique(a["parameters"], axis=0)) == n  # every combination exactly once
    f = a["frequencies"].astype(np.float64)
    p = a["parameters"].astype(np.float64)
    zref = model.reference_impedance(model.DEFAULT_REFERENCE, f)
    np.testing.assert_allclose(model.resnorm(p, f, zref), a["resnorms"], rtol=1e-5)
    np.testing.assert_allclose(a["spectrum"][:, :, :3], model.spectrum(p, f)[:, :, :3], rtol=1e-4, atol=1e-3)
    # best() on the written file: rank 1 is row 0 and matches the compute result
    b = best(res.path, 3)
    assert b.sorted and [r.rank for r in b.rows] == [1, 2, 3] and [r.row for r in b.rows] == [0, 1, 2]
    assert b.rows[0].resnorm == pytest.approx(res.best_resnorm, rel=1e-6)
    for name, v in res.best_parameters.items():
        assert b.rows[0].parameters[name] == pytest.approx(v, rel=1e-6)
    # metadata: schema v1 with the circuit section, and the intrinsic checks pass
    meta, findings = _intrinsic(res.path)
    assert meta.source == "_metadata" and meta.encoding == "json"
    d = meta.data
    assert d["schema_version"] == "1.0.0"
    assert d["creation_info"]["timestamp"].endswith("Z")
    c = d["circuit"]
    assert c["grid_size"] == 4 and c["n_parameter_sets"] == n and c["n_frequencies"] == 20
    assert (c["freq_min"], c["freq_max"]) == (1.0, 10_000.0)
    assert c["param_names"] == ["Rsh", "Ra", "Ca", "Rb", "Cb"]
    assert c["param_units"] == ["ohm", "ohm", "farad", "ohm", "farad"]
    assert c["reference_parameters"] == model.DEFAULT_REFERENCE
    assert c["best_resnorm"] == pytest.approx(float(a["resnorms"][0]), rel=1e-6)
    assert findings == []


def test_metadata_records_a_custom_reference_and_ranges(tmp_path):
    ref = {"Rsh": 1000.0, "Ra": 300.0, "Ca": 2e-6, "Rb": 600.0, "Cb": 10e-6}
    cfg = ComputeConfig(grid_size=3, reference=ref, ranges={"Rsh": (100.0, 1000.0)}, spectrum="none", n_frequencies=10)
    res = compute_grid(cfg, tmp_path)
    meta, findings = _intrinsic(res.path)
    assert meta.data["circuit"]["reference_parameters"] == ref
    assert meta.data["circuit"]["parameter_ranges"]["Rsh"] == [100.0, 1000.0]
    assert findings == []
    p = _load(res.path)["parameters"]
    np.testing.assert_allclose(np.unique(p[:, 0]), [100.0, 316.22777, 1000.0], rtol=1e-6)
    np.testing.assert_allclose(np.unique(p[:, 1]), [10.0, 316.22777, 10_000.0], rtol=1e-6)


def test_spectrum_none_and_top_k(tmp_path):
    none = compute_grid(ComputeConfig(**SMALL, spectrum="none"), tmp_path / "none")
    a = _load(none.path)
    assert "spectrum" not in a and "spectrum_rows" not in a and none.spectrum_rows == 0
    assert _intrinsic(none.path)[1] == []

    top = compute_grid(ComputeConfig(**SMALL, spectrum="top:7"), tmp_path / "top", chunk_rows=3)
    b = _load(top.path)
    assert b["spectrum"].shape == (7, 20, 4)
    assert b["spectrum_rows"].dtype == np.int64 and b["spectrum_rows"].tolist() == list(range(7))
    np.testing.assert_array_equal(b["resnorms"], a["resnorms"])
    f = b["frequencies"].astype(np.float64)
    want = model.spectrum(b["parameters"][:7].astype(np.float64), f)
    np.testing.assert_allclose(b["spectrum"][:, :, :3], want[:, :, :3], rtol=1e-4, atol=1e-3)
    assert _intrinsic(top.path)[1] == []

    huge = compute_grid(ComputeConfig(grid_size=2, n_frequencies=5, spectrum="top:1000"), tmp_path / "huge")
    assert _load(huge.path)["spectrum"].shape == (32, 5, 4) and huge.spectrum_rows == 32


def test_compressed_output_equals_stored(tmp_path):
    plain = compute_grid(ComputeConfig(**SMALL), tmp_path / "a")
    packed = compute_grid(ComputeConfig(**SMALL, compress=True), tmp_path / "b")
    with NpzReader(packed.path) as r:
        assert all(a.compressed for a in r.info.arrays if a.name != "_metadata")
    a, b = _load(plain.path), _load(packed.path)
    assert a.keys() == b.keys()
    for k in a.keys() - {"_metadata"}:  # metadata differs only by its timestamp
        np.testing.assert_array_equal(a[k], b[k])
    assert packed.path.stat().st_size < plain.path.stat().st_size


def test_legacy_pickle_adds_the_producer_dict(tmp_path):
    res = compute_grid(ComputeConfig(**SMALL, legacy_pickle=True), tmp_path)
    with np.load(res.path, allow_pickle=True) as z:  # our own file: trusted here
        legacy = z["metadata"].item()
    assert set(legacy) == {
        "grid_size", "n_parameter_sets", "n_frequencies", "freq_min", "freq_max", "param_names",
        "param_units", "spectrum_columns", "export_timestamp", "best_resnorm", "computation_complete",
        "user_generated", "storage_location", "filename", "ready_for_registration",
    }
    assert legacy["filename"] == res.path.name and legacy["n_parameter_sets"] == 4**5
    assert legacy["user_generated"] is True and legacy["computation_complete"] is True
    assert legacy["spectrum_columns"] == ["real", "imag", "magnitude", "phase"]
    meta, findings = _intrinsic(res.path)
    assert meta.source == "_metadata"  # v1 JSON still wins discovery
    assert findings == []
    # without the flag the file holds no object array and loads with allow_pickle=False
    plain = compute_grid(ComputeConfig(**SMALL), tmp_path / "plain")
    with np.load(plain.path, allow_pickle=False) as z:
        assert sorted(z.files) == ["_metadata", "frequencies", "parameters", "resnorms", "spectrum"]


@pytest.mark.parametrize(
    ("size", "fmin", "fmax", "name"),
    [
        (5, 0.1, 100_000, "grid_5_freq_0.1_100000.npz"),
        (3, 1, 1e4, "grid_3_freq_1_10000.npz"),
        (2, 0.001, 2.5e6, "grid_2_freq_0.001_2500000.npz"),
        (7, 1.5, 1e9, "grid_7_freq_1.5_1000000000.npz"),
        (4, 0.00001, 12.25, "grid_4_freq_0.00001_12.25.npz"),
    ],
)
def test_output_filename(size, fmin, fmax, name):
    assert output_filename(size, fmin, fmax) == name


def test_format_number_round_trips():
    for x in [0.1, 1e-7, 123.456, 1e5, 2.5e6, 1 / 3]:
        assert float(format_number(x)) == x
        assert "e" not in format_number(x)


def test_existing_file_is_not_overwritten_without_consent(tmp_path):
    first = compute_grid(ComputeConfig(**SMALL, spectrum="none"), tmp_path)
    before = first.path.read_bytes()
    with pytest.raises(FileExistsError):
        compute_grid(ComputeConfig(**SMALL, spectrum="none"), tmp_path)
    assert first.path.read_bytes() == before
    again = compute_grid(ComputeConfig(**SMALL, spectrum="top:3"), tmp_path, overwrite=True)
    assert "spectrum" in _load(again.path)


@pytest.mark.parametrize("bad", [dict(spectrum="top:0"), dict(spectrum="bogus"), dict(spectrum="top:x"),
                                 dict(grid_size=0), dict(freq_min=10.0, freq_max=1.0),
                                 dict(n_frequencies=0), dict(reference={"Rsh": 1.0})])
def test_invalid_options_are_refused_before_any_work(tmp_path, bad):
    cfg = ComputeConfig(**{**SMALL, **bad})
    with pytest.raises(ValueError):
        compute_grid(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_spectrum_mode_parse():
    assert SpectrumMode.parse("full") == SpectrumMode("full")
    assert SpectrumMode.parse(" TOP:5 ") == SpectrumMode("top", 5)
    assert str(SpectrumMode.parse("top:5")) == "top:5" and str(SpectrumMode.parse("none")) == "none"
    assert SpectrumMode("top", 5).rows(3) == 3 and SpectrumMode("none").rows(3) == 0


def test_progress_is_reported_once_per_chunk(tmp_path):
    events = []
    res = compute_grid(ComputeConfig(**SMALL, spectrum="top:100"), tmp_path, chunk_rows=100, progress=events.append)
    n = 4**5
    by_phase = {p: [e for e in events if e.phase == p] for p in PHASES}
    assert len(by_phase["resnorm"]) == math.ceil(n / 100)
    assert len(by_phase["sort"]) == 1
    assert len(by_phase["parameters"]) == math.ceil(n / 100)
    assert len(by_phase["spectrum"]) == 1  # top:100 = one chunk
    assert [e.iteration for e in events] == list(range(1, len(events) + 1)) and res.iterations == len(events)
    assert [e.phase for e in events] == sorted((e.phase for e in events), key=PHASES.index)
    rows = [e.rows_done for e in by_phase["resnorm"]]
    assert rows == sorted(rows) and rows[-1] == n and all(b - a <= 100 for a, b in zip([0] + rows, rows))
    assert all(e.rows_total == n for e in by_phase["resnorm"])
    bests = [e.best_so_far for e in by_phase["resnorm"]]
    assert bests == sorted(bests, reverse=True) and bests[-1] == pytest.approx(res.best_resnorm)
    elapsed = [e.elapsed_s for e in events]
    assert elapsed == sorted(elapsed)
    assert by_phase["spectrum"][0].rows_total == 100 and by_phase["spectrum"][0].fraction == 1.0


class _Stop(KeyboardInterrupt):
    pass


@pytest.mark.parametrize("phase", ["resnorm", "parameters", "spectrum"])
def test_ctrl_c_leaves_no_partial_file(tmp_path, phase):
    seen = []

    def interrupt(ev):
        seen.append(ev)
        if ev.phase == phase:
            raise _Stop()

    with pytest.raises(KeyboardInterrupt):
        compute_grid(ComputeConfig(**SMALL), tmp_path, chunk_rows=64, progress=interrupt)
    assert seen[-1].phase == phase and seen[-1].rows_done == 64  # stopped after the first chunk
    assert list(tmp_path.iterdir()) == []  # no output, no temp file


def test_ctrl_c_keeps_the_previous_file(tmp_path):
    first = compute_grid(ComputeConfig(**SMALL, spectrum="none"), tmp_path)
    before = first.path.read_bytes()

    def interrupt(ev):
        if ev.phase == "spectrum":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        compute_grid(ComputeConfig(**SMALL), tmp_path, overwrite=True, chunk_rows=64, progress=interrupt)
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]
    assert first.path.read_bytes() == before


def test_other_errors_also_leave_nothing(tmp_path):
    def fail(ev):
        if ev.phase == "parameters":
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        compute_grid(ComputeConfig(**SMALL), tmp_path, progress=fail)
    assert list(tmp_path.iterdir()) == []


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_bounded_by_the_chunk_size(tmp_path):
    # grid 6 × 100 frequencies: the full spectrum is 7776 × 100 × 4 float32 = 12.4 MB
    cfg = ComputeConfig(grid_size=6, n_frequencies=100)
    spectrum_bytes = 6**5 * 100 * 4 * 4
    small = _peak(lambda: compute_grid(cfg, tmp_path / "a", chunk_rows=64))
    large = _peak(lambda: compute_grid(cfg, tmp_path / "b", chunk_rows=8192))
    assert small < spectrum_bytes / 8  # never holds the spectrum, nor a big share of it
    assert large > spectrum_bytes  # a chunk as large as the grid does (the knob is real)
    np.testing.assert_array_equal(_load(tmp_path / "a" / "grid_6_freq_0.1_100000.npz")["spectrum"],
                                  _load(tmp_path / "b" / "grid_6_freq_0.1_100000.npz")["spectrum"])


@pytest.mark.parametrize("ranges", [None, {"Rb": (20.0, 5000.0)}])
def test_grid_pass_and_rank_order_equal_the_direct_computation(ranges):
    from npztui.circuit.compute import GridEvaluator, _rank_order
    from npztui.circuit.grid import Grid

    grid = Grid.from_ranges(4, ranges)
    f = model.frequencies(1, 1e4, 15)
    ev = GridEvaluator(grid, f, model.reference_impedance(model.DEFAULT_REFERENCE, f), block_rows=37)
    assert ev.symmetric is (ranges is None)
    res = np.empty(grid.n_rows)
    for s in range(0, grid.n_rows, 100):  # chunk by chunk, as compute does
        ev.fill_resnorms(res, s, min(s + 100, grid.n_rows))
    direct = ev.resnorms(np.random.default_rng(0).permutation(grid.n_rows))  # gather path
    np.testing.assert_array_equal(np.sort(res), np.sort(direct))
    np.testing.assert_array_equal(res, ev.resnorms(np.arange(grid.n_rows)))  # bit for bit
    order, sorted_res = _rank_order(res.copy(), ev, 100)
    np.testing.assert_array_equal(order, np.argsort(res, kind="stable"))
    np.testing.assert_array_equal(sorted_res, res[order])
