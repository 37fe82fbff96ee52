"""Local helpers for the format-layer tests: hand-built zips, `.npy` bytes, bombs.

The helpers are exposed through the session-scoped `fab` fixture (a namespace of
plain functions) so hypothesis tests can use them without function-scoped
fixtures, and no test module has to import another.
"""

from __future__ import annotations

import bz2
import io
import lzma
import struct
import warnings
import zipfile
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
COMPAT = FIXTURES / "compat"
REAL = FIXTURES / "real" / "ptychopinn"

PTYCHOPINN_WITH_META = (
    "c1_bigF.npz",
    "c1_bigT_probe.npz",
    "c1_bigT_uniform.npz",
    "c4_bigT_probe.npz",
    "c4_bigT_uniform.npz",
)
PTYCHOPINN_NO_META = ("compute_loss_c4_regression.npz", "fno_real_imag_tensor_path.npz")

METHODS = {
    "stored": zipfile.ZIP_STORED,
    "deflated": zipfile.ZIP_DEFLATED,
    "bzip2": zipfile.ZIP_BZIP2,
    "lzma": zipfile.ZIP_LZMA,
}


def npy_bytes(arr: np.ndarray, version: tuple[int, int] | None = None, allow_pickle: bool = False) -> bytes:
    """The exact bytes numpy writes for `arr` as a `.npy` file."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Stored array in format 3.0"
        np.lib.format.write_array(buf, np.asanyarray(arr), version=version, allow_pickle=allow_pickle)
    return buf.getvalue()


def npy_header(shape: tuple[int, ...], descr: str = "|u1", fortran: bool = False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": fortran, "shape": shape})
    return buf.getvalue()


def raw_npy(header_text: str | bytes, payload: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    """A `.npy` with a hand-written header dict (padded like numpy pads it)."""
    text = header_text.encode("latin1") if isinstance(header_text, str) else header_text
    prefix = 10 if version == (1, 0) else 12
    pad = -(prefix + len(text) + 1) % 64
    text = text + b" " * pad + b"\n"
    size = struct.pack("<H", len(text)) if version == (1, 0) else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes(version) + size + text + payload


def zip_members(path: Path, members, compression: int | str = zipfile.ZIP_STORED) -> Path:
    """Write `members` ({name: bytes} or [(name, bytes[, method])]) with zipfile itself."""
    items = members.items() if isinstance(members, dict) else members
    default = METHODS.get(compression, compression)
    with zipfile.ZipFile(path, "w", allowZip64=True) as z:
        for item in items:
            name, data = item[0], item[1]
            method = METHODS.get(item[2], item[2]) if len(item) > 2 else default
            zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = method
            z.writestr(zi, data)
    return path


def raw_zip(path: Path, entries) -> Path:
    """A zip whose members carry the given *compressed* bytes and claimed sizes.

    entries: [(name, method, compressed_bytes, crc, claimed_file_size)]. Lets a
    test build members that lie about their size without inflating anything.
    """
    with zipfile.ZipFile(path, "w") as zf:
        for name, method, data, crc, file_size in entries:
            zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = METHODS.get(method, method)
            zi.CRC, zi.compress_size, zi.file_size = crc, len(data), file_size
            zi.external_attr = 0o644 << 16
            zip64 = file_size > 0xFFFFFFFF or len(data) > 0xFFFFFFFF
            if zip64:
                zi.create_version = zi.extract_version = 45
            zf.fp.seek(zf.start_dir)
            zi.header_offset = zf.start_dir
            zf.fp.write(zi.FileHeader(zip64))
            zf.fp.write(data)
            zf.start_dir = zf.fp.tell()
            zf.filelist.append(zi)
            zf.NameToInfo[name] = zi
    return path


def compress(method: str | int, data: bytes) -> bytes:
    """Raw member bytes as zipfile would store them."""
    method = METHODS.get(method, method)
    if method == zipfile.ZIP_STORED:
        return data
    if method == zipfile.ZIP_DEFLATED:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush()
    if method == zipfile.ZIP_BZIP2:
        return bz2.compress(data)
    raise ValueError(method)


def zeros_member(method: str, n_zeros: int, header: bytes, level: int = 1) -> tuple[bytes, int, int]:
    """Compress `header + n_zeros zero bytes` in a stream: (compressed, crc, uncompressed size)."""
    if method == "deflated":
        comp = zlib.compressobj(level, zlib.DEFLATED, -15)
    elif method == "bzip2":
        comp = bz2.BZ2Compressor(9)
    elif method == "lzma":
        comp = lzma.LZMACompressor(lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA1}])
    else:
        raise ValueError(method)
    parts = [comp.compress(header)]
    crc = zlib.crc32(header)
    block = bytes(1 << 20)
    left = n_zeros
    while left:
        k = min(left, len(block))
        chunk = block if k == len(block) else block[:k]
        parts.append(comp.compress(chunk))
        crc = zlib.crc32(chunk, crc)
        left -= k
    parts.append(comp.flush())
    data = b"".join(parts)
    if method == "lzma":  # zip's LZMA framing: version, properties size, properties
        props = lzma._encode_filter_properties({"id": lzma.FILTER_LZMA1})
        data = struct.pack("<BBH", 9, 4, len(props)) + props + data
    return data, crc, len(header) + n_zeros


def pickled_object_npy(payload: bytes) -> bytes:
    """A 0-d object `.npy` whose pickle stream is `payload` (any bytes we like)."""
    header = npy_header((), descr="|O")
    return header + payload


def with_pickled_metadata(path: Path, payload: bytes, name: str = "_metadata", arrays=None) -> Path:
    arrays = {"x": np.arange(4.0)} if arrays is None else arrays
    members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
    members[f"{name}.npy"] = pickled_object_npy(payload)
    return zip_members(path, members)


class PickleAsm:
    """A tiny pickle assembler (protocol 2 opcodes) for hand-made hostile pickles."""

    PROTO2 = b"\x80\x02"
    MARK, STOP, TUPLE, REDUCE, BUILD, APPEND, NONE = b"(", b".", b"t", b"R", b"b", b"a", b"N"
    TUPLE1, TUPLE2, TUPLE3 = b"\x85", b"\x86", b"\x87"
    EMPTY_LIST, EMPTY_DICT, SETITEM, POP = b"]", b"}", b"s", b"0"
    NEWTRUE, NEWFALSE = b"\x88", b"\x89"

    @staticmethod
    def glob(module: str, name: str) -> bytes:
        return b"c" + module.encode() + b"\n" + name.encode() + b"\n"

    @staticmethod
    def uni(text: str) -> bytes:
        data = text.encode("utf-8")
        return b"X" + struct.pack("<I", len(data)) + data

    @staticmethod
    def byt(data: bytes) -> bytes:
        return b"B" + struct.pack("<I", len(data)) + data

    @staticmethod
    def int_(n: int) -> bytes:
        if -(2**31) <= n < 2**31:
            return b"J" + struct.pack("<i", n)
        raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
        return b"\x8a" + bytes([len(raw)]) + raw

    @staticmethod
    def put(i: int) -> bytes:
        return b"r" + struct.pack("<I", i)

    @staticmethod
    def get(i: int) -> bytes:
        return b"j" + struct.pack("<I", i)

    @classmethod
    def call(cls, module: str, name: str, *args: bytes) -> bytes:
        """module.name(*args) where each arg is already-assembled opcodes."""
        return cls.glob(module, name) + cls.MARK + b"".join(args) + cls.TUPLE + cls.REDUCE

    @classmethod
    def program(cls, *parts: bytes) -> bytes:
        return cls.PROTO2 + b"".join(parts) + cls.STOP


@pytest.fixture(scope="session")
def fab() -> SimpleNamespace:
    return SimpleNamespace(
        COMPAT=COMPAT,
        REAL=REAL,
        npy_bytes=npy_bytes,
        npy_header=npy_header,
        raw_npy=raw_npy,
        zip_members=zip_members,
        raw_zip=raw_zip,
        compress=compress,
        zeros_member=zeros_member,
        pickled_object_npy=pickled_object_npy,
        with_pickled_metadata=with_pickled_metadata,
        PTYCHOPINN_WITH_META=PTYCHOPINN_WITH_META,
        PTYCHOPINN_NO_META=PTYCHOPINN_NO_META,
        P=PickleAsm,
    )
