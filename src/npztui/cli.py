"""Command line: argument parsing, one function per subcommand, exit codes (SPEC §7).

Exit codes: 0 ok · 1 checks failed under the chosen mode · 2 usage error ·
3 an input file could not be read safely · 4 catalog or server error. With
several inputs every file is processed and the highest code wins (3 > 1 > 0).
Errors are one line on stderr (`npztui: error: ...`); `--debug` adds the
traceback. `--json` prints one object per input file per line.
"""

from __future__ import annotations

import argparse
import json
import textwrap
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .config import load_settings
from . import service as svc_mod
from .service import FileReport, NpzError, Service, expand_paths
from .textfmt import human_bytes, shape_str, table

EXIT_OK, EXIT_CHECKS, EXIT_USAGE, EXIT_UNREADABLE, EXIT_CATALOG = 0, 1, 2, 3, 4
WRAP_COLUMNS = 80


class UsageError(Exception):
    """Bad arguments discovered after parsing (exit 2)."""


# --------------------------------------------------------------------------
# output helpers


def out(line: str = "") -> None:
    print(line, flush=False)


def err(message: str) -> None:
    print(f"npztui: error: {message}", file=sys.stderr)


def emit_json(obj: Any) -> None:
    """One strict JSON line (RFC 8259): NaN and infinities, legal in Python's json, become null."""
    print(json.dumps(_strict(obj), ensure_ascii=False, allow_nan=False, default=str))


def _strict(v: Any) -> Any:
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else None
    if isinstance(v, dict):
        return {k: _strict(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_strict(x) for x in v]
    return v


def fail(path: Any, code: str, message: str, rc: int, as_json: bool, **extra: Any) -> int:
    """A file a command cannot use: one line on stderr, and with --json the error line on stdout."""
    err(f"{path}: {message}" if path else message)
    if as_json:
        emit_json({"path": str(path), **extra, "error": {"code": code, "message": message}})
    return rc


def report_error(report: FileReport, as_json: bool) -> int:
    """An unreadable file's typed error (exit 3)."""
    assert report.error is not None
    return fail(report.path, report.error.code, report.error.message, EXIT_UNREADABLE, as_json)


def _service(args: argparse.Namespace) -> Service:
    flags = {
        "catalog": getattr(args, "catalog", None),
        "database_url": getattr(args, "database_url", None),
        "max_read_bytes": getattr(args, "max_read", None),
        "theme": getattr(args, "theme", None),
    }
    return Service(load_settings(**flags))


def _paths(args: argparse.Namespace) -> list[Path]:
    paths = expand_paths(args.paths)
    if not paths:
        raise UsageError("no .npz files found in " + ", ".join(map(str, args.paths)))
    return paths


# --------------------------------------------------------------------------
# info


def cmd_info(args: argparse.Namespace) -> int:
    svc = _service(args)
    code = EXIT_OK
    for i, path in enumerate(_paths(args)):
        report = svc.inspect(path)
        if report.error is not None:
            code = max(code, report_error(report, args.json))
            continue
        if args.json:
            emit_json(report.info_json())
            continue
        if i:
            out()
        out_info(report)
    return code


def out_info(report: FileReport) -> None:
    info, meta = report.info, report.meta
    assert info is not None and meta is not None
    out(str(report.path))
    rows = f" · {report.rows} rows" if report.rows is not None else ""
    out(f"  kind {report.kind}{rows} · {human_bytes(info.size)} · {len(info.arrays)} arrays")
    if meta.found:
        out(f"  metadata in {meta.source!r} ({meta.encoding})")
    elif not meta.findings:
        out("  metadata: none (legacy file)")
    for f in meta.findings:
        out(f"  {f.severity} {f.code}: {f.message}")
    rows_t = [["array", "shape", "dtype", "order", "storage", "stored", "nbytes"]]
    for a in info.arrays:
        rows_t.append([
            a.name, shape_str(a.shape), a.dtype.str, "F" if a.fortran_order else "C",
            a.compression, human_bytes(a.stored_bytes), human_bytes(a.nbytes),
        ])
    for line in table(rows_t, right=(5, 6), max_widths={0: 22, 1: 18, 2: 10}, indent="  "):
        out(line)
    if info.other_members:
        out(f"  other members: {', '.join(info.other_members)}")


# --------------------------------------------------------------------------
# check


def cmd_check(args: argparse.Namespace) -> int:
    try:
        expect = svc_mod.parse_expect_args(args.expect or [])
        if args.expect_file:
            file_expect = svc_mod.load_expect_file(args.expect_file)
            expect = {**file_expect, **expect}
    except (ValueError, OSError) as exc:
        raise UsageError(str(exc)) from None
    consistent = tuple(k.strip() for k in (args.consistent or "").split(",") if k.strip())
    options = svc_mod.CheckOptions(
        mode=args.mode, expect=expect, consistent=consistent, deep=args.deep, rel_tol=args.rel_tol
    )
    svc = _service(args)
    reports = svc.check(_paths(args), options)
    code = EXIT_OK
    n_ok = 0
    for r in reports:
        if r.error is not None:
            code = max(code, report_error(r, args.json))
            continue
        if not r.ok:
            code = max(code, EXIT_CHECKS)
        else:
            n_ok += 1
        if args.json:
            emit_json(r.check_json())
        else:
            out_check(r)
    if not args.json and len(reports) > 1:
        bad = len(reports) - n_ok
        out(f"{len(reports)} files checked (mode {args.mode}): {n_ok} ok, {bad} not ok")
    return code


def out_check(r: FileReport) -> None:
    counts = r.severity_counts()
    summary = ", ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items() if n)
    out(f"{r.path}  {'ok' if r.ok else 'FAIL'}{'  (' + summary + ')' if summary else ''}")
    findings = sorted(r.findings, key=_severity_rank)
    rows = [[f.severity, f.code, ""] for f in findings]
    lines = table(rows, indent="  ")
    for f, head in zip(findings, lines):
        head = head.ljust(len(lines[0])) + "  " if head else head
        # Long messages (a set's values) wrap under themselves, keeping 80 columns.
        width = max(WRAP_COLUMNS - len(head), 30)
        wrapped = textwrap.wrap(f.message, width) or [""]
        out(head + wrapped[0])
        for more in wrapped[1:]:
            out(" " * len(head) + more)


def _severity_rank(f) -> int:
    return {"error": 0, "warning": 1, "info": 2}.get(f.severity, 3)


# --------------------------------------------------------------------------
# meta


def cmd_meta_show(args: argparse.Namespace) -> int:
    svc = _service(args)
    code = EXIT_OK
    for path in _paths(args):
        report = svc.inspect(path)
        if report.error is not None:
            code = max(code, report_error(report, args.json))
            continue
        meta = report.meta
        if args.json:
            emit_json({
                "path": str(path),
                "metadata": meta.data,
                "metadata_source": meta.to_json(),
                "findings": [f.to_json() for f in meta.findings],
            })
            continue
        out(str(path))
        out(f"  metadata in {meta.source!r} ({meta.encoding})" if meta.found else "  no metadata")
        for f in meta.findings:
            out(f"  {f.severity} {f.code}: {f.message}")
        if meta.found:
            out(json.dumps(meta.data, indent=2, ensure_ascii=False, default=str))
    return code


# --------------------------------------------------------------------------
# the TUI


def cmd_tui(args: argparse.Namespace) -> int:
    try:
        from .tui.app import run_app
    except ImportError as exc:  # pragma: no cover - the TUI ships with the package
        err(f"the TUI is not available: {exc}")
        return EXIT_CATALOG
    path = args.path
    if path is None:
        path = "data/npz" if Path("data/npz").is_dir() else "."
    return run_app(_service(args), Path(path))


# --------------------------------------------------------------------------
# parser


def _common(p: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    if json_flag:
        p.add_argument("--json", action="store_true", help="one JSON object per input file per line")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    p.add_argument("--max-read", type=_size, metavar="BYTES", help="cap on bytes read for any array (default 1 GiB)")
    p.add_argument("--catalog", metavar="PATH", help="SQLite catalog file (default: user data dir)")


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        return int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None


def _bounded(kind: type, test: Callable[[Any], bool], rule: str) -> Callable[[str], Any]:
    """An argparse type: parse with `kind`, then refuse values failing `test` ("must be <rule>")."""
    noun = "an integer" if kind is int else "a number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {noun}: {text!r}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    return parse


_positive_int = _bounded(int, lambda v: v >= 1, "at least 1")
_non_negative_int = _bounded(int, lambda v: v >= 0, "0 or more")
_fraction = _bounded(float, lambda v: 0.0 < v < 1.0, "between 0 and 1 (exclusive)")
_quality = _bounded(float, lambda v: 0.0 <= v <= 1.0, "between 0 and 1")


SUBCOMMANDS: dict[str, Callable[[argparse._SubParsersAction], None]] = {}


def subcommand(name: str):
    """Register a function that adds one subcommand's parser."""

    def deco(fn):
        SUBCOMMANDS[name] = fn
        return fn

    return deco


@subcommand("info")
def _p_info(sub) -> None:
    p = sub.add_parser("info", help="members, shapes, dtypes, sizes, kind, metadata (header-only)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    _common(p)
    p.set_defaults(func=cmd_info)


@subcommand("check")
def _p_check(sub) -> None:
    p = sub.add_parser("check", help="findings: metadata vs arrays, expectations, sets")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--mode", choices=svc_mod.CHECK_MODES, default="warn", help="strict: warnings fail too; permissive: never fail")
    p.add_argument("--expect", action="append", metavar="K=V", help="expected metadata value (repeatable)")
    p.add_argument("--expect-file", metavar="F", help="TOML table of expected values")
    p.add_argument("--consistent", metavar="K1,K2", help="keys that must agree across all given files")
    p.add_argument("--deep", action="store_true", help="also read the data to find NaN/inf")
    p.add_argument("--rel-tol", type=float, default=1e-9, help="relative tolerance for floats (default 1e-9)")
    _common(p)
    p.set_defaults(func=cmd_check)


@subcommand("meta")
def _p_meta(sub) -> None:
    p = sub.add_parser("meta", help="show, set or migrate metadata")
    msub = p.add_subparsers(dest="meta_command", required=True, metavar="{show,set,migrate}")
    show = msub.add_parser("show", help="the decoded metadata and where it came from")
    show.add_argument("paths", nargs="+", metavar="PATH")
    _common(show)
    show.set_defaults(func=cmd_meta_show)
    for extend in META_SUBCOMMANDS:
        extend(msub)


META_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


# --- tools commands ---
# meta set / meta migrate / split / merge / lineage. Every write is atomic.
# Exit codes: 0 done (or nothing to do) · 1 refused because the inputs disagree
# (SET_INCONSISTENT, PTY_COORDS_LEN) · 2 refused as asked (bad value, legacy file
# for `meta set`, output exists) · 3 a file could not be read or written
# (typed code, e.g. PERMISSION for a read-only directory).


def _tool_refused(path: Any, exc: Exception, as_json: bool) -> int:
    """One line on stderr (+ a JSON line); returns the exit code for the refusal."""
    if isinstance(exc, NpzError):
        err(f"{exc.path or path}: {exc.message}")
        if as_json:
            emit_json({"path": str(path), "error": exc.to_json()})
        return EXIT_UNREADABLE
    if isinstance(exc, svc_mod.FindingsError):
        err(f"{exc.path or path}: {exc.message}")
        if as_json:
            emit_json({
                "path": str(exc.path or path), "written": False,
                "error": {"code": exc.findings[0][1].code if exc.findings else "REFUSED", "message": exc.message},
                "findings": exc.findings_json(),
            })
        else:
            for p, f in exc.findings:
                out(f"  {f.severity} {f.code} ({Path(p).name}): {f.message}")
        return EXIT_CHECKS
    assert isinstance(exc, svc_mod.ToolError)
    return fail(exc.path or path, "USAGE", exc.message, EXIT_USAGE, as_json)


_TOOL_ERRORS = (NpzError, svc_mod.ToolError)


def _assignments(items: Sequence[str] | None) -> dict[str, Any]:
    try:
        return Service.parse_set_args(items or [])
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _out_edit(edit) -> None:
    dry = " (dry run: nothing written)" if edit.dry_run and edit.changed else ""
    if not edit.changed:
        out(f"{edit.path}: " + ("; ".join(edit.notes) or "unchanged"))
        return
    if edit.operation == "meta set":
        n = len(edit.changes)
        conf = f", confirmed estimate{'s' if len(edit.confirmed) != 1 else ''} {', '.join(edit.confirmed)}" if edit.confirmed else ""
        out(f"{edit.path}: {n} value{'s' if n != 1 else ''} changed{conf}{dry}")
    else:
        src = f"{edit.source!r} ({edit.encoding})" if edit.source else "no metadata"
        verb = "would migrate" if edit.dry_run else "migrated"
        extra = ""
        if edit.kept_members:
            extra = f"; kept {', '.join(map(repr, edit.kept_members))} for old readers"
        if edit.dropped_members:
            extra = f"; removed {', '.join(map(repr, edit.dropped_members))}"
        head = "already v1, filled in" if edit.already_v1 else f"{verb} {src} to v1 '_metadata'"
        out(f"{edit.path}: {head}{extra}{dry}")
    for line in edit.diff():
        out(f"  {line}")
    if edit.estimated:
        shown = ", ".join(f"{k} = {svc_mod.show_value(v, 40)}" for k, v in edit.estimated.items())
        out(f"  estimated from the arrays (listed in additional_parameters.estimated_keys): {shown}")
    for note in edit.notes:
        out(f"  note: {note}")
    for f in edit.findings:
        if f.severity in ("error", "warning"):
            out(f"  check: {f.severity} {f.code}: {f.message}")


def cmd_meta_set(args: argparse.Namespace) -> int:
    updates = _assignments(args.assignments)
    svc = _service(args)
    try:
        edit = svc.meta_set(args.path, updates, dry_run=args.dry_run)
    except _TOOL_ERRORS as exc:
        return _tool_refused(args.path, exc, args.json)
    if args.json:
        emit_json(edit.to_json())
    else:
        _out_edit(edit)
    return EXIT_OK


def cmd_meta_migrate(args: argparse.Namespace) -> int:
    updates = _assignments(args.set)
    svc = _service(args)
    code = EXIT_OK
    for path in _paths(args):
        try:
            edit = svc.meta_migrate(
                path, updates=updates, estimate=args.estimate, drop_legacy=args.drop_legacy, dry_run=args.dry_run,
            )
        except _TOOL_ERRORS as exc:
            code = max(code, _tool_refused(path, exc, args.json))
            continue
        if args.json:
            emit_json(edit.to_json())
        else:
            _out_edit(edit)
    return code


def cmd_split(args: argparse.Namespace) -> int:
    svc = _service(args)
    try:
        res = svc.split(
            args.path, fraction=args.fraction, axis=args.axis, out_dir=args.out, force=args.force,
        )
    except _TOOL_ERRORS as exc:
        return _tool_refused(args.path, exc, args.json)
    if args.json:
        emit_json(res.to_json())
        return EXIT_OK
    out(f"{res.source} → {res.train.path} ({res.train.rows} rows), {res.test.path} ({res.test.rows} rows)")
    rec = res.record.get("parameters", {})
    if res.axis in ("x", "y"):
        where = f"train {res.axis} ≤ {rec.get('train_max'):g}, test {res.axis} ≥ {rec.get('test_min'):g}"
    else:
        where = f"rows [0, {res.train.rows}) to train in source (resnorm) order"
    out(f"  split along {res.axis} at fraction {res.fraction:g}: {where}")
    out(f"  split: {', '.join(res.row_arrays) or '-'}; copied: {', '.join(res.copied) or '-'}")
    for note in res.notes:
        out(f"  note: {note}")
    return EXIT_OK


def cmd_merge(args: argparse.Namespace) -> int:
    svc = _service(args)
    try:
        res = svc.merge(args.paths, args.output, strategy=args.strategy, force=args.force)
    except _TOOL_ERRORS as exc:
        return _tool_refused(args.output, exc, args.json)
    if args.json:
        emit_json(res.to_json())
        return EXIT_OK
    order = ""
    if res.sorted_by_resnorm is True:
        order = ", sorted by resnorm"
    elif res.sorted_by_resnorm is False:
        order = ", in input order"
    out(f"{res.output}: merged {len(res.sources)} files, {res.rows} rows ({res.strategy}{order})")
    out(f"  concatenated: {', '.join(res.row_arrays) or '-'}; copied: {', '.join(res.copied) or '-'}")
    for name, why in res.dropped.items():
        out(f"  dropped {name}: {why}")
    for p, f in res.findings:
        out(f"  warning {f.code} ({Path(p).name}): {f.message}")
    for note in res.notes:
        out(f"  note: {note}")
    return EXIT_OK


def cmd_lineage(args: argparse.Namespace) -> int:
    svc = _service(args)
    code = EXIT_OK
    for i, path in enumerate(_paths(args)):
        try:
            lin = svc.lineage(path)
        except _TOOL_ERRORS as exc:
            code = max(code, _tool_refused(path, exc, args.json))
            continue
        if args.json:
            emit_json(lin.to_json())
            continue
        if i:
            out()
        out(str(path))
        if lin.source is None:
            out("  no metadata, so no lineage (`npztui meta migrate` adds v1 metadata)")
        elif lin.legacy:
            out(f"  legacy metadata in {lin.source!r}: no lineage recorded (`npztui meta migrate` converts it)")
        ci = lin.creation_info or {}
        if ci:
            by = " ".join(
                x for x in (
                    f"by {ci['script']}" if ci.get("script") else "",
                    f"on {ci['hostname']}" if ci.get("hostname") else "",
                    f"({ci.get('tool_version') or ci.get('ptychopinn_version')})"
                    if ci.get("tool_version") or ci.get("ptychopinn_version") else "",
                ) if x
            )
            out(f"  created {ci.get('timestamp', '?')} {by}".rstrip())
        for n, rec in enumerate(lin.transformations, 1):
            out(f"  {n}. {svc_mod.describe_transformation(rec)}")
        if lin.source is not None and not lin.legacy and not lin.transformations:
            out("  no transformations recorded")
    return code


def _p_meta_set(msub) -> None:
    p = msub.add_parser("set", help="change metadata values (v1), recorded in the file's lineage")
    p.add_argument("path", metavar="PATH")
    p.add_argument("assignments", nargs="+", metavar="K=V", help="short (nphotons) or dotted (circuit.grid_size) keys")
    p.add_argument("--dry-run", action="store_true", help="show the change, write nothing")
    _common(p)
    p.set_defaults(func=cmd_meta_set)


def _p_meta_migrate(msub) -> None:
    p = msub.add_parser("migrate", help="add v1 '_metadata' to legacy files")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--set", action="append", metavar="K=V", help="also set a value (repeatable)")
    p.add_argument("--estimate", action="store_true", help="fill missing values inferable from the arrays (marked as estimated)")
    p.add_argument("--drop-legacy", action="store_true", help="remove the legacy metadata member (kept by default for old readers)")
    p.add_argument("--dry-run", action="store_true", help="show the change, write nothing")
    _common(p)
    p.set_defaults(func=cmd_meta_migrate)


META_SUBCOMMANDS += [_p_meta_set, _p_meta_migrate]


@subcommand("split")
def _p_split(sub) -> None:
    p = sub.add_parser("split", help="split into {stem}_train.npz / {stem}_test.npz")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--fraction", type=_fraction, default=0.8, help="share of positions/rows for train (default 0.8)")
    p.add_argument("--axis", choices=svc_mod.SPLIT_AXES, default=None,
                   help="x|y: by scan coordinate (ptycho, default y); rows: in file order (circuit default)")
    p.add_argument("--out", metavar="DIR", help="output directory (default: next to PATH)")
    p.add_argument("--force", action="store_true", help="replace existing outputs")
    _common(p)
    p.set_defaults(func=cmd_split)


@subcommand("merge")
def _p_merge(sub) -> None:
    p = sub.add_parser("merge", help="concatenate files of one kind along their rows")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="the merged file")
    p.add_argument("--strategy", choices=svc_mod.MERGE_STRATEGIES, default="preserve_first",
                   help="preserve_first: first file's metadata wins, differences reported; "
                        "validate_consistent: refuse when nphotons/N/gridsize or grid/frequency settings differ")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    _common(p)
    p.set_defaults(func=cmd_merge)


@subcommand("lineage")
def _p_lineage(sub) -> None:
    p = sub.add_parser("lineage", help="the transformation history recorded in a file")
    p.add_argument("paths", nargs="+", metavar="PATH")
    _common(p)
    p.set_defaults(func=cmd_lineage)
# --- end tools commands ---


# --- circuit commands ---
# compute / best / search / spectrum (SPEC §5, §7). Exit codes: 0 ok (a stored-
# spectrum disagreement is a warning finding, printed, not a failure) · 2 bad
# arguments, not a circuit file, rank out of range, output exists without --force
# · 3 a file could not be read (or the output written: typed code) · 130 Ctrl-C
# (nothing written).


def _hz(text: str) -> float:
    """A frequency: `0.1`, `1e5`, `100k`, `100 kHz`."""
    try:
        return svc_mod.parse_quantity(text, "hertz")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _circuit_failure(path: Any, exc: Exception, as_json: bool) -> int:
    """One line on stderr (+ a JSON error line) for a file a circuit command cannot use."""
    if isinstance(exc, NpzError):
        code, message, rc = exc.code, exc.message, EXIT_UNREADABLE
    elif isinstance(exc, svc_mod.NotCircuitError):
        code, message, rc = exc.code, str(exc).split(": ", 1)[-1], EXIT_USAGE
    else:  # IndexError / ValueError: rank out of range, bad option
        code, message, rc = "USAGE", str(exc).strip("'\""), EXIT_USAGE
    return fail(path, code, message, rc, as_json)


_CIRCUIT_ERRORS = (NpzError, ValueError, IndexError)


def _resnorm(x: float) -> str:
    return f"{x:.6g}"


def _ranked_table(rows) -> list[str]:
    head = [["rank", "row", "resnorm (Ω)", *svc_mod.PARAM_NAMES]]
    body = [
        [str(r.rank), str(r.row), _resnorm(r.resnorm),
         *(svc_mod.format_parameter(n, r.parameters[n]) for n in svc_mod.PARAM_NAMES)]
        for r in rows
    ]
    return table(head + body, right=tuple(range(8)), indent="  ")


def _out_ranking(res, *, what: str) -> None:
    order = "sorted" if res.sorted else "unsorted: ranks computed"
    out(f"{res.path} · {res.n_rows:,} rows ({order})")
    if res.max_resnorm is not None:
        shown = f", showing the best {len(res.rows)}" if len(res.rows) < (res.matches or 0) else ""
        out(f"  {res.matches:,} rows with resnorm ≤ {_resnorm(res.max_resnorm)}{shown}")
    if not res.rows:
        out(f"  no {what}")
        return
    for line in _ranked_table(res.rows):
        out(line)


def cmd_best(args: argparse.Namespace) -> int:
    svc = _service(args)
    code = EXIT_OK
    for i, path in enumerate(_paths(args)):
        try:
            res = svc.best(path, args.n)
        except _CIRCUIT_ERRORS as exc:
            code = max(code, _circuit_failure(path, exc, args.json))
            continue
        if args.json:
            emit_json(res.to_json())
            continue
        if i:
            out()
        _out_ranking(res, what="rows")
    return code


def cmd_search(args: argparse.Namespace) -> int:
    svc = _service(args)
    code = EXIT_OK
    for i, path in enumerate(_paths(args)):
        try:
            res = svc.search(path, args.max_resnorm, args.limit)
        except _CIRCUIT_ERRORS as exc:
            code = max(code, _circuit_failure(path, exc, args.json))
            continue
        if args.json:
            emit_json(res.to_json())
            continue
        if i:
            out()
        _out_ranking(res, what="matching rows")
    return code


def _reference_arg(text: str | None) -> dict[str, float] | None:
    if text is None:
        return None
    try:
        return svc_mod.parse_reference(text)
    except ValueError as exc:
        raise UsageError(f"--ref: {exc}") from None


def cmd_spectrum(args: argparse.Namespace) -> int:
    if args.plot and args.json:
        raise UsageError("--plot draws for a terminal; it cannot be combined with --json")
    reference = _reference_arg(args.ref)
    svc = _service(args)
    code = EXIT_OK
    for i, path in enumerate(_paths(args)):
        try:
            rs = svc.row_spectrum(path, args.rank, reference=reference)
        except _CIRCUIT_ERRORS as exc:
            code = max(code, _circuit_failure(path, exc, args.json))
            continue
        if args.json:
            emit_json(rs.to_json())
            continue
        if i:
            out()
        _out_spectrum(rs, args)
    return code


def _out_spectrum(rs, args: argparse.Namespace) -> None:
    import shutil

    ref_src = {"argument": "given with --ref", "metadata": "from the file's metadata",
               "default": "assumed, the file records none; see --ref"}[rs.reference_source]
    out(f"{rs.path} · rank {rs.rank} (row {rs.row}) · resnorm {_resnorm(rs.resnorm)} Ω"
        f" (recomputed {_resnorm(rs.recomputed_resnorm)} Ω)")
    out(f"  parameters  {svc_mod.format_parameters(rs.parameters)}")
    out(f"  reference   {svc_mod.format_parameters(rs.reference)}  ({ref_src})")
    freq_src = {"array": "", "metadata": " (frequencies from metadata)", "default": " (default frequencies)"}
    out(f"  {len(rs.frequencies)} frequencies, {svc_mod.format_si(rs.frequencies[0], 'hertz')}"
        f" – {svc_mod.format_si(rs.frequencies[-1], 'hertz')}{freq_src[rs.frequency_source]}")
    if rs.stored.status == "agrees":
        out("  stored spectrum: agrees with the model (rel 1e-3)")
    elif rs.stored.status != "disagrees":
        out(f"  stored spectrum: {rs.stored.status} — {rs.stored.detail}")
    for f in rs.findings():
        out(f"  {f.severity} {f.code}: {f.message}")
    if args.plot:
        size = shutil.get_terminal_size((100, 30))
        width = args.width or size.columns
        height = args.height or max(size.lines - 7, 16 if args.plot == "nyquist" else 24)
        out(Service.render_spectrum(rs, args.plot, width, height, color=sys.stdout.isatty()).rstrip("\n"))
        return
    rows = [["f", "real (Ω)", "imag (Ω)", "|Z| (Ω)", "phase (°)"]]
    for f, (re_, im, mag, ph) in zip(rs.frequencies, rs.spectrum):
        rows.append([svc_mod.format_si(f, "hertz", 4), f"{re_:.6g}", f"{im:.6g}", f"{mag:.6g}", f"{ph:.4f}"])
    for line in table(rows, right=(0, 1, 2, 3, 4), indent="  "):
        out(line)


class _ComputeBar:
    """A rich progress bar on stderr: one line per phase, rows/s and ETA."""

    LABELS = {"resnorm": "resnorms", "sort": "rank order", "parameters": "parameters", "spectrum": "spectra"}

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> _ComputeBar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn
            from rich.progress import TimeElapsedColumn, TimeRemainingColumn
            from rich.text import Text

            class RowsPerSecond(ProgressColumn):
                def render(self, task) -> Text:
                    speed = task.finished_speed or task.speed
                    return Text("" if speed is None else f"{svc_mod.format_si(speed, '', 3)} rows/s")

            self._progress = Progress(
                TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(), RowsPerSecond(),
                TextColumn("ETA"), TimeRemainingColumn(), TimeElapsedColumn(),
                console=Console(stderr=True), transient=False,
            )
            self._progress.__enter__()
        return self

    def __call__(self, ev) -> None:
        if self._progress is None:
            return
        task = self._tasks.get(ev.phase)
        if task is None:
            task = self._tasks[ev.phase] = self._progress.add_task(self.LABELS.get(ev.phase, ev.phase), total=ev.rows_total)
        self._progress.update(task, completed=ev.rows_done)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


def cmd_compute(args: argparse.Namespace) -> int:
    reference = _reference_arg(args.ref) or dict(svc_mod.DEFAULT_REFERENCE)
    try:
        config = svc_mod.ComputeConfig(
            grid_size=args.grid, freq_min=args.fmin, freq_max=args.fmax, n_frequencies=args.points,
            reference=reference, spectrum=svc_mod.SpectrumMode.parse(args.spectrum),
            compress=args.compress, legacy_pickle=args.legacy_pickle,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    svc = _service(args)
    out_dir = Path(args.out) if args.out else svc.default_compute_dir()
    script = (f"npztui compute --grid {args.grid} --fmin {args.fmin:g} --fmax {args.fmax:g} --points {args.points}"
              f" --ref {','.join(f'{k}={v:g}' for k, v in reference.items())} --spectrum {config.spectrum}"
              + (" --compress" if args.compress else "") + (" --legacy-pickle" if args.legacy_pickle else ""))
    show = not args.no_progress and sys.stderr.isatty()
    try:
        with _ComputeBar(show) as bar:
            res, run = svc.compute(
                config, out_dir, overwrite=args.force, chunk_rows=args.chunk_rows, progress=bar, script=script,
                record_run=not args.no_run,
            )
    except FileExistsError as exc:
        raise UsageError(f"{exc}".replace("overwrite / --force", "--force")) from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        err("interrupted: nothing was written")
        return 130
    except OSError as exc:
        e = svc_mod.os_error(exc.filename or out_dir, exc)
        return fail(e.path, e.code, e.message, EXIT_UNREADABLE, args.json)
    if args.json:
        emit_json({**res.to_json(), "run_id": run.id if run else None})
        return EXIT_OK
    size = res.path.stat().st_size
    out(f"wrote {res.path}")
    out(f"  {res.n_rows:,} rows × {res.n_frequencies} frequencies · spectrum {res.spectrum}"
        f" · {human_bytes(size)}{' (deflated)' if res.compressed else ''}"
        f" · {res.elapsed_s:.2f} s ({svc_mod.format_si(res.rows_per_s, '', 3)} rows/s)")
    out(f"  best resnorm {_resnorm(res.best_resnorm)} Ω at {svc_mod.format_parameters(res.best_parameters)}")
    if run is not None:
        out(f"  recorded as run {run.id[:8]} ({run.status}, {run.iterations} iterations) — npztui runs show {run.id[:8]}")
    return EXIT_OK


@subcommand("compute")
def _p_compute(sub) -> None:
    p = sub.add_parser("compute", help="compute a circuit grid, ranked by resnorm, into an .npz")
    p.add_argument("--grid", type=_positive_int, default=5, metavar="G", help="values per parameter (default 5: 3125 rows)")
    p.add_argument("--fmin", type=_hz, default=0.1, metavar="HZ", help="lowest frequency (default 0.1 Hz)")
    p.add_argument("--fmax", type=_hz, default=100_000.0, metavar="HZ", help="highest frequency (default 100 kHz)")
    p.add_argument("--points", type=_positive_int, default=100, metavar="N", help="log-spaced frequencies (default 100)")
    p.add_argument("--ref", metavar="Rsh=..,Ra=..,Ca=..,Rb=..,Cb=..",
                   help="reference circuit (units/prefixes allowed: 5k, 25.05u); default Rsh=Ra=Rb=5005, Ca=Cb=25.05e-6")
    p.add_argument("--spectrum", default="full", metavar="full|none|top:K", help="which spectra to store (default full)")
    p.add_argument("--out", metavar="DIR", help="output directory (default <data root>/user_generated)")
    p.add_argument("--force", action="store_true", help="replace an existing file of the same name")
    p.add_argument("--compress", action="store_true", help="deflate the arrays (smaller, slower)")
    p.add_argument("--legacy-pickle", action="store_true", help="also write the old pickled 'metadata' dict for old readers")
    p.add_argument("--chunk-rows", type=_positive_int, default=None, metavar="N", help="rows per chunk: bounds memory (default 32768)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--no-run", action="store_true", help="do not record the compute as a run in the catalog")
    _common(p)
    p.set_defaults(func=cmd_compute)


@subcommand("best")
def _p_best(sub) -> None:
    p = sub.add_parser("best", help="top-N rows by resnorm (circuit)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("-n", type=_non_negative_int, default=10, metavar="N", help="how many rows (default 10)")
    _common(p)
    p.set_defaults(func=cmd_best)


@subcommand("search")
def _p_search(sub) -> None:
    p = sub.add_parser("search", help="rows with resnorm ≤ X, best first (circuit)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--max-resnorm", type=float, required=True, metavar="X", help="resnorm threshold (Ω)")
    p.add_argument("--limit", type=_non_negative_int, default=100, metavar="N", help="at most N rows (default 100)")
    _common(p)
    p.set_defaults(func=cmd_search)


@subcommand("spectrum")
def _p_spectrum(sub) -> None:
    p = sub.add_parser("spectrum", help="a ranked row's spectrum, recomputed; --plot draws it")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--rank", type=_positive_int, required=True, metavar="R", help="1-based rank (1 = best)")
    p.add_argument("--plot", choices=svc_mod.PLOT_KINDS, help="draw a Nyquist or Bode plot instead of the table")
    p.add_argument("--ref", metavar="Rsh=..,Ra=..", help="reference to overlay (default: the file's, else the producers')")
    p.add_argument("--width", type=_positive_int, metavar="COLS", help="plot width (default: terminal)")
    p.add_argument("--height", type=_positive_int, metavar="LINES", help="plot height (default: terminal)")
    _common(p)
    p.set_defaults(func=cmd_spectrum)
# --- end circuit commands ---


# --- catalog commands ---
# scan, tag, config, session, sync, db, runs (SPEC §6-§8). The catalog is the
# local SQLite working copy; `sync` talks to the server. Exit 4 on catalog or
# server errors, 2 on invalid values (quality outside 0-1, unknown ids).


def _catalog_common(p: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    _common(p, json_flag=json_flag)
    p.add_argument("--database-url", metavar="URL", help="PostgreSQL server (default NPZTUI_DATABASE_URL / libpq env)")


def _short(ident: str | None) -> str:
    return (ident or "")[:8]


def cmd_scan(args: argparse.Namespace) -> int:
    svc = _service(args)
    code = EXIT_OK
    for root in args.dirs:
        show = sys.stderr.isatty() and not args.json
        with _ScanBar(show) as bar:
            res = svc.scan(root, progress=bar)
        if args.json:
            emit_json(res.to_json())
        else:
            out(f"{res.root}: {res.files} files · {res.added} added · {res.updated} updated · "
                f"{res.unchanged} unchanged · {res.unavailable} now unavailable ({res.elapsed_s:.2f} s)")
        for path, c, message in res.errors:
            err(f"{path}: {message}")
            code = max(code, EXIT_UNREADABLE)
    return code


class _ScanBar:
    """A rich progress bar on stderr for long scans (only on a terminal)."""

    def __init__(self, show: bool) -> None:
        self.show = show
        self._progress = None
        self._task = None

    def __enter__(self) -> "_ScanBar":
        if self.show:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(),
                                      TimeRemainingColumn(), console=Console(stderr=True), transient=True)
            self._progress.__enter__()
        return self

    def __call__(self, done: int, total: int, path: Path) -> None:
        if self._progress is None:
            return
        if self._task is None:
            self._task = self._progress.add_task("scan", total=total)
        self._progress.update(self._task, completed=done)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


def _tag_json(t) -> dict[str, Any]:
    return {k: getattr(t, k) for k in (
        "id", "dataset_id", "dataset_path", "row_index", "label", "category", "quality_score", "is_reference",
        "notes", "resnorm", "parameters", "owner", "is_public", "updated_at")}


def cmd_tag_add(args: argparse.Namespace) -> int:
    svc = _service(args)
    fields = {"category": args.category, "notes": args.notes, "is_reference": args.reference,
              "is_public": args.public}
    if args.quality is not None:
        fields["quality_score"] = args.quality
    tag = svc.tag_file(args.path, label=args.label, rank=args.rank, row=args.row, **fields)
    if args.json:
        emit_json(_tag_json(tag))
    else:
        what = f"rank {tag.row_index}" if tag.resnorm is not None or args.rank is not None else f"row {tag.row_index}"
        out(f"tagged {what} of {args.path} as {tag.label!r} (tag {_short(tag.id)})")
    return EXIT_OK


def cmd_tag_list(args: argparse.Namespace) -> int:
    svc = _service(args)
    dataset_id = None
    if args.path:
        found = svc.find_dataset(args.path)
        if found is None:
            if args.json:
                return EXIT_OK
            out(f"{args.path}: not catalogued (no tags)")
            return EXIT_OK
        dataset_id = found.id
    tags = svc.list_tags(dataset_id)
    if args.json:
        for t in tags:
            emit_json(_tag_json(t))
        return EXIT_OK
    if not tags:
        out("no tags")
        return EXIT_OK
    rows = [["id", "dataset", "row", "label", "category", "quality", "ref", "resnorm"]]
    for t in tags:
        rows.append([_short(t.id), t.dataset_path or "?", str(t.row_index), t.label, t.category or "",
                     "" if t.quality_score is None else f"{t.quality_score:.2f}", "★" if t.is_reference else "",
                     "" if t.resnorm is None else _resnorm(t.resnorm)])
    for line in table(rows, right=(2, 5, 7), max_widths={1: 24, 3: 16, 4: 10}):
        out(line)
    return EXIT_OK


def cmd_tag_rm(args: argparse.Namespace) -> int:
    svc = _service(args)
    for ident in args.ids:
        svc.delete_tag(ident)
        if not args.json:
            out(f"deleted tag {ident}")
    return EXIT_OK


def cmd_config_add(args: argparse.Namespace) -> int:
    svc = _service(args)
    reference = _reference_arg(args.ref) or dict(svc_mod.DEFAULT_REFERENCE)
    fields = {k: v for k, v in (("grid_size", args.grid), ("min_freq", args.fmin), ("max_freq", args.fmax),
                                ("num_points", args.points), ("description", args.description)) if v is not None}
    config = svc.add_config(args.name, reference, is_public=args.public, **fields)
    if args.json:
        emit_json(_config_json(config))
    else:
        out(f"configuration {config.name!r} saved (id {_short(config.id)})")
    return EXIT_OK


def _config_json(c) -> dict[str, Any]:
    return {k: getattr(c, k) for k in ("id", "name", "circuit_parameters", "grid_size", "min_freq", "max_freq",
                                       "num_points", "description", "owner", "is_public")}


def cmd_config_list(args: argparse.Namespace) -> int:
    configs = _service(args).list_configs()
    if args.json:
        for c in configs:
            emit_json(_config_json(c))
        return EXIT_OK
    if not configs:
        out("no configurations")
        return EXIT_OK
    rows = [["id", "name", "grid", "frequencies", "reference", "owner"]]
    for c in configs:
        rows.append([_short(c.id), c.name, str(c.grid_size),
                     f"{svc_mod.format_si(c.min_freq, 'hertz')}–{svc_mod.format_si(c.max_freq, 'hertz')} ×{c.num_points}",
                     svc_mod.format_parameters(c.circuit_parameters) if c.circuit_parameters else "",
                     (c.owner or "") + (" (public)" if c.is_public else "")])
    for line in table(rows, max_widths={1: 18, 4: 40}):
        out(line)
    return EXIT_OK


def cmd_config_link(args: argparse.Namespace) -> int:
    svc = _service(args)
    dataset = svc.link_config(args.path, None if args.unlink else args.config)
    if args.json:
        emit_json({"dataset_id": dataset.id, "path": dataset.path, "circuit_config_id": dataset.circuit_config_id})
    elif args.unlink:
        out(f"{args.path}: unlinked")
    else:
        out(f"{args.path}: linked to configuration {args.config!r}; `npztui check` now compares them")
    return EXIT_OK


def cmd_session_add(args: argparse.Namespace) -> int:
    session = _service(args).add_session(args.name, args.config)
    if args.json:
        emit_json({"id": session.id, "session_name": session.session_name,
                   "current_circuit_config_id": session.current_circuit_config_id})
    else:
        out(f"session {session.session_name!r} created (id {_short(session.id)})")
    return EXIT_OK


def cmd_session_list(args: argparse.Namespace) -> int:
    sessions = _service(args).list_sessions()
    if args.json:
        for x in sessions:
            emit_json({k: getattr(x, k) for k in ("id", "session_name", "current_circuit_config_id",
                                                  "total_computations", "total_tagged", "last_active")})
        return EXIT_OK
    rows = [["id", "name", "config", "computations", "tagged", "last active"]]
    for x in sessions:
        rows.append([_short(x.id), x.session_name, _short(x.current_circuit_config_id),
                     str(x.total_computations), str(x.total_tagged), x.last_active or ""])
    for line in table(rows, right=(3, 4)) if sessions else ["no sessions"]:
        out(line)
    return EXIT_OK


def cmd_sync(args: argparse.Namespace) -> int:
    svc = _service(args)
    try:
        res = svc.sync(full=args.full)
    except svc_mod.ServerUnavailable as exc:
        partial = getattr(exc, "partial", None)
        err(f"{exc} (local changes stay in the outbox: {svc.catalog.pending_outbox_count()} pending)")
        if args.json:
            emit_json({"ok": False, "error": str(exc), "pushed": getattr(partial, "pushed", 0),
                       "pending": svc.catalog.pending_outbox_count()})
        return EXIT_CATALOG
    conflicts = svc.conflicts()
    if args.json:
        emit_json({"ok": res.ok, "pushed": res.pushed, "pulled": res.pulled, "conflicts": res.conflicts,
                   "errors": res.errors, "server_revision": res.server_revision, "owner": res.owner,
                   "duration_s": round(res.duration_s, 3), "unresolved_conflicts": len(conflicts)})
    else:
        out(f"synced as {res.owner}: pushed {res.pushed}, pulled {res.pulled}, "
            f"{res.conflicts} new conflicts ({res.duration_s:.2f} s)")
        for e in res.errors:
            out(f"  refused: {e}")
        for c in conflicts if args.show_conflicts else []:
            kept = "local" if c.winner == "local" else "server"
            out(f"  conflict {_short(c.id)} on {c.table_name} {_short(c.row_id)}: kept the {kept} version "
                f"({c.kept.get('updated_at')}); the other ({c.loser.get('updated_at')}) is kept in `conflicts`")
    return EXIT_OK if res.ok else EXIT_CATALOG


def cmd_db_status(args: argparse.Namespace) -> int:
    statuses = _service(args).db_status()
    code = EXIT_OK
    for st in statuses:
        if not st.reachable:
            code = EXIT_CATALOG
        if args.json:
            emit_json(st.to_json())
            continue
        state = "reachable" if st.reachable else "UNREACHABLE"
        version = f"schema {st.schema_version}/{st.latest_version}" if st.schema_version is not None else "schema ?"
        out(f"{st.backend:<10} {st.location}")
        out(f"           {state} · {version}" + (f" · user {st.user}" if st.user else "")
            + (f" · {st.pending_outbox} pending" if st.pending_outbox is not None else ""))
        if st.error:
            out(f"           {st.error}")
    return code


def cmd_db_migrate(args: argparse.Namespace) -> int:
    done = _service(args).db_migrate()
    if args.json:
        emit_json(done)
    else:
        for backend, versions in done.items():
            out(f"{backend}: " + (f"applied {', '.join(map(str, versions))}" if versions else "up to date"))
    return EXIT_OK


def _run_json(r) -> dict[str, Any]:
    return {k: getattr(r, k) for k in ("id", "name", "status", "best_score", "iterations", "samples_evaluated",
                                       "started_at", "finished_at", "error_message", "dataset_id", "config",
                                       "tags", "owner")}


def cmd_runs_list(args: argparse.Namespace) -> int:
    runs = _service(args).list_runs(args.status, args.top)
    if args.json:
        for r in runs:
            emit_json(_run_json(r))
        return EXIT_OK
    if not runs:
        out("no runs")
        return EXIT_OK
    rows = [["#", "id", "status", "best resnorm", "iterations", "samples", "started", "name"]]
    for i, r in enumerate(runs, 1):
        rows.append([str(i), _short(r.id), r.status, "" if r.best_score is None else _resnorm(r.best_score),
                     str(r.iterations), f"{r.samples_evaluated:,}", (r.started_at or "")[:19], r.name or ""])
    for line in table(rows, right=(0, 3, 4, 5), max_widths={7: 16}):
        out(line)
    return EXIT_OK


def cmd_runs_show(args: argparse.Namespace) -> int:
    run, iterations, dataset = _service(args).get_run(args.id)
    if args.json:
        emit_json({**_run_json(run), "iterations_table": [
            {"iteration": it.iteration, "best_score": it.best_score, "rows_done": it.rows_done,
             "elapsed_s": it.elapsed_s} for it in iterations],
            "dataset": None if dataset is None else {"id": dataset.id, "path": dataset.path,
                                                     "data_root": dataset.data_root}})
        return EXIT_OK
    out(f"run {run.id} · {run.status}" + (f" · {run.name}" if run.name else ""))
    out(f"  best resnorm {'-' if run.best_score is None else _resnorm(run.best_score)} · "
        f"{run.iterations} iterations · {run.samples_evaluated:,} samples")
    out(f"  created {run.created_at} · started {run.started_at or '-'} · finished {run.finished_at or '-'}")
    if run.error_message:
        out(f"  error: {run.error_message}")
    if dataset is not None:
        out(f"  dataset {Path(dataset.data_root or '') / dataset.path}")
    out("  config " + json.dumps(run.config, sort_keys=True))
    if iterations:
        rows = [["iteration", "best resnorm", "rows done", "elapsed"]]
        for it in iterations:
            rows.append([str(it.iteration), "" if it.best_score is None else _resnorm(it.best_score),
                         f"{it.rows_done or 0:,}", f"{it.elapsed_s or 0:.2f} s"])
        for line in table(rows, right=(0, 1, 2, 3), indent="  "):
            out(line)
    return EXIT_OK


@subcommand("scan")
def _p_scan(sub) -> None:
    p = sub.add_parser("scan", help="find *.npz recursively and register/update them in the catalog")
    p.add_argument("dirs", nargs="+", metavar="DIR")
    _common(p)
    p.set_defaults(func=cmd_scan)


@subcommand("tag")
def _p_tag(sub) -> None:
    p = sub.add_parser("tag", help="tag rows of a dataset (add, list, rm)")
    tsub = p.add_subparsers(dest="tag_command", required=True, metavar="{add,list,rm}")
    add = tsub.add_parser("add", help="tag a rank (circuit) or a row (other data)")
    add.add_argument("path", metavar="PATH")
    which = add.add_mutually_exclusive_group(required=True)
    which.add_argument("--rank", type=_positive_int, help="resnorm rank, 1 = best (circuit data)")
    which.add_argument("--row", type=_non_negative_int, help="row index, 0-based (other data)")
    add.add_argument("--label", required=True)
    add.add_argument("--category")
    add.add_argument("--quality", type=_quality, metavar="Q", help="quality score between 0 and 1")
    add.add_argument("--reference", action="store_true", help="mark as a reference model")
    add.add_argument("--notes")
    add.add_argument("--public", action="store_true", help="readable by other users of the server")
    _common(add)
    add.set_defaults(func=cmd_tag_add)
    ls = tsub.add_parser("list", help="tags of one dataset, or all")
    ls.add_argument("path", nargs="?", metavar="PATH")
    _common(ls)
    ls.set_defaults(func=cmd_tag_list)
    rm = tsub.add_parser("rm", help="delete tags (tombstones, so deletes sync)")
    rm.add_argument("ids", nargs="+", metavar="ID", help="tag id or unambiguous prefix")
    _common(rm)
    rm.set_defaults(func=cmd_tag_rm)


@subcommand("config")
def _p_config(sub) -> None:
    p = sub.add_parser("config", help="circuit configurations (add, list, link)")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="{add,list,link}")
    add = csub.add_parser("add", help="save a reference circuit with its grid and frequency settings")
    add.add_argument("name")
    add.add_argument("--ref", metavar="Rsh=..,Ra=..,Ca=..,Rb=..,Cb=..", help="reference parameters")
    add.add_argument("--grid", type=_positive_int, help="grid size (default from your profile: 5)")
    add.add_argument("--fmin", type=_hz, metavar="HZ")
    add.add_argument("--fmax", type=_hz, metavar="HZ")
    add.add_argument("--points", type=_positive_int, metavar="N")
    add.add_argument("--description")
    add.add_argument("--public", action="store_true")
    _common(add)
    add.set_defaults(func=cmd_config_add)
    ls = csub.add_parser("list", help="configurations visible to you")
    _common(ls)
    ls.set_defaults(func=cmd_config_list)
    link = csub.add_parser("link", help="link a dataset to the configuration it was computed with")
    link.add_argument("path", metavar="PATH")
    link.add_argument("config", nargs="?", metavar="CONFIG", help="id, id prefix or name")
    link.add_argument("--unlink", action="store_true")
    _common(link)
    link.set_defaults(func=cmd_config_link)


@subcommand("session")
def _p_session(sub) -> None:
    p = sub.add_parser("session", help="working sessions (add, list)")
    ssub = p.add_subparsers(dest="session_command", required=True, metavar="{add,list}")
    add = ssub.add_parser("add")
    add.add_argument("name")
    add.add_argument("--config", help="current circuit configuration (id, prefix or name)")
    _common(add)
    add.set_defaults(func=cmd_session_add)
    ls = ssub.add_parser("list")
    _common(ls)
    ls.set_defaults(func=cmd_session_list)


@subcommand("sync")
def _p_sync(sub) -> None:
    p = sub.add_parser("sync", help="push the outbox to the server, then pull newer rows")
    p.add_argument("--full", action="store_true", help="pull everything again")
    p.add_argument("--show-conflicts", action="store_true", help="list unresolved conflicts")
    _catalog_common(p)
    p.set_defaults(func=cmd_sync)


@subcommand("db")
def _p_db(sub) -> None:
    p = sub.add_parser("db", help="catalog schema and server reachability")
    dsub = p.add_subparsers(dest="db_command", required=True, metavar="{status,migrate}")
    st = dsub.add_parser("status", help="backend, schema version, reachability (password masked)")
    _catalog_common(st)
    st.set_defaults(func=cmd_db_status)
    mg = dsub.add_parser("migrate", help="apply pending migrations (local and server)")
    _catalog_common(mg)
    mg.set_defaults(func=cmd_db_migrate)


@subcommand("runs")
def _p_runs(sub) -> None:
    p = sub.add_parser("runs", help="recorded computations: leaderboard and details")
    rsub = p.add_subparsers(dest="runs_command", required=True, metavar="{list,show}")
    ls = rsub.add_parser("list", help="leaderboard by best score")
    ls.add_argument("--status", choices=("pending", "running", "completed", "failed", "cancelled"))
    ls.add_argument("--top", type=_positive_int, metavar="N")
    _common(ls)
    ls.set_defaults(func=cmd_runs_list)
    show = rsub.add_parser("show", help="config, timeline, iterations, linked dataset")
    show.add_argument("id", metavar="ID", help="run id or unambiguous prefix")
    _common(show)
    show.set_defaults(func=cmd_runs_show)
# --- end catalog commands ---


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="npztui",
        description="Inspect, check, plot and tag NumPy .npz results. Without a subcommand, opens the TUI.",
    )
    parser.add_argument("--version", action="version", version=f"npztui {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS.values():
        add(sub)
    return parser


def build_tui_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="npztui", description="Open the TUI on PATH (default: data/npz or .)")
    p.add_argument("path", nargs="?", help="data root to browse")
    p.add_argument("--theme", help="colour theme (remembered when picked in the app)")
    p.add_argument("--catalog", metavar="PATH", help="SQLite catalog file")
    p.add_argument("--database-url", metavar="URL", help="PostgreSQL server to sync with")
    p.add_argument("--debug", action="store_true")
    p.set_defaults(func=cmd_tui)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    wants_help = any(a in ("-h", "--help", "--version") for a in argv)
    if first is None and not wants_help or (first is not None and first not in SUBCOMMANDS):
        parser = build_tui_parser()
    else:
        parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage errors exit 2, --help exits 0
        return int(exc.code or 0)
    debug = getattr(args, "debug", False)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args)
    except UsageError as exc:
        err(str(exc))
        return EXIT_USAGE
    except NpzError as exc:
        if debug:
            traceback.print_exc()
        err(f"{exc.path}: {exc.message}" if exc.path else exc.message)
        return EXIT_UNREADABLE
    except (svc_mod.ValidationError, svc_mod.NotFound) as exc:
        err(str(exc))
        return EXIT_USAGE
    except svc_mod.CatalogError as exc:
        if debug:
            traceback.print_exc()
        err(str(exc))
        return EXIT_CATALOG
    except KeyboardInterrupt:
        err("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # the last line of defence: one line, no traceback
        if debug:
            traceback.print_exc()
        err(f"{exc.__class__.__name__}: {exc}" + ("" if debug else " (run with --debug for details)"))
        return _exit_for_unexpected(exc)


def _exit_for_unexpected(exc: Exception) -> int:
    """Catalog/server failures are exit 4; any other unexpected failure is reported as 1."""
    name = type(exc).__module__
    return EXIT_CATALOG if name.startswith(("npztui.catalog", "psycopg", "sqlite3")) else EXIT_CHECKS


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
