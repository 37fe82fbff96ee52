"""Parameter-mismatch rules (SPEC §4): metadata against arrays, expectations and sets.

Intrinsic rules read headers, plus small 1-d arrays where a rule needs values
(`frequencies`, `resnorms`, streamed in chunks so memory stays flat). Only
`deep` reads the big arrays, to look for NaN/inf.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import kinds
from .findings import RULES, Finding
from .metadata import MISSING, MetadataResult, get_path, resolve
from .reader import ArrayInfo, NpzReader

MODES = ("strict", "warn", "permissive")
DEFAULT_SET_KEYS = {
    kinds.PTYCHO: ("nphotons", "N", "gridsize"),
    kinds.CIRCUIT: ("grid_size", "freq_min", "freq_max", "n_frequencies"),
    kinds.GENERIC: (),
}
FREQ_RTOL = 1e-3
BEST_RTOL = 1e-5


@dataclass(frozen=True)
class CheckOptions:
    mode: str = "warn"
    expect: Mapping[str, Any] = field(default_factory=dict)
    consistent: tuple[str, ...] = ()
    deep: bool = False
    rel_tol: float = 1e-9


def passes(findings: Sequence[Finding], mode: str = "warn") -> bool:
    """Whether a file passes under a validation mode."""
    if mode == "permissive":
        return True
    bad = {"error", "warning"} if mode == "strict" else {"error"}
    return not any(f.severity in bad for f in findings)


# --------------------------------------------------------------------------
# value helpers


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def as_float(v: Any) -> float:
    """float(v) for a number; integers beyond float range become ±inf instead of raising."""
    try:
        return float(v)
    except OverflowError:  # JSON allows 4300-digit integers
        return math.inf if v > 0 else -math.inf


def as_int(v: Any) -> int | None:
    """An integer, or an integral float (producers write 64.0); None otherwise."""
    if not is_number(v):
        return None
    if isinstance(v, (int, np.integer)):
        return int(v)
    f = float(v)
    return int(f) if math.isfinite(f) and f.is_integer() else None


def values_equal(actual: Any, expected: Any, rel_tol: float = 1e-9) -> bool:
    """Equality with a relative tolerance for numbers, elementwise for lists."""
    if isinstance(actual, str) and is_number(expected):
        actual = parse_value(actual)
    if isinstance(expected, str) and is_number(actual):
        expected = parse_value(expected)
    if is_number(actual) and is_number(expected):
        a, e = as_float(actual), as_float(expected)
        ints = (int, np.integer)
        if (math.isinf(a) and isinstance(actual, ints)) or (math.isinf(e) and isinstance(expected, ints)):
            return actual == expected  # an integer beyond float range: only exactly equal
        if math.isnan(a) or math.isnan(e):
            return math.isnan(a) and math.isnan(e)
        return math.isclose(a, e, rel_tol=rel_tol, abs_tol=0.0)
    if isinstance(actual, (list, tuple)) and isinstance(expected, (list, tuple)):
        return len(actual) == len(expected) and all(
            values_equal(a, e, rel_tol) for a, e in zip(actual, expected)
        )
    if isinstance(actual, Mapping) and isinstance(expected, Mapping):
        return actual.keys() == expected.keys() and all(
            values_equal(actual[k], expected[k], rel_tol) for k in actual
        )
    return actual == expected


def parse_value(text: str) -> Any:
    """`--expect` values: JSON where it parses (1e9, 64, true, [1,1]), else the raw text."""
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    if low in ("nan", "inf", "+inf", "-inf", "infinity", "-infinity"):
        return float(low.replace("infinity", "inf"))
    try:
        return json.loads(t)
    except ValueError:
        return text


def parse_expect_args(items: Sequence[str]) -> dict[str, Any]:
    """`K=V` strings to a dict; raises ValueError naming the bad item."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def load_expect_file(path: str | Path) -> dict[str, Any]:
    """A flat TOML table of expectations; nested tables and dotted keys become dotted paths."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Mapping[str, Any]) -> None:
        for k, v in node.items():
            if isinstance(v, Mapping):
                walk(f"{prefix}{k}.", v)
            else:
                flat[prefix + k] = v

    walk("", data)
    return flat


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if v is None:
        return "missing"
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and abs(int(v)) >= 10**15:
        # huge metadata integers: str() refuses past 4300 digits, and nobody reads 400
        f = as_float(v)
        return f"{f:g}" if math.isfinite(f) else f"a {int(abs(int(v)).bit_length() * 0.30103) + 1}-digit integer"
    try:
        return json.dumps(v) if isinstance(v, (list, dict)) else str(v)
    except ValueError:  # a huge integer somewhere inside
        return f"a {type(v).__name__}"


# --------------------------------------------------------------------------
# intrinsic rules


def intrinsic(reader: NpzReader, meta: MetadataResult, kind: str, *, deep: bool = False) -> list[Finding]:
    """Every rule that compares the file with itself."""
    out: list[Finding] = list(meta.findings)
    if not meta.found and not meta.findings:
        out.append(Finding.make("META_MISSING", "no metadata found (legacy file)"))
    if meta.found:
        out += _schema(meta)
    if kind == kinds.PTYCHO:
        out += _ptycho(reader, meta.data)
    elif kind == kinds.CIRCUIT:
        out += _circuit(reader, meta.data, deep=deep)
    if deep:
        skip = {"parameters", *kinds.RESNORM_NAMES} if kind == kinds.CIRCUIT else set()
        out += _nonfinite(reader, [a for a in reader.info.arrays if a.name not in skip])
    return out


def _schema(meta: MetadataResult) -> list[Finding]:
    data = meta.data or {}
    out: list[Finding] = []
    if "schema_version" not in data:
        out.append(
            Finding.make(
                "META_LEGACY",
                f"no schema_version in {meta.source!r} ({meta.encoding})",
                key=meta.source,
            )
        )
    else:
        sv = data["schema_version"]
        if not isinstance(sv, str) or sv.split(".")[0] != "1":
            out.append(
                Finding.make("META_SCHEMA", f"unknown schema_version {sv!r}", key="schema_version", expected="1.x", actual=sv)
            )
    types = {
        "creation_info": dict,
        "physics_parameters": dict,
        "simulation_parameters": dict,
        "training_parameters": dict,
        "additional_parameters": dict,
        "circuit": dict,
        "data_transformations": list,
    }
    for key, typ in types.items():
        if key in data and not isinstance(data[key], typ):
            out.append(
                Finding.make(
                    "META_SCHEMA",
                    f"{key} should be a {'JSON object' if typ is dict else 'list'}, is {type(data[key]).__name__}",
                    key=key,
                )
            )
    # Type rules apply where the schema (or the circuit producer's legacy dict) puts a key;
    # other conventions (PtychoPINN's `data_config.grid_size: [1, 1]`) are not ours to judge.
    typed = {
        "physics_parameters.nphotons": "number", "physics_parameters.N": "int",
        "circuit.grid_size": "int", "circuit.n_frequencies": "int", "circuit.n_parameter_sets": "int",
        "circuit.freq_min": "number", "circuit.freq_max": "number", "circuit.best_resnorm": "number",
        "grid_size": "int", "n_frequencies": "int", "n_parameter_sets": "int",
        "freq_min": "number", "freq_max": "number", "best_resnorm": "number",
    }
    for path, want in typed.items():
        v = get_path(data, path)
        if v is MISSING:
            continue
        ok = is_number(v) if want == "number" else as_int(v) is not None
        if not ok:
            out.append(
                Finding.make("META_SCHEMA", f"{path} should be {'a number' if want == 'number' else 'an integer'}, is {fmt(v)}", key=path, actual=v)
            )
    return out


def _ptycho(reader: NpzReader, data: Mapping[str, Any] | None) -> list[Finding]:
    info = reader.info
    d = info.array(kinds.diffraction_name(info))
    out: list[Finding] = []
    n = d.shape[0]
    patch = d.shape[1:3]
    channels = d.shape[3] if len(d.shape) == 4 else 1
    n_meta = resolve(data, "N")
    n_value = as_int(n_meta[1]) if n_meta else None
    if n_value is not None and (patch[0] != n_value or patch[1] != n_value):
        out.append(
            Finding.make(
                "PTY_N_SHAPE",
                f"metadata N={fmt(n_value)} but {d.name} patterns are {patch[0]}×{patch[1]}",
                key=n_meta[0], expected=n_value, actual=patch[0],
            )
        )
    for c in ("xcoords", "ycoords", "xcoords_start", "ycoords_start"):
        a = info.array(c)
        if a is not None and (not a.shape or a.shape[0] != n):
            length = a.shape[0] if a.shape else 0
            out.append(
                Finding.make("PTY_COORDS_LEN", f"{c} has {length} entries for {n} patterns", key=c, expected=n, actual=length)
            )
    y = info.array("Y")
    if y is not None:
        same = y.shape[:3] == d.shape[:3] and (len(y.shape) < 4 or len(d.shape) < 4 or y.shape[3] == d.shape[3])
        if not same:
            out.append(
                Finding.make("PTY_ARRAY_SHAPES", f"Y is {_shape(y.shape)} but {d.name} is {_shape(d.shape)}",
                             key="Y", expected=list(d.shape), actual=list(y.shape))
            )
    probe = info.array("probeGuess")
    if probe is not None and tuple(probe.shape[-2:]) != tuple(patch):
        out.append(
            Finding.make("PTY_ARRAY_SHAPES", f"probeGuess is {_shape(probe.shape)} but patterns are {patch[0]}×{patch[1]}",
                         key="probeGuess", expected=list(patch), actual=list(probe.shape))
        )
    obj = info.array("objectGuess")
    if obj is not None and len(obj.shape) < 2:
        out.append(
            Finding.make("PTY_ARRAY_SHAPES", f"objectGuess is {_shape(obj.shape)}, not a 2-d image",
                         key="objectGuess", actual=list(obj.shape))
        )
    elif obj is not None and probe is not None and len(probe.shape) >= 2 and (
        obj.shape[-2] < probe.shape[-2] or obj.shape[-1] < probe.shape[-1]
    ):
        out.append(
            Finding.make("PTY_ARRAY_SHAPES", f"objectGuess {_shape(obj.shape)} is smaller than probeGuess {_shape(probe.shape)}",
                         key="objectGuess")
        )
    if data is not None:
        found = resolve(data, "nphotons")
        if found is None:
            out.append(Finding.make("PTY_NPHOTONS", "nphotons missing from metadata; 1e9 assumed", key="nphotons"))
        elif not is_number(found[1]) or not as_float(found[1]) > 0:
            out.append(
                Finding.make("PTY_NPHOTONS", f"nphotons must be a positive number, is {fmt(found[1])}",
                             severity="error", key=found[0], actual=found[1])
            )
        g = resolve(data, "gridsize")
        if g is not None:
            gv = as_int(g[1])
            if gv is None or gv <= 0:
                out.append(
                    Finding.make("PTY_GRIDSIZE", f"gridsize must be a positive integer, is {fmt(g[1])}", key=g[0], actual=g[1])
                )
            elif gv * gv != channels:
                out.append(
                    Finding.make("PTY_GRIDSIZE", f"gridsize {fmt(gv)} needs {fmt(gv * gv)} channels; {d.name} has {channels}",
                                 key=g[0], expected=gv * gv, actual=channels)
                )
    return out


def _circuit(reader: NpzReader, data: Mapping[str, Any] | None, *, deep: bool) -> list[Finding]:
    info = reader.info
    out: list[Finding] = []
    params = info.array("parameters")
    rows = params.shape[0]
    rn = info.array(kinds.resnorm_name(info))
    if rn.shape != (rows,):
        out.append(
            Finding.make("CIRC_ROWS", f"{rn.name} is {_shape(rn.shape)} for {rows} parameter rows",
                         key=rn.name, expected=rows, actual=rn.shape[0] if rn.shape else None)
        )
    nps = resolve(data, "n_parameter_sets")
    if nps and as_int(nps[1]) is not None and as_int(nps[1]) != rows:
        out.append(
            Finding.make("CIRC_ROWS", f"n_parameter_sets={fmt(as_int(nps[1]))} but the file has {rows} rows",
                         key=nps[0], expected=as_int(nps[1]), actual=rows)
        )
    gs = resolve(data, "grid_size")
    gsv = as_int(gs[1]) if gs else None
    if gsv is not None and gsv**5 != rows:
        out.append(
            Finding.make("CIRC_ROWS", f"grid_size={fmt(gsv)} means {fmt(gsv**5)} rows, the file has {rows} (partial grid)",
                         severity="warning", key=gs[0], expected=gsv**5, actual=rows)
        )
    freqs = info.array("frequencies")
    nf_meta = resolve(data, "n_frequencies")
    n_freq = freqs.shape[0] if freqs is not None and len(freqs.shape) == 1 else (as_int(nf_meta[1]) if nf_meta else None)
    if freqs is not None and len(freqs.shape) == 1:
        if nf_meta and as_int(nf_meta[1]) is not None and as_int(nf_meta[1]) != freqs.shape[0]:
            out.append(
                Finding.make("CIRC_FREQS", f"n_frequencies={fmt(as_int(nf_meta[1]))} but frequencies has {freqs.shape[0]} values",
                             key=nf_meta[0], expected=as_int(nf_meta[1]), actual=freqs.shape[0])
            )
        if freqs.shape[0] and not freqs.is_object and freqs.dtype.kind in "fiu":
            f = reader.read("frequencies", max_bytes=64 << 20).astype(np.float64)
            for key, actual in (("freq_min", float(np.min(f))), ("freq_max", float(np.max(f)))):
                m = resolve(data, key)
                if m and is_number(m[1]) and not math.isclose(as_float(m[1]), actual, rel_tol=FREQ_RTOL):
                    out.append(
                        Finding.make("CIRC_FREQS", f"{key}={fmt(as_float(m[1]))} but frequencies span to {actual:g}",
                                     key=m[0], expected=as_float(m[1]), actual=actual)
                    )
    spec = info.array("spectrum")
    if spec is not None:
        srows = info.array("spectrum_rows")
        k = srows.shape[0] if srows is not None and srows.shape else rows
        want = (k, n_freq, 4)
        if len(spec.shape) != 3 or spec.shape[0] != k or spec.shape[2] != 4 or (n_freq is not None and spec.shape[1] != n_freq):
            out.append(
                Finding.make("CIRC_SPECTRUM_SHAPE", f"spectrum is {_shape(spec.shape)}, expected {_shape(want)}",
                             key="spectrum", expected=[x for x in want], actual=list(spec.shape))
            )
    if len(rn.shape) == 1 and rn.dtype.kind in "fiu":  # other shapes are CIRC_ROWS above
        lo, ascending, bad = _scan_resnorms(reader, rn.name)
        best = resolve(data, "best_resnorm")
        if best and is_number(best[1]) and lo is not None and not math.isclose(as_float(best[1]), lo, rel_tol=BEST_RTOL):
            out.append(
                Finding.make("CIRC_BEST_RESNORM", f"best_resnorm={as_float(best[1]):.6g} but min({rn.name})={lo:.6g}",
                             key=best[0], expected=as_float(best[1]), actual=lo)
            )
        if not ascending:
            out.append(Finding.make("CIRC_UNSORTED", f"{rn.name} are not ascending; ranks are computed", key=rn.name))
        if deep and bad:
            out.append(Finding.make("NONFINITE", f"{bad} non-finite values in {rn.name}", key=rn.name, actual=bad))
    if deep:
        out += _nonfinite(reader, [params])
    return out


def _scan_resnorms(reader: NpzReader, name: str) -> tuple[float | None, bool, int]:
    """Streamed min over finite values, ascending order, and non-finite count."""
    lo: float | None = None
    prev = -np.inf
    ascending = True
    bad = 0
    for _, chunk in reader.iter_rows(name):
        if chunk.size == 0:
            continue
        c = chunk.astype(np.float64, copy=False)
        finite = np.isfinite(c)
        bad += int(c.size - np.count_nonzero(finite))
        if ascending:
            ascending = bool(c[0] >= prev and np.all(c[1:] >= c[:-1]))
            prev = c[-1]
        if finite.any():
            m = float(c[finite].min())
            lo = m if lo is None else min(lo, m)
    return lo, ascending, bad


def _nonfinite(reader: NpzReader, arrays: Sequence[ArrayInfo]) -> list[Finding]:
    out = []
    for a in arrays:
        if a.is_object or a.dtype.kind not in "fc" or a.nbytes == 0:
            continue
        bad = 0
        for _, chunk in reader.iter_rows(a.name):
            bad += int(chunk.size - np.count_nonzero(np.isfinite(chunk)))
        if bad:
            out.append(Finding.make("NONFINITE", f"{bad} non-finite values in {a.name}", key=a.name, actual=bad))
    return out


def _shape(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("?" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


# --------------------------------------------------------------------------
# extrinsic rules


def compare(
    data: Mapping[str, Any] | None,
    expected: Mapping[str, Any],
    *,
    rel_tol: float = 1e-9,
    code: str = "EXPECT_MISMATCH",
    against: str = "expected",
) -> list[Finding]:
    """Metadata against expectations (`--expect`, an expect file, or a linked configuration)."""
    out = []
    for key, want in expected.items():
        found = resolve(data, key)
        if found is None:
            out.append(Finding.make(code, f"{key}: {against} {fmt(want)}, not in metadata", key=key, expected=want))
        elif not values_equal(found[1], want, rel_tol):
            out.append(
                Finding.make(code, f"{key}: {against} {fmt(want)}, file has {fmt(found[1])}",
                             key=found[0], expected=want, actual=found[1])
            )
    return out


def consistency(
    items: Sequence[tuple[str, Mapping[str, Any] | None]],
    keys: Sequence[str],
    *,
    rel_tol: float = 1e-9,
) -> dict[str, list[Finding]]:
    """SET_INCONSISTENT for files of one set that disagree on a key.

    With a strict majority the odd ones out are flagged; otherwise (a train/test
    pair that differs) every file is.
    """
    out: dict[str, list[Finding]] = {path: [] for path, _ in items}
    for key in keys:
        values = []
        for path, data in items:
            found = resolve(data, key)
            values.append((path, None if found is None else found[1]))
        groups: list[tuple[Any, list[str]]] = []
        for path, v in values:
            for gv, members in groups:
                if (v is None and gv is None) or (v is not None and gv is not None and values_equal(v, gv, rel_tol)):
                    members.append(path)
                    break
            else:
                groups.append((v, [path]))
        if len(groups) <= 1:
            continue
        groups.sort(key=lambda g: -len(g[1]))
        majority = groups[0] if len(groups[0][1]) * 2 > len(items) else None
        summary = ", ".join(f"{Path(p).name}={fmt(v)}" for p, v in values)
        for path, v in values:
            if majority is not None and path in majority[1]:
                continue
            out[path].append(
                Finding.make("SET_INCONSISTENT", f"{key} differs across the set: {summary}",
                             key=key, expected=None if majority is None else majority[0], actual=v)
            )
    return out


def rule_explanation(code: str) -> str:
    return RULES.get(code, ("", "No description."))[1]


__all__ = [
    "CheckOptions", "DEFAULT_SET_KEYS", "MODES", "compare", "consistency", "intrinsic",
    "load_expect_file", "parse_expect_args", "parse_value", "passes", "values_equal", "rule_explanation",
]
