"""Files are untrusted input: hostile pickles, bombs, broken files, limits, error mapping.

Nothing a file holds may run code, exhaust memory, hang, or escape as anything but
a typed `NpzError` with a one-line message (SPEC §2).
"""

from __future__ import annotations

import errno
import io
import os
import pickle
import subprocess
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npztui.npz import errors
from npztui.npz.errors import NpzError, error_from_os
from npztui.npz.metadata import discover
from npztui.npz.reader import Limits, NpzReader, inspect
from npztui.npz.safe_pickle import PickleLimitError, UnsafePickleError, safe_loads

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def one_line(exc: NpzError) -> None:
    assert exc.message and "\n" not in exc.message and "Traceback" not in exc.message
    assert exc.code in {"NOT_FOUND", "PERMISSION", "NOT_NPZ", "CORRUPT", "TRUNCATED", "TOO_LARGE", "REFUSED"}
    assert exc.to_json() == {"code": exc.code, "message": exc.message}


def raises_typed(fn, *codes: str) -> NpzError:
    with pytest.raises(NpzError) as info:
        fn()
    one_line(info.value)
    if codes:
        assert info.value.code in codes, (info.value.code, info.value.message)
    return info.value


def peak_and_rss(fn):
    """(result or typed error, tracemalloc peak bytes, RSS growth bytes)."""
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    tracemalloc.start()
    try:
        try:
            out = fn()
        except NpzError as exc:
            out = exc
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return out, peak, proc.memory_info().rss - rss0


# ============================================================================
# hostile metadata pickles
# ============================================================================


class _Reduce:
    """Pickles as `fn(*args)`: what an attacker puts in a file."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _marker_payloads(marker: Path) -> dict[str, bytes]:
    m = str(marker)
    cmd = f"touch {m}"
    payloads = {
        "os.system": pickle.dumps(_Reduce(os.system, cmd), protocol=2),
        "os.system-proto0": pickle.dumps(_Reduce(os.system, cmd), protocol=0),
        "os.system-proto4-stack-global": pickle.dumps(_Reduce(os.system, cmd), protocol=4),
        "os.system-proto5": pickle.dumps(_Reduce(os.system, cmd), protocol=5),
        "subprocess.check_call": pickle.dumps(_Reduce(subprocess.check_call, ["touch", m]), protocol=2),
        "subprocess.Popen": pickle.dumps(_Reduce(subprocess.Popen, ["touch", m]), protocol=3),
        "builtins.eval": pickle.dumps(_Reduce(eval, f"open({m!r}, 'w')"), protocol=2),
        "builtins.exec": pickle.dumps(_Reduce(exec, f"open({m!r}, 'w').close()"), protocol=2),
        "builtins.open": pickle.dumps(_Reduce(open, m, "w"), protocol=2),
        "builtins.__import__": pickle.dumps(_Reduce(__import__, "os"), protocol=2),
        # getattr(__import__('os'), 'system')('touch ...'), assembled by hand
        "builtins.getattr-chain": (
            b"\x80\x02cbuiltins\ngetattr\n(cbuiltins\n__import__\n(X\x02\x00\x00\x00ostR"
            b"X\x06\x00\x00\x00systemtR(X" + len(cmd).to_bytes(4, "little") + cmd.encode() + b"tR."
        ),
        # protocol 0 INST opcode: class and call in one
        "inst-opcode": b"(S'" + cmd.encode() + b"'\nios\nsystem\n.",
        # hidden inside the dict the circuit producer pickles
        "inside-a-dict": pickle.dumps({"grid_size": 5, "evil": _Reduce(os.system, cmd)}, protocol=2),
    }
    arr = np.empty((), dtype=object)
    arr[()] = {"nphotons": 1e9, "evil": _Reduce(os.system, cmd)}
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=True)
    payloads["inside-an-object-array"] = buf.getvalue()[128:]  # the pickle after the .npy header
    return payloads


HOSTILE = sorted(_marker_payloads(Path("/nonexistent")).keys())


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_pickle_is_never_executed(fab, tmp_path, case, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    payload = _marker_payloads(marker)[case]
    path = fab.with_pickled_metadata(tmp_path / "evil.npz", payload)
    with NpzReader(path) as r:
        assert r.info.names == ["x", "_metadata"]  # the arrays are still listed
        meta = discover(r)
        np.testing.assert_array_equal(r.read("x"), np.arange(4.0))
    assert not marker.exists()
    assert not meta.found
    assert [(f.code, f.severity) for f in meta.findings] == [("UNSAFE_PICKLE", "error")]
    assert "nothing executed" in meta.findings[0].message
    with pytest.raises(UnsafePickleError):
        safe_loads(payload)
    assert not marker.exists()


@pytest.mark.parametrize("case", ["os.system", "inside-an-object-array"])
def test_hostile_pickle_check_exits_1_not_3(fab, tmp_path, case, capsys, monkeypatch):
    from npztui.cli import main

    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    path = fab.with_pickled_metadata(tmp_path / "evil.npz", _marker_payloads(marker)[case])
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr()
    assert "UNSAFE_PICKLE" in out.out and out.err == ""
    assert main(["info", str(path)]) == 0
    assert "UNSAFE_PICKLE" in capsys.readouterr().out
    assert not marker.exists()


def test_hostile_metadata_does_not_hide_good_metadata(fab, tmp_path):
    marker = tmp_path / "PWNED"
    members = {
        "x.npy": fab.npy_bytes(np.arange(3)),
        "_metadata.npy": fab.pickled_object_npy(_marker_payloads(marker)["os.system"]),
        "metadata_json.npy": fab.npy_bytes(np.array('{"physics_parameters": {"nphotons": 5}}')),
    }
    path = fab.zip_members(tmp_path / "both.npz", members)
    with NpzReader(path) as r:
        meta = discover(r)
    assert meta.found and meta.source == "metadata_json" and meta.encoding == "json"
    assert [f.code for f in meta.findings] == ["UNSAFE_PICKLE"]
    assert not marker.exists()


@pytest.mark.parametrize(
    "build",
    [
        "reconstruct-dict-subtype",
        "codecs-rot13",
        "persistent-id",
        "copyreg-reconstructor",
        "numpy-load",
    ],
)
def test_numpy_and_codec_gadgets_are_refused(fab, build):
    P = fab.P
    if build == "reconstruct-dict-subtype":
        payload = P.program(P.call("numpy._core.multiarray", "_reconstruct", P.glob("builtins", "dict"), P.MARK + P.int_(0) + P.TUPLE, P.byt(b"b")))
    elif build == "codecs-rot13":
        payload = P.program(P.call("_codecs", "encode", P.uni("abc"), P.uni("rot13")))
    elif build == "persistent-id":
        payload = b"Pabc\n."
    elif build == "copyreg-reconstructor":
        payload = P.program(P.call("copyreg", "_reconstructor", P.glob("builtins", "object"), P.glob("builtins", "object"), P.NONE))
    else:
        payload = P.program(P.call("numpy", "load", P.uni("/etc/passwd")))
    with pytest.raises(UnsafePickleError):
        safe_loads(payload)


@pytest.mark.parametrize(
    "bomb",
    ["bytes-1e10", "bytearray-1e10", "reconstruct-huge-shape", "frombuffer-huge-shape", "deep-nesting"],
)
def test_memory_hungry_pickles_are_refused_quickly(fab, tmp_path, bomb):
    P = fab.P
    if bomb == "bytes-1e10":
        payload = P.program(P.call("builtins", "bytes", P.int_(10**10)))
    elif bomb == "bytearray-1e10":
        payload = P.program(P.call("builtins", "bytearray", P.int_(10**10)))
    elif bomb == "reconstruct-huge-shape":
        shape = P.MARK + P.int_(10**6) + P.int_(10**6) + P.TUPLE
        payload = P.program(P.call("numpy.core.multiarray", "_reconstruct", P.glob("numpy", "ndarray"), shape, P.byt(b"b")))
    elif bomb == "frombuffer-huge-shape":
        dt = P.call("numpy", "dtype", P.uni("f8"), P.NEWFALSE, P.NEWTRUE)
        payload = P.program(P.call("numpy._core.numeric", "_frombuffer", P.byt(b""), dt, P.MARK + P.int_(10**9) + P.TUPLE, P.uni("C")))
    else:
        nested = P.EMPTY_LIST * 200_000 + P.APPEND * 199_999  # built iteratively by pickle
        payload = P.PROTO2 + P.EMPTY_DICT + P.uni("a") + nested + P.SETITEM + P.STOP
    path = fab.with_pickled_metadata(tmp_path / f"{bomb}.npz", payload)
    t0 = time.perf_counter()
    (meta, peak, _) = peak_and_rss(lambda: discover(NpzReader(path)))
    assert time.perf_counter() - t0 < 30  # generous: it is refused before any allocation
    assert peak < 64 << 20
    assert not meta.found
    assert [f.code for f in meta.findings] == ["META_INVALID"]
    assert "refused" in meta.findings[0].message or "deeper" in meta.findings[0].message
    if bomb != "deep-nesting":  # that one is plain data; turning it into JSON is what is bounded
        with pytest.raises((PickleLimitError, pickle.UnpicklingError)):
            safe_loads(payload)


@pytest.mark.parametrize(
    "name, member, encoding",
    [
        ("ptycho_sim_nphotons1e9.npz", "_metadata", "pickle-json"),
        ("ptycho_mismatch_N.npz", "_metadata", "pickle-json"),
        ("sample_grid_5_test.npz", "metadata", "pickle-dict"),
    ],
)
def test_legacy_pickles_of_both_producers_decode(fab, name, member, encoding):
    import json

    path = fab.COMPAT / name
    with NpzReader(path) as r:
        meta = discover(r)
    assert (meta.source, meta.encoding, meta.findings) == (member, encoding, [])
    # the shipped fixtures are trusted, so the standard unpickler is a fair oracle here
    with np.load(path, allow_pickle=True) as z:
        value = z[member].item()
    expected = json.loads(value) if isinstance(value, str) else value
    assert meta.data == json.loads(json.dumps(expected, default=str))


_plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.binary(max_size=20) | st.complex_numbers(allow_nan=False),
    lambda inner: st.lists(inner, max_size=5) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=8), inner, max_size=5) | st.frozensets(st.integers(), max_size=4),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_plain, protocol=st.integers(0, pickle.HIGHEST_PROTOCOL))
def test_restricted_unpickler_decodes_plain_data_like_pickle(value, protocol):
    data = pickle.dumps(value, protocol=protocol)
    assert safe_loads(data) == pickle.loads(data)


# ============================================================================
# zip bombs
# ============================================================================

GIB = 1 << 30


@pytest.fixture(scope="module")
def deflate_gib(fab):
    """A deflated member of 1 GiB + 1 MiB of zeros (about 1 MB compressed), honest sizes."""
    n = GIB + (1 << 20)
    data, crc, size = fab.zeros_member("deflated", n, fab.npy_header((n,)), level=9)
    return data, crc, size, n


def test_deflate_bomb_honest_size_lists_in_bounded_memory(fab, tmp_path, deflate_gib):
    data, crc, size, n = deflate_gib
    assert size > GIB and len(data) < 2 << 20
    path = fab.raw_zip(tmp_path / "bomb.npz", [("bomb.npy", "deflated", data, crc, size), ("x.npy", "stored", fab.npy_bytes(np.arange(3)), zlib.crc32(fab.npy_bytes(np.arange(3))), len(fab.npy_bytes(np.arange(3))))])
    info, peak, rss = peak_and_rss(lambda: inspect(path))
    assert not isinstance(info, NpzError)
    assert info.array("bomb").shape == (n,) and info.array("bomb").nbytes > GIB
    assert peak < 16 << 20 and rss < 64 << 20
    with NpzReader(path) as r:
        err = raises_typed(lambda: r.read("bomb"), "TOO_LARGE")
        assert "limit" in err.message
        raises_typed(lambda: r.read("bomb", rows=slice(0, n)), "TOO_LARGE")
        got, peak, _ = peak_and_rss(lambda: r.read("bomb", rows=slice(5 << 20, (5 << 20) + 10)))
        assert got.tolist() == [0] * 10 and peak < 16 << 20
        # rows spread over the whole GiB: streamed in chunks, memory stays flat
        got, peak, rss = peak_and_rss(lambda: r.read_rows("bomb", [n - 1, 0, n // 2]))
        assert got.tolist() == [0, 0, 0] and peak < 64 << 20 and rss < 128 << 20
    with NpzReader(path, Limits(max_read_bytes=1 << 20)) as r:
        raises_typed(lambda: r.read_rows("bomb", list(range(0, n, 512))), "TOO_LARGE")
    # info through the service and CLI: completes, lists the bomb, exits 0
    from npztui.cli import main

    (out, peak, rss) = peak_and_rss(lambda: main(["info", "--json", str(path)]))
    assert out == 0 and peak < 32 << 20 and rss < 64 << 20


def test_deflate_bomb_lying_small_reads_only_what_it_claims(fab, tmp_path, deflate_gib):
    data, _, _, _ = deflate_gib
    # the zip entry says the member is 200 bytes; the stream would inflate to 1 GiB
    path = fab.raw_zip(tmp_path / "lie.npz", [("bomb.npy", "deflated", data, 0, 200)])
    result, peak, rss = peak_and_rss(lambda: inspect(path))
    assert isinstance(result, NpzError) and result.code == "TRUNCATED"  # header needs 1 GiB, entry has 200 B
    assert peak < 16 << 20 and rss < 64 << 20


def test_deflate_bomb_lying_large_is_refused_before_inflating(fab, tmp_path):
    header = fab.npy_header((1 << 40,))
    tiny, crc, _ = fab.zeros_member("deflated", 1 << 20, header, level=9)
    path = fab.raw_zip(tmp_path / "huge.npz", [("bomb.npy", "deflated", tiny, crc, (1 << 40) + len(header))])
    err, peak, _ = peak_and_rss(lambda: inspect(path))
    assert isinstance(err, NpzError) and err.code == "CORRUPT" and "ratio" in err.message
    assert peak < 4 << 20


def test_small_read_cap_from_limits(fab, tmp_path):
    arr = np.arange(1 << 16, dtype="<f8")
    path = fab.zip_members(tmp_path / "cap.npz", {"a.npy": fab.npy_bytes(arr)}, "deflated")
    with NpzReader(path, Limits(max_read_bytes=1 << 10)) as r:
        raises_typed(lambda: r.read("a"), "TOO_LARGE")
        assert r.read("a", rows=slice(0, 100)).shape == (100,)
        raises_typed(lambda: r.read("a", rows=slice(0, 200)), "TOO_LARGE")
        assert r.read("a", max_bytes=1 << 20).shape == arr.shape  # an explicit cap wins


# ============================================================================
# broken files
# ============================================================================


def _cut_points(size: int) -> list[int]:
    return sorted({1, 3, 4, 30, 100, size // 3, size // 2, size - 200, size - 23, size - 22, size - 1})


@pytest.mark.parametrize("name", ["sample_grid_5_test.npz", "ptycho_sim_nphotons1e9.npz"])
def test_truncated_at_many_points_is_typed(fab, tmp_path, name):
    blob = (fab.COMPAT / name).read_bytes()
    for cut in _cut_points(len(blob)):
        path = tmp_path / f"cut{cut}.npz"
        path.write_bytes(blob[:cut])
        expected = ("NOT_NPZ",) if cut < 4 else ("TRUNCATED",)
        raises_typed(lambda: inspect(path), *expected)


def test_truncated_bare_npy(fab, tmp_path):
    raw = fab.npy_bytes(np.arange(100, dtype="<f8"))
    for cut in (5, 20, 100, 128, 500, len(raw) - 1):
        path = tmp_path / f"b{cut}.npy"
        path.write_bytes(raw[:cut])
        raises_typed(lambda: inspect(path), "TRUNCATED", "CORRUPT", "NOT_NPZ")


def test_empty_non_zip_and_npyless_zip(fab, tmp_path):
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    assert "empty" in raises_typed(lambda: inspect(empty), "NOT_NPZ").message
    text = tmp_path / "text.npz"
    text.write_text("just some text, not a zip\n" * 10)
    raises_typed(lambda: inspect(text), "NOT_NPZ")
    pickled = tmp_path / "pickle.npz"
    pickled.write_bytes(pickle.dumps({"a": 1}))
    raises_typed(lambda: inspect(pickled), "NOT_NPZ")
    nonpy = fab.zip_members(tmp_path / "docs.npz", {"README.txt": b"hello", "data.json": b"{}"})
    assert "no .npy" in raises_typed(lambda: inspect(nonpy), "NOT_NPZ").message
    onlydir = tmp_path / "dir.npz"
    with zipfile.ZipFile(onlydir, "w") as z:
        z.writestr("sub/", b"")
    raises_typed(lambda: inspect(onlydir), "NOT_NPZ")
    emptyzip = tmp_path / "emptyzip.npz"
    with zipfile.ZipFile(emptyzip, "w"):
        pass
    raises_typed(lambda: inspect(emptyzip), "NOT_NPZ")


def _patch_central(path: Path, name: bytes, field_offset: int, fmt: str, value: int) -> None:
    blob = bytearray(path.read_bytes())
    at = blob.index(b"PK\x01\x02")
    while blob[at + 46 : at + 46 + len(name)] != name:
        at = blob.index(b"PK\x01\x02", at + 4)
    import struct

    struct.pack_into(fmt, blob, at + field_offset, value)
    path.write_bytes(bytes(blob))


@pytest.mark.parametrize("field, offset, fmt", [("local header offset", 42, "<L"), ("compressed size", 20, "<L")])
def test_member_running_past_eof_is_truncated(fab, tmp_path, field, offset, fmt):
    path = fab.zip_members(tmp_path / "m.npz", {"a.npy": fab.npy_bytes(np.arange(10)), "b.npy": fab.npy_bytes(np.arange(5))})
    _patch_central(path, b"b.npy", offset, fmt, path.stat().st_size + 1000)
    err = raises_typed(lambda: inspect(path), "TRUNCATED")
    assert "b.npy" in err.message and "end of the file" in err.message


def test_central_directory_running_past_start_is_truncated(fab, tmp_path):
    path = fab.zip_members(tmp_path / "m.npz", {"a.npy": fab.npy_bytes(np.arange(10))})
    blob = bytearray(path.read_bytes())
    at = blob.rindex(b"PK\x05\x06")
    blob[at + 12 : at + 16] = (len(blob) * 2).to_bytes(4, "little")  # central directory size
    path.write_bytes(bytes(blob))
    raises_typed(lambda: inspect(path), "TRUNCATED")


def test_encrypted_and_unknown_compression_members(fab, tmp_path):
    raw = fab.npy_bytes(np.arange(3))
    enc = fab.zip_members(tmp_path / "enc.npz", {"a.npy": raw})
    _patch_central(enc, b"a.npy", 8, "<H", 0x1)
    assert "encrypted" in raises_typed(lambda: inspect(enc), "CORRUPT").message
    odd = fab.zip_members(tmp_path / "odd.npz", {"a.npy": raw})
    _patch_central(odd, b"a.npy", 10, "<H", 99)
    assert "compression" in raises_typed(lambda: inspect(odd), "CORRUPT").message


@pytest.mark.parametrize(
    "header",
    [
        "{'descr': '<f8', 'fortran_order': False}",
        "{'descr': '<f8', 'fortran_order': 'no', 'shape': (3,)}",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,)}",
        "{'descr': '<f8', 'fortran_order': False, 'shape': 3}",
        "{'descr': 'zz9', 'fortran_order': False, 'shape': (3,)}",
        "{'descr': [('a', '<f8', (10**20,))], 'fortran_order': False, 'shape': (1,)}",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'extra': 1}",
        "[1, 2, 3]",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)" + ", 'x': (" * 2000 + ")" * 2000 + "}",
        "__import__('os').system('echo hi')",
    ],
)
def test_malformed_npy_headers_are_corrupt(fab, tmp_path, header):
    raw = fab.raw_npy(header, bytes(64))
    bare = tmp_path / "h.npy"
    bare.write_bytes(raw)
    raises_typed(lambda: inspect(bare), "CORRUPT")
    path = fab.zip_members(tmp_path / "h.npz", {"a.npy": raw}, "deflated")
    raises_typed(lambda: inspect(path), "CORRUPT")


def test_header_claiming_more_data_than_present_is_truncated(fab, tmp_path):
    raw = fab.raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000,), }", bytes(80))
    for method in ("stored", "deflated"):
        path = fab.zip_members(tmp_path / f"short_{method}.npz", {"a.npy": raw}, method)
        raises_typed(lambda: inspect(path), "TRUNCATED")


@pytest.mark.skipif(IS_ROOT, reason="root reads files whatever their mode (the mapping is tested below)")
def test_permission_denied_for_real(fab, tmp_path):
    path = fab.zip_members(tmp_path / "p.npz", {"a.npy": fab.npy_bytes(np.arange(3))})
    path.chmod(0)
    try:
        raises_typed(lambda: inspect(path), "PERMISSION")
    finally:
        path.chmod(0o644)


def test_permission_denied_is_mapped(fab, tmp_path, monkeypatch):
    path = fab.zip_members(tmp_path / "p.npz", {"a.npy": fab.npy_bytes(np.arange(3))})

    def denied(file, *a, **kw):
        raise PermissionError(errno.EACCES, "Permission denied", str(file))

    real_open = os.open

    def denied_os_open(file, *a, **kw):
        if os.fspath(file) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *a, **kw)

    monkeypatch.setattr("npztui.npz.reader.open", denied, raising=False)
    monkeypatch.setattr(os, "open", denied_os_open)
    err = raises_typed(lambda: inspect(path), "PERMISSION")
    assert err.message == "permission denied" and err.path == str(path)


@pytest.mark.parametrize(
    "err_no, code",
    [
        (errno.ENOENT, "NOT_FOUND"),
        (errno.ENOTDIR, "NOT_FOUND"),
        (errno.EACCES, "PERMISSION"),
        (errno.EPERM, "PERMISSION"),
        (errno.EISDIR, "NOT_NPZ"),
        (errno.EIO, "CORRUPT"),
    ],
)
def test_error_from_os_mapping(err_no, code):
    exc = error_from_os("/x/y.npz", OSError(err_no, os.strerror(err_no)))
    assert exc.code == code and exc.path == "/x/y.npz"
    one_line(exc)


def test_directory_missing_and_vanished(fab, tmp_path):
    err = raises_typed(lambda: inspect(tmp_path), "NOT_NPZ")
    assert "directory" in err.message
    raises_typed(lambda: inspect(tmp_path / "nope.npz"), "NOT_FOUND")
    raises_typed(lambda: inspect(tmp_path / "nope" / "deeper.npz"), "NOT_FOUND")




def test_file_deleted_between_listing_and_reading(fab, tmp_path):
    from npztui.service import Service, expand_paths

    for i in range(3):
        fab.zip_members(tmp_path / f"f{i}.npz", {"a.npy": fab.npy_bytes(np.arange(i + 1))})
    paths = expand_paths([tmp_path])
    assert len(paths) == 3
    paths[1].unlink()
    svc = Service()
    reports = [svc.inspect(p) for p in paths]
    assert [r.error.code if r.error else None for r in reports] == [None, "NOT_FOUND", None]
    # and a reader whose file vanishes after it was opened keeps reading the open file
    with NpzReader(paths[2]) as r:
        paths[2].unlink()
        assert r.read("a").tolist() == [0, 1, 2]


def test_too_many_members_and_too_long_names(fab, tmp_path):
    members = {f"m{i}.npy": fab.npy_bytes(np.arange(2)) for i in range(30)}
    path = fab.zip_members(tmp_path / "many.npz", members)
    err = raises_typed(lambda: inspect(path, Limits(max_members=10)), "TOO_LARGE")
    assert "members" in err.message
    long = fab.zip_members(tmp_path / "long.npz", {"a" * 300 + ".npy": fab.npy_bytes(np.arange(2))})
    assert len(inspect(long).arrays) == 1
    err = raises_typed(lambda: inspect(long, Limits(max_name_length=100)), "TOO_LARGE")
    assert "name" in err.message


# ============================================================================
# metadata bounds
# ============================================================================


class _CountingStreams:
    """Counts payload bytes handed out by the reader's data streams."""

    def __init__(self, monkeypatch):
        self.total = 0
        original = NpzReader._payload_stream
        counter = self

        def wrapped(reader, a):
            stream = original(reader, a)
            read, readinto = stream.read, stream.readinto

            def counted_read(n=-1):
                data = read(n)
                counter.total += len(data)
                return data

            def counted_readinto(b):
                k = readinto(b)
                counter.total += k
                return k

            stream.read, stream.readinto = counted_read, counted_readinto
            return stream

        monkeypatch.setattr(NpzReader, "_payload_stream", wrapped)


@pytest.mark.parametrize("encoding", ["unicode", "pickle-json", "pickle-json-deflated-lying"])
def test_metadata_over_the_limit_is_invalid_and_not_read(fab, tmp_path, monkeypatch, encoding):
    limit = 4096
    text = '{"a": "' + "x" * 20_000 + '"}'
    if encoding == "unicode":
        member = fab.npy_bytes(np.array(text))
        path = fab.zip_members(tmp_path / "m.npz", {"x.npy": fab.npy_bytes(np.arange(2)), "_metadata.npy": member})
    elif encoding == "pickle-json":
        member = fab.pickled_object_npy(pickle.dumps(text, protocol=2))
        path = fab.zip_members(tmp_path / "m.npz", {"x.npy": fab.npy_bytes(np.arange(2)), "_metadata.npy": member})
    else:  # the zip entry claims a small member, the deflated stream holds 20 kB
        member = fab.pickled_object_npy(pickle.dumps(text, protocol=2))
        comp = fab.compress("deflated", member)
        small = fab.npy_bytes(np.arange(2))
        path = fab.raw_zip(
            tmp_path / "m.npz",
            [("x.npy", "stored", small, zlib.crc32(small), len(small)), ("_metadata.npy", "deflated", comp, zlib.crc32(member[:600]), 600)],
        )
    counter = _CountingStreams(monkeypatch)
    with NpzReader(path, Limits(max_metadata_bytes=limit)) as r:
        meta = discover(r)
    assert not meta.found
    assert [f.code for f in meta.findings] == ["META_INVALID"]
    assert counter.total <= limit + 1
    with NpzReader(path) as r:  # the default 16 MiB limit reads it fine (if it is honest)
        meta = discover(r)
    if encoding != "pickle-json-deflated-lying":
        assert meta.found and len(meta.data["a"]) == 20_000


@pytest.mark.parametrize(
    "text, why",
    [
        ("[1, 2, 3]", "list"),
        ('"just a string"', "str"),
        ("{not json", "not valid JSON"),
        ("[" * 100 + "]" * 100, "list"),
        ('{"a": ' * 100 + "1" + "}" * 100, "deeper"),
        ('{"a": ' * 100_000 + "1" + "}" * 100_000, "deeply"),
        ('{"n": ' + "7" * 5000 + "}", "not valid JSON"),
    ],
    ids=["list", "string", "broken", "nested-lists", "nested-100", "nested-100000", "huge-int"],
)
def test_invalid_json_metadata(fab, tmp_path, text, why):
    path = fab.zip_members(tmp_path / "j.npz", {"x.npy": fab.npy_bytes(np.arange(2)), "metadata_json.npy": fab.npy_bytes(np.array(text))})
    with NpzReader(path) as r:
        meta = discover(r)
    assert not meta.found
    assert [f.code for f in meta.findings] == ["META_INVALID"]
    assert why in meta.findings[0].message and "\n" not in meta.findings[0].message


def test_invalid_utf8_bytes_metadata(fab, tmp_path):
    path = fab.zip_members(tmp_path / "b.npz", {"x.npy": fab.npy_bytes(np.arange(2)), "_metadata.npy": fab.npy_bytes(np.array(b'{"a": "\xff\xfe"}'))})
    with NpzReader(path) as r:
        meta = discover(r)
    assert [f.code for f in meta.findings] == ["META_INVALID"]
    assert "UTF-8" in meta.findings[0].message


def test_metadata_wrong_shapes_and_types(fab, tmp_path):
    for name, arr in [
        ("2d", np.array([["{}"]])),
        ("float", np.array(1.5)),
        ("objlist", np.array([{"a": 1}, {"b": 2}], dtype=object)),
    ]:
        path = fab.zip_members(tmp_path / f"{name}.npz", {"x.npy": fab.npy_bytes(np.arange(2)), "_metadata.npy": fab.npy_bytes(arr, allow_pickle=True)})
        with NpzReader(path) as r:
            meta = discover(r)
        assert not meta.found and [f.code for f in meta.findings] == ["META_INVALID"], name


# ============================================================================
# fuzz: whatever the bytes, only typed errors
# ============================================================================


def _seed_file() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, arr, method in [
            ("a.npy", np.arange(12, dtype="<f4").reshape(3, 4), zipfile.ZIP_STORED),
            ("b.npy", np.array([b"ab", b"cd"]), zipfile.ZIP_DEFLATED),
            ("c.npy", np.zeros(3, dtype=[("x", "<i2"), ("y", ">f8")]), zipfile.ZIP_BZIP2),
            ("_metadata.npy", np.array('{"schema_version": "1.0.0"}'), zipfile.ZIP_LZMA),
        ]:
            b = io.BytesIO()
            np.lib.format.write_array(b, arr)
            zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = method
            z.writestr(zi, b.getvalue())
    return buf.getvalue()


SEED = _seed_file()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(st.tuples(st.integers(0, len(SEED) - 1), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.one_of(st.none(), st.integers(0, len(SEED))),
)
def test_fuzzed_files_only_raise_typed_errors(edits, cut):
    import tempfile

    blob = bytearray(SEED)
    for at, value in edits:
        blob[at] = value
    if cut is not None:
        blob = blob[:cut]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.npz"
        path.write_bytes(bytes(blob))
        try:
            with NpzReader(path) as r:
                discover(r)
                for a in r.info.arrays:
                    for call in (lambda: r.read(a.name), lambda: list(r.iter_rows(a.name)),
                                 lambda: r.read_rows(a.name, [0]) if a.shape and a.shape[0] else None):
                        try:
                            call()
                        except NpzError as exc:
                            one_line(exc)
        except NpzError as exc:
            one_line(exc)


def test_error_classes_have_distinct_codes():
    classes = [errors.NotFoundError, errors.PermissionDeniedError, errors.NotNpzError, errors.CorruptError,
               errors.TruncatedError, errors.TooLargeError, errors.RefusedError]
    assert len({c.code for c in classes}) == len(classes)
    for c in classes:
        assert issubclass(c, NpzError)
        e = c("/p", "msg")
        assert str(e) == "msg" and e.path == "/p"
