"""A restricted unpickler for the legacy pickled metadata both producers write.

Both real producers store metadata as a pickled 0-d object array. Reading it
with the standard unpickler would let a file run arbitrary code, so this
unpickler resolves only an allow-list of plain-data globals (SPEC §2.3) and
hands out *bounded* stand-ins for the callables among them: `bytes(10**10)` or
an `ndarray` reconstruction with a huge shape would otherwise exhaust memory
without executing any "code" at all. Anything outside the list raises
`UnsafePickleError` naming the global; nothing is executed.

numpy's reconstruction is memory-unsafe on hostile input: `ndarray.__setstate__`
trusts that an object array's item list matches its shape (it reads past the
list otherwise), and `dtype.__setstate__` accepts field offsets outside the
item. Arrays are therefore built as `_SafeArray`, whose `__setstate__` checks
the state first, and every dtype is rebuilt from validated parts through
numpy's own checked constructors before any array or scalar uses it. All
objects the allowed callables build count against one budget per load, so many
small calls cannot add up to gigabytes either.
"""

from __future__ import annotations

import _compat_pickle
import collections
import contextvars
import datetime
import io
import math
import operator
import pickle
import pickletools

import numpy as np

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
    from numpy._core.multiarray import scalar as _np_scalar
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct  # type: ignore
    from numpy.core.multiarray import scalar as _np_scalar  # type: ignore

MAX_OPCODES = 1_000_000
MAX_ELEMENTS = 1 << 22  # elements of any one array or bytes object built by a callable
MAX_ITEMSIZE = 1 << 20  # bytes of one dtype item
MAX_BUILD_BYTES = 64 << 20  # everything the allowed callables build in one load
_PRESCAN_THRESHOLD = 64 << 10
_SLOT = 48  # bytes charged per element of a container built by a call (pointer + box)

_budget: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("npztui_pickle_budget", default=None)


class UnsafePickleError(Exception):
    """The pickle names a global outside the allowed set (nothing was executed)."""

    def __init__(self, global_name: str) -> None:
        self.global_name = global_name
        super().__init__(f"pickle refers to {global_name}, which is not allowed (nothing executed)")


class PickleLimitError(Exception):
    """The pickle is too big or too deeply built to decode safely."""


class _NdarrayToken:
    """Stands in for `numpy.ndarray` so it can be passed to `_reconstruct` but never called."""

    def __repr__(self) -> str:
        return "numpy.ndarray"


_NDARRAY = _NdarrayToken()


def _charge(nbytes: int, what: str) -> None:
    """Count what an allowed call builds against the per-load budget."""
    budget = _budget.get()
    if budget is None:  # called outside safe_loads: nothing to account to
        return
    budget[0] -= max(int(nbytes), 0)
    if budget[0] < 0:
        raise PickleLimitError(f"pickle builds more than {MAX_BUILD_BYTES >> 20} MiB of objects ({what})")


def _bounded_size(shape) -> int:
    if isinstance(shape, int):
        shape = (shape,)
    try:
        dims = [operator.index(x) for x in shape]
    except TypeError:
        raise PickleLimitError("array shape is not a tuple of integers") from None
    if any(d < 0 for d in dims):
        raise PickleLimitError("array shape has a negative dimension")
    n = math.prod(dims)
    if n > MAX_ELEMENTS:
        raise PickleLimitError(f"array of {n} elements is over the limit")
    return n


def _clean_dtype(dtype, _depth: int = 0) -> np.dtype:
    """A fresh dtype equal to `dtype`, rebuilt through numpy's validating constructors.

    A dtype that went through `__setstate__` may describe fields outside its item;
    the rebuilt one cannot (numpy checks offsets, sizes and object overlaps), and
    being new it is out of reach of any later BUILD in the same pickle.
    """
    if isinstance(dtype, (str, bytes)):  # a typecode, as `_reconstruct` receives it
        dtype = np.dtype(dtype.decode("latin1") if isinstance(dtype, bytes) else dtype)
    if not isinstance(dtype, np.dtype):
        raise PickleLimitError(f"expected a dtype, got {type(dtype).__name__}")
    if _depth > 16 or dtype.itemsize > MAX_ITEMSIZE:
        raise PickleLimitError("dtype is too large or too deeply nested")
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        _bounded_size(shape)
        return np.dtype((_clean_dtype(base, _depth + 1), tuple(shape)))
    if dtype.names is not None:
        formats, offsets, titles = [], [], []
        for name in dtype.names:
            field = dtype.fields[name]
            formats.append(_clean_dtype(field[0], _depth + 1))
            offsets.append(operator.index(field[1]))
            titles.append(field[2] if len(field) > 2 else None)
        spec = {"names": list(dtype.names), "formats": formats, "offsets": offsets, "itemsize": dtype.itemsize}
        if any(t is not None for t in titles):
            spec["titles"] = titles
        return np.dtype(spec)
    return np.dtype(dtype.str)


class _SafeArray(np.ndarray):
    """What numpy reconstruction builds here: its `__setstate__` checks the state first."""

    def __setstate__(self, state) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise PickleLimitError("malformed array state")
        head = state[:-4]
        shape, dtype, fortran, raw = state[-4:]
        if not isinstance(shape, tuple):
            raise PickleLimitError("array shape is not a tuple")
        n = _bounded_size(shape)
        dtype = _clean_dtype(dtype)
        if dtype.hasobject:
            if not isinstance(raw, list) or len(raw) != n:
                raise PickleLimitError("object array items do not match its shape")
        elif not isinstance(raw, (bytes, bytearray, str)) or len(raw) != n * dtype.itemsize:
            raise PickleLimitError("array data does not match its shape")
        _charge(n * dtype.itemsize, "array")
        super().__setstate__(head + (shape, dtype, bool(fortran), raw))


def _plain(value):
    """Top-level arrays come back as plain ndarrays."""
    return value.view(np.ndarray) if isinstance(value, _SafeArray) else value


def _safe_reconstruct(subtype, shape, dtype):
    if subtype is not _NDARRAY:
        raise UnsafePickleError(f"_reconstruct of {subtype!r}")
    dtype = _clean_dtype(dtype)
    _charge(_bounded_size(shape) * dtype.itemsize, "array")
    return _np_reconstruct(_SafeArray, shape, dtype)


def _safe_scalar(dtype, *args):
    dtype = _clean_dtype(dtype)
    _charge(dtype.itemsize, "numpy scalar")
    return _np_scalar(dtype, *args)


def _safe_frombuffer(buf, dtype, shape, order):
    # numpy's protocol-5 array pickles; the data is the buffer itself, so it is bounded already.
    dtype = _clean_dtype(dtype)
    if dtype.hasobject:
        raise PickleLimitError("object arrays cannot come from a buffer")
    _charge(_bounded_size(shape) * dtype.itemsize, "array")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order).copy().view(_SafeArray)


def _safe_dtype(obj, align=False, copy=True):
    # Always a private copy (never numpy's shared builtin instance); validated when used.
    return np.dtype(obj, bool(align), True)


def _bounded_bytes_like(kind):
    def make(*args):
        n = None
        if args and not isinstance(args[0], (str, bytes, bytearray, memoryview)):
            try:
                n = operator.index(args[0])  # Python ints, numpy integers, 0-d integer arrays
            except TypeError:
                n = None
            if n is not None:
                if n > MAX_ELEMENTS:
                    raise PickleLimitError(f"{kind.__name__}({n}) is over the limit")
                _charge(n, kind.__name__)  # before allocating
        out = kind(*args)
        if n is None:  # built from existing data: bounded by it, counted after
            _charge(len(out), kind.__name__)
        return out

    make.__name__ = kind.__name__
    return make


def _bounded_container(kind):
    def make(*args, **kwargs):
        if args:
            try:
                n = len(args[0])
            except TypeError:
                raise PickleLimitError(f"{kind.__name__}() of a {type(args[0]).__name__}") from None
            _charge(n * _SLOT, kind.__name__)
        return kind(*args, **kwargs)

    make.__name__ = kind.__name__
    return make


_SCALARS = (str, bytes, bytearray, int, float, complex, bool, type(None), np.generic)


def _safe_str(*args):
    # str() of a container is its repr, which shared references can make enormous.
    if args and not isinstance(args[0], _SCALARS):
        raise PickleLimitError(f"str() of a {type(args[0]).__name__}")
    out = str(*args)
    _charge(len(out), "str")
    return out


def _safe_codecs_encode(obj, encoding="utf-8", errors="strict"):
    # Protocol-2 pickles of bytes go through _codecs.encode(text, 'latin1'); allow only that.
    if encoding.lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591"):
        raise UnsafePickleError(f"_codecs.encode with encoding {encoding!r}")
    out = obj.encode("latin1", errors)
    _charge(len(out), "bytes")
    return out


_ALLOWED: dict[tuple[str, str], object] = {
    ("builtins", "dict"): _bounded_container(dict),
    ("builtins", "list"): _bounded_container(list),
    ("builtins", "tuple"): _bounded_container(tuple),
    ("builtins", "set"): _bounded_container(set),
    ("builtins", "frozenset"): _bounded_container(frozenset),
    ("builtins", "str"): _safe_str,
    ("builtins", "bytes"): _bounded_bytes_like(bytes),
    ("builtins", "bytearray"): _bounded_bytes_like(bytearray),
    ("builtins", "int"): int,
    ("builtins", "float"): float,
    ("builtins", "complex"): complex,
    ("builtins", "bool"): bool,
    ("datetime", "date"): datetime.date,
    ("datetime", "time"): datetime.time,
    ("datetime", "datetime"): datetime.datetime,
    ("datetime", "timedelta"): datetime.timedelta,
    ("datetime", "timezone"): datetime.timezone,
    ("collections", "OrderedDict"): _bounded_container(collections.OrderedDict),
    ("_codecs", "encode"): _safe_codecs_encode,
}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_mod, "_reconstruct")] = _safe_reconstruct
    _ALLOWED[(_mod, "scalar")] = _safe_scalar
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_mod, "_frombuffer")] = _safe_frombuffer
_ALLOWED[("numpy", "ndarray")] = _NDARRAY
_ALLOWED[("numpy", "dtype")] = _safe_dtype


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the allow-list; every other global is refused by name."""

    def find_class(self, module: str, name: str):
        # Python 2 era names (protocols 0-2), mapped as the standard fix_imports does.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"{module}.{name}") from None

    def persistent_load(self, pid):
        raise UnsafePickleError("a persistent id")


def _prescan(data: bytes) -> None:
    """Count opcodes without executing anything, so a 16 MiB pickle cannot build millions of objects."""
    if len(data) < _PRESCAN_THRESHOLD:
        return
    count = 0
    try:
        for _ in pickletools.genops(io.BytesIO(data)):
            count += 1
            if count > MAX_OPCODES:
                raise PickleLimitError(f"pickle has more than {MAX_OPCODES} operations")
    except (ValueError, EOFError) as exc:
        raise pickle.UnpicklingError(str(exc)) from None


def safe_loads(data: bytes):
    """Unpickle plain data only. Raises UnsafePickleError, PickleLimitError or pickle.UnpicklingError."""
    _prescan(data)
    token = _budget.set([MAX_BUILD_BYTES])
    try:
        return _plain(RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load())
    except (UnsafePickleError, PickleLimitError):
        raise
    except RecursionError:
        raise PickleLimitError("pickle nests too deeply") from None
    except MemoryError:
        raise PickleLimitError("pickle needs too much memory") from None
    except Exception as exc:  # malformed data of any kind: never a crash
        raise pickle.UnpicklingError(f"{exc.__class__.__name__}: {exc}") from None
    finally:
        _budget.reset(token)
