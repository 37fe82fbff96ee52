"""Row spectra recomputed from parameters, and the stored-spectrum comparison."""

from __future__ import annotations

import json

import numpy as np
import pytest

from npztui.circuit import model
from npztui.circuit.compute import ComputeConfig, compute_grid
from npztui.circuit.spectrum import row_spectrum
from npztui.npz.metadata import new_metadata
from npztui.npz.reader import NpzReader
from npztui.npz.writer import NpzWriter


def _arrays(path):
    with NpzReader(path) as r:
        return {a.name: r.read(a.name) for a in r.info.arrays if not a.is_object}


def _rewrite(src, dst, change=None, drop=(), metadata=None, compress=False):
    a = _arrays(src)
    if change:
        change(a)
    with NpzWriter(dst, compress=compress) as w:
        for k, v in a.items():
            if k not in drop and k != "_metadata":
                w.add(k, v)
        if metadata is not None:
            w.add_metadata(metadata)
    return dst


def test_fixture_rank_one_agrees_with_its_stored_spectrum(compat_dir):
    path = compat_dir / "sample_grid_5_test.npz"
    rs = row_spectrum(path, 1)
    a = _arrays(path)
    assert (rs.rank, rs.row) == (1, 0)
    assert rs.frequency_source == "array" and rs.frequencies.tolist() == a["frequencies"].astype(float).tolist()
    assert rs.reference_source == "default" and rs.reference == model.DEFAULT_REFERENCE
    assert rs.spectrum.shape == (50, 4) and rs.reference_spectrum.shape == (50, 4)
    np.testing.assert_allclose(rs.spectrum[:, :3], a["spectrum"][0, :, :3], rtol=1e-6)
    assert rs.stored.status == "agrees" and rs.stored.stored_index == 0 and rs.disagreement is None
    assert rs.stored.max_rel_diff < 1e-6
    assert rs.findings() == []
    assert rs.recomputed_resnorm == pytest.approx(rs.resnorm, rel=1e-6)
    j = json.loads(json.dumps(rs.to_json()))
    assert j["columns"] == ["frequency", "real", "imag", "magnitude", "phase"]
    assert len(j["spectrum"]) == 50 and j["stored"]["status"] == "agrees" and j["findings"] == []


def test_a_tampered_stored_row_is_reported(compat_dir, tmp_path):
    def tamper(a):
        a["spectrum"][2, 10:20, 1] *= 1.1  # imag of rank 3 off by 10 % at 10 frequencies

    path = _rewrite(compat_dir / "sample_grid_5_test.npz", tmp_path / "t.npz", tamper)
    rs = row_spectrum(path, 3)
    assert rs.stored.status == "disagrees"
    assert "10 of 50 frequencies" in rs.disagreement and "row 2" in rs.disagreement
    [f] = rs.findings()
    assert f.code == "CIRC_SPECTRUM_STORED" and f.severity == "warning"
    assert 0.01 < f.actual < 0.2
    # the displayed spectrum is the model's, not the tampered one
    np.testing.assert_allclose(rs.spectrum, row_spectrum(compat_dir / "sample_grid_5_test.npz", 3).spectrum)
    assert row_spectrum(path, 2).stored.status == "agrees"


def test_top_k_spectra_are_compared_only_where_stored(tmp_path):
    res = compute_grid(ComputeConfig(grid_size=3, n_frequencies=30, spectrum="top:4"), tmp_path)
    inside = row_spectrum(res.path, 4)
    assert inside.stored.status == "agrees" and inside.stored.stored_index == 3
    outside = row_spectrum(res.path, 5)
    assert outside.stored.status == "not stored"
    assert row_spectrum(res.path, 1, compare=False).stored.status == "skipped"


def test_reference_and_frequencies_from_metadata(tmp_path):
    ref = {"Rsh": 800.0, "Ra": 120.0, "Ca": 3e-6, "Rb": 2200.0, "Cb": 40e-6}
    res = compute_grid(ComputeConfig(grid_size=3, freq_min=2.0, freq_max=20_000.0, n_frequencies=25,
                                     reference=ref, spectrum="none"), tmp_path)
    rs = row_spectrum(res.path, 2)
    assert rs.reference_source == "metadata" and rs.reference == ref
    assert rs.recomputed_resnorm == pytest.approx(rs.resnorm, rel=1e-5)
    assert rs.stored.status == "not stored"
    # without the frequencies array they come from metadata
    meta = new_metadata(script="test", circuit={"freq_min": 2.0, "freq_max": 20_000.0, "n_frequencies": 25})
    bare = _rewrite(res.path, tmp_path / "nofreq.npz", drop=("frequencies",), metadata=meta)
    rb = row_spectrum(bare, 2)
    assert rb.frequency_source == "metadata"
    np.testing.assert_allclose(rb.frequencies, model.frequencies(2.0, 20_000.0, 25))
    assert rb.reference_source == "default"
    # nothing at all: SPEC defaults
    none = _rewrite(res.path, tmp_path / "none.npz", drop=("frequencies",))
    rn = row_spectrum(none, 1)
    assert rn.frequency_source == "default" and rn.frequencies.shape == (100,)
    # an explicit reference wins
    ra = row_spectrum(res.path, 1, reference=model.DEFAULT_REFERENCE)
    assert ra.reference_source == "argument" and ra.recomputed_resnorm != pytest.approx(ra.resnorm, rel=1e-3)


def test_deep_deflated_rows_are_not_inflated_for_the_check(tmp_path):
    res = compute_grid(ComputeConfig(grid_size=3, n_frequencies=30, compress=True), tmp_path)
    rs = row_spectrum(res.path, 200, max_inflate_bytes=10_000)
    assert rs.stored.status == "skipped" and "deflated" in rs.stored.detail
    assert row_spectrum(res.path, 2, max_inflate_bytes=10_000).stored.status == "agrees"
    assert row_spectrum(res.path, 200).stored.status == "agrees"  # default budget covers it


def test_rank_from_row_on_an_unsorted_file(compat_dir, tmp_path):
    perm = np.random.default_rng(1).permutation(3125)

    def shuffle(a):
        for k in ("parameters", "resnorms", "spectrum"):
            a[k] = a[k][perm]

    path = _rewrite(compat_dir / "sample_grid_5_test.npz", tmp_path / "s.npz", shuffle)
    where = int(np.flatnonzero(perm == 10)[0])  # original rank 11 (no tie at 10/11 in the fixture)
    by_row = row_spectrum(path, row=where)
    assert by_row.rank == 11 and by_row.stored.status == "agrees"
    by_rank = row_spectrum(path, 11)
    assert by_rank.row == where
    with pytest.raises(ValueError):
        row_spectrum(path)
    with pytest.raises(IndexError):
        row_spectrum(path, row=3125)
