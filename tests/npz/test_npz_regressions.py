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


# -- the restricted unpickler: numpy state, hidden integers, amplification ----------------------
# Allowing numpy's reconstruction globals let a pickle hand `ndarray.__setstate__` a
# shape that disagrees with its data: numpy then reads past the end of the item list
# (a 2-element list with shape (2**28,) is a segfault). dtype `__setstate__` accepted
# field offsets beyond the itemsize (reading such a scalar segfaults). `bytes()` was
# bounded only for Python ints, so `bytes(numpy.int64(10**10))` allocated 10 GB, and
# nothing bounded the *total* built by many small allowed calls.


def _run_isolated(code: str, *, mem_limit: int | None = None, timeout: int = 60):
    """Run code in a child (a segfault there must not take pytest down)."""
    import subprocess
    import sys
    import textwrap

    prelude = ""
    if mem_limit:
        prelude = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({mem_limit}, {mem_limit}))\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
    )


def _object_array_pickle_with_shape(shape_opcodes: bytes) -> bytes:
    import pickle

    arr = np.empty((2,), dtype=object)
    arr[0], arr[1] = 1, 2
    raw = pickle.dumps(arr, protocol=2)
    assert raw.count(b"K\x02\x85") == 1  # the (2,) shape inside the state tuple
    return raw.replace(b"K\x02\x85", shape_opcodes)


@pytest.mark.parametrize("shape", [b"J\x00\x00\x00\x10\x85", b"K\x03\x85"])
def test_object_array_state_with_a_wrong_shape_is_refused(shape):
    payload = _object_array_pickle_with_shape(shape)
    done = _run_isolated(
        f"""
        from npztui.npz.safe_pickle import safe_loads, PickleLimitError
        import pickle
        try:
            value = safe_loads({payload!r})
        except (PickleLimitError, pickle.UnpicklingError) as exc:
            print("refused")
        else:
            print("decoded", repr(value)[:80])
        """
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-1500:])
    assert done.stdout.strip() == "refused"


def test_dtype_state_with_fields_outside_the_item_is_refused(fab):
    P = fab.P
    fields = (
        P.EMPTY_DICT
        + P.uni("a") + P.call("numpy", "dtype", P.uni("f4"), P.NEWFALSE, P.NEWTRUE) + P.int_(0) + P.TUPLE2 + P.SETITEM
        + P.uni("b") + P.call("numpy", "dtype", P.uni("f8"), P.NEWFALSE, P.NEWTRUE) + P.int_(1 << 30) + P.TUPLE2 + P.SETITEM
    )
    state = P.MARK + P.int_(3) + P.uni("|") + P.NONE + P.uni("a") + P.uni("b") + P.TUPLE2 + fields + P.int_(12) + P.int_(1) + P.int_(0) + P.TUPLE
    bad_dtype = P.call("numpy", "dtype", P.uni("V12"), P.NEWFALSE, P.NEWTRUE) + state + P.BUILD
    payload = P.program(
        P.EMPTY_DICT + P.uni("x") + P.call("numpy._core.multiarray", "scalar", bad_dtype, P.byt(bytes(12))) + P.SETITEM
    )
    done = _run_isolated(
        f"""
        from npztui.npz.safe_pickle import safe_loads, PickleLimitError, UnsafePickleError
        from npztui.npz.metadata import to_jsonable
        import pickle
        try:
            value = safe_loads({payload!r})
            print("decoded", to_jsonable(value))
        except (PickleLimitError, pickle.UnpicklingError, UnsafePickleError) as exc:
            print("refused")
        """
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-1500:])
    assert done.stdout.strip() == "refused"


def test_bytes_of_a_numpy_integer_is_bounded(fab):
    P = fab.P
    big = P.call(
        "numpy._core.multiarray", "scalar",
        P.call("numpy", "dtype", P.uni("i8"), P.NEWFALSE, P.NEWTRUE),
        P.byt((10**10).to_bytes(8, "little")),
    )
    payload = P.program(P.call("builtins", "bytes", big))
    done = _run_isolated(
        f"""
        from npztui.npz.safe_pickle import safe_loads, PickleLimitError
        try:
            safe_loads({payload!r})
        except PickleLimitError as exc:
            print("refused:", exc)
        """,
        mem_limit=2 << 30,
    )
    assert done.returncode == 0, done.stderr[-1500:]
    assert done.stdout.startswith("refused:") and "over the limit" in done.stdout


def test_many_small_allowed_calls_are_bounded_in_total(fab):
    import tracemalloc

    from npztui.npz.safe_pickle import PickleLimitError, safe_loads

    P = fab.P
    four_mib = P.call("builtins", "bytes", P.int_(4 << 20)) + P.put(1)
    body = P.EMPTY_LIST + P.put(0) + four_mib + P.POP
    for _ in range(100):  # 100 x list(4 MiB of zeros): 3.2 GB of list slots if unbounded
        body += P.get(0) + P.call("builtins", "list", P.get(1)) + P.APPEND
    tracemalloc.start()
    try:
        with pytest.raises(PickleLimitError):
            safe_loads(P.program(body))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 300 << 20


def test_str_of_a_shared_structure_is_refused(fab):
    from npztui.npz.safe_pickle import PickleLimitError, safe_loads

    P = fab.P
    # L0 = list(bytes(1 MiB)); L1 = [L0]*64 (shared); str(L1) would be ~200 MB of text
    body = P.call("builtins", "list", P.call("builtins", "bytes", P.int_(1 << 20))) + P.put(0) + P.POP
    body += P.EMPTY_LIST + P.put(1) + P.POP
    for _ in range(64):
        body += P.get(1) + P.get(0) + P.APPEND + P.POP
    body += P.call("builtins", "str", P.get(1))
    with pytest.raises(PickleLimitError):
        safe_loads(P.program(body))


def test_plain_numpy_values_still_decode(fab):
    import collections
    import datetime
    import pickle

    from npztui.npz.safe_pickle import safe_loads

    value = {
        "f32": np.float32(1.5), "i64": np.int64(-3), "c": np.complex64(1 + 2j), "b": np.bool_(True),
        "arr": np.arange(6, dtype=">i2").reshape(2, 3), "objs": np.array([1, "a", None], dtype=object),
        "rec": np.zeros(2, dtype=[("x", "<f4"), ("y", "S3", (2,))]), "when": datetime.datetime(2024, 1, 2, 3, 4, 5),
        "od": collections.OrderedDict(a=1), "set": {1, 2}, "fs": frozenset("ab"), "by": b"\x00\xff",
        "dt": np.datetime64("2024-01-02T03:04", "ns"), "u": np.str_("ünï"), "s": np.array("text"),
    }
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps(value, protocol=protocol)
        got = safe_loads(data)
        reference = pickle.loads(data)  # our own pickle: the standard unpickler is the oracle
        assert set(got) == set(value)
        for key, want in reference.items():
            have = got[key]
            if isinstance(want, np.ndarray):
                assert type(have) is np.ndarray or isinstance(have, np.ndarray)
                assert have.dtype == want.dtype and have.shape == want.shape
                assert have.tobytes() == want.tobytes() or want.dtype.hasobject and have.tolist() == want.tolist()
            else:
                assert have == want and type(have) is type(want), (key, protocol)


# -- a FIFO (or device) passed as a file must not block -------------------------------------------
# open(path, "rb") on a named pipe blocks until a writer appears: `info some.npz` on a FIFO
# hung forever (and so would a TUI worker). The file is now opened non-blocking and
# anything that is not a regular file is NOT_NPZ before a byte is read.


@pytest.mark.parametrize("call", ["inspect", "fingerprint"])
def test_fifo_is_not_npz_and_never_hangs(tmp_path, call):
    import os
    import subprocess
    import sys

    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    code = (
        f"from npztui.npz.reader import {call}\n"
        f"try:\n    {call}({str(fifo)!r})\n"
        "except Exception as e:\n    print(getattr(e, 'code', type(e).__name__), getattr(e, 'message', ''))\n"
    )
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{call}() blocked on a FIFO")
    assert done.stdout.startswith("NOT_NPZ"), done.stdout + done.stderr


def test_character_device_is_not_npz():
    from npztui.npz.reader import inspect

    with pytest.raises(Exception) as exc:
        inspect("/dev/zero")  # an endless stream: must be refused, not read
    assert exc.value.code == "NOT_NPZ"


# -- a member whose name is empty -----------------------------------------------------------
# zipfile cuts names at a NUL byte, so a name starting with NUL is "": ZipInfo.is_dir()
# indexes filename[-1] and raised IndexError, an untyped crash on listing (found by the
# fuzz test in test_npz_safety.py).


def test_member_with_an_empty_name_is_listed_not_a_crash(fab, tmp_path):
    raw = fab.npy_bytes(np.arange(3))
    path = fab.zip_members(tmp_path / "nul.npz", {"a.npy": raw, "\x00hidden.npy": raw})
    info = inspect(path)
    assert "a" in info.names
    assert len(info.arrays) + len(info.other_members) == 2


# -- integers too large for a float in metadata ---------------------------------------------------
# JSON allows integers of up to 4300 digits; float(10**400) raises OverflowError, which
# escaped from as_int / values_equal / the nphotons, freq and best_resnorm rules and
# aborted `check` for every file given (exit 1, "OverflowError: int too large").


def test_huge_integers_in_metadata_are_findings_not_crashes(tmp_path):
    from npztui.npz import checks, kinds
    from npztui.npz.metadata import discover
    from npztui.npz.writer import write_npz

    big = 10**400
    ptycho = write_npz(
        tmp_path / "p.npz",
        {"diffraction": np.ones((4, 8, 8), "<f4"), "xcoords": np.arange(4.0)},
        metadata={"schema_version": "1.0.0", "physics_parameters": {"nphotons": big, "N": big, "gridsize": big}},
    )
    circuit = write_npz(
        tmp_path / "c.npz",
        {"parameters": np.ones((4, 5), "<f4"), "resnorms": np.arange(4, dtype="<f4"), "frequencies": np.arange(1, 6, dtype="<f4")},
        metadata={"schema_version": "1.0.0", "circuit": {"grid_size": big, "freq_min": big, "best_resnorm": -big,
                                                          "n_frequencies": big, "n_parameter_sets": big}},
    )
    found = {}
    datas = []
    for path in (ptycho, circuit):
        with NpzReader(path) as r:
            meta = discover(r)
            datas.append((str(path), meta.data))
            found[path.stem] = {f.code for f in checks.intrinsic(r, meta, kinds.detect_kind(r.info))}
            found[path.stem] |= {f.code for f in checks.compare(meta.data, {"nphotons": 1e9, "grid_size": 5})}
    assert {"PTY_N_SHAPE", "PTY_GRIDSIZE", "EXPECT_MISMATCH"} <= found["p"]
    assert {"CIRC_ROWS", "CIRC_FREQS", "CIRC_BEST_RESNORM", "EXPECT_MISMATCH"} <= found["c"]
    assert checks.as_int(big) == big and checks.as_int(float(2**60)) == 2**60
    assert checks.values_equal(big, big) and not checks.values_equal(big, 1e9)
    checks.values_equal(big, float("inf"))  # must not raise
    out = checks.consistency(datas, ["nphotons"])
    assert all(f.code == "SET_INCONSISTENT" for fs in out.values() for f in fs)


def test_integers_too_large_to_print_do_not_crash_messages_or_json(tmp_path):
    import json

    from npztui.npz import checks, kinds
    from npztui.npz.metadata import discover
    from npztui.npz.writer import write_npz

    giant = 10**4000  # JSON parses it; str(giant**2) exceeds Python's 4300-digit limit
    path = write_npz(
        tmp_path / "g.npz",
        {"diffraction": np.ones((4, 8, 8, 4), "<f4"), "parameters": np.ones((4, 5), "<f4")},
        metadata={"schema_version": "1.0.0", "physics_parameters": {"gridsize": giant, "N": giant}},
    )
    circuit = write_npz(
        tmp_path / "c.npz",
        {"parameters": np.ones((4, 5), "<f4"), "resnorms": np.arange(4, dtype="<f4")},
        metadata={"schema_version": "1.0.0", "circuit": {"grid_size": giant}},
    )
    for p in (path, circuit):
        with NpzReader(p) as r:
            meta = discover(r)
            found = checks.intrinsic(r, meta, kinds.detect_kind(r.info))
            found += checks.compare(meta.data, {"gridsize": 2, "grid_size": 5})
        assert found
        for f in found:
            assert len(f.message) < 500 and "\n" not in f.message
            json.dumps(f.to_json())


def test_values_equal_keeps_distinct_huge_integers_distinct():
    from npztui.npz import checks

    assert not checks.values_equal(10**400, 10**401)
    assert checks.values_equal(10**400, 10**400)
    assert not checks.values_equal(10**400, float("inf"))
    assert checks.values_equal(float("inf"), float("inf"))
    assert checks.fmt(10**400) == "a 401-digit integer" and checks.fmt(10**20) == "1e+20"


# -- pickled metadata holding an integer too long to print --------------------------------------
# A pickle stores integers in binary, so a legacy metadata dict can carry 10**5000;
# to_jsonable kept it and `info --json` / `meta show` crashed in json.dumps
# ("Exceeds the limit (4300 digits) for integer string conversion").


def test_pickled_giant_integer_metadata_stays_printable(fab, tmp_path):
    import json

    arr = np.empty((), dtype=object)
    arr[()] = {"grid_size": 5, "n": 10**5000, "nested": [10**5000]}
    path = fab.zip_members(
        tmp_path / "g.npz",
        {"x.npy": fab.npy_bytes(np.arange(2)), "metadata.npy": fab.npy_bytes(arr, allow_pickle=True)},
    )
    from npztui.npz.metadata import discover

    with NpzReader(path) as r:
        meta = discover(r)
    assert meta.found and meta.data["grid_size"] == 5
    text = json.dumps(meta.data)
    assert "digit integer" in text



# -- the metadata size limit is named in the message as configured --------------------------------
# The message divided the limit by 1 MiB, so any limit under 1 MiB read
# "larger than the 0 MiB metadata limit".


def test_metadata_limit_message_names_the_limit(fab, tmp_path):
    from npztui.npz.metadata import discover
    from npztui.npz.reader import Limits

    text = '{"a": "' + "x" * 10_000 + '"}'
    path = fab.zip_members(tmp_path / "m.npz", {"x.npy": fab.npy_bytes(np.arange(2)), "_metadata.npy": fab.npy_bytes(np.array(text))})
    with NpzReader(path, Limits(max_metadata_bytes=4096)) as r:
        meta = discover(r)
    assert [f.code for f in meta.findings] == ["META_INVALID"]
    assert "4.0 KiB" in meta.findings[0].message and "0 MiB" not in meta.findings[0].message
    with NpzReader(path, Limits(max_metadata_bytes=16 << 20)) as r:
        assert discover(r).found


# -- dtypes whose items take no bytes ------------------------------------------------------------
# np.load reads arrays of an empty structured dtype, '|V0' or a zero-length subarray
# field; every read path here crashed with an untyped ValueError from np.frombuffer
# ("itemsize cannot be zero").


@pytest.mark.parametrize("dtype", [np.dtype([]), np.dtype("V0"), np.dtype([("a", "<f8", (0,))])], ids=["empty-struct", "V0", "zero-subarray"])
@pytest.mark.parametrize("method", ["stored", "deflated"])
def test_zero_itemsize_arrays_read_like_np_load(fab, tmp_path, dtype, method):
    arr = np.zeros((3, 2), dtype=dtype)
    path = fab.zip_members(tmp_path / "z.npz", {"a.npy": fab.npy_bytes(arr)}, method)
    with np.load(path) as z:
        want = z["a"]
    with NpzReader(path) as r:
        for got in (r.read("a"), r.read("a", rows=slice(0, 3)), r.read_rows("a", [0, 1, 2]),
                    np.concatenate([c for _, c in r.iter_rows("a")])):
            assert got.shape == want.shape and got.dtype == want.dtype
        assert r.read("a", rows=slice(1, 2)).shape == (1, 2)


# -- ptycho arrays with fewer dimensions than the rules assume ----------------------------------
# A 1-d probeGuess got PTY_ARRAY_SHAPES, then the objectGuess comparison indexed
# probe.shape[-2] and raised IndexError, aborting `check` for every file given.


def test_low_dimensional_ptycho_arrays_are_findings_not_crashes(tmp_path):
    from npztui.npz import checks, kinds
    from npztui.npz.metadata import discover
    from npztui.npz.writer import write_npz

    meta = {"schema_version": "1.0.0", "physics_parameters": {"nphotons": 1e9, "N": 8, "gridsize": 1}}
    cases = {
        "probe-1d": {"probeGuess": np.ones(8, "<c8"), "objectGuess": np.ones((32, 32), "<c8")},
        "probe-0d": {"probeGuess": np.array(1j, "<c8"), "objectGuess": np.ones((32, 32), "<c8")},
        "object-1d": {"probeGuess": np.ones((8, 8), "<c8"), "objectGuess": np.ones(32, "<c8")},
        "y-1d-coords-0d": {"Y": np.ones(3, "<c8"), "xcoords": np.array(1.0)},
    }
    for name, extra in cases.items():
        path = write_npz(tmp_path / f"{name}.npz", {"diffraction": np.ones((4, 8, 8), "<f4"), **extra}, metadata=meta)
        with NpzReader(path) as r:
            found = checks.intrinsic(r, discover(r), kinds.detect_kind(r.info))
        assert {f.code for f in found} & {"PTY_ARRAY_SHAPES", "PTY_COORDS_LEN"}, name
