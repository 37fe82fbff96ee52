"""Metadata edits, legacy migration, split, merge and lineage — every write atomic.

Each tool reads through `NpzReader` (bounded, never unpickling array data) and
writes through `NpzWriter` (temp file in the destination directory, fsync,
rename). Members a tool does not change are copied as their compressed bytes
(`copy_raw`): a metadata edit on a 5 GB deflated file costs one copy of the
file, never a decompression, and a deflated member stays deflated. Row subsets
(split) and concatenations (merge) are streamed in chunks, so memory stays
bounded by the chunk size whatever the file size.

Every change is recorded in the file's own lineage (`data_transformations`),
including the values a `meta set` replaced, so nothing the user wrote is lost.
The decisions behind the details are in `docs/tools.md`.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import checks, kinds
from .errors import NpzError, PermissionDeniedError
from .findings import Finding
from .metadata import (
    ALIASES,
    CANDIDATES,
    MISSING,
    SCHEMA_VERSION,
    SECTIONS,
    MetadataResult,
    discover,
    get_path,
    new_metadata,
    resolve,
    transformation_record,
)
from .reader import DEFAULT_LIMITS, ArrayInfo, Limits, NpzInfo, NpzReader, fingerprint
from .writer import NpzWriter, cleanup_stale_temps

TOOL = "npztui"
STRATEGIES = ("preserve_first", "validate_consistent")
SPLIT_AXES = ("x", "y", "rows")
PROTECTED_KEYS = ("schema_version", "data_transformations")
ESTIMATED_KEYS = "additional_parameters.estimated_keys"

# Legacy top-level keys and the v1 section they belong to.
CIRCUIT_KEYS = (
    "grid_size", "n_parameter_sets", "n_frequencies", "freq_min", "freq_max", "param_names",
    "param_units", "spectrum_columns", "best_resnorm", "reference_parameters", "circuit_parameters",
)
PHYSICS_KEYS = ("nphotons", "N", "gridsize")
CIRCUIT_PARAM_NAMES = ["Rsh", "Ra", "Ca", "Rb", "Cb"]
CIRCUIT_PARAM_UNITS = ["ohm", "ohm", "farad", "ohm", "farad"]

# Arrays that describe the whole scan / grid, never split per row even when
# their first dimension happens to equal the row count (a 64×64 probe with 64 scans).
GLOBAL_ARRAYS = {
    kinds.PTYCHO: frozenset({"objectGuess", "probeGuess"}),
    kinds.CIRCUIT: frozenset({"frequencies", "spectrum_rows"}),
    kinds.GENERIC: frozenset(),
}
_CHUNK_BYTES = 8 << 20


# --------------------------------------------------------------------------
# errors


class ToolError(Exception):
    """The request cannot be carried out as asked; nothing was written (usage, exit 2)."""

    def __init__(self, message: str, path: str | os.PathLike | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


class FindingsError(ToolError):
    """Refused because the data disagree (e.g. SET_INCONSISTENT); nothing was written (exit 1)."""

    def __init__(self, message: str, findings: Sequence[tuple[str, Finding]], path: str | os.PathLike | None = None) -> None:
        super().__init__(message, path)
        self.findings = list(findings)

    def findings_json(self) -> list[dict[str, Any]]:
        return [{"path": p, **f.to_json()} for p, f in self.findings]


class WriteFailedError(NpzError):
    """The output could not be written (disk full, file changed underneath); the original is intact."""

    code = "WRITE_FAILED"


def _write_error(path: Path, exc: OSError) -> NpzError:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return PermissionDeniedError(path, f"cannot write in {path.parent}: permission denied; nothing changed")
    if exc.errno == errno.EROFS:
        return PermissionDeniedError(path, f"cannot write in {path.parent}: read-only file system; nothing changed")
    return WriteFailedError(path, f"cannot write: {exc.strerror or exc}; nothing changed")


# --------------------------------------------------------------------------
# atomic output


def _real(path: str | os.PathLike) -> Path:
    """Write through symlinks to the file they name, so a rewrite does not replace the link."""
    return Path(os.path.realpath(path))


def _check_writable(path: Path) -> None:
    st = path.stat()
    if not (st.st_mode & 0o222) or not os.access(path, os.W_OK):
        raise PermissionDeniedError(path, "file is read-only; nothing changed (make it writable to edit it)")


def _verify_unchanged(path: Path, info: NpzInfo) -> None:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise WriteFailedError(path, f"vanished while being rewritten ({exc.strerror}); nothing written") from None
    if (st.st_size, st.st_mtime_ns) != (info.size, info.mtime_ns):
        raise WriteFailedError(path, "changed on disk while npztui was rewriting it; nothing written (run again)")


@contextlib.contextmanager
def _atomic_outputs(
    targets: Sequence[Path], *, force: bool, unchanged: tuple[Path, NpzInfo] | None = None
) -> Iterator[list[NpzWriter]]:
    """Writers for new or replaced files, all committed at the end or none.

    Stale temp files of killed writers are removed first. If committing the
    second of two outputs fails, a first one that did not exist before is
    removed again, so a split never leaves half a pair.
    """
    for d in {t.parent for t in targets}:
        if d.is_dir():
            cleanup_stale_temps(d)
    if not force:
        for t in targets:
            if t.exists():
                raise ToolError(f"{t} already exists (use --force to replace it)", t)
    existed = [t.exists() for t in targets]
    writers: list[NpzWriter] = []
    current = targets[0]
    committed: list[int] = []
    try:
        for t in targets:
            current = t
            writers.append(NpzWriter(t))
        yield writers
        if unchanged is not None:
            _verify_unchanged(*unchanged)
        for i, w in enumerate(writers):
            current = targets[i]
            w.commit()
            committed.append(i)
    except BaseException as exc:
        for w in writers:
            w.abort()
        for i in committed:
            if not existed[i]:
                with contextlib.suppress(OSError):
                    targets[i].unlink()
        if isinstance(exc, OSError):
            raise _write_error(current, exc) from None
        raise


# --------------------------------------------------------------------------
# metadata documents: keys, diff, legacy conversion


def _is_v1(data: Mapping[str, Any] | None) -> bool:
    return isinstance(data, Mapping) and "schema_version" in data


def target_path(doc: Mapping[str, Any], key: str, kind: str = kinds.GENERIC) -> str:
    """Where `meta set KEY=...` writes: the key's current place, its schema home, or additional_parameters.

    Schema homes: the alias table (`nphotons` → physics_parameters.nphotons,
    `grid_size` → circuit.grid_size, ...) and, for circuit files, every key of
    the v1 `circuit` section (`reference_parameters` → circuit.reference_parameters).
    """
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ToolError(f"invalid key {key!r}")
    if key.split(".")[0] in PROTECTED_KEYS:
        raise ToolError(f"{key} is managed by npztui and cannot be set")
    found = resolve(doc, key)
    if found is not None:
        path = found[0]
    elif kind == kinds.CIRCUIT and key in CIRCUIT_KEYS:
        path = f"circuit.{key}"
    elif key in ALIASES:
        path = ALIASES[key][0]
    elif "." in key:
        path = key
    else:
        path = f"additional_parameters.{key}"
    if path in SECTIONS or path == "creation_info":
        raise ToolError(f"{key} is a section; set a key inside it, e.g. {path}.NAME=VALUE")
    if path.split(".")[0] in PROTECTED_KEYS:
        raise ToolError(f"{key} is managed by npztui and cannot be set")
    return path


def set_path(doc: dict[str, Any], dotted: str, value: Any) -> Any:
    """Set a dotted path, creating sections as needed; returns the old value (or MISSING)."""
    parts = dotted.split(".")
    node = doc
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part, MISSING)
        if nxt is MISSING:
            nxt = node[part] = {}
        elif not isinstance(nxt, dict):
            where = ".".join(parts[: i + 1])
            raise ToolError(f"cannot set {dotted}: {where} holds a value, not a section")
        node = nxt
    old = node.get(parts[-1], MISSING)
    node[parts[-1]] = value
    return old


def _check_value(key: str, value: Any) -> None:
    def walk(v: Any) -> None:
        if isinstance(v, float) and not math.isfinite(v):
            raise ToolError(f"{key}: JSON metadata cannot hold {v!r}; use a number or a string")
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(value)


def _json_safe(doc: Any, path: str = "", notes: list[str] | None = None) -> Any:
    """Non-finite floats (legal in Python's JSON, not in strict JSON) become strings, noted."""
    if isinstance(doc, float) and not math.isfinite(doc):
        if notes is not None:
            notes.append(f"{path or 'value'}: {doc!r} stored as the string {_nonfinite_text(doc)!r} (strict JSON has no NaN/inf)")
        return _nonfinite_text(doc)
    if isinstance(doc, dict):
        return {k: _json_safe(v, f"{path}.{k}" if path else k, notes) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_json_safe(v, f"{path}[{i}]", notes) for i, v in enumerate(doc)]
    return doc


def _nonfinite_text(v: float) -> str:
    return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")


def flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of a document by dotted path; lineage records are shown one per entry."""
    out: dict[str, Any] = {}
    if isinstance(doc, Mapping):
        if not doc and prefix:
            out[prefix] = {}
        for k, v in doc.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            if path == "data_transformations" and isinstance(v, list):
                for i, rec in enumerate(v):
                    out[f"{path}[{i}]"] = rec
                if not v:
                    out[path] = []
            else:
                out.update(flatten(v, path))
    else:
        out[prefix] = doc
    return out


def show_value(v: Any, width: int = 100) -> str:
    """A value as a user reads it: numbers compactly, the rest as JSON, long text shortened."""
    if isinstance(v, bool) or v is None:
        text = json.dumps(v)
    elif isinstance(v, float):
        text = repr(v)
    elif isinstance(v, (int, str)):
        text = json.dumps(v, ensure_ascii=False) if isinstance(v, str) else str(v)
    else:
        text = json.dumps(v, ensure_ascii=False, default=str, separators=(", ", ": "))
    if len(text) > width:
        head = (width - 1) // 2
        text = text[:head] + "…" + text[len(text) - (width - 1 - head) :]
    return text


def metadata_diff(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, moved: Mapping[str, str] | None = None
) -> list[str]:
    """A readable diff: `- path: old`, `+ path: new`, `~ path: old → new`, and `> old → new`
    for keys a migration moved unchanged into their schema section."""
    a, b = flatten(before or {}), flatten(after or {})
    lines: list[str] = []
    for old_key, new_path in (moved or {}).items():
        if old_key == new_path:
            continue
        ov, nv = get_path(before, old_key), get_path(after, new_path)
        if ov is MISSING or nv is MISSING or not _same_json(ov, nv):
            continue
        lines.append(f"> {old_key} → {new_path}")
        a = {k: v for k, v in a.items() if not (k == old_key or k.startswith(old_key + ".") or k.startswith(old_key + "["))}
        b = {k: v for k, v in b.items() if not (k == new_path or k.startswith(new_path + ".") or k.startswith(new_path + "["))}

    def filled(k: str, v: Any, other: Mapping[str, Any]) -> bool:
        # An empty section that merely gained (or lost) keys is not itself a change.
        return v in ({}, []) and any(o.startswith(k + ".") or o.startswith(k + "[") for o in other)

    def show(k: str, v: Any, width: int = 100) -> str:
        if k.startswith("data_transformations[") and isinstance(v, Mapping):
            return describe_transformation(v)[:width]
        return show_value(v, width)

    for k in a:
        if k not in b and not filled(k, a[k], b):
            lines.append(f"- {k}: {show(k, a[k])}")
    for k, v in b.items():
        if k not in a:
            if not filled(k, v, a):
                lines.append(f"+ {k}: {show(k, v, 160)}")
        elif not _same_json(a[k], v):
            lines.append(f"~ {k}: {show(k, a[k], 60)} → {show(k, v, 60)}")
    return lines


def _same_json(x: Any, y: Any) -> bool:
    return json.dumps(x, sort_keys=True, default=str) == json.dumps(y, sort_keys=True, default=str)


def to_v1(data: Mapping[str, Any] | None, kind: str, *, script: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A schema-v1 document holding everything `data` held, and where each legacy key went.

    v1 documents are returned as a deep copy. Legacy top-level keys go to their
    schema section: the circuit producer's keys into `circuit` (for circuit
    files), `nphotons`/`N`/`gridsize` into `physics_parameters`, section-named
    dicts merged into their section, everything else into
    `additional_parameters` with its structure intact. Nothing is dropped.
    """
    if _is_v1(data):
        return copy.deepcopy(dict(data)), {}
    doc = new_metadata(script=f"{TOOL} meta migrate", circuit={} if kind == kinds.CIRCUIT else None)
    mapping: dict[str, str] = {}
    for k, v in (data or {}).items():
        if k in SECTIONS and isinstance(v, Mapping):
            doc.setdefault(k, {}).update(copy.deepcopy(dict(v)))
            mapping[k] = k
        elif k == "creation_info" and isinstance(v, Mapping):
            doc["additional_parameters"]["legacy_creation_info"] = copy.deepcopy(dict(v))
            mapping[k] = "additional_parameters.legacy_creation_info"
        elif k == "data_transformations" and isinstance(v, list):
            doc["data_transformations"] = copy.deepcopy(v)
            mapping[k] = k
        elif kind == kinds.CIRCUIT and k in CIRCUIT_KEYS:
            doc["circuit"][k] = copy.deepcopy(v)
            mapping[k] = f"circuit.{k}"
        elif k in PHYSICS_KEYS:
            doc["physics_parameters"][k] = copy.deepcopy(v)
            mapping[k] = f"physics_parameters.{k}"
        else:
            target = doc["additional_parameters"]
            name = k if k not in target else f"legacy_{k}"
            target[name] = copy.deepcopy(v)
            mapping[k] = f"additional_parameters.{name}"
    return doc, mapping


def _f32_float(x: Any) -> float:
    """A float32 value as the short decimal the user would write (1.0, not 1.0000000149)."""
    v = np.asarray(x)
    if v.dtype == np.float32:
        return float(str(v.item() if v.ndim == 0 else v))
    return float(v)


def estimate(reader: NpzReader, kind: str) -> dict[str, Any]:
    """Values inferable from the arrays themselves, by dotted path (headers plus small 1-d reads)."""
    info = reader.info
    est: dict[str, Any] = {}
    if kind == kinds.PTYCHO:
        d = info.array(kinds.diffraction_name(info))
        if len(d.shape) >= 3 and d.shape[1] == d.shape[2]:
            est["physics_parameters.N"] = int(d.shape[1])
        channels = d.shape[3] if len(d.shape) == 4 else 1
        g = math.isqrt(channels)
        if g * g == channels and g > 0:
            est["physics_parameters.gridsize"] = g
    elif kind == kinds.CIRCUIT:
        rows = info.array("parameters").shape[0]
        est["circuit.n_parameter_sets"] = int(rows)
        if rows > 0:
            g = round(rows ** 0.2)
            exact = [c for c in (g - 1, g, g + 1) if c > 0 and c**5 == rows]
            if exact:
                est["circuit.grid_size"] = exact[0]
        freqs = info.array("frequencies")
        if freqs is not None and len(freqs.shape) == 1 and freqs.dtype.kind in "fiu" and not freqs.fortran_order:
            est["circuit.n_frequencies"] = int(freqs.shape[0])
            if freqs.shape[0]:
                f = reader.read("frequencies", max_bytes=64 << 20)
                finite = f[np.isfinite(f)] if f.dtype.kind == "f" else f
                if finite.size:
                    est["circuit.freq_min"] = _f32_float(finite.min())
                    est["circuit.freq_max"] = _f32_float(finite.max())
        rn = info.array(kinds.resnorm_name(info))
        if rn is not None and len(rn.shape) == 1 and rn.dtype.kind in "fiu":
            lo = _stream_min(reader, rn.name)
            if lo is not None:
                est["circuit.best_resnorm"] = lo
        est["circuit.param_names"] = list(CIRCUIT_PARAM_NAMES)
        est["circuit.param_units"] = list(CIRCUIT_PARAM_UNITS)
    return est


def _stream_min(reader: NpzReader, name: str) -> float | None:
    lo = None
    for _, chunk in reader.iter_rows(name):
        if chunk.size == 0:
            continue
        c = chunk[np.isfinite(chunk)] if chunk.dtype.kind == "f" else chunk
        if c.size:
            m = c.min()
            lo = m if lo is None else min(lo, m)
    return None if lo is None else _f32_float(lo)


# --------------------------------------------------------------------------
# results


@dataclass
class MetaEdit:
    """What `meta set` / `meta migrate` did (or, with dry_run, would do) to one file."""

    path: Path
    operation: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    source: str | None = None
    encoding: str | None = None
    changed: bool = False
    written: bool = False
    dry_run: bool = False
    already_v1: bool = False
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    estimated: dict[str, Any] = field(default_factory=dict)
    confirmed: list[str] = field(default_factory=list)
    mapped: dict[str, str] = field(default_factory=dict)
    kept_members: list[str] = field(default_factory=list)
    dropped_members: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def diff(self) -> list[str]:
        lines = metadata_diff(self.before, self.after, self.mapped)
        for m in self.dropped_members:
            lines.append(f"- member {m!r} (removed)")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "operation": self.operation,
            "changed": self.changed,
            "written": self.written,
            "dry_run": self.dry_run,
            "already_v1": self.already_v1,
            "metadata_source": {"member": self.source, "encoding": self.encoding},
            "changes": self.changes,
            "estimated": self.estimated,
            "confirmed_estimates": self.confirmed,
            "mapped": self.mapped,
            "kept_members": self.kept_members,
            "dropped_members": self.dropped_members,
            "diff": self.diff(),
            "metadata": self.after,
            "notes": self.notes,
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass
class OutputFile:
    path: Path
    rows: int

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "rows": self.rows}


@dataclass
class SplitResult:
    source: Path
    train: OutputFile
    test: OutputFile
    axis: str
    fraction: float
    source_rows: int
    row_arrays: list[str]
    copied: list[str]
    record: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.source),
            "train": self.train.to_json(),
            "test": self.test.to_json(),
            "axis": self.axis,
            "fraction": self.fraction,
            "source_rows": self.source_rows,
            "row_arrays": self.row_arrays,
            "copied": self.copied,
            "record": self.record,
            "notes": self.notes,
        }


@dataclass
class MergeResult:
    output: Path
    sources: list[dict[str, Any]]
    rows: int
    strategy: str
    row_arrays: list[str]
    copied: list[str]
    dropped: dict[str, str]
    sorted_by_resnorm: bool | None
    findings: list[tuple[str, Finding]]
    record: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.output),
            "written": True,
            "strategy": self.strategy,
            "rows": self.rows,
            "sources": self.sources,
            "row_arrays": self.row_arrays,
            "copied": self.copied,
            "dropped": self.dropped,
            "sorted_by_resnorm": self.sorted_by_resnorm,
            "findings": [{"path": p, **f.to_json()} for p, f in self.findings],
            "record": self.record,
            "notes": self.notes,
        }


@dataclass
class Lineage:
    path: Path
    source: str | None
    encoding: str | None
    schema_version: str | None
    creation_info: dict[str, Any] | None
    transformations: list[dict[str, Any]]
    findings: list[Finding] = field(default_factory=list)

    @property
    def legacy(self) -> bool:
        return self.source is not None and self.schema_version is None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "metadata_source": {"member": self.source, "encoding": self.encoding},
            "schema_version": self.schema_version,
            "creation_info": self.creation_info,
            "transformations": self.transformations,
            "findings": [f.to_json() for f in self.findings],
        }


def describe_transformation(rec: Any) -> str:
    """One lineage entry as one readable line (tolerant of hand-written records)."""
    if not isinstance(rec, Mapping):
        return show_value(rec)
    when = str(rec.get("timestamp", "?"))
    op = str(rec.get("operation", "?"))
    tool = rec.get("tool")
    params = rec.get("parameters")
    text = f"{when}  {op}" + (f"  [{tool}]" if tool and tool != op else "")
    if isinstance(params, Mapping) and params:
        shown = []
        for k, v in params.items():
            if k in ("legacy_metadata", "estimates", "mapped", "row_arrays", "inconsistent"):
                continue
            if k == "changes" and isinstance(v, Mapping):
                for path, c in v.items():
                    if isinstance(c, Mapping) and "new" in c:
                        old = show_value(c["old"], 40) if "old" in c else "(new)"
                        shown.append(f"{path}: {old} → {show_value(c['new'], 40)}")
                continue
            if k == "sources" and isinstance(v, list):
                names = [f"{s.get('name')}@{s.get('sha256_16')}" if isinstance(s, Mapping) else str(s) for s in v]
                shown.append("sources=" + ", ".join(names))
                continue
            shown.append(f"{k}={show_value(v, 60)}")
        text += "  " + ", ".join(shown)
    elif params:
        text += "  " + show_value(params, 80)
    return text


# --------------------------------------------------------------------------
# meta set / meta migrate


def _open(path: str | os.PathLike, limits: Limits) -> NpzReader:
    return NpzReader(path, limits)


def _require_npz(reader: NpzReader, what: str) -> None:
    if reader.info.bare_npy:
        raise ToolError(f"a bare .npy file cannot hold metadata or be {what}; save it in an .npz first", reader.path)


def _refuse_broken_metadata_member(meta: MetadataResult) -> None:
    for f in meta.findings:
        if f.key == "_metadata" and f.code in ("UNSAFE_PICKLE", "META_INVALID"):
            raise ToolError(
                f"member '_metadata' cannot be decoded ({f.code}: {f.message}); npztui will not overwrite it. "
                "Inspect it and remove it yourself if it is not needed."
            )


def _apply_updates(
    doc: dict[str, Any], updates: Sequence[tuple[str, Any]], kind: str, touched: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Apply KEY=VALUE pairs; returns the real changes by path as {"old": ..., "new": ...}
    ("old" absent when the key did not exist). Setting a key to its current value is no change.
    Every path written (changed or not) is appended to `touched`."""
    changes: dict[str, dict[str, Any]] = {}
    for key, value in updates:
        _check_value(key, value)
        path = target_path(doc, key, kind)
        old = set_path(doc, path, copy.deepcopy(value))
        if touched is not None and path not in touched:
            touched.append(path)
        if path in changes:  # set twice: the first old value is the one that was in the file
            changes[path]["new"] = value
        else:
            changes[path] = {"new": value} if old is MISSING else {"old": old, "new": value}
    return {p: c for p, c in changes.items() if "old" not in c or not _same_json(c["old"], c["new"])}


def _confirm_estimates(doc: dict[str, Any], paths: Sequence[str]) -> list[str]:
    """Values the user set are no longer estimates."""
    keys = get_path(doc, ESTIMATED_KEYS)
    if not isinstance(keys, list):
        return []
    confirmed = [p for p in paths if p in keys]
    if confirmed:
        remaining = [k for k in keys if k not in confirmed]
        if remaining:
            set_path(doc, ESTIMATED_KEYS, remaining)
        else:
            del doc["additional_parameters"]["estimated_keys"]
    return confirmed


def _as_pairs(updates: Mapping[str, Any] | Sequence[tuple[str, Any]] | None) -> list[tuple[str, Any]]:
    if updates is None:
        return []
    if isinstance(updates, Mapping):
        return list(updates.items())
    return list(updates)


def _rewrite_metadata(reader: NpzReader, target: Path, doc: dict[str, Any], *, drop: Sequence[str] = ()) -> None:
    """Rewrite the file with a new `_metadata`, copying every other member's bytes verbatim."""
    info = reader.info
    with _atomic_outputs([target], force=True, unchanged=(reader.path, info)) as (w,):
        placed = False
        for a in info.arrays:
            if a.name == "_metadata":
                w.add_metadata(doc)
                placed = True
            elif a.name not in drop:
                w.copy_raw(reader, a.name)
        for m in info.other_members:
            w.copy_raw_member(reader, m)
        if not placed:
            w.add_metadata(doc)


def _findings_for(reader: NpzReader, doc: dict[str, Any], kind: str) -> list[Finding]:
    meta = MetadataResult(data=doc, source="_metadata", encoding="json")
    return checks.intrinsic(reader, meta, kind)


def set_metadata(
    path: str | os.PathLike,
    updates: Mapping[str, Any] | Sequence[tuple[str, Any]],
    *,
    dry_run: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> MetaEdit:
    """`meta set`: change v1 metadata values and record the change (old values kept in the lineage).

    Legacy files (no metadata, or metadata without schema_version) are refused
    with a pointer to `meta migrate`, which accepts the same `--set K=V`.
    """
    pairs = _as_pairs(updates)
    if not pairs:
        raise ToolError("nothing to set: give at least one KEY=VALUE")
    with _open(path, limits) as r:
        _require_npz(r, "edited")
        meta = discover(r)
        kind = kinds.detect_kind(r.info)
        if meta.data is None:
            if meta.findings:
                codes = ", ".join(sorted({f.code for f in meta.findings}))
                raise ToolError(f"metadata cannot be decoded ({codes}); see `npztui check {path}`", path)
            raise ToolError(f"no metadata yet: run `npztui meta migrate {path} --set K=V` to add v1 metadata", path)
        if not _is_v1(meta.data):
            raise ToolError(
                f"legacy metadata in {meta.source!r} ({meta.encoding}): run `npztui meta migrate {path}` first "
                "(it takes --set K=V too)",
                path,
            )
        if meta.source != "_metadata":
            _refuse_broken_metadata_member(meta)
        before = meta.data
        doc = copy.deepcopy(before)
        if "data_transformations" in doc and not isinstance(doc["data_transformations"], list):
            raise ToolError("data_transformations is not a list; fix the metadata by hand first", path)
        touched: list[str] = []
        changes = _apply_updates(doc, pairs, kind, touched)
        # Setting an estimated key, even to the same value, confirms it.
        confirmed = _confirm_estimates(doc, touched)
        edit = MetaEdit(_real(path), "meta set", before, doc, meta.source, meta.encoding, dry_run=dry_run, changes=changes)
        if not changes and not confirmed:
            edit.after = before
            edit.notes.append("no value changes; file left as it was")
            return edit
        params: dict[str, Any] = {"changes": changes}
        if confirmed:
            params["confirmed_estimates"] = confirmed
            edit.confirmed = confirmed
        doc.setdefault("data_transformations", []).append(_record("meta set", params))
        notes: list[str] = []
        doc = _json_safe(doc, notes=notes)
        edit.after, edit.changed = doc, True
        edit.notes += notes
        if meta.source != "_metadata":
            edit.kept_members.append(meta.source)
            edit.notes.append(f"metadata was read from {meta.source!r}; the updated copy goes to '_metadata', which readers try first")
        edit.findings = _findings_for(r, doc, kind)
        if dry_run:
            return edit
        _check_writable(edit.path)
        _rewrite_metadata(r, edit.path, doc)
        edit.written = True
        return edit


def migrate(
    path: str | os.PathLike,
    *,
    updates: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
    estimate_values: bool = False,
    drop_legacy: bool = False,
    dry_run: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> MetaEdit:
    """`meta migrate`: give a legacy file schema-v1 `_metadata`.

    Precedence: `--set` values > legacy values > estimates (estimates only fill
    missing keys and are listed in `additional_parameters.estimated_keys` and in
    the transformation record). The legacy member is kept unless `drop_legacy`;
    when it is dropped its decoded content is stored in the record.
    """
    pairs = _as_pairs(updates)
    with _open(path, limits) as r:
        _require_npz(r, "migrated")
        meta = discover(r)
        kind = kinds.detect_kind(r.info)
        _refuse_broken_metadata_member(meta)
        before = meta.data
        already = _is_v1(before)
        doc, mapping = to_v1(before, kind, script=f"{TOOL} meta migrate")
        if "data_transformations" in doc and not isinstance(doc["data_transformations"], list):
            raise ToolError("data_transformations is not a list; fix the metadata by hand first", path)
        doc.setdefault("data_transformations", [])
        changes = _apply_updates(doc, pairs, kind)
        estimated: dict[str, Any] = {}
        if estimate_values:
            for p, v in estimate(r, kind).items():
                if get_path(doc, p) is MISSING and resolve(doc, p.split(".")[-1]) is None:
                    set_path(doc, p, v)
                    estimated[p] = v
            if estimated:
                prior = get_path(doc, ESTIMATED_KEYS)
                keys = list(prior) if isinstance(prior, list) else []
                set_path(doc, ESTIMATED_KEYS, keys + [p for p in estimated if p not in keys])
        edit = MetaEdit(
            _real(path), "meta migrate", before, doc, meta.source, meta.encoding,
            dry_run=dry_run, already_v1=already, changes=changes, estimated=estimated, mapped=mapping,
        )
        legacy_member = meta.source if (meta.source and meta.source != "_metadata" and not already) else None
        drop = [legacy_member] if (legacy_member and drop_legacy) else []
        if already and not changes and not estimated:
            edit.after = before
            edit.notes.append("already schema v1; nothing to migrate")
            return edit
        params: dict[str, Any] = {"from": {"member": meta.source, "encoding": meta.encoding} if meta.source else None}
        if mapping:
            params["mapped"] = mapping
        if changes:
            params["set"] = {p: c["new"] for p, c in changes.items()}
        if estimated:
            params["estimated"] = sorted(estimated)
            params["estimates"] = estimated
        if legacy_member:
            params["legacy_member"] = legacy_member
            params["legacy_member_kept"] = not drop
        if before is not None and not already and (drop or meta.source == "_metadata"):
            # The legacy document is not kept as a member: keep its content in the lineage.
            params["legacy_metadata"] = before
        if already:
            params["already_v1"] = True
        doc["data_transformations"].append(_record("meta migrate", params))
        notes: list[str] = []
        doc = _json_safe(doc, notes=notes)
        edit.after, edit.changed = doc, True
        edit.notes += notes
        if legacy_member and not drop:
            edit.kept_members.append(legacy_member)
        edit.dropped_members = drop
        edit.findings = _findings_for(r, doc, kind)
        if dry_run:
            return edit
        _check_writable(edit.path)
        _rewrite_metadata(r, edit.path, doc, drop=drop)
        edit.written = True
        return edit


def _record(operation: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    from .. import __version__

    rec = transformation_record(TOOL, operation, parameters)
    rec["tool_version"] = __version__
    return rec


# --------------------------------------------------------------------------
# lineage


def lineage(path: str | os.PathLike, *, limits: Limits = DEFAULT_LIMITS) -> Lineage:
    """The file's transformation history, oldest first (empty for legacy files)."""
    with _open(path, limits) as r:
        meta = discover(r)
    data = meta.data or {}
    recs = data.get("data_transformations") if _is_v1(data) else None
    creation = data.get("creation_info") if _is_v1(data) else None
    return Lineage(
        Path(path),
        meta.source,
        meta.encoding,
        str(data["schema_version"]) if _is_v1(data) else None,
        creation if isinstance(creation, dict) else None,
        list(recs) if isinstance(recs, list) else [],
        list(meta.findings),
    )


# --------------------------------------------------------------------------
# row plans shared by split and merge


def _metadata_members(info: NpzInfo) -> list[str]:
    """Members holding metadata (replaced by one v1 `_metadata` in new files)."""
    return [a.name for a in info.arrays if a.name in CANDIDATES and (a.shape in ((), (1,)))]


def _rows_of(info: NpzInfo, kind: str, axis: str | None = None) -> int | None:
    if axis in ("x", "y"):
        c = info.array(f"{axis}coords")
        return c.shape[0] if c is not None and len(c.shape) == 1 else None
    return kinds.row_count(info, kind)


@dataclass
class _Plan:
    rows: int
    row_arrays: list[ArrayInfo]
    globals_: list[ArrayInfo]
    metadata: list[str]
    top_spectrum: bool  # circuit `spectrum` + `spectrum_rows` (compute --spectrum top:K)


def _plan(reader: NpzReader, kind: str, n: int) -> _Plan:
    info = reader.info
    meta_members = _metadata_members(info)
    top = (
        kind == kinds.CIRCUIT
        and _valid_spectrum_rows(reader, n)
    )
    rows, globals_ = [], []
    for a in info.arrays:
        if a.name in meta_members:
            continue
        if top and a.name in ("spectrum", "spectrum_rows"):
            continue
        if a.shape and a.shape[0] == n and a.name not in GLOBAL_ARRAYS[kind]:
            rows.append(a)
        else:
            globals_.append(a)
    return _Plan(n, rows, globals_, meta_members, top)


def _valid_spectrum_rows(reader: NpzReader, n: int) -> bool:
    info = reader.info
    sr, spec = info.array("spectrum_rows"), info.array("spectrum")
    if sr is None or spec is None or len(sr.shape) != 1 or sr.dtype.kind not in "iu":
        return False
    if not spec.shape or spec.shape[0] != sr.shape[0]:
        return False
    idx = reader.read("spectrum_rows", max_bytes=256 << 20)
    return bool(idx.size == 0 or (idx.min() >= 0 and idx.max() < n))


def _refuse_object_rows(plan: _Plan, path: Path) -> None:
    for a in plan.row_arrays:
        if a.is_object:
            raise ToolError(
                f"array {a.name!r} holds Python objects; npztui never unpickles array data, so it cannot split or merge it",
                path,
            )


def _chunk_rows(a: ArrayInfo) -> int:
    return max(1, _CHUNK_BYTES // max(a.row_bytes, 1))


def _output_metadata(meta: MetadataResult, kind: str) -> tuple[dict[str, Any], dict[str, str]]:
    doc, mapping = to_v1(meta.data, kind, script=f"{TOOL}")
    if not isinstance(doc.get("data_transformations"), list):
        doc["data_transformations"] = []
    return doc, mapping


def _update_circuit_counts(doc: dict[str, Any], rows: int, best: float | None) -> dict[str, Any]:
    """After a row subset or a concatenation, the row count and best resnorm must follow."""
    updated: dict[str, Any] = {}
    circ = doc.setdefault("circuit", {})
    if not isinstance(circ, dict):
        return updated
    for key, value in (("n_parameter_sets", rows), ("best_resnorm", best)):
        if value is not None and not _same_json(circ.get(key), value):
            circ[key] = value
            updated[f"circuit.{key}"] = value
    return updated


def _coords(reader: NpzReader, axis: str) -> np.ndarray:
    name = f"{axis}coords"
    a = reader.info.array(name)
    if a is None:
        raise ToolError(f"no {name} array: cannot split along {axis}", reader.path)
    if len(a.shape) != 1 or a.dtype.kind not in "fiu":
        raise ToolError(f"{name} is {a.dtype.str} {a.shape}, not a 1-d numeric array", reader.path)
    v = reader.read(name).astype(np.float64)
    if not np.all(np.isfinite(v)):
        raise ToolError(f"{name} holds NaN or inf; cannot order positions by it", reader.path)
    return v


def _cut(sorted_vals: np.ndarray, target: int) -> int:
    """The train/test boundary nearest `target` that never separates equal coordinates."""
    n = sorted_vals.shape[0]
    if 0 < target < n and sorted_vals[target - 1] == sorted_vals[target]:
        v = sorted_vals[target]
        lo = int(np.searchsorted(sorted_vals, v, side="left"))
        hi = int(np.searchsorted(sorted_vals, v, side="right"))
        options = [c for c in (lo, hi) if 0 < c < n]
        if not options:  # every position shares this coordinate
            return -1
        return min(options, key=lambda c: (abs(c - target), c))
    return target


# --------------------------------------------------------------------------
# split


def split(
    path: str | os.PathLike,
    *,
    fraction: float = 0.8,
    axis: str | None = None,
    out_dir: str | os.PathLike | None = None,
    force: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> SplitResult:
    """Split into `{stem}_train.npz` / `{stem}_test.npz`.

    Ptycho (axis x|y, default y): positions ordered by that coordinate, the first
    `fraction` of them to train — never cutting between equal coordinates, so a
    scan line is not shared. Circuit (axis rows, the default): the first
    `fraction` of rows in resnorm order to train. Within each part rows keep the
    source order. Arrays with one entry per row are streamed into both outputs
    in one pass; all others are copied raw into both.
    """
    if not (isinstance(fraction, (int, float)) and 0.0 < float(fraction) < 1.0):
        raise ToolError(f"--fraction must be between 0 and 1 (exclusive), got {fraction!r}")
    src = Path(path)
    with _open(src, limits) as r:
        _require_npz(r, "split")
        info = r.info
        kind = kinds.detect_kind(info)
        meta = discover(r)
        if axis is None:
            axis = "y" if ("ycoords" in info and kind != kinds.CIRCUIT) else "rows"
        if axis not in SPLIT_AXES:
            raise ToolError(f"--axis must be one of {', '.join(SPLIT_AXES)}, got {axis!r}")
        if axis in ("x", "y") and kind == kinds.CIRCUIT:
            raise ToolError("circuit data has no scan coordinates: use --axis rows (the resnorm order)", src)

        if axis in ("x", "y"):
            vals = _coords(r, axis)
            n = vals.shape[0]
            if kind == kinds.PTYCHO:
                d = info.array(kinds.diffraction_name(info))
                bad = [
                    c for c in ("xcoords", "ycoords") if c in info and (info.array(c).shape or (0,))[0] != d.shape[0]
                ]
                if bad:
                    findings = [
                        (str(src), Finding.make(
                            "PTY_COORDS_LEN",
                            f"{c} has {info.array(c).shape[0] if info.array(c).shape else 0} entries for {d.shape[0]} patterns",
                            key=c, expected=d.shape[0], actual=info.array(c).shape[0] if info.array(c).shape else 0,
                        ))
                        for c in bad
                    ]
                    raise FindingsError("coordinates and patterns disagree; refusing to split", findings, src)
            order = np.argsort(vals, kind="stable")
            target = int(math.floor(float(fraction) * n + 1e-9))
            cut = _cut(vals[order], target)
            if cut <= 0 or cut >= n:
                raise ToolError(
                    f"cannot split {n} positions at fraction {fraction:g} along {axis}: one side would be empty", src
                )
            train_mask = np.zeros(n, dtype=bool)
            train_mask[order[:cut]] = True
            boundary = {"train_max": float(vals[order[cut - 1]]), "test_min": float(vals[order[cut]])}
        else:
            n = _rows_of(info, kind)
            if n is None:
                raise ToolError("cannot tell which arrays hold one row per entry (no common first dimension)", src)
            cut = int(math.floor(float(fraction) * n + 1e-9))
            rn = kinds.resnorm_name(info) if kind == kinds.CIRCUIT else None
            if rn is not None and 0 < cut < n and info.array(rn).shape == (n,) and info.array(rn).dtype.kind in "fiu":
                res = r.read(rn)
                if bool(np.all(res[1:] >= res[:-1])):
                    cut = _cut(res, cut)  # equal resnorms (mirror-image models) stay together
            if cut <= 0 or cut >= n:
                raise ToolError(f"cannot split {n} rows at fraction {fraction:g}: one side would be empty", src)
            train_mask = np.zeros(n, dtype=bool)
            train_mask[:cut] = True
            boundary = {"train_rows": [0, cut], "test_rows": [cut, n]}

        plan = _plan(r, kind, n)
        _refuse_object_rows(plan, src)
        out = Path(out_dir) if out_dir is not None else src.parent
        stem = src.name[: -len(".npz")] if src.name.endswith(".npz") else src.stem
        targets = [_real(out / f"{stem}_train.npz"), _real(out / f"{stem}_test.npz")]
        if _real(src) in targets:
            raise ToolError("an output would replace the input file; choose another --out", src)
        sha = fingerprint(src)
        base, mapping = _output_metadata(meta, kind)
        rn_name = kinds.resnorm_name(info) if kind == kinds.CIRCUIT else None
        counts = [int(train_mask.sum()), int(n - train_mask.sum())]
        best: list[float | None] = [None, None]
        notes: list[str] = []

        with _atomic_outputs(targets, force=force) as writers:
            for a in info.arrays:
                if a in plan.row_arrays:
                    _split_array(r, a, train_mask, counts, writers, best if a.name == rn_name else None)
                elif a in plan.globals_:
                    for w in writers:
                        w.copy_raw(r, a.name)
            if plan.top_spectrum:
                _split_top_spectrum(r, train_mask, writers)
            for m in info.other_members:
                for w in writers:
                    w.copy_raw_member(r, m)
            records = []
            for part, w, rows, lo in zip(("train", "test"), writers, counts, best):
                doc = copy.deepcopy(base)
                params: dict[str, Any] = {
                    "part": part,
                    "fraction": float(fraction),
                    "axis": axis,
                    "source": src.name,
                    "source_sha256_16": sha,
                    "source_rows": n,
                    "rows": rows,
                    **boundary,
                    "row_arrays": [a.name for a in plan.row_arrays] + (["spectrum", "spectrum_rows"] if plan.top_spectrum else []),
                }
                if mapping:
                    params["metadata_from"] = {"member": meta.source, "encoding": meta.encoding}
                if kind == kinds.CIRCUIT:
                    params["updated"] = _update_circuit_counts(doc, rows, lo)
                if plan.metadata:
                    params["replaced_members"] = plan.metadata
                rec = _record("split", params)
                doc["data_transformations"].append(rec)
                records.append(rec)
                w.add_metadata(_json_safe(doc, notes=notes))
        return SplitResult(
            source=src,
            train=OutputFile(targets[0], counts[0]),
            test=OutputFile(targets[1], counts[1]),
            axis=axis,
            fraction=float(fraction),
            source_rows=n,
            row_arrays=[a.name for a in plan.row_arrays] + (["spectrum", "spectrum_rows"] if plan.top_spectrum else []),
            copied=[a.name for a in plan.globals_] + list(info.other_members),
            record=records[0],
            notes=notes,
        )


def _split_array(
    r: NpzReader, a: ArrayInfo, train_mask: np.ndarray, counts: list[int],
    writers: list[NpzWriter], best: list[float | None] | None,
) -> None:
    wt, ws = writers
    shape_t = (counts[0],) + a.shape[1:]
    shape_s = (counts[1],) + a.shape[1:]
    with wt.stream(a.name, shape_t, a.dtype, compress=a.compressed) as st, ws.stream(
        a.name, shape_s, a.dtype, compress=a.compressed
    ) as ss:
        for start, chunk in r.iter_rows(a.name, _chunk_rows(a)):
            m = train_mask[start : start + len(chunk)]
            pt, ps = chunk[m], chunk[~m]
            st.write(pt)
            ss.write(ps)
            if best is not None:
                for i, part in ((0, pt), (1, ps)):
                    lo = _finite_min(part)
                    if lo is not None:
                        best[i] = lo if best[i] is None else min(best[i], lo)


def _finite_min(chunk: np.ndarray) -> float | None:
    if chunk.size == 0 or chunk.dtype.kind not in "fiu":
        return None
    c = chunk[np.isfinite(chunk)] if chunk.dtype.kind == "f" else chunk
    return _f32_float(c.min()) if c.size else None


def _split_top_spectrum(r: NpzReader, train_mask: np.ndarray, writers: list[NpzWriter]) -> None:
    """Top-K spectra follow their rows; `spectrum_rows` is renumbered within each part."""
    idx = r.read("spectrum_rows").astype(np.int64)
    spec = r.array_info("spectrum")
    sr = r.array_info("spectrum_rows")
    new_index = np.empty(train_mask.shape[0], dtype=np.int64)
    new_index[train_mask] = np.arange(int(train_mask.sum()))
    new_index[~train_mask] = np.arange(int((~train_mask).sum()))
    for w, sel in zip(writers, (train_mask[idx], ~train_mask[idx])):
        pos = np.nonzero(sel)[0]
        w.add("spectrum", r.read_rows("spectrum", pos), compress=spec.compressed)
        w.add("spectrum_rows", new_index[idx[pos]].astype(sr.dtype), compress=sr.compressed)


# --------------------------------------------------------------------------
# merge


class _RowCursor:
    """Sequential reader of one array's rows: `take(k)` returns the next k rows."""

    def __init__(self, reader: NpzReader, name: str, chunk_rows: int) -> None:
        self._it = reader.iter_rows(name, chunk_rows)
        self._buf: np.ndarray | None = None
        self._pos = 0

    def take(self, k: int) -> list[np.ndarray]:
        parts = []
        while k > 0:
            if self._buf is None or self._pos >= len(self._buf):
                _, self._buf = next(self._it)
                self._pos = 0
            m = min(k, len(self._buf) - self._pos)
            parts.append(self._buf[self._pos : self._pos + m])
            self._pos += m
            k -= m
        return parts

    def close(self) -> None:
        self._it.close()


def _same_array(ra: NpzReader, a: ArrayInfo, rb: NpzReader, b: ArrayInfo) -> bool:
    """Whether two members hold the same array (streamed comparison, bounded memory)."""
    if a.shape != b.shape or a.dtype != b.dtype or a.fortran_order != b.fortran_order:
        return False
    if a.is_object or b.is_object:
        za, zb = ra._zinfos[a.name], rb._zinfos[b.name]  # noqa: SLF001
        return (za.CRC, za.file_size) == (zb.CRC, zb.file_size)
    k = _chunk_rows(a)
    ita, itb = ra.iter_rows(a.name, k), rb.iter_rows(b.name, k)
    try:
        for (_, ca), (_, cb) in zip(ita, itb):
            if ca.tobytes() != cb.tobytes():
                return False
    finally:
        ita.close()
        itb.close()
    return True


def _ascending(reader: NpzReader, name: str) -> bool:
    prev = -np.inf
    for _, c in reader.iter_rows(name):
        if c.size == 0:
            continue
        c = c.astype(np.float64, copy=False)
        if not (c[0] >= prev and np.all(c[1:] >= c[:-1])):
            return False
        prev = c[-1]
    return True


def merge(
    paths: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    strategy: str = "preserve_first",
    force: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> MergeResult:
    """Concatenate files of one kind along their rows.

    Row arrays (one entry per scan position / circuit row, in every input, with
    matching trailing shapes) are concatenated; for circuit files that are each
    sorted by resnorm the result is a stable merge, so it stays sorted. Arrays
    that describe the whole set are taken from the first input that has them;
    when the inputs disagree on one, that is reported. `validate_consistent`
    refuses (SET_INCONSISTENT) when the set keys differ (nphotons/N/gridsize,
    or grid_size/frequency settings) or a shared array like `frequencies` does.
    """
    if strategy not in STRATEGIES:
        raise ToolError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    srcs = [Path(p) for p in paths]
    if len(srcs) < 2:
        raise ToolError("merge needs at least two input files")
    target = _real(output)
    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(_open(p, limits)) for p in srcs]
        for rd in readers:
            _require_npz(rd, "merged")
        kind_list = [kinds.detect_kind(rd.info) for rd in readers]
        kind = kind_list[0]
        if any(k != kind for k in kind_list):
            desc = ", ".join(f"{p.name}={k}" for p, k in zip(srcs, kind_list))
            raise ToolError(f"cannot merge files of different kinds ({desc})")
        metas = [discover(rd) for rd in readers]
        ns = []
        for p, rd in zip(srcs, readers):
            n = _rows_of(rd.info, kind)
            if n is None:
                raise ToolError("cannot tell which arrays hold one row per entry (no common first dimension)", p)
            ns.append(n)
        plans = [_plan(rd, kind, n) for rd, n in zip(readers, ns)]
        for p, plan in zip(srcs, plans):
            _refuse_object_rows(plan, p)

        # set consistency
        findings: list[tuple[str, Finding]] = []
        per_file = checks.consistency([(str(p), m.data) for p, m in zip(srcs, metas)], checks.DEFAULT_SET_KEYS[kind])
        for p in srcs:
            findings += [(str(p), f) for f in per_file[str(p)]]

        # which arrays merge, which are copied, which are dropped
        names_first = [a.name for a in plans[0].row_arrays]
        # `resnorm` and `resnorms` are the same array (SPEC §5): the first file's name is kept.
        local = [
            {n: rn_i for n in kinds.RESNORM_NAMES if (rn_i := kinds.resnorm_name(rd.info))}
            if kind == kinds.CIRCUIT else {}
            for rd in readers
        ]
        row_names: list[str] = []
        dropped: dict[str, str] = {}
        dtypes: dict[str, np.dtype] = {}
        for name in names_first:
            infos = []
            reason = None
            for p, plan, names in zip(srcs, plans, local):
                a = next((x for x in plan.row_arrays if x.name == names.get(name, name)), None)
                if a is None:
                    reason = f"not a per-row array in {p.name}"
                    break
                infos.append(a)
            if reason is None and len({a.shape[1:] for a in infos}) != 1:
                reason = "trailing shapes differ: " + ", ".join(f"{p.name}={a.shape}" for p, a in zip(srcs, infos))
            if reason is None:
                try:
                    dt = np.result_type(*[a.dtype for a in infos])
                    if any(not np.can_cast(a.dtype, dt, casting="safe") for a in infos):
                        raise TypeError
                    dtypes[name] = dt
                except TypeError:
                    reason = "dtypes cannot be combined: " + ", ".join(a.dtype.str for a in infos)
            if reason is None:
                row_names.append(name)
            else:
                dropped[name] = reason
        for p, plan, names in zip(srcs[1:], plans[1:], local[1:]):
            for a in plan.row_arrays:
                if a.name in names.values() and any(names.get(n) == a.name for n in names_first):
                    continue
                if a.name not in names_first and a.name not in dropped:
                    dropped[a.name] = f"missing from {srcs[0].name}"

        global_sources: dict[str, int] = {}
        differing: list[str] = []
        for i, plan in enumerate(plans):
            for a in plan.globals_:
                if a.name in row_names or a.name in dropped:
                    continue
                if a.name not in global_sources:
                    global_sources[a.name] = i
                    continue
                j = global_sources[a.name]
                other = readers[j].array_info(a.name)
                if not _same_array(readers[j], other, readers[i], a) and a.name not in differing:
                    differing.append(a.name)
                    findings.append((
                        str(srcs[i]),
                        Finding.make(
                            "SET_INCONSISTENT",
                            f"array {a.name} differs from the one in {srcs[j].name}; the merged file keeps {srcs[j].name}'s",
                            key=a.name,
                        ),
                    ))
        top = any(plan.top_spectrum for plan in plans)
        if top:
            for name in ("spectrum", "spectrum_rows"):
                row_names = [x for x in row_names if x != name]
                dropped.pop(name, None)
                global_sources.pop(name, None)
            specs = [rd.info.array("spectrum") for rd in readers]
            if any(s is None for s in specs) or len({s.shape[1:] for s in specs}) != 1:
                top = False
                dropped["spectrum"] = "top-K spectra of different shapes or missing in some inputs"
                dropped["spectrum_rows"] = dropped["spectrum"]

        if strategy == "validate_consistent" and findings:
            keys = sorted({f.key for _, f in findings if f.key})
            raise FindingsError(
                f"inputs disagree on {', '.join(keys)}; nothing written (use --strategy preserve_first to merge anyway)",
                findings,
                target,
            )

        # row order
        total = sum(ns)
        offsets = np.concatenate([[0], np.cumsum(ns)]).astype(np.int64)
        order: np.ndarray | None = None
        sorted_by_resnorm: bool | None = None
        notes: list[str] = []
        rn = kinds.resnorm_name(readers[0].info) if kind == kinds.CIRCUIT else None
        if kind == kinds.CIRCUIT and rn in row_names:
            if all(_ascending(rd, names.get(rn, rn)) for rd, names in zip(readers, local)):
                allr = np.empty(total, dtype=dtypes[rn])
                for i, rd in enumerate(readers):
                    for start, c in rd.iter_rows(local[i].get(rn, rn)):
                        allr[offsets[i] + start : offsets[i] + start + len(c)] = c
                order = np.argsort(allr, kind="stable")
                del allr
                sorted_by_resnorm = True
            else:
                sorted_by_resnorm = False
                notes.append("an input is not sorted by resnorm: rows are concatenated in input order (ranks are computed)")

        shas = [fingerprint(p) for p in srcs]
        doc, mapping = _output_metadata(metas[0], kind)
        best: list[float | None] = [None]

        with _atomic_outputs([target], force=force) as (w,):
            first_names = [a.name for a in readers[0].info.arrays]
            ordered = [x for x in first_names if x in row_names or x in global_sources]
            ordered += [x for x in global_sources if x not in ordered]
            for name in ordered:
                if name in row_names:
                    _merge_array(readers, name, [names.get(name, name) for names in local], ns, dtypes[name],
                                 order, offsets, w, best if name == rn else None)
                else:
                    w.copy_raw(readers[global_sources[name]], name)
            if top:
                _merge_top_spectrum(readers, ns, order, offsets, w)
            seen_members: set[str] = set()
            for rd in readers:
                for m in rd.info.other_members:
                    if m not in seen_members:
                        seen_members.add(m)
                        w.copy_raw_member(rd, m)
            sources = [
                {"path": str(p), "name": p.name, "sha256_16": s, "rows": n, "metadata_member": m.source}
                for p, s, n, m in zip(srcs, shas, ns, metas)
            ]
            params: dict[str, Any] = {
                "strategy": strategy,
                "sources": [{k: v for k, v in s.items() if k != "path"} for s in sources],
                "rows": total,
                "row_arrays": row_names + (["spectrum", "spectrum_rows"] if top else []),
            }
            if sorted_by_resnorm is not None:
                params["sorted_by_resnorm"] = sorted_by_resnorm
            if dropped:
                params["dropped"] = dropped
            if differing:
                params["differing_arrays_kept_from_first"] = differing
            if findings:
                params["inconsistent"] = [{"path": Path(p).name, "key": f.key, "message": f.message} for p, f in findings]
            if mapping:
                params["metadata_from"] = {"member": metas[0].source, "encoding": metas[0].encoding}
            if kind == kinds.CIRCUIT:
                params["updated"] = _update_circuit_counts(doc, total, best[0])
            rec = _record("merge", params)
            doc["data_transformations"].append(rec)
            w.add_metadata(_json_safe(doc, notes=notes))
        return MergeResult(
            output=target,
            sources=sources,
            rows=total,
            strategy=strategy,
            row_arrays=params["row_arrays"],
            copied=[x for x in ordered if x not in row_names],
            dropped=dropped,
            sorted_by_resnorm=sorted_by_resnorm,
            findings=findings,
            record=rec,
            notes=notes,
        )


def _merge_array(
    readers: list[NpzReader], name: str, local_names: list[str], ns: list[int], dtype: np.dtype,
    order: np.ndarray | None, offsets: np.ndarray, w: NpzWriter, best: list[float | None] | None,
) -> None:
    """Write `name` as the concatenation (or, with `order`, the stable merge) of each
    input's `local_names[i]`."""
    infos = [rd.array_info(n) for rd, n in zip(readers, local_names)]
    a0 = infos[0]
    total = sum(ns)
    shape = (total,) + a0.shape[1:]

    def track(chunk: np.ndarray) -> None:
        if best is not None:
            lo = _finite_min(chunk)
            if lo is not None:
                best[0] = lo if best[0] is None else min(best[0], lo)

    with w.stream(name, shape, dtype, compress=a0.compressed) as st:
        if order is None:
            for rd, a in zip(readers, infos):
                for _, chunk in rd.iter_rows(a.name, _chunk_rows(a)):
                    st.write(chunk)
                    track(chunk)
            return
        # Stable merge of sorted inputs: each input is consumed front to back.
        k = _chunk_rows(a0)
        cursors = [_RowCursor(rd, a.name, _chunk_rows(a)) for rd, a in zip(readers, infos)]
        try:
            for s in range(0, total, k):
                sel = order[s : s + k]
                src = np.searchsorted(offsets, sel, side="right") - 1
                out = np.empty((len(sel),) + a0.shape[1:], dtype=dtype)
                for i, cur in enumerate(cursors):
                    mask = src == i
                    cnt = int(mask.sum())
                    if cnt:
                        parts = cur.take(cnt)
                        out[mask] = parts[0] if len(parts) == 1 else np.concatenate(parts)
                st.write(out)
                track(out)
        finally:
            for cur in cursors:
                cur.close()


def _merge_top_spectrum(
    readers: list[NpzReader], ns: list[int], order: np.ndarray | None, offsets: np.ndarray, w: NpzWriter
) -> None:
    """Concatenate top-K spectra and renumber `spectrum_rows` into the merged row order."""
    total = sum(ns)
    new_pos = np.arange(total, dtype=np.int64)
    if order is not None:
        new_pos[order] = np.arange(total, dtype=np.int64)
    idx_parts, spec_infos = [], []
    for i, rd in enumerate(readers):
        info = rd.info
        if "spectrum_rows" in info:
            local = rd.read("spectrum_rows").astype(np.int64)
        else:
            local = np.arange(info.array("spectrum").shape[0], dtype=np.int64)
        idx_parts.append(new_pos[offsets[i] + local])
        spec_infos.append(info.array("spectrum"))
    a0 = spec_infos[0]
    dtype = np.result_type(*[a.dtype for a in spec_infos])
    k_total = sum(a.shape[0] for a in spec_infos)
    with w.stream("spectrum", (k_total,) + a0.shape[1:], dtype, compress=a0.compressed) as st:
        for rd, a in zip(readers, spec_infos):
            for _, chunk in rd.iter_rows("spectrum", _chunk_rows(a)):
                st.write(chunk)
    sr0 = readers[0].info.array("spectrum_rows")
    w.add("spectrum_rows", np.concatenate(idx_parts), compress=sr0.compressed if sr0 is not None else False)


__all__ = [
    "FindingsError", "Lineage", "MergeResult", "MetaEdit", "STRATEGIES", "SPLIT_AXES", "SplitResult",
    "ToolError", "WriteFailedError", "describe_transformation", "estimate", "lineage", "merge",
    "metadata_diff", "migrate", "set_metadata", "split", "to_v1",
]
