"""A restricted unpickler for the legacy pickled metadata both producers write.

Both real producers store metadata as a pickled 0-d object array. Reading it
with the standard unpickler would let a file run arbitrary code, so this
unpickler resolves only an allow-list of plain-data globals (SPEC §2.3) and
hands out *bounded* stand-ins for the callables among them: `bytes(10**10)` or
an `ndarray` reconstruction with a huge shape would otherwise exhaust memory
without executing any "code" at all. Anything outside the list raises
`UnsafePickleError` naming the global; nothing is executed.
"""

from __future__ import annotations

import _compat_pickle
import collections
import datetime
import io
import math
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
_PRESCAN_THRESHOLD = 64 << 10


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


def _bounded_size(shape) -> int:
    if isinstance(shape, int):
        shape = (shape,)
    try:
        n = math.prod(int(x) for x in shape)
    except TypeError:
        raise PickleLimitError("array shape is not a tuple of integers") from None
    if n > MAX_ELEMENTS:
        raise PickleLimitError(f"array of {n} elements is over the limit")
    return n


def _safe_reconstruct(subtype, shape, dtype):
    if subtype is not _NDARRAY:
        raise UnsafePickleError(f"_reconstruct of {subtype!r}")
    _bounded_size(shape)
    return _np_reconstruct(np.ndarray, shape, dtype)


def _safe_scalar(dtype, *args):
    if not isinstance(dtype, np.dtype) or dtype.itemsize > MAX_ELEMENTS:
        raise PickleLimitError("numpy scalar with an unusable dtype")
    return _np_scalar(dtype, *args)


def _safe_frombuffer(buf, dtype, shape, order):
    # numpy's protocol-5 array pickles; the data is the buffer itself, so it is bounded already.
    _bounded_size(shape)
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order).copy()


def _safe_dtype(*args):
    return np.dtype(*args)


def _bounded_bytes_like(kind):
    def make(*args):
        if args and isinstance(args[0], int) and not isinstance(args[0], bool):
            if args[0] > MAX_ELEMENTS:
                raise PickleLimitError(f"{kind.__name__}({args[0]}) is over the limit")
        return kind(*args)

    make.__name__ = kind.__name__
    return make


def _safe_codecs_encode(obj, encoding="utf-8", errors="strict"):
    # Protocol-2 pickles of bytes go through _codecs.encode(text, 'latin1'); allow only that.
    if encoding.lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591"):
        raise UnsafePickleError(f"_codecs.encode with encoding {encoding!r}")
    return obj.encode("latin1", errors)


_ALLOWED: dict[tuple[str, str], object] = {
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("builtins", "tuple"): tuple,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "str"): str,
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
    ("collections", "OrderedDict"): collections.OrderedDict,
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
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except (UnsafePickleError, PickleLimitError):
        raise
    except RecursionError:
        raise PickleLimitError("pickle nests too deeply") from None
    except MemoryError:
        raise PickleLimitError("pickle needs too much memory") from None
    except Exception as exc:  # malformed data of any kind: never a crash
        raise pickle.UnpicklingError(f"{exc.__class__.__name__}: {exc}") from None
