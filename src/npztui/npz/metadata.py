"""Metadata discovery across every encoding real producers use, and the v1 schema.

Three conventions exist in the wild: `_metadata` holding JSON (the ptycho
producer, pickled as a 0-d object array), `metadata` holding a pickled dict
(the circuit producer), and `metadata_json` holding a 0-d unicode JSON string
(PtychoPINN test fixtures). We try them in that order, then any 0-d string
member that parses as a JSON object, and report which member and encoding won.

A candidate that fails to decode yields a finding (META_INVALID or
UNSAFE_PICKLE) and discovery moves on, so a hostile `_metadata` cannot hide a
good `metadata`, and the arrays are always still listed.
"""

from __future__ import annotations

import datetime
import getpass
import json
import pickle
import socket
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import NpzError, TooLargeError
from .findings import Finding
from .reader import NpzReader, _human
from .safe_pickle import PickleLimitError, UnsafePickleError, safe_loads

SCHEMA_VERSION = "1.0.0"
CANDIDATES = ("_metadata", "metadata", "metadata_json")
MAX_NODES = 1_000_000
MAX_DEPTH = 64

# Short keys users type, resolved into the schema (first match wins).
ALIASES: dict[str, tuple[str, ...]] = {
    "nphotons": ("physics_parameters.nphotons",),
    "N": ("physics_parameters.N",),
    "gridsize": ("physics_parameters.gridsize",),
    "grid_size": ("circuit.grid_size", "grid_size"),
    "freq_min": ("circuit.freq_min", "freq_min"),
    "freq_max": ("circuit.freq_max", "freq_max"),
    "n_frequencies": ("circuit.n_frequencies", "n_frequencies"),
    "n_parameter_sets": ("circuit.n_parameter_sets", "n_parameter_sets"),
    "best_resnorm": ("circuit.best_resnorm", "best_resnorm"),
    "param_names": ("circuit.param_names", "param_names"),
    "param_units": ("circuit.param_units", "param_units"),
}
SECTIONS = (
    "physics_parameters",
    "simulation_parameters",
    "training_parameters",
    "circuit",
    "additional_parameters",
)


@dataclass
class MetadataResult:
    """What discovery found: the data, where it came from, and problems met on the way."""

    data: dict[str, Any] | None = None
    source: str | None = None
    encoding: str | None = None
    findings: list[Finding] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return self.data is not None

    @property
    def legacy(self) -> bool:
        return self.data is not None and "schema_version" not in self.data

    def to_json(self) -> dict[str, Any]:
        return {"member": self.source, "encoding": self.encoding}


class _Invalid(Exception):
    """A candidate member could not be decoded into a JSON object."""


def discover(reader: NpzReader) -> MetadataResult:
    """Find and decode the file's metadata, trying every known convention in order."""
    info = reader.info
    names = [n for n in CANDIDATES if n in info]
    names += [
        a.name
        for a in info.arrays
        if a.name not in CANDIDATES and a.shape == () and a.dtype.kind in "US"
    ]
    result = MetadataResult(candidates=names)
    for name in names:
        explicit = name in CANDIDATES
        try:
            data, encoding = _decode(reader, name)
        except UnsafePickleError as exc:
            result.findings.append(
                Finding.make("UNSAFE_PICKLE", f"member {name!r}: {exc}", key=name, actual=exc.global_name)
            )
            continue
        except _Invalid as exc:
            if explicit:  # a 0-d string that is not JSON is just a string, not broken metadata
                result.findings.append(Finding.make("META_INVALID", f"member {name!r}: {exc}", key=name))
            continue
        result.data, result.source, result.encoding = data, name, encoding
        break
    return result


def _decode(reader: NpzReader, name: str) -> tuple[dict[str, Any], str]:
    a = reader.array_info(name)
    limit = reader.limits.max_metadata_bytes
    if a.is_object:
        if a.shape not in ((), (1,)):
            raise _Invalid(f"object array of shape {a.shape}, expected 0-d")
        payload = _bounded(lambda: reader.read_payload_bytes(name, limit), limit)
        try:
            value = safe_loads(payload)
        except PickleLimitError as exc:
            raise _Invalid(f"pickled metadata refused: {exc}") from None
        except pickle.UnpicklingError as exc:
            raise _Invalid(f"cannot decode pickled metadata ({exc})") from None
        if isinstance(value, np.ndarray):
            if value.size != 1:
                raise _Invalid(f"pickled array of shape {value.shape}, expected one value")
            value = value.reshape(()).item()
        if isinstance(value, (str, bytes)):
            return _parse_json(value), "pickle-json"
        if isinstance(value, Mapping):
            return to_jsonable(value), "pickle-dict"
        raise _Invalid(f"pickled value is a {type(value).__name__}, not a JSON object")
    if a.dtype.kind in "US" and a.shape in ((), (1,)):
        arr = _bounded(lambda: reader.read(name, max_bytes=limit), limit)
        value = arr.reshape(()).item()
        return _parse_json(value), "json" if a.dtype.kind == "U" else "json-bytes"
    raise _Invalid(f"a {a.dtype.str} array of shape {a.shape}, not a JSON string")


def _bounded(read, limit: int):
    try:
        return read()
    except TooLargeError:
        raise _Invalid(f"larger than the {_human(limit)} metadata limit") from None
    except NpzError as exc:
        raise _Invalid(str(exc)) from None


def _parse_json(value: str | bytes) -> dict[str, Any]:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise _Invalid("bytes are not UTF-8 text") from None
    try:
        data = json.loads(value)
    except RecursionError:
        raise _Invalid("JSON nests too deeply") from None
    except json.JSONDecodeError as exc:
        raise _Invalid(f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except ValueError as exc:  # e.g. an integer over Python's digit limit: no .msg/.lineno
        raise _Invalid(f"not valid JSON ({str(exc).splitlines()[0] if str(exc) else 'unreadable'})") from None
    if not isinstance(data, dict):
        raise _Invalid(f"JSON is a {type(data).__name__}, not an object")
    _check_size(data)
    return data


def _check_size(data: Any) -> None:
    """Walk iteratively so depth and node count are bounded (a pickle can share references)."""
    stack = deque([(data, 0)])
    nodes = 0
    while stack:
        v, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise _Invalid(f"more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise _Invalid(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(v, dict):
            stack.extend((x, depth + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, depth + 1) for x in v)


def to_jsonable(value: Any, _depth: int = 0, _budget: list[int] | None = None) -> Any:
    """Turn unpickled plain data into JSON types (bounded: shared references can explode)."""
    budget = _budget if _budget is not None else [MAX_NODES]
    budget[0] -= 1
    if budget[0] < 0:
        raise _Invalid(f"more than {MAX_NODES} values")
    if _depth > MAX_DEPTH:
        raise _Invalid(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 13_000:
        # a pickle stores ints in binary; past ~3900 digits json.dumps cannot print them
        return f"<a {int(value.bit_length() * 0.30103) + 1}-digit integer>"
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, np.generic):
        return to_jsonable(value.item(), _depth + 1, budget)
    if isinstance(value, np.ndarray):
        if value.size > 100_000:
            raise _Invalid(f"an embedded array of {value.size} elements")
        return to_jsonable(value.tolist(), _depth + 1, budget)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, _depth + 1, budget) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, _depth + 1, budget) for v in value]
    if isinstance(value, (set, frozenset)):
        return [to_jsonable(v, _depth + 1, budget) for v in sorted(value, key=repr)]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, complex):
        return [value.real, value.imag]
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return str(value)


# --------------------------------------------------------------------------
# keys


MISSING: Any = object()


def get_path(data: Mapping[str, Any] | None, dotted: str) -> Any:
    """Value at a dotted path, or `MISSING`."""
    cur: Any = data
    for part in dotted.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        else:
            return MISSING
    return cur


def resolve(data: Mapping[str, Any] | None, key: str) -> tuple[str, Any] | None:
    """Find a user-typed key in metadata: exact dotted path, schema alias, a section, then anywhere.

    Returns (path found, value) or None. The "anywhere" step is breadth-first,
    so `nphotons` in PtychoPINN's `data_config` is found, shallowest first.
    """
    if not data:
        return None
    v = get_path(data, key)
    if v is not MISSING:
        return key, v
    for path in ALIASES.get(key, ()):
        v = get_path(data, path)
        if v is not MISSING:
            return path, v
    if "." in key:
        return None
    for section in SECTIONS:
        v = get_path(data, f"{section}.{key}")
        if v is not MISSING:
            return f"{section}.{key}", v
    queue: deque[tuple[str, Any]] = deque([("", data)])
    while queue:
        prefix, node = queue.popleft()
        if isinstance(node, Mapping):
            if key in node:
                return prefix + key, node[key]
            queue.extend((f"{prefix}{k}.", v) for k, v in node.items() if isinstance(v, Mapping))
    return None


def lookup(data: Mapping[str, Any] | None, key: str, default: Any = None) -> Any:
    found = resolve(data, key)
    return default if found is None else found[1]


# --------------------------------------------------------------------------
# schema v1


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_metadata(
    *,
    script: str,
    physics: Mapping[str, Any] | None = None,
    simulation: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    circuit: Mapping[str, Any] | None = None,
    additional: Mapping[str, Any] | None = None,
    transformations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A fresh schema-v1 document (SPEC §3), compatible with the ptycho producer."""
    from .. import __version__

    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "creation_info": {
            "timestamp": utc_now(),
            "script": script,
            "hostname": socket.gethostname(),
            "user": _user(),
            "tool_version": f"npztui {__version__}",
        },
        "physics_parameters": dict(physics or {}),
        "simulation_parameters": dict(simulation or {}),
        "training_parameters": dict(training or {}),
        "data_transformations": list(transformations or []),
        "additional_parameters": dict(additional or {}),
    }
    if circuit is not None:
        doc["circuit"] = dict(circuit)
    return doc


def transformation_record(tool: str, operation: str, parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One entry of `data_transformations`: the file's lineage."""
    return {
        "tool": tool,
        "timestamp": utc_now(),
        "operation": operation,
        "parameters": to_jsonable(dict(parameters or {})),
    }


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"
