"""Regression tests for bugs found while testing the format layer (one section per fix)."""

from __future__ import annotations

import numpy as np
import pytest

from npztui.npz.reader import NpzReader, inspect


# -- .npy headers written by Python 2 numpy (`3L` longs) -------------------------------------
# np.load accepts them (with a warning) by filtering the `L` suffixes; the reader refused
# them as corrupt, so legacy files written on Python 2 could not even be listed.


@pytest.mark.parametrize("version", [(1, 0), (2, 0)])
def test_python2_long_suffix_headers_are_read_like_np_load(fab, tmp_path, version):
    payload = np.arange(6, dtype="<f8").tobytes()
    raw = fab.raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 3L), }", payload, version)
    bare = tmp_path / "py2.npy"
    bare.write_bytes(raw)
    with pytest.warns(UserWarning, match="Python 2"):
        want = np.load(bare)
    a = inspect(bare).arrays[0]
    assert (a.shape, a.dtype.str, a.fortran_order) == (want.shape, want.dtype.str, False)
    path = fab.zip_members(tmp_path / "py2.npz", {"a.npy": raw}, "deflated")
    with NpzReader(path) as r:
        assert r.info.array("a").shape == (2, 3)
        np.testing.assert_array_equal(r.read("a"), want)


def test_version_3_headers_still_refuse_python2_longs(fab, tmp_path):
    raw = fab.raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2L,), }", bytes(16), (3, 0))
    (tmp_path / "v3.npy").write_bytes(raw)
    with pytest.raises(ValueError):
        np.load(tmp_path / "v3.npy")
    with pytest.raises(Exception) as exc:
        inspect(tmp_path / "v3.npy")
    assert getattr(exc.value, "code", None) == "CORRUPT"
