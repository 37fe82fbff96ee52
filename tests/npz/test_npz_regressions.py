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


# -- the header size limit counts characters, as numpy does ------------------------------------
# np.load compares len(decoded header) with max_header_size; for a version 3.0 (UTF-8)
# header with non-ASCII field names the byte length is larger, and the reader refused
# headers numpy itself accepts.


def test_utf8_header_limit_counts_characters_like_np_load(fab, tmp_path):
    arr = np.zeros(2, dtype=[("名" * 3500, "<f8")])
    raw = fab.npy_bytes(arr)
    assert raw[6:8] == b"\x03\x00"
    hlen = int.from_bytes(raw[8:12], "little")
    assert hlen > 10_000  # bytes
    bare = tmp_path / "long.npy"
    bare.write_bytes(raw)
    want = np.load(bare)  # numpy accepts: the header is < 10 000 characters
    for path in (bare, fab.zip_members(tmp_path / "long.npz", {"a.npy": raw}, "deflated")):
        a = inspect(path).arrays[0]
        assert a.dtype == want.dtype and a.shape == (2,)


def test_header_over_the_limit_in_characters_is_refused_like_np_load(fab, tmp_path):
    arr = np.zeros(2, dtype=[("a" * 10_100, "<f8")])
    raw = fab.npy_bytes(arr)
    bare = tmp_path / "huge.npy"
    bare.write_bytes(raw)
    with pytest.raises(ValueError, match="Header info length"):
        np.load(bare)
    with pytest.raises(Exception) as exc:
        inspect(bare)
    assert getattr(exc.value, "code", None) == "CORRUPT"
    assert "limit" in str(exc.value)
