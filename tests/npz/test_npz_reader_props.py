"""Property-based: the header-only reader agrees with `np.load` on everything numpy writes.

Arrays of many dtypes (every integer/float/complex size, both byte orders,
unicode, bytes, datetimes, nested structured dtypes), shapes with 0-d and
zero-length axes, C and fortran order, awkward member names, every zip
compression method and `.npy` format versions 1.0/2.0/3.0 are written into zips
(with `zipfile` directly, and with `np.savez`/`np.savez_compressed`), then
`inspect()` and every read path are compared with `np.load`.
"""

from __future__ import annotations

import io
import tempfile
import warnings
import zipfile
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npztui.npz.errors import CorruptError, NpzError, RefusedError
from npztui.npz.reader import NpzReader, inspect

METHODS = ("stored", "deflated", "bzip2", "lzma")

PROPS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- strategies -----------------------------------------------------------------

_scalar = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="?", sizes=(8, 16, 32, 64)),
    hnp.unsigned_integer_dtypes(endianness="?", sizes=(8, 16, 32, 64)),
    hnp.floating_dtypes(endianness="?", sizes=(16, 32, 64)),
    hnp.complex_number_dtypes(endianness="?", sizes=(64, 128)),
    hnp.unicode_string_dtypes(endianness="?", min_len=1, max_len=6),
    hnp.byte_string_dtypes(endianness="?", min_len=1, max_len=6),
    hnp.datetime64_dtypes(endianness="?", max_period="D", min_period="ns"),
    hnp.timedelta64_dtypes(endianness="?", max_period="h", min_period="us"),
)
_field_name = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=6
)
_nested = hnp.nested_dtypes(subtype_strategy=_scalar, max_leaves=5, max_itemsize=256)
dtypes = st.one_of(_scalar, _scalar, _nested)

_member_name = st.one_of(
    st.sampled_from(["a", "x/y", "dir/sub/arr", "rows[0]", "w[1:2]", "with space", "ünï", "名前", "_metadata2"]),
    st.lists(st.text(alphabet="abcXYZ019_[]-.", min_size=1, max_size=5), min_size=1, max_size=3).map("/".join),
)


@st.composite
def arrays(draw, dtype_strategy=dtypes, max_dims=3):
    dtype = draw(dtype_strategy)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=5))
    arr = draw(hnp.arrays(dtype, shape))
    if arr.ndim >= 2 and draw(st.booleans()):
        arr = np.asfortranarray(arr)
    return arr


@st.composite
def npz_specs(draw):
    """[(member name, array, compression, forced .npy version or None)]"""
    names = draw(st.lists(_member_name, min_size=1, max_size=4, unique=True))
    out = []
    for name in names:
        arr = draw(arrays())
        method = draw(st.sampled_from(list(METHODS)))
        version = draw(st.sampled_from([None, None, (1, 0), (2, 0), (3, 0)]))
        if version in ((1, 0), (2, 0)) and not _latin1_header(arr):
            version = None
        out.append((name, arr, method, version))
    return out


def _latin1_header(arr: np.ndarray) -> bool:
    try:
        repr(np.lib.format.header_data_from_array_1_0(arr)).encode("latin1")
        return True
    except UnicodeEncodeError:
        return False


# -- comparison helpers ------------------------------------------------------------


def _fortran(arr: np.ndarray) -> bool:
    return bool(arr.flags.f_contiguous and not arr.flags.c_contiguous)


def same(a: np.ndarray, b: np.ndarray) -> None:
    """Same dtype, shape and bytes (NaN payloads included)."""
    assert a.dtype == b.dtype and a.dtype.str == b.dtype.str
    assert a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def same_chunks(chunks: list[np.ndarray], want: np.ndarray) -> None:
    """Row chunks that stack up to `want` (np.concatenate would normalise byte order)."""
    for c in chunks:
        assert c.dtype == want.dtype and c.dtype.str == want.dtype.str
        assert c.shape[1:] == want.shape[1:]
    assert sum(len(c) for c in chunks) == want.shape[0]
    assert b"".join(c.tobytes() for c in chunks) == want.tobytes()


def check_against_np_load(path: Path, rng_seed: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.load(path, allow_pickle=False) as z:
            files = list(z.files)
            expected = {}
            for k in files:
                try:
                    expected[k] = z[k]
                except ValueError as exc:  # object arrays: numpy refuses without allow_pickle
                    assert "allow_pickle" in str(exc)
    info = inspect(path)
    assert info.names == files
    rng = np.random.default_rng(rng_seed)
    with NpzReader(path) as r:
        for name in files:
            a = info.array(name)
            if name not in expected:
                assert a.is_object
                with pytest.raises(RefusedError):
                    r.read(name)
                continue
            want = expected[name]
            assert a.shape == want.shape
            assert a.dtype == want.dtype and a.dtype.str == want.dtype.str
            assert a.fortran_order == _fortran(want) or want.ndim < 2 or want.size <= 1
            assert a.nbytes == want.nbytes
            assert a.to_json()["dtype"] == want.dtype.str
            got = r.read(name)
            same(got, want)
            if want.ndim:
                n = want.shape[0]
                start = int(rng.integers(0, n + 1))
                stop = int(rng.integers(start, n + 1))
                same(r.read(name, rows=slice(start, stop)), want[start:stop])
                same(r.read(name, rows=slice(-2, None)), want[-2:])
                idx = rng.integers(0, n, size=int(rng.integers(0, 6))) if n else np.array([], int)
                same(r.read_rows(name, idx), want[idx])
                chunk = int(rng.integers(1, 4))
                parts = list(r.iter_rows(name, chunk_rows=chunk))
                assert [p[0] for p in parts] == list(range(0, n, chunk))[: len(parts)]
                same_chunks([p[1] for p in parts], want)
            else:
                (start, only), = list(r.iter_rows(name))
                assert start == 0
                same(only, want)


# -- properties ---------------------------------------------------------------------


@PROPS
@given(spec=npz_specs(), seed=st.integers(0, 2**32 - 1))
def test_zipfile_written_members_agree_with_np_load(fab, spec, seed):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.npz"
        fab.zip_members(
            path,
            [(name + ".npy", fab.npy_bytes(arr, version=version), method) for name, arr, method, version in spec],
        )
        check_against_np_load(path, seed)
        info = inspect(path)
        for (name, arr, method, version), a in zip(spec, info.arrays):
            assert a.name == name and a.member == name + ".npy"
            assert a.compression == method
            assert a.compressed == (method != "stored")
            if version is not None:
                assert a.version == version


@PROPS
@given(
    members=st.dictionaries(_member_name, arrays(), min_size=1, max_size=4),
    compressed=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_np_savez_files_agree_with_np_load(fab, members, compressed, seed):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "s.npz"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Stored array in format 3.0"
            (np.savez_compressed if compressed else np.savez)(path, **members)
        check_against_np_load(path, seed)
        info = inspect(path)
        assert {a.compression for a in info.arrays} == {"deflated" if compressed else "stored"}


@PROPS
@given(arr=arrays(), version=st.sampled_from([None, (2, 0), (3, 0)]), seed=st.integers(0, 2**32 - 1))
def test_bare_npy_agrees_with_np_load(fab, arr, version, seed):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bare.npy"
        if version == (2, 0) and not _latin1_header(arr):
            version = None
        path.write_bytes(fab.npy_bytes(arr, version=version))
        want = np.load(path, allow_pickle=False)
        info = inspect(path)
        assert info.bare_npy and len(info.arrays) == 1
        a = info.arrays[0]
        assert a.name == "bare" and a.member is None and a.compression == "stored"
        assert a.shape == want.shape and a.dtype.str == want.dtype.str and a.dtype == want.dtype
        assert a.fortran_order == _fortran(want) or want.ndim < 2 or want.size <= 1
        with NpzReader(path) as r:
            same(r.read("bare"), want)
            if want.ndim:
                same(r.read("bare", rows=slice(1, None)), want[1:])
                idx = np.random.default_rng(seed).integers(0, max(want.shape[0], 1), size=3) if want.shape[0] else []
                same(r.read_rows("bare", idx), want[np.asarray(idx, dtype=int)])


# -- explicit cases the strategies might rarely hit ------------------------------------------


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
@pytest.mark.parametrize("method", list(METHODS))
def test_every_format_version_and_method(fab, tmp_path, version, method):
    arr = np.arange(24, dtype=">i4").reshape(2, 3, 4)
    path = fab.zip_members(tmp_path / "v.npz", [("a.npy", fab.npy_bytes(arr, version=version), method)])
    info = inspect(path)
    a = info.array("a")
    assert a.version == version and a.compression == method
    assert a.shape == (2, 3, 4) and a.dtype.str == ">i4"
    with NpzReader(path) as r:
        same(r.read("a"), arr)
        same(r.read("a", rows=slice(1, 2)), arr[1:2])
        same(r.read_rows("a", [1, 0, 1]), arr[[1, 0, 1]])


def test_unicode_field_name_makes_version_3_and_is_read(fab, tmp_path):
    dt = np.dtype([("αβ", "<f4"), ("名", [("x", ">i2"), ("y", "S3")], (2,))])
    arr = np.zeros(3, dt)
    arr["αβ"] = [1, 2, 3]
    arr["名"]["y"] = b"ab"
    data = fab.npy_bytes(arr)
    assert data[6:8] == b"\x03\x00"
    path = fab.zip_members(tmp_path / "u.npz", {"s.npy": data}, "deflated")
    check_against_np_load(path, 0)
    assert inspect(path).array("s").version == (3, 0)


def test_zero_length_axes_and_0d(fab, tmp_path):
    members = {
        "empty0.npy": fab.npy_bytes(np.zeros((0, 3), "<f8")),
        "empty1.npy": fab.npy_bytes(np.zeros((4, 0), "<f8")),
        "empty2.npy": fab.npy_bytes(np.zeros((0,), "U3")),
        "scalar.npy": fab.npy_bytes(np.array(3.5)),
        "s0.npy": fab.npy_bytes(np.array(b"abc")),
    }
    for method in ("stored", "deflated"):
        path = fab.zip_members(tmp_path / f"e_{method}.npz", members, method)
        check_against_np_load(path, 1)
        with NpzReader(path) as r:
            assert r.read_rows("empty1", [0, 3]).shape == (2, 0)
            assert list(r.iter_rows("empty0")) == []
            with pytest.raises(ValueError):
                r.read_rows("scalar", [0])
            assert r.read("scalar", rows=slice(0, 1)) == 3.5


def test_fortran_order_rows(fab, tmp_path):
    arr = np.asfortranarray(np.arange(60, dtype="<f8").reshape(5, 3, 4))
    for method in METHODS:
        path = fab.zip_members(tmp_path / f"f_{method}.npz", [("f.npy", fab.npy_bytes(arr), method)])
        a = inspect(path).array("f")
        assert a.fortran_order is True
        with NpzReader(path) as r:
            same(r.read("f"), arr)
            assert r.read("f").flags.f_contiguous
            same(r.read("f", rows=slice(1, 3)), arr[1:3])
            same(r.read_rows("f", [4, 0]), arr[[4, 0]])
            same_chunks([c for _, c in r.iter_rows("f", chunk_rows=2)], arr)


def test_names_without_npy_suffix_and_non_npy_members(fab, tmp_path):
    arr = np.arange(5, dtype="<i2")
    path = fab.zip_members(
        tmp_path / "n.npz",
        {"plain": fab.npy_bytes(arr), "notes.txt": b"hello", "sub/dir/a.npy": fab.npy_bytes(arr * 2)},
    )
    info = inspect(path)
    assert info.names == ["plain", "sub/dir/a"]
    assert info.other_members == ("notes.txt",)
    with np.load(path) as z:
        assert sorted(z.files) == ["notes.txt", "plain", "sub/dir/a"]
        same(z["plain"], arr)
    with NpzReader(path) as r:
        same(r.read("plain"), arr)
        same(r.read("sub/dir/a"), arr * 2)
        with pytest.raises(KeyError):
            r.read("notes.txt")


def test_dot_npy_member_that_is_not_npy_is_corrupt(fab, tmp_path):
    path = fab.zip_members(tmp_path / "bad.npz", {"a.npy": fab.npy_bytes(np.arange(3)), "b.npy": b"not an array"})
    with pytest.raises(CorruptError) as exc:
        inspect(path)
    assert "b.npy" in str(exc.value)


def test_object_arrays_are_listed_but_never_read(fab, tmp_path):
    obj = np.array([1, "two", None], dtype=object)
    path = fab.zip_members(tmp_path / "o.npz", {"o.npy": fab.npy_bytes(obj, allow_pickle=True), "x.npy": fab.npy_bytes(np.ones(2))})
    info = inspect(path)
    assert info.array("o").is_object and info.array("o").shape == (3,)
    with NpzReader(path) as r:
        for call in (lambda: r.read("o"), lambda: r.read("o", rows=slice(0, 1)),
                     lambda: r.read_rows("o", [0]), lambda: list(r.iter_rows("o"))):
            with pytest.raises(RefusedError) as exc:
                call()
            assert exc.value.code == "REFUSED" and "\n" not in exc.value.message


def test_row_slices_clip_and_refuse_steps(fab, tmp_path):
    arr = np.arange(20, dtype="<u2").reshape(10, 2)
    path = fab.zip_members(tmp_path / "r.npz", {"a.npy": fab.npy_bytes(arr)}, "deflated")
    with NpzReader(path) as r:
        same(r.read("a", rows=slice(8, 100)), arr[8:100])
        same(r.read("a", rows=slice(5, 2)), arr[5:2])
        same(r.read("a", rows=slice(-3, -1)), arr[-3:-1])
        with pytest.raises(ValueError):
            r.read("a", rows=slice(0, 10, 2))
        with pytest.raises(IndexError):
            r.read_rows("a", [10])
        with pytest.raises(IndexError):
            r.read_rows("a", [-1])
        with pytest.raises(KeyError):
            r.read("missing")


def test_duplicate_member_names_last_wins_like_np_load(fab, tmp_path):
    path = tmp_path / "dup.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("a.npy", fab.npy_bytes(np.arange(3)))
            z.writestr("a.npy", fab.npy_bytes(np.arange(5.0)))
    with np.load(path) as z:
        want = z["a"]
    assert inspect(path).names == ["a"]
    with NpzReader(path) as r:
        same(r.read("a"), want)


def test_savez_with_many_members_keeps_order(tmp_path):
    members = {f"m{i:03d}": np.full(i % 7, i, dtype="<i4") for i in range(150)}
    np.savez(tmp_path / "many.npz", **members)
    assert inspect(tmp_path / "many.npz").names == list(members)


def test_arrays_written_via_bytesio_roundtrip(fab):
    # parse_npy_header on numpy's own bytes for an awkward structured dtype.
    from npztui.npz.reader import parse_npy_header

    dt = np.dtype({"names": ["a", "b"], "formats": ["<i4", ">f8"], "offsets": [0, 8], "itemsize": 24})
    arr = np.zeros((2, 1), dt)
    raw = fab.npy_bytes(arr)
    version, hlen, shape, fortran, dtype = parse_npy_header(raw)
    fp = io.BytesIO(raw)
    np.lib.format.read_magic(fp)
    hshape, hfortran, hdtype = np.lib.format.read_array_header_1_0(fp)
    assert (shape, fortran, dtype) == (hshape, hfortran, hdtype)
    assert hlen == fp.tell() and version == (1, 0)


# -- the central directory as zipfile (hence np.load) reads it -------------------------------------


def _directory_matches_zipfile(path: Path) -> None:
    with zipfile.ZipFile(path) as z:
        ref = [(zi.filename, zi.compress_type, zi.compress_size, zi.file_size, zi.header_offset, zi.CRC, zi.date_time)
               for zi in z.infolist()]
    with NpzReader(path) as r:
        got = [(zi.filename, zi.compress_type, zi.compress_size, zi.file_size, zi.header_offset, zi.CRC, zi.date_time)
               for zi in r._zip.infolist()]
    assert got == ref


def test_directory_with_a_zip_comment(fab, tmp_path):
    path = tmp_path / "comment.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.npy", fab.npy_bytes(np.arange(5)))
        z.comment = b"a comment after the end record " * 40
    _directory_matches_zipfile(path)
    assert inspect(path).names == ["a"]


def test_end_record_signature_inside_the_comment_is_a_typed_error(fab, tmp_path):
    path = tmp_path / "tricky.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.npy", fab.npy_bytes(np.arange(5)))
        z.comment = b"PK\x05\x06 looks like an end record"
    with pytest.raises(zipfile.BadZipFile):
        np.load(path)
    with pytest.raises(NpzError) as exc:
        inspect(path)
    assert exc.value.code in ("CORRUPT", "TRUNCATED")


def test_directory_with_a_zip64_end_record(fab, tmp_path, monkeypatch):
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)  # zipfile then writes zip64 end records
    path = tmp_path / "z64.npz"
    with zipfile.ZipFile(path, "w", allowZip64=True) as z:
        for i in range(3):
            z.writestr(f"m{i}.npy", fab.npy_bytes(np.full(4, i)))
    monkeypatch.undo()
    assert b"PK\x06\x06" in path.read_bytes()
    _directory_matches_zipfile(path)
    check_against_np_load(path, 3)


def test_directory_of_a_streamed_zip_with_data_descriptors(fab, tmp_path):
    class Unseekable(io.RawIOBase):
        def __init__(self, f):
            self.f = f

        def writable(self):
            return True

        def write(self, b):
            return self.f.write(b)

    path = tmp_path / "stream.npz"
    with open(path, "wb") as raw, zipfile.ZipFile(Unseekable(raw), "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(3):
            with z.open(f"s{i}.npy", "w") as m:
                m.write(fab.npy_bytes(np.arange(10.0) * i))
    _directory_matches_zipfile(path)
    check_against_np_load(path, 4)


@pytest.mark.parametrize("writer", ["savez", "savez_compressed"])
def test_directory_of_numpy_written_files(tmp_path, writer):
    path = tmp_path / f"{writer}.npz"
    getattr(np, writer)(path, a=np.arange(3), b=np.zeros((2, 2)), **{"c/d": np.ones(1)})
    _directory_matches_zipfile(path)


def test_fixtures_directories_match_zipfile(fab):
    for path in sorted(fab.COMPAT.glob("*.npz")) + sorted(fab.REAL.glob("*.npz")):
        _directory_matches_zipfile(path)
        check_against_np_load(path, 5)
