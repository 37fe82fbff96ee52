"""Safe, lazy, header-only inspection of `.npz`/`.npy` files and bounded array reads.

Why this exists instead of `np.load`: listing a 10 GB file must cost a few
kilobytes of I/O. We read the zip central directory and, per member, only the
`.npy` header (for a deflated member we inflate just enough bytes for it).
Array data is read only on request, by row range, with a byte cap, and object
arrays are never unpickled here (see `safe_pickle` for the one exception:
metadata).

The header parsing mirrors numpy's `lib/_format_impl.py` (magic, version 1/2/3,
`ast.literal_eval` of the header dict, `descr_to_dtype`) so that shapes, dtypes
and fortran order agree with `np.load` on everything numpy itself accepts.
"""

from __future__ import annotations

import ast
import bz2
import functools
import hashlib
import io
import lzma
import math
import os
import re
import stat
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.lib.format import descr_to_dtype

from .errors import (
    CorruptError,
    NotNpzError,
    NpzError,
    RefusedError,
    TooLargeError,
    TruncatedError,
    error_from_os,
)

NPY_MAGIC = b"\x93NUMPY"
_ZIP_LOCAL = b"PK\x03\x04"
_ZIP_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"
_ZIP_CENTRAL = b"PK\x01\x02"
_EOCD_LEN = 22
_LOCAL_HEADER_LEN = 30
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # zipfile.structCentralDir (46 bytes)
_MAX_EXTRACT_VERSION = 63  # zipfile.MAX_EXTRACT_VERSION
# One read at the end of the file finds the end record and, for a few members, the
# whole central directory; one read per member gets its local header and .npy header.
_TAIL_READ = 8 << 10
_MEMBER_READ = 512
_SMALL_FILE = 64 << 10  # read whole: one syscall instead of a dozen
_COMPRESSION_NAMES = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflated",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}
# Deflate cannot expand more than ~1032:1; a member claiming more is lying
# about its sizes (a classic zip-bomb trait) and is refused before inflating.
_DEFLATE_MAX_RATIO = 1100
_STREAM_CHUNK = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Bounds on everything a file controls. Defaults follow SPEC §2."""

    max_read_bytes: int = 1 << 30
    max_metadata_bytes: int = 16 << 20
    max_members: int = 65_536
    max_name_length: int = 1_024
    max_header_bytes: int = 10_000  # numpy's own np.load default
    max_central_directory_bytes: int = 128 << 20


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class ArrayInfo:
    """What the `.npy` header of one member says, plus where its bytes live."""

    name: str
    member: str | None
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    compression: str
    stored_bytes: int
    member_bytes: int
    header_bytes: int
    version: tuple[int, int]
    # Offset in the file of the member's first byte (its .npy magic).
    data_offset: int = field(repr=False, default=0)

    @property
    def compressed(self) -> bool:
        return self.compression != "stored"

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def rows(self) -> int | None:
        return self.shape[0] if self.shape else None

    @property
    def row_bytes(self) -> int:
        return math.prod(self.shape[1:]) * self.dtype.itemsize if self.shape else self.nbytes

    @property
    def is_object(self) -> bool:
        return bool(self.dtype.hasobject)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype.str,
            "fortran_order": self.fortran_order,
            "compressed": self.compressed,
            "stored_bytes": self.stored_bytes,
            "nbytes": self.nbytes,
        }


@dataclass(frozen=True)
class NpzInfo:
    """Header-only view of one file."""

    path: Path
    size: int
    mtime_ns: int
    arrays: tuple[ArrayInfo, ...]
    other_members: tuple[str, ...] = ()
    bare_npy: bool = False

    def array(self, name: str) -> ArrayInfo | None:
        for a in self.arrays:
            if a.name == name:
                return a
        return None

    def __contains__(self, name: object) -> bool:
        return any(a.name == name for a in self.arrays)

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.arrays]


# --------------------------------------------------------------------------
# .npy header parsing (numpy's rules, without numpy's file object plumbing)


def _header_prefix_len(buf: bytes) -> tuple[tuple[int, int], int, int]:
    """Return (version, prefix length, header length) from the first 12 bytes."""
    if len(buf) < 10 or buf[:6] != NPY_MAGIC:
        raise ValueError("not a .npy member (bad magic)")
    version = (buf[6], buf[7])
    if version == (1, 0):
        return version, 10, struct.unpack("<H", buf[8:10])[0]
    if version in ((2, 0), (3, 0)):
        if len(buf) < 12:
            raise ValueError("truncated .npy header")
        return version, 12, struct.unpack("<I", buf[8:12])[0]
    raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")


def _max_raw_header(version: tuple[int, int], max_header_chars: int) -> int:
    """Bytes a header within the character limit can take (UTF-8 for version 3.0)."""
    return max_header_chars * (4 if version == (3, 0) else 1)


# numpy's own header layout for a non-structured dtype, e.g.
#   {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }
# Anything else (structured dtypes, Python 2 longs, odd spacing) takes the literal_eval path.
# Only texts that literal_eval reads as exactly this dict may match: the string has no
# quote, backslash or control character, integers have no leading zeros or underscores,
# and a one-element tuple keeps its comma.
_INT = r"(?:0|[1-9][0-9]*)"
_SIMPLE_HEADER = re.compile(
    r"\{'descr': '([^'\\\x00-\x1f\x7f]*)', 'fortran_order': (True|False), "
    rf"'shape': \(((?:{_INT},)|(?:{_INT}(?:, {_INT})+,?)|)\), \}}[ \n]*\Z"
)


@functools.lru_cache(maxsize=512)
def _simple_dtype(descr: str) -> np.dtype:
    try:
        return descr_to_dtype(descr)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"unsupported .npy dtype {descr!r}: {exc}") from None


def parse_npy_header(
    buf: bytes, max_header_bytes: int = DEFAULT_LIMITS.max_header_bytes
) -> tuple[tuple[int, int], int, tuple[int, ...], bool, np.dtype]:
    """Parse a `.npy` header from the start of `buf`.

    Returns (version, total header length, shape, fortran_order, dtype).
    Raises ValueError with a human message for anything numpy would refuse.
    """
    version, prefix, hlen = _header_prefix_len(buf)
    if hlen > _max_raw_header(version, max_header_bytes):
        raise ValueError(f".npy header is {hlen} bytes, over the {max_header_bytes}-character limit")
    raw = buf[prefix : prefix + hlen]
    if len(raw) < hlen:
        raise ValueError("truncated .npy header")
    try:
        text = raw.decode("utf8" if version == (3, 0) else "latin1")
    except UnicodeDecodeError:
        raise ValueError(".npy header is not valid UTF-8") from None
    if len(text) > max_header_bytes:  # numpy counts characters, not bytes
        raise ValueError(f".npy header is {len(text)} characters, over the {max_header_bytes}-character limit")
    m = _SIMPLE_HEADER.match(text)
    if m is not None:  # what numpy writes for a plain dtype: same result as literal_eval, much faster
        descr, fortran, dims = m.groups()
        return version, prefix + hlen, tuple(int(x) for x in dims.split(",") if x), fortran == "True", _simple_dtype(descr)
    try:
        try:
            d = ast.literal_eval(text)
        except SyntaxError:
            if version == (3, 0):
                raise
            # Python 2 numpy wrote longs as `3L`; np.load filters them, so do we.
            d = ast.literal_eval(_filter_py2_longs(text))
    except (SyntaxError, ValueError, MemoryError, RecursionError, tokenize.TokenError) as exc:
        raise ValueError(f"cannot parse .npy header: {exc.__class__.__name__}") from None
    if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
        raise ValueError("malformed .npy header dictionary")
    shape = d["shape"]
    if not isinstance(shape, tuple) or not all(
        isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in shape
    ):
        raise ValueError(f"malformed .npy shape {shape!r}")
    if not isinstance(d["fortran_order"], bool):
        raise ValueError("malformed .npy fortran_order")
    try:
        dtype = descr_to_dtype(d["descr"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"unsupported .npy dtype {d['descr']!r}: {exc}") from None
    return version, prefix + hlen, shape, d["fortran_order"], dtype


def _filter_py2_longs(text: str) -> str:
    """numpy's `_filter_header`: drop the `L` after integer literals (Python 2 headers)."""
    tokens = []
    last_was_number = False
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if last_was_number and tok.type == tokenize.NAME and tok.string == "L":
            continue
        tokens.append(tok)
        last_was_number = tok.type == tokenize.NUMBER
    return tokenize.untokenize(tokens)


# --------------------------------------------------------------------------
# zip central directory: parsed here (as zipfile does), bounded before anything is built


class _Directory:
    """A parsed central directory: the entries zipfile.ZipFile would list (as ZipInfo)."""

    def __init__(self, entries: list[zipfile.ZipInfo]) -> None:
        self.filelist = entries
        self.NameToInfo = {zi.filename: zi for zi in entries}  # duplicates: the last wins

    def infolist(self) -> list[zipfile.ZipInfo]:
        return self.filelist

    def namelist(self) -> list[str]:
        return [zi.filename for zi in self.filelist]

    def getinfo(self, name: str) -> zipfile.ZipInfo:
        try:
            return self.NameToInfo[name]
        except KeyError:
            raise KeyError(f"There is no item named {name!r} in the archive") from None

    def close(self) -> None:
        pass


def _decode_zip64_extra(zi: zipfile.ZipInfo, extra: bytes) -> None:
    """zipfile's reading of the zip64 extra field (sizes/offset saturated at 0xFFFFFFFF)."""
    while len(extra) >= 4:
        tp, ln = struct.unpack("<HH", extra[:4])
        if ln + 4 > len(extra):
            raise zipfile.BadZipFile(f"corrupt extra field {tp:04x} (size={ln})")
        if tp == 0x0001:
            data = extra[4 : ln + 4]
            try:
                if zi.file_size in (0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF):
                    (zi.file_size,) = struct.unpack("<Q", data[:8])
                    data = data[8:]
                if zi.compress_size == 0xFFFF_FFFF:
                    (zi.compress_size,) = struct.unpack("<Q", data[:8])
                    data = data[8:]
                if zi.header_offset == 0xFFFF_FFFF:
                    (zi.header_offset,) = struct.unpack("<Q", data[:8])
            except struct.error:
                raise zipfile.BadZipFile("corrupt zip64 extra field") from None
        extra = extra[ln + 4 :]


class _StoredSlice:
    """Read-only window onto the bytes of a stored member (no decompression)."""

    def __init__(self, fp: BinaryIO, start: int, length: int) -> None:
        self._fp, self._start, self._len, self._pos = fp, start, length, 0

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self._len - self._pos:
            n = self._len - self._pos
        self._fp.seek(self._start + self._pos)
        data = self._fp.read(n)
        self._pos += len(data)
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        pass

    def __enter__(self) -> _StoredSlice:
        return self

    def __exit__(self, *exc) -> None:
        pass


class _InflatingSlice:
    """Streamed decompression of one deflate/bzip2/lzma member, bounded by what is asked.

    zipfile inflates bzip2 and lzma members without an output limit (a 4 KiB read
    of a bzip2 stream of zeros can expand to gigabytes), and lets `_lzma.LZMAError`
    escape. Here every call produces at most the bytes requested (and never more
    than the member's recorded size), errors are typed CORRUPT, and the CRC-32 is
    checked once the whole member has been produced.
    """

    _CHUNK = 64 << 10

    def __init__(self, fp: BinaryIO, start: int, zi: zipfile.ZipInfo, path: Path) -> None:
        self._fp, self._at, self._in_left = fp, start, zi.compress_size
        self._out_left, self._crc_want, self._crc = zi.file_size, zi.CRC, 0
        self._method, self._path, self._name = zi.compress_type, path, zi.filename
        self._pending = b""
        self._done = False
        if self._method == zipfile.ZIP_DEFLATED:
            self._d = zlib.decompressobj(-15)
        elif self._method == zipfile.ZIP_BZIP2:
            self._d = bz2.BZ2Decompressor()
        elif self._method == zipfile.ZIP_LZMA:
            self._d = self._lzma()
        else:  # pragma: no cover - refused when the member is inspected
            raise CorruptError(path, f"member {self._name!r}: unsupported compression")

    def _feed(self, n: int = _CHUNK) -> bytes:
        n = min(n, self._in_left)
        if n <= 0:
            return b""
        self._fp.seek(self._at)
        data = self._fp.read(n)
        self._at += len(data)
        self._in_left = self._in_left - len(data) if data else 0
        return data

    def _lzma(self):
        # zip's LZMA framing: 2-byte version, 2-byte properties size, properties, raw LZMA1
        head = self._feed(4)
        if len(head) < 4:
            raise CorruptError(self._path, f"member {self._name!r}: truncated LZMA header")
        (psize,) = struct.unpack("<H", head[2:4])
        props = self._feed(psize)
        try:
            filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)  # as zipfile does
            return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])
        except (lzma.LZMAError, ValueError, TypeError) as exc:
            raise CorruptError(self._path, f"member {self._name!r}: {exc}") from None

    def _step(self, want: int) -> bytes:
        """At most `want` more bytes; sets `_done` once nothing more can come out."""
        d = self._d
        if self._method == zipfile.ZIP_DEFLATED:
            data = self._pending or self._feed()
            out = d.decompress(data, want)  # b"" input drains what zlib still holds
            self._pending = d.unconsumed_tail
            if d.eof or (not data and not out):
                self._done = True
            return out
        if d.eof:
            self._done = True
            return b""
        data = self._feed() if d.needs_input else b""
        if d.needs_input and not data:
            self._done = True  # input exhausted before the end of the stream
            return b""
        return d.decompress(data, want)

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self._out_left:
            n = self._out_left
        out = bytearray()
        idle = 0
        try:
            while len(out) < n and not self._done:
                chunk = self._step(n - len(out))
                out += chunk
                idle = 0 if chunk else idle + 1
                if idle > 64 and not self._in_left:  # defensive: no input left, no output
                    break
        except (zlib.error, OSError, lzma.LZMAError, EOFError, ValueError) as exc:
            raise CorruptError(self._path, f"member {self._name!r}: {exc}") from None
        self._out_left -= len(out)
        self._crc = zlib.crc32(out, self._crc)
        if self._out_left == 0 and self._crc != self._crc_want:
            raise CorruptError(self._path, f"member {self._name!r}: bad CRC-32 (data is corrupt)")
        return bytes(out)

    def readinto(self, b) -> int:
        data = self.read(min(len(b), _STREAM_CHUNK))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        pass

    def __enter__(self) -> _InflatingSlice:
        return self

    def __exit__(self, *exc) -> None:
        pass


def _array_from(buf: bytearray | bytes, dtype: np.dtype, shape: tuple[int, ...], order: str = "C") -> np.ndarray:
    """The array held by `buf`; items of size 0 (an empty structured dtype, '|V0') hold no bytes."""
    if dtype.itemsize == 0:  # np.frombuffer refuses these; np.load builds them empty too
        return np.empty(shape, dtype=dtype, order=order)
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order)


def _read_exact(stream, n: int, what: str, path: Path) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = stream.readinto(view[got:])
        if not k:
            raise TruncatedError(path, f"{what}: data ends after {got} of {n} bytes")
        got += k
    return buf


def _skip(stream, n: int, what: str, path: Path) -> None:
    while n > 0:
        data = stream.read(min(n, _STREAM_CHUNK))
        if not data:
            raise TruncatedError(path, f"{what}: data ends early")
        n -= len(data)


class NpzReader:
    """An open `.npz` (or bare `.npy`) with its header-only `info`.

    Use as a context manager; one reader per thread (it owns a file position).
    """

    def __init__(self, path: str | os.PathLike, limits: Limits = DEFAULT_LIMITS) -> None:
        self.path = path if isinstance(path, Path) else Path(path)
        self.limits = limits
        self._zip: _Directory | None = None
        self._zinfos: dict[str, zipfile.ZipInfo] = {}
        self._whole: bytes | None = None
        self._fp: BinaryIO | None = None
        self._fp = _open_regular(self.path)
        try:
            self.info = self._inspect()
        except NpzError:
            self.close()
            raise
        except OSError as exc:
            self.close()
            raise error_from_os(self.path, exc) from None
        except (zipfile.BadZipFile, zipfile.LargeZipFile, struct.error, ValueError, EOFError, NotImplementedError) as exc:
            self.close()
            raise CorruptError(self.path, f"corrupt archive: {exc}") from None

    # -- lifecycle ---------------------------------------------------------
    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None
        if getattr(self, "_fp", None) is not None:
            self._fp.close()

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- inspection --------------------------------------------------------
    def _inspect(self) -> NpzInfo:
        st = os.fstat(self._fp.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise NotNpzError(self.path, "not a regular file")
        size = st.st_size
        if size == 0:
            raise NotNpzError(self.path, "empty file")
        if size <= _SMALL_FILE:
            self._whole = self._fp.read(size)
            head = self._whole[:8]
        else:
            head = self._fp.read(8)
        try:
            return self._inspect_zip(st, head)
        finally:
            self._whole = None

    def _inspect_zip(self, st: os.stat_result, head: bytes) -> NpzInfo:
        size = st.st_size
        if head.startswith(NPY_MAGIC):
            arrays = (self._inspect_bare(size),)
            return NpzInfo(self.path, size, st.st_mtime_ns, arrays, (), True)
        if not (head.startswith(_ZIP_LOCAL) or head.startswith(_ZIP_EOCD)):
            raise NotNpzError(self.path, "not an .npz file (no zip or .npy signature)")
        self._zip = self._read_directory(size)
        arrays: list[ArrayInfo] = []
        others: list[str] = []
        seen: dict[str, int] = {}
        for zi in self._zip.infolist():
            if zi.filename.endswith("/"):  # not is_dir(): it fails on an empty name
                continue
            if len(zi.filename) > self.limits.max_name_length:
                raise TooLargeError(self.path, f"a member name is {len(zi.filename)} characters long, over the limit")
            a = self._inspect_member(zi, size)
            if a is None:
                others.append(zi.filename)
                continue
            if a.name in seen:  # duplicate name: the last one wins, as in np.load
                arrays[seen[a.name]] = a
            else:
                seen[a.name] = len(arrays)
                arrays.append(a)
            self._zinfos[a.name] = zi
        if not arrays:
            raise NotNpzError(self.path, "zip archive holds no .npy member")
        return NpzInfo(self.path, size, st.st_mtime_ns, tuple(arrays), tuple(others))

    def _pread(self, offset: int, n: int) -> bytes:
        if self._whole is not None:
            return self._whole[offset : offset + n]
        return os.pread(self._fp.fileno(), n, offset)

    def _read_directory(self, size: int) -> _Directory:
        """The central directory, as zipfile reads it, but bounded before anything is built.

        Mirrors zipfile's `_EndRecData`/`_RealGetContents` (end record in the last
        22 bytes or within the 64 KiB comment window, zip64 record right before its
        locator, prepended-data offset correction) so names, sizes and offsets agree
        with what np.load sees; the member limit stops the parse early.
        """
        limits = self.limits
        tail_len = min(size, _TAIL_READ)
        tail = self._pread(size - tail_len, tail_len)
        if tail[-_EOCD_LEN : -_EOCD_LEN + 4] == _ZIP_EOCD and tail[-2:] == b"\0\0":
            pos = len(tail) - _EOCD_LEN
        else:  # a zip comment follows the end record: search the whole comment window
            if tail_len < min(size, _EOCD_LEN + 65_535):
                tail_len = min(size, _EOCD_LEN + 65_535)
                tail = self._pread(size - tail_len, tail_len)
            pos = tail.rfind(_ZIP_EOCD)
            if pos < 0 or pos + _EOCD_LEN > len(tail):
                raise TruncatedError(self.path, "zip central directory is missing (file truncated or still being written)")
        tail_at = size - len(tail)
        eocd_at = tail_at + pos
        _, _, _, _, n_total, cd_size, cd_offset, _ = struct.unpack("<4s4H2LH", tail[pos : pos + _EOCD_LEN])
        zip64 = False
        if eocd_at >= 20:
            loc = tail[pos - 20 : pos] if pos >= 20 else self._pread(eocd_at - 20, 20)
            if loc[:4] == _ZIP64_LOCATOR:
                _, disk, _, disks = struct.unpack("<4sLQL", loc)
                if disk != 0 or disks > 1:
                    raise CorruptError(self.path, "zip archives spanning several disks are not supported")
                rec_at = eocd_at - 20 - 56
                rec = self._pread(rec_at, 56) if rec_at >= 0 else b""
                if len(rec) == 56 and rec[:4] == _ZIP64_EOCD:
                    _, _, _, _, _, _, _, n_total, cd_size, cd_offset = struct.unpack("<4sQ2H2L4Q", rec)
                    zip64 = True
        if not zip64 and (cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF):
            raise CorruptError(self.path, "zip64 end record is missing")
        start = eocd_at - (76 if zip64 else 0) - cd_size
        if start < 0:
            raise TruncatedError(self.path, "zip central directory runs past the start of the file")
        if n_total > limits.max_members:
            raise TooLargeError(self.path, f"archive has {n_total} members, over the {limits.max_members} limit")
        if cd_size > limits.max_central_directory_bytes:
            raise TooLargeError(self.path, f"zip central directory is {cd_size} bytes, over the limit")
        concat = start - cd_offset  # bytes prepended to the archive (zipfile corrects offsets alike)
        cd = tail[start - tail_at : start - tail_at + cd_size] if start >= tail_at else self._pread(start, cd_size)
        entries: list[zipfile.ZipInfo] = []
        at = 0
        while at < cd_size:
            if len(entries) >= limits.max_members:  # the end record's count can lie
                raise TooLargeError(self.path, f"archive has more than {limits.max_members} members, over the limit")
            if at + _CENTRAL.size > len(cd):
                raise CorruptError(self.path, "zip central directory is truncated")
            f = _CENTRAL.unpack_from(cd, at)
            if f[0] != _ZIP_CENTRAL:
                raise CorruptError(self.path, "zip central directory is corrupt (bad entry signature)")
            n_len, x_len, c_len = f[12], f[13], f[14]
            p = at + _CENTRAL.size
            raw_name = cd[p : p + n_len]
            at = p + n_len + x_len + c_len
            flags = f[5]
            zi = zipfile.ZipInfo(raw_name.decode("utf-8" if flags & 0x800 else "cp437"))
            zi.extra, zi.comment = cd[p + n_len : p + n_len + x_len], cd[p + n_len + x_len : at]
            zi.create_version, zi.create_system, zi.extract_version, zi.reserved = f[1:5]
            zi.flag_bits, zi.compress_type, t, d, zi.CRC, zi.compress_size, zi.file_size = f[5:12]
            if zi.extract_version > _MAX_EXTRACT_VERSION:
                raise CorruptError(self.path, f"member {zi.filename!r} needs zip version {zi.extract_version / 10:.1f}")
            zi.volume, zi.internal_attr, zi.external_attr, zi.header_offset = f[15:19]
            zi._raw_time = t
            zi.date_time = ((d >> 9) + 1980, (d >> 5) & 0xF, d & 0x1F, t >> 11, (t >> 5) & 0x3F, (t & 0x1F) * 2)
            _decode_zip64_extra(zi, zi.extra)
            zi.header_offset += concat
            entries.append(zi)
        return _Directory(entries)

    def _inspect_bare(self, size: int) -> ArrayInfo:
        self._fp.seek(0)
        buf = self._fp.read(min(size, 12 + _max_raw_header((3, 0), self.limits.max_header_bytes)))
        version, hdr, shape, fortran, dtype = self._parse(buf, self.path.name)
        a = ArrayInfo(self.path.stem, None, shape, dtype, fortran, "stored", size, size, hdr, version, 0)
        self._check_payload(a)
        return a

    def _parse(self, buf: bytes, member: str):
        try:
            return parse_npy_header(buf, self.limits.max_header_bytes)
        except ValueError as exc:
            raise CorruptError(self.path, f"member {member!r}: {exc}") from None

    def _check_payload(self, a: ArrayInfo) -> None:
        if not a.is_object and a.member_bytes < a.header_bytes + a.nbytes:
            raise TruncatedError(
                self.path, f"member {a.name!r} holds fewer bytes than its header declares"
            )

    def _data_offset(self, zi: zipfile.ZipInfo, size: int) -> int:
        return self._local(zi, size, 0)[0]

    def _local(self, zi: zipfile.ZipInfo, size: int, extra: int) -> tuple[int, bytes]:
        """(offset of the member's data, up to `extra` bytes of that data) in one read."""
        lh = self._pread(zi.header_offset, _LOCAL_HEADER_LEN + extra)
        if len(lh) < _LOCAL_HEADER_LEN or lh[:4] != _ZIP_LOCAL:
            raise CorruptError(self.path, f"member {zi.filename!r}: bad local header")
        n_len, x_len = struct.unpack("<HH", lh[26:30])
        off = zi.header_offset + _LOCAL_HEADER_LEN + n_len + x_len
        if off + zi.compress_size > size:
            raise TruncatedError(self.path, f"member {zi.filename!r} runs past the end of the file")
        return off, lh[_LOCAL_HEADER_LEN + n_len + x_len :][: zi.compress_size]

    def _inspect_member(self, zi: zipfile.ZipInfo, size: int) -> ArrayInfo | None:
        if zi.header_offset + _LOCAL_HEADER_LEN + len(zi.filename) + zi.compress_size > size:
            raise TruncatedError(self.path, f"member {zi.filename!r} runs past the end of the file")
        if zi.flag_bits & 0x1:
            raise CorruptError(self.path, f"member {zi.filename!r} is encrypted")
        method = _COMPRESSION_NAMES.get(zi.compress_type)
        if method is None:
            raise CorruptError(self.path, f"member {zi.filename!r}: unsupported compression method {zi.compress_type}")
        if (
            method == "deflated"
            and zi.file_size > (1 << 20)
            and zi.file_size > _DEFLATE_MAX_RATIO * max(zi.compress_size, 1)
        ):
            raise CorruptError(
                self.path, f"member {zi.filename!r} claims an impossible compression ratio (zip bomb?)"
            )
        off, first = self._local(zi, size, _MEMBER_READ)
        want = min(zi.file_size, 128)
        buf = self._prefix(zi, off, want, first)
        if not buf.startswith(NPY_MAGIC):
            if zi.filename.endswith(".npy"):
                raise CorruptError(self.path, f"member {zi.filename!r} is not a .npy array")
            return None
        try:
            version, prefix, hlen = _header_prefix_len(buf)
        except ValueError as exc:
            raise CorruptError(self.path, f"member {zi.filename!r}: {exc}") from None
        if prefix + hlen > len(buf) and hlen <= _max_raw_header(version, self.limits.max_header_bytes):
            buf = self._prefix(zi, off, min(zi.file_size, prefix + hlen), first)
        version, hdr, shape, fortran, dtype = self._parse(buf, zi.filename)
        name = zi.filename[:-4] if zi.filename.endswith(".npy") else zi.filename
        a = ArrayInfo(name, zi.filename, shape, dtype, fortran, method, zi.compress_size, zi.file_size, hdr, version, off)
        self._check_payload(a)
        return a

    def _prefix(self, zi: zipfile.ZipInfo, off: int, n: int, first: bytes = b"") -> bytes:
        """The first `n` uncompressed bytes of a member, inflating no more than needed.

        `first` holds the member's first stored bytes when the caller already has them.
        """
        if zi.compress_type == zipfile.ZIP_STORED:
            if len(first) >= n:
                return first[:n]
            return self._pread(off, n)
        if zi.compress_type == zipfile.ZIP_DEFLATED:
            d = zlib.decompressobj(-15)
            out = bytearray()
            at = off + len(first)
            left = zi.compress_size - len(first)
            pending = first
            while len(out) < n:
                if not pending:
                    if left <= 0:
                        break
                    pending = self._pread(at, min(4096, left))
                    if not pending:
                        break
                    at += len(pending)
                    left -= len(pending)
                try:
                    out += d.decompress(pending, n - len(out))
                except zlib.error as exc:
                    raise CorruptError(self.path, f"member {zi.filename!r}: {exc}") from None
                pending = d.unconsumed_tail
                if d.eof:
                    break
            return bytes(out)
        with self._open_stream(zi, off) as s:
            return s.read(n)

    # -- bounded data reads ---------------------------------------------------
    def array_info(self, name: str) -> ArrayInfo:
        a = self.info.array(name)
        if a is None:
            raise KeyError(name)
        return a

    def _open_stream(self, zi: zipfile.ZipInfo, data_offset: int) -> _InflatingSlice:
        return _InflatingSlice(self._fp, data_offset, zi, self.path)

    def _payload_stream(self, a: ArrayInfo):
        """A stream positioned at the first data byte of `a` (after its header)."""
        if a.member is None or a.compression == "stored":
            return _StoredSlice(self._fp, a.data_offset + a.header_bytes, a.member_bytes - a.header_bytes)
        s = self._open_stream(self._zinfos[a.name], a.data_offset)
        _skip(s, a.header_bytes, a.name, self.path)
        return s

    def _guard(self, what: str, nbytes: int, max_bytes: int | None) -> None:
        cap = self.limits.max_read_bytes if max_bytes is None else max_bytes
        if nbytes > cap:
            raise TooLargeError(
                self.path,
                f"reading {what} needs {_human(nbytes)}, over the {_human(cap)} read limit",
            )

    def _refuse_objects(self, a: ArrayInfo) -> None:
        if a.is_object:
            raise RefusedError(self.path, f"array {a.name!r} holds Python objects; npztui never unpickles array data")

    def read(self, name: str, rows: slice | None = None, max_bytes: int | None = None) -> np.ndarray:
        """Read a whole array, or a contiguous range of its rows, within the byte cap."""
        a = self.array_info(name)
        self._refuse_objects(a)
        if rows is None or not a.shape:
            return self._read_full(a, max_bytes)
        start, stop, step = rows.indices(a.shape[0])
        if step != 1:
            raise ValueError("row slices must have step 1")
        stop = max(start, stop)
        count = stop - start
        self._guard(f"{count} rows of {a.name!r}", count * a.row_bytes, max_bytes)
        if a.fortran_order and len(a.shape) > 1:
            # Rows of a fortran-order array are not contiguous: read all (still capped).
            return self._read_full(a, max_bytes)[start:stop]
        try:
            with self._payload_stream(a) as s:
                _skip(s, start * a.row_bytes, a.name, self.path)
                buf = _read_exact(s, count * a.row_bytes, f"array {a.name!r}", self.path)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise CorruptError(self.path, f"array {a.name!r}: {exc}") from None
        return _array_from(buf, a.dtype, (count,) + a.shape[1:])

    def _read_full(self, a: ArrayInfo, max_bytes: int | None) -> np.ndarray:
        self._guard(f"array {a.name!r}", a.nbytes, max_bytes)
        try:
            with self._payload_stream(a) as s:
                buf = _read_exact(s, a.nbytes, f"array {a.name!r}", self.path)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise CorruptError(self.path, f"array {a.name!r}: {exc}") from None
        return _array_from(buf, a.dtype, a.shape, "F" if a.fortran_order else "C")

    def iter_rows(self, name: str, chunk_rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Stream an array in row chunks: (first row index, chunk). Memory stays bounded."""
        a = self.array_info(name)
        self._refuse_objects(a)
        if not a.shape or (a.fortran_order and len(a.shape) > 1):
            yield 0, self._read_full(a, None)
            return
        rb = max(a.row_bytes, 1)
        chunk_rows = chunk_rows or max(1, (8 << 20) // rb)
        n = a.shape[0]
        try:
            with self._payload_stream(a) as s:
                for start in range(0, n, chunk_rows):
                    k = min(chunk_rows, n - start)
                    buf = _read_exact(s, k * a.row_bytes, f"array {a.name!r}", self.path)
                    yield start, _array_from(buf, a.dtype, (k,) + a.shape[1:])
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise CorruptError(self.path, f"array {a.name!r}: {exc}") from None

    def read_rows(self, name: str, index) -> np.ndarray:
        """Rows at arbitrary indices (in the order given), reading only what is needed."""
        a = self.array_info(name)
        self._refuse_objects(a)
        idx = np.asarray(index, dtype=np.int64).reshape(-1)
        if not a.shape:
            raise ValueError(f"array {a.name!r} is 0-d and has no rows")
        if idx.size and (idx.min() < 0 or idx.max() >= a.shape[0]):
            raise IndexError(f"row index out of range for {a.name!r} with {a.shape[0]} rows")
        self._guard(f"{idx.size} rows of {a.name!r}", idx.size * a.row_bytes, None)
        out = np.empty((idx.size,) + a.shape[1:], dtype=a.dtype)
        if idx.size == 0:
            return out
        if not a.compressed:
            if a.fortran_order and len(a.shape) > 1:
                # Rows of a fortran-order array are not contiguous: read all (still capped).
                out[...] = self._read_full(a, None)[idx]
                return out
            # Stored bytes are read by offset from the open file (no second open of the
            # path, no mapping a truncated file could turn into SIGBUS): only the runs of
            # requested rows are read.
            rows = np.unique(idx)
            breaks = np.flatnonzero(np.diff(rows) != 1) + 1
            base, rb = a.data_offset + a.header_bytes, a.row_bytes
            got = bytearray()
            for run in np.split(rows, breaks):
                first, count = int(run[0]), len(run)
                self._fp.seek(base + first * rb)
                data = self._fp.read(count * rb)
                if len(data) < count * rb:
                    raise TruncatedError(self.path, f"array {a.name!r}: data ends before row {first + count - 1}")
                got += data
            picked = _array_from(got, a.dtype, (len(rows),) + a.shape[1:])
            out[...] = picked[np.searchsorted(rows, idx)]
            return out
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        pos = 0
        for start, chunk in self.iter_rows(name):
            end = start + len(chunk)
            hi = np.searchsorted(sorted_idx, end, side="left")
            if hi > pos:
                out[order[pos:hi]] = chunk[sorted_idx[pos:hi] - start]
                pos = hi
            if pos >= idx.size:
                break
        return out

    def read_payload_bytes(self, name: str, max_bytes: int) -> bytes:
        """Raw bytes after the `.npy` header (pickle data for object arrays), capped."""
        a = self.array_info(name)
        n = a.member_bytes - a.header_bytes
        if n > max_bytes:
            raise TooLargeError(self.path, f"member {a.name!r} is {_human(n)}, over the {_human(max_bytes)} limit")
        try:
            with self._payload_stream(a) as s:
                data = s.read(max_bytes + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise CorruptError(self.path, f"member {a.name!r}: {exc}") from None
        if len(data) > max_bytes:
            raise TooLargeError(self.path, f"member {a.name!r} is over the {_human(max_bytes)} limit")
        return data


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def _open_regular(path: str | os.PathLike) -> BinaryIO:
    """Open a regular file for reading; anything else is a typed error, and nothing blocks.

    A plain open() of a FIFO blocks until a writer appears (and a device can be an
    endless stream), so the file is opened non-blocking and checked with fstat on the
    same descriptor (no stat/open race) before any byte is read.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise error_from_os(path, exc) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise NotNpzError(path, "is a directory, not an .npz file")
        if not stat.S_ISREG(mode):
            raise NotNpzError(path, "not a regular file (a pipe, socket or device)")
        os.set_blocking(fd, True)
        return open(fd, "rb", closefd=True)
    except OSError as exc:
        os.close(fd)
        raise error_from_os(path, exc) from None
    except BaseException:
        os.close(fd)
        raise


def inspect(path: str | os.PathLike, limits: Limits = DEFAULT_LIMITS) -> NpzInfo:
    """Header-only description of a file; raises a typed `NpzError` if unreadable."""
    with NpzReader(path, limits) as r:
        return r.info


def fingerprint(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """`sha256_16`: the first 16 hex digits of the file's SHA-256 (the producers' convention)."""
    h = hashlib.sha256()
    try:
        with _open_regular(path) as f:
            while block := f.read(chunk):
                h.update(block)
    except OSError as exc:
        raise error_from_os(path, exc) from None
    return h.hexdigest()[:16]


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
