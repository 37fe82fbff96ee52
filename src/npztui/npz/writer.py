"""Atomic `.npz` writing: whole arrays, streamed arrays, and raw member copies.

Why not `np.savez`: it needs every array in memory (a grid-20 spectrum is 5 GB)
and writes in place, so a crash or Ctrl-C leaves a broken file. Here every
write goes to a temp file in the destination directory, is fsynced, and is
renamed over the target only when complete; an exception (KeyboardInterrupt
included) removes the temp file. The permissions of a replaced file are kept.

Raw copies let metadata edits rewrite a file without decoding and re-encoding
the other members: their compressed bytes are copied as they are.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

from .reader import NpzReader

try:  # POSIX: a live writer holds an advisory lock on its temp file
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

TEMP_PREFIX = ".npztui-tmp-"
# A temp file nobody holds a lock on is stale. Where locks are not supported
# (some network file systems) only temps older than this are removed, and an
# empty temp younger than a few seconds may be a writer between mkstemp and flock.
_UNLOCKABLE_STALE_AGE_S = 24 * 3600
_JUST_CREATED_S = 5.0


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def cleanup_stale_temps(directory: str | os.PathLike) -> list[Path]:
    """Remove temp files left by a killed writer (they are never valid outputs).

    A writer that is still running (another `compute`, another `meta set` in the
    same directory) holds a lock on its temp file; those are left alone.
    """
    removed = []
    for p in Path(directory).glob(TEMP_PREFIX + "*"):
        try:
            if _temp_in_use(p):
                continue
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def _temp_in_use(p: Path) -> bool:
    st = p.stat()
    age = time.time() - st.st_mtime
    if st.st_size == 0 and age < _JUST_CREATED_S:
        return True  # a writer between mkstemp and taking its lock
    if fcntl is None:
        return age < _UNLOCKABLE_STALE_AGE_S
    fd = os.open(p, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return True
        return age < _UNLOCKABLE_STALE_AGE_S  # locks unsupported here
    finally:
        os.close(fd)  # also releases the lock we may have taken
    return False


def _lock_temp(fd: int) -> int | None:
    """Hold an advisory lock on the temp file for the writer's lifetime (a dup'd fd,
    so closing the data file before the rename does not release it)."""
    if fcntl is None:
        return None
    lock_fd = os.dup(fd)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock_fd)
        return None
    return lock_fd


class _ArrayStream:
    """Writes one array member chunk by chunk; refuses a wrong total."""

    def __init__(self, fh, shape: tuple[int, ...], dtype: np.dtype, name: str) -> None:
        self._fh, self.shape, self.dtype, self.name = fh, shape, dtype, name
        self._expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        self._written = 0

    def write(self, chunk: np.ndarray) -> None:
        chunk = np.ascontiguousarray(chunk, dtype=self.dtype)
        self._written += chunk.nbytes
        if self._written > self._expected:
            raise ValueError(f"array {self.name!r}: more data than its declared shape {self.shape}")
        if chunk.nbytes == 0:  # e.g. a chunk whose rows all went to the other output
            return
        self._fh.write(memoryview(chunk).cast("B"))

    def finish(self) -> None:
        if self._written != self._expected:
            raise ValueError(
                f"array {self.name!r}: wrote {self._written} of {self._expected} declared bytes"
            )


class NpzWriter:
    """Builds a new `.npz` in a temp file and atomically replaces `path` on commit.

    Use as a context manager: leaving the block normally commits, an exception
    aborts (the target is untouched and the temp file removed).
    """

    def __init__(self, path: str | os.PathLike, *, compress: bool = False) -> None:
        self.path = Path(path)
        self.compress = compress
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".npz", dir=self.path.parent)
        self._tmp = Path(tmp)
        self._lock_fd = _lock_temp(fd)
        self._file = os.fdopen(fd, "w+b")
        self._zip = zipfile.ZipFile(self._file, "w", allowZip64=True)
        self._names: set[str] = set()
        self._done = False

    # -- members -------------------------------------------------------------
    def _member(self, name: str, compress: bool | None):
        if name in self._names:
            raise ValueError(f"duplicate array name {name!r}")
        self._names.add(name)
        zi = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
        use = self.compress if compress is None else compress
        zi.compress_type = zipfile.ZIP_DEFLATED if use else zipfile.ZIP_STORED
        zi.external_attr = 0o644 << 16
        return self._zip.open(zi, "w", force_zip64=True)

    def add(self, name: str, array: np.ndarray, *, compress: bool | None = None) -> None:
        """Write a whole array (never as pickled objects)."""
        arr = np.asanyarray(array)
        if arr.dtype.hasobject:
            raise TypeError(f"array {name!r}: npztui never writes object arrays")
        with self._member(name, compress) as fh:
            npy_format.write_array(fh, arr, allow_pickle=False)

    def add_metadata(self, metadata: Mapping[str, Any], name: str = "_metadata") -> None:
        """Metadata as a 0-d unicode array holding JSON: loadable with allow_pickle=False."""
        text = json.dumps(metadata, ensure_ascii=False, allow_nan=False, default=_json_default)
        self.add(name, np.array(text), compress=False)

    def add_legacy_pickled(self, name: str, value: Any) -> None:
        """The old producers' pickled 0-d object array (only for `--legacy-pickle`)."""
        arr = np.empty((), dtype=object)
        arr[()] = value
        with self._member(name, None) as fh:
            npy_format.write_array(fh, arr, allow_pickle=True)

    @contextlib.contextmanager
    def stream(
        self, name: str, shape: tuple[int, ...], dtype, *, compress: bool | None = None
    ) -> Iterator[_ArrayStream]:
        """Write an array whose rows arrive in chunks; memory stays one chunk."""
        dt = np.dtype(dtype)
        if dt.hasobject:
            raise TypeError(f"array {name!r}: npztui never writes object arrays")
        header = {"descr": npy_format.dtype_to_descr(dt), "fortran_order": False, "shape": tuple(shape)}
        with self._member(name, compress) as fh:
            if _needs_v2(header):
                npy_format.write_array_header_2_0(fh, header)
            else:
                npy_format.write_array_header_1_0(fh, header)
            s = _ArrayStream(fh, tuple(shape), dt, name)
            yield s
            s.finish()

    def copy_raw(self, reader: NpzReader, name: str) -> None:
        """Copy a member's stored bytes verbatim (no decompression, no re-encoding)."""
        a = reader.array_info(name)
        if a.member is None:  # bare .npy source: re-wrap its bytes as a stored member
            with self._member(name, False) as out:
                _copy_bytes(reader, 0, a.member_bytes, name, out.write)
            return
        if name in self._names:
            raise ValueError(f"duplicate array name {name!r}")
        self._names.add(name)
        src_zi = reader._zinfos[name]  # noqa: SLF001 - same package, same format layer
        self._copy_entry(reader, src_zi, a.data_offset)

    def copy_raw_member(self, reader: NpzReader, member: str) -> None:
        """Copy a non-array zip member (a README, a JSON sidecar) verbatim, so rewrites lose nothing."""
        assert reader._zip is not None  # noqa: SLF001
        src_zi = reader._zip.getinfo(member)  # noqa: SLF001
        if member in self._names:
            raise ValueError(f"duplicate member name {member!r}")
        self._names.add(member)
        self._copy_entry(reader, src_zi, reader._data_offset(src_zi, reader.info.size))  # noqa: SLF001

    def _copy_entry(self, reader: NpzReader, src_zi: zipfile.ZipInfo, data_offset: int) -> None:
        zi = zipfile.ZipInfo(src_zi.filename, date_time=src_zi.date_time)
        zi.compress_type = src_zi.compress_type
        zi.external_attr = src_zi.external_attr
        zi.CRC, zi.compress_size, zi.file_size = src_zi.CRC, src_zi.compress_size, src_zi.file_size
        zi.flag_bits = src_zi.flag_bits & ~0x08  # sizes go in the local header, no descriptor
        zf = self._zip
        zf.fp.seek(zf.start_dir)
        zi.header_offset = zf.start_dir
        zip64 = zi.file_size > 0xFFFFFFFF or zi.compress_size > 0xFFFFFFFF
        zf.fp.write(zi.FileHeader(zip64))
        # Read through the reader's own descriptor: the bytes copied are those of
        # the file the reader inspected, even if the path was replaced meanwhile.
        _copy_bytes(reader, data_offset, src_zi.compress_size, src_zi.filename, zf.fp.write)
        zf.start_dir = zf.fp.tell()
        zf.filelist.append(zi)
        zf.NameToInfo[zi.filename] = zi

    # -- commit / abort --------------------------------------------------------
    def commit(self) -> Path:
        if self._done:
            return self.path
        self._zip.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        try:
            mode = self.path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        os.chmod(self._tmp, mode)
        os.replace(self._tmp, self.path)
        self._done = True
        self._unlock()
        _fsync_dir(self.path.parent)
        return self.path

    def _unlock(self) -> None:
        if getattr(self, "_lock_fd", None) is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        with contextlib.suppress(Exception):
            self._zip.close()
        with contextlib.suppress(Exception):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()
        self._unlock()

    def __enter__(self) -> NpzWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_npz(
    path: str | os.PathLike,
    arrays: Mapping[str, np.ndarray],
    *,
    metadata: Mapping[str, Any] | None = None,
    compress: bool = False,
) -> Path:
    """Atomically write `arrays` (+ `_metadata` JSON) to `path`."""
    with NpzWriter(path, compress=compress) as w:
        for name, arr in arrays.items():
            w.add(name, arr)
        if metadata is not None:
            w.add_metadata(metadata)
    return Path(path)


def _copy_bytes(reader: NpzReader, offset: int, length: int, what: str, write) -> None:
    fd = reader._fp.fileno()  # noqa: SLF001
    left = length
    while left > 0:
        block = os.pread(fd, min(left, 1 << 20), offset)
        if not block:
            raise ValueError(f"member {what!r} ends early in the source file")
        write(block)
        offset += len(block)
        left -= len(block)


def _needs_v2(header: dict) -> bool:
    text = repr(header)
    return len(text) + 12 > 65535


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, frozenset)):
        return sorted(o, key=repr)
    if isinstance(o, bytes):
        return o.decode("utf-8", "replace")
    if hasattr(o, "isoformat"):
        return o.isoformat()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


__all__ = ["NpzWriter", "write_npz", "cleanup_stale_temps", "TEMP_PREFIX"]
