"""The impedance model against hand calculations and the circuit producer's real file."""

from __future__ import annotations

import math

import numpy as np
import pytest

from npztui.circuit import model
from npztui.circuit.compute import GridEvaluator
from npztui.circuit.grid import Grid
from npztui.npz.reader import NpzReader

REF = model.DEFAULT_REFERENCE


def test_dc_limit_is_the_resistor_network():
    p = np.array([1000.0, 200.0, 1e-6, 300.0, 2e-6])
    expected = 1000.0 * (200.0 + 300.0) / (1000.0 + 200.0 + 300.0)
    z0 = model.impedance(p, [0.0])[0]
    assert z0 == pytest.approx(expected, rel=1e-15)
    assert model.dc_limit(p) == pytest.approx(expected, rel=1e-15)
    z_low = model.impedance(p, [1e-9])[0]
    assert z_low.real == pytest.approx(expected, rel=1e-9)
    assert abs(z_low.imag) < 1e-6


def test_high_frequency_limit():
    p = np.array([1000.0, 200.0, 1e-6, 300.0, 2e-6])
    z = model.impedance(p, [1e12])[0]
    assert abs(z) < 1e-3
    # with a zero capacitance that branch stays resistive: Z → Rsh·Ra / (Rsh + Ra)
    p0 = np.array([1000.0, 200.0, 0.0, 300.0, 2e-6])
    z0 = model.impedance(p0, [1e12])[0]
    assert z0 == pytest.approx(1000.0 * 200.0 / 1200.0, rel=1e-6)


def test_single_frequency_by_hand():
    # ω = 1 rad/s; ωRaCa = ωRbCb = 1 → Za = 2/(1+j) = 1−j, Zb = 4/(1+j) = 2−2j,
    # S = 3−3j, Z = 3·S/(3+S) = (9−9j)/(6−3j) = 1.8 − 0.6j
    f = 1.0 / (2.0 * math.pi)
    p = [3.0, 2.0, 0.5, 4.0, 0.25]
    z = model.impedance(p, [f])[0]
    assert z.real == pytest.approx(1.8, rel=1e-14)
    assert z.imag == pytest.approx(-0.6, rel=1e-14)
    s = model.spectrum(p, [f])[0]
    assert s[0] == pytest.approx(1.8)
    assert s[1] == pytest.approx(-0.6)
    assert s[2] == pytest.approx(math.hypot(1.8, 0.6))
    assert s[3] == pytest.approx(math.degrees(math.atan2(-0.6, 1.8)))  # −18.43°


def test_resnorm_is_mean_absolute_difference():
    f = np.array([10.0, 100.0, 1000.0])
    p = np.array([[1000.0, 500.0, 1e-6, 700.0, 3e-6], [50.0, 10.0, 1e-7, 20.0, 5e-5]])
    zref = model.reference_impedance(REF, f)
    z = model.impedance(p, f)
    manual = [sum(abs(z[i, j] - zref[j]) for j in range(3)) / 3 for i in range(2)]
    np.testing.assert_allclose(model.resnorm(p, f, zref), manual, rtol=1e-14)
    assert model.resnorm(model.parameter_vector(REF), f, zref) == 0.0


def test_frequencies_are_log_spaced_and_validated():
    f = model.frequencies(0.1, 100_000, 100)
    assert f.shape == (100,) and f[0] == pytest.approx(0.1) and f[-1] == pytest.approx(1e5)
    np.testing.assert_allclose(np.diff(np.log10(f)), 6 / 99, rtol=1e-9)
    for bad in [(0, 10, 5), (10, 1, 5), (1, 10, 0), (-1, 10, 3), (1, float("inf"), 3)]:
        with pytest.raises(ValueError):
            model.frequencies(*bad)


def test_parameter_vector_and_validation():
    assert model.parameter_vector(REF).tolist() == [5005.0, 5005.0, 25.05e-6, 5005.0, 25.05e-6]
    with pytest.raises(ValueError, match="missing"):
        model.parameter_vector({"Rsh": 1.0})
    with pytest.raises(ValueError, match="unknown"):
        model.parameter_vector({**REF, "Rc": 1.0})
    with pytest.raises(ValueError, match="Ra"):
        model.validate_parameters([1.0, 0.0, 1e-6, 1.0, 1e-6])


def test_fixture_resnorms_recomputed_from_stored_parameters(compat_dir):
    with NpzReader(compat_dir / "sample_grid_5_test.npz") as r:
        p = r.read("parameters").astype(np.float64)
        f = r.read("frequencies").astype(np.float64)
        stored = r.read("resnorms")
    got = model.resnorm(p, f, model.reference_impedance(REF, f))
    # float32 parameters and frequencies: agreement to float32 precision
    np.testing.assert_allclose(got, stored, rtol=2e-7, atol=0)
    assert np.all(np.diff(stored) >= 0)


def test_fixture_spectrum_matches_the_model(compat_dir):
    with NpzReader(compat_dir / "sample_grid_5_test.npz") as r:
        p = r.read("parameters").astype(np.float64)
        f = r.read("frequencies").astype(np.float64)
        stored = r.read("spectrum").astype(np.float64)
    got = model.spectrum(p, f)
    scale = got[..., 2:3]  # compare real/imag/magnitude relative to |Z|
    assert np.max(np.abs(got[..., :3] - stored[..., :3]) / scale) < 1e-6
    assert np.max(np.abs(got[..., 3] - stored[..., 3])) < 1e-4  # degrees


@pytest.mark.parametrize("tables", [True, False])
def test_grid_evaluator_matches_reference_model(monkeypatch, tables):
    import npztui.circuit.compute as compute

    if not tables:
        monkeypatch.setattr(compute, "TABLE_MAX_BYTES", 0)
    grid = Grid.from_ranges(4)
    f = model.frequencies(0.1, 1e5, 37)
    zref = model.reference_impedance(REF, f)
    ev = GridEvaluator(grid, f, zref, block_rows=50)  # several blocks, a ragged last one
    assert ev.uses_tables is tables
    rows = np.arange(grid.n_rows)
    params = grid.parameters(rows)
    np.testing.assert_allclose(ev.impedance(rows), model.impedance(params, f), rtol=1e-12)
    np.testing.assert_allclose(ev.resnorms(rows), model.resnorm(params, f, zref), rtol=1e-12)
    spec = ev.spectrum(rows[::7], dtype=np.float64)
    np.testing.assert_allclose(spec, model.spectrum(params[::7], f), rtol=1e-12, atol=1e-9)


def test_grid_values_and_indexing():
    g = Grid.from_ranges(5)
    np.testing.assert_allclose(g.values[0], [10, 56.234133, 316.227766, 1778.279410, 10000], rtol=1e-7)
    np.testing.assert_allclose(g.values[2][[0, -1]], [1e-7, 5e-5])
    assert g.n_rows == 3125
    # flat index in C order over (Rsh, Ra, Ca, Rb, Cb): Cb varies fastest
    p = g.parameters([0, 1, 5, 3124])
    assert p[0].tolist() == [10, 10, 1e-7, 10, 1e-7]
    assert p[1][4] == g.values[4][1] and p[1][:4].tolist() == p[0][:4].tolist()
    assert p[2][3] == g.values[3][1]
    assert p[3].tolist() == g.values[:, -1].tolist()
    all_rows = g.parameters(np.arange(g.n_rows))
    assert len(np.unique(all_rows, axis=0)) == g.n_rows
    with pytest.raises(IndexError):
        g.parameters([3125])
    with pytest.raises(ValueError):
        Grid.from_ranges(0)
    with pytest.raises(ValueError, match="row limit"):
        Grid.from_ranges(100)
    custom = Grid.from_ranges(3, {"Rsh": (1.0, 100.0)})
    np.testing.assert_allclose(custom.values[0], [1, 10, 100])
