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


# -- bzip2 / lzma members are inflated with a bound ----------------------------------------------
# zipfile inflates bzip2 and lzma members without a max_length: one 4 KiB read of a
# bzip2 stream of zeros expands to gigabytes, so `info` on a 300-byte bzip2 bomb
# allocated hundreds of MiB (listing must never decompress array data). lzma errors
# also escaped as raw `_lzma.LZMAError` instead of a typed CORRUPT.


def _peak_bytes(fn) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        try:
            fn()
        except Exception as exc:  # the outcome is asserted by the caller; here only memory
            if not getattr(exc, "code", None):
                raise
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def bzip2_zeros(fab):
    n = 64 << 20
    header = fab.npy_header((n,))
    return fab.zeros_member("bzip2", n, header), header, n


def test_bzip2_bomb_is_listed_without_inflating_the_data(fab, tmp_path, bzip2_zeros):
    (data, crc, size), _, n = bzip2_zeros
    assert len(data) < 1000  # 64 MiB of zeros in a few hundred bytes
    path = fab.raw_zip(tmp_path / "bz.npz", [("bomb.npy", "bzip2", data, crc, size)])
    peak = _peak_bytes(lambda: inspect(path))
    assert peak < 8 << 20
    a = inspect(path).array("bomb")
    assert a.shape == (n,) and a.compression == "bzip2"
    with NpzReader(path) as r:
        assert r.read("bomb", rows=slice(0, 10)).tolist() == [0] * 10
        with pytest.raises(Exception) as exc:
            r.read("bomb", max_bytes=1 << 20)
        assert exc.value.code == "TOO_LARGE"


def test_bzip2_member_lying_about_its_size_stays_bounded(fab, tmp_path):
    import zlib

    header = fab.npy_header((16,))
    # the stream inflates to 32 MiB, the zip entry claims header + 16 bytes
    data, _, _ = fab.zeros_member("bzip2", 32 << 20, header)
    claimed = header + bytes(16)
    path = fab.raw_zip(tmp_path / "lie.npz", [("a.npy", "bzip2", data, zlib.crc32(claimed), len(claimed))])
    assert _peak_bytes(lambda: inspect(path)) < 8 << 20

    def read_all():
        with NpzReader(path) as r:
            assert r.read("a").tolist() == [0] * 16

    assert _peak_bytes(read_all) < 8 << 20


@pytest.mark.parametrize("method", ["bzip2", "lzma", "deflated"])
def test_corrupt_compressed_member_is_a_typed_error(fab, tmp_path, method):
    arr = np.arange(4000, dtype="<f8")
    good = fab.zip_members(tmp_path / "good.npz", {"a.npy": fab.npy_bytes(arr)}, method)
    blob = bytearray(good.read_bytes())
    start = blob.index(b"a.npy") + len(b"a.npy")
    # damage the compressed payload well past the local header (keep sizes intact)
    for i in range(start + 40, start + 120):
        blob[i] ^= 0x5A
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(blob))
    try:
        reader = NpzReader(bad)
    except Exception as exc:  # damaged where the header lives: typed error at open
        assert getattr(exc, "code", None) in ("CORRUPT", "TRUNCATED"), repr(exc)
        return
    with reader as r:
        with pytest.raises(Exception) as exc:
            r.read("a")
        assert getattr(exc.value, "code", None) in ("CORRUPT", "TRUNCATED"), repr(exc.value)


@pytest.mark.parametrize("method", ["bzip2", "lzma"])
def test_corrupt_header_bytes_of_compressed_member_are_typed(fab, tmp_path, method):
    arr = np.arange(100, dtype="<f8")
    packed = fab.npy_bytes(arr)
    good = fab.zip_members(tmp_path / "g.npz", {"a.npy": packed}, method)
    blob = bytearray(good.read_bytes())
    start = blob.index(b"a.npy") + len(b"a.npy")
    for i in range(start + 4, start + 24):
        blob[i] ^= 0xFF
    bad = tmp_path / "b.npz"
    bad.write_bytes(bytes(blob))
    with pytest.raises(Exception) as exc:
        inspect(bad)
    assert getattr(exc.value, "code", None) in ("CORRUPT", "TRUNCATED"), repr(exc.value)


@pytest.mark.parametrize("method", ["deflated", "bzip2", "lzma"])
def test_bad_crc_on_a_full_read_is_corrupt(fab, tmp_path, method):
    arr = np.arange(1000, dtype="<i4")
    raw = fab.npy_bytes(arr)
    good = fab.zip_members(tmp_path / "c.npz", {"a.npy": raw}, method)
    with NpzReader(good) as r:
        np.testing.assert_array_equal(r.read("a"), arr)
    data = good.read_bytes()
    import zipfile

    with zipfile.ZipFile(good) as z:
        zi = z.getinfo("a.npy")
        comp = data[zi.header_offset + 30 + len("a.npy"):][: zi.compress_size]
    path = fab.raw_zip(tmp_path / "crc.npz", [("a.npy", method, comp, zi.CRC ^ 1, zi.file_size)])
    with NpzReader(path) as r:
        np.testing.assert_array_equal(r.read("a", rows=slice(0, 10)), arr[:10])  # partial: no CRC yet
        with pytest.raises(Exception) as exc:
            r.read("a")
        assert exc.value.code == "CORRUPT" and "CRC" in exc.value.message


# -- read_rows on stored members reads through the open file, not a new mmap of the path ------
# It memory-mapped `self.path` again: a file deleted after listing raised a raw
# FileNotFoundError, and a file truncated in place by a producer rewriting it
# (np.savez writes in place) raised a raw ValueError from mmap (and a mapping that
# outlives a truncation turns row access into SIGBUS). Rows are now read with
# positioned reads on the already-open file; short reads are TRUNCATED.


def test_read_rows_after_the_file_vanished(fab, tmp_path):
    arr = np.arange(40, dtype="<f4").reshape(10, 4)
    path = fab.zip_members(tmp_path / "v.npz", {"a.npy": fab.npy_bytes(arr)})
    with NpzReader(path) as r:
        path.unlink()
        np.testing.assert_array_equal(r.read_rows("a", [9, 0, 3, 3]), arr[[9, 0, 3, 3]])
        np.testing.assert_array_equal(r.read("a", rows=slice(2, 4)), arr[2:4])


def test_read_rows_on_a_file_truncated_in_place_is_a_typed_error(fab, tmp_path):
    import subprocess
    import sys
    import textwrap

    arr = np.arange(1 << 16, dtype="<f8").reshape(-1, 64)
    path = fab.zip_members(tmp_path / "t.npz", {"a.npy": fab.npy_bytes(arr)})
    script = textwrap.dedent(
        f"""
        import os
        from npztui.npz.reader import NpzReader
        from npztui.npz.errors import NpzError
        with NpzReader({str(path)!r}) as r:
            os.truncate({str(path)!r}, 4096)
            try:
                r.read_rows("a", [0, 1000])
            except NpzError as exc:
                print("typed", exc.code)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == "typed TRUNCATED"


@pytest.mark.parametrize("order", ["C", "F"])
def test_read_rows_stored_matches_fancy_indexing(fab, tmp_path, order):
    arr = np.asarray(np.arange(7 * 3 * 2, dtype=">i8").reshape(7, 3, 2), order=order)
    path = fab.zip_members(tmp_path / "s.npz", {"a.npy": fab.npy_bytes(arr)})
    idx = [6, 0, 0, 3, 4, 5, 1, 6]
    with NpzReader(path) as r:
        got = r.read_rows("a", idx)
        assert got.dtype.str == ">i8"
        np.testing.assert_array_equal(got, arr[idx])
        assert r.read_rows("a", []).shape == (0, 3, 2)


# -- the member limit applies to the members actually present ---------------------------------
# Only the count claimed by the end-of-central-directory record was checked; zipfile
# ignores that count, so a file claiming 1 member while holding thousands got past
# `max_members` and every member was inspected.


def _forge_eocd_count(path, count: int) -> None:
    blob = bytearray(path.read_bytes())
    at = blob.rindex(b"PK\x05\x06")
    blob[at + 8 : at + 12] = count.to_bytes(2, "little") * 2
    path.write_bytes(bytes(blob))


def test_member_limit_counts_real_entries_not_the_claimed_count(fab, tmp_path):
    from npztui.npz.reader import Limits

    members = {f"m{i}.npy": fab.npy_bytes(np.arange(3)) for i in range(40)}
    path = fab.zip_members(tmp_path / "many.npz", members)
    limits = Limits(max_members=16)
    with pytest.raises(Exception) as honest:
        inspect(path, limits)
    assert honest.value.code == "TOO_LARGE"
    _forge_eocd_count(path, 1)
    with pytest.raises(Exception) as forged:
        inspect(path, limits)
    assert forged.value.code == "TOO_LARGE", repr(forged.value)
    assert len(inspect(path).arrays) == 40  # within the default limit it is fine


# -- JSON metadata that Python's json rejects with a plain ValueError ---------------------------
# An integer literal longer than Python's 4300-digit limit makes json.loads raise a
# ValueError that is not a JSONDecodeError (no `.msg`); discovery crashed with
# AttributeError instead of reporting META_INVALID.


def test_json_metadata_with_a_huge_integer_is_meta_invalid(fab, tmp_path):
    from npztui.npz.metadata import discover

    text = '{"nphotons": ' + "9" * 5000 + "}"
    path = fab.zip_members(
        tmp_path / "bigint.npz",
        {"x.npy": fab.npy_bytes(np.arange(3)), "_metadata.npy": fab.npy_bytes(np.array(text))},
    )
    with NpzReader(path) as r:
        meta = discover(r)
    assert not meta.found
    assert [f.code for f in meta.findings] == ["META_INVALID"]
    assert "\n" not in meta.findings[0].message


# -- circuit files whose resnorms are not 1-d -------------------------------------------------
# CIRC_ROWS was reported, then the ascending-order scan compared whole rows and
# crashed with "truth value of an array is ambiguous".


def test_circuit_resnorms_with_two_columns_give_findings_not_a_crash(tmp_path):
    from npztui.npz import checks, kinds
    from npztui.npz.metadata import discover
    from npztui.npz.writer import write_npz

    path = write_npz(
        tmp_path / "c.npz",
        {"parameters": np.ones((4, 5), "<f4"), "resnorms": np.ones((4, 2), "<f4")},
        metadata={"schema_version": "1.0.0", "circuit": {"grid_size": 2, "best_resnorm": 1.0}},
    )
    with NpzReader(path) as r:
        kind = kinds.detect_kind(r.info)
        assert kind == kinds.CIRCUIT
        found = checks.intrinsic(r, discover(r), kind, deep=True)
    codes = [f.code for f in found]
    assert "CIRC_ROWS" in codes


# -- a file without metadata gets META_MISSING -----------------------------------------------
# The rule was emitted as "METAMISSING", which is not in the rule table: Finding.make
# raised KeyError, so `check` crashed on every legacy file instead of warning.


def test_legacy_file_without_metadata_is_meta_missing(fab):
    from npztui.npz import checks, kinds
    from npztui.npz.metadata import discover

    with NpzReader(fab.COMPAT / "ptycho_legacy_no_metadata.npz") as r:
        found = checks.intrinsic(r, discover(r), kinds.detect_kind(r.info))
    assert [(f.code, f.severity) for f in found] == [("META_MISSING", "warning")]
