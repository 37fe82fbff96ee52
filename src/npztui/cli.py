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


class UsageError(Exception):
    """Bad arguments discovered after parsing (exit 2)."""


# --------------------------------------------------------------------------
# output helpers


def out(line: str = "") -> None:
    print(line, flush=False)


def err(message: str) -> None:
    print(f"npztui: error: {message}", file=sys.stderr)


def emit_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, allow_nan=True, default=str))


def report_error(report: FileReport, as_json: bool) -> int:
    """Print an unreadable file's typed error (stderr, and a JSON line with --json)."""
    assert report.error is not None
    err(f"{report.path}: {report.error.message}")
    if as_json:
        emit_json(report.error_json())
    return EXIT_UNREADABLE


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
    rows = [[f.severity, f.code, f.message] for f in sorted(r.findings, key=_severity_rank)]
    for line in table(rows, indent="  "):
        out(line)


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
        out(f"{path}: " + (f"metadata in {meta.source!r} ({meta.encoding})" if meta.found else "no metadata"))
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
        where = exc.path or path
        err(f"{where}: {exc.message}")
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
    err(f"{exc.path or path}: {exc.message}" if (exc.path or path) else exc.message)
    if as_json:
        emit_json({"path": str(exc.path or path), "error": {"code": "USAGE", "message": exc.message}})
    return EXIT_USAGE


_TOOL_ERRORS = (NpzError, svc_mod.ToolError)


def _assignments(items: Sequence[str] | None) -> dict[str, Any]:
    try:
        return svc_mod.parse_set_args(items or [])
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
        edit = svc_mod.meta_set(args.path, updates, dry_run=args.dry_run, service=svc)
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
            edit = svc_mod.meta_migrate(
                path, updates=updates, estimate=args.estimate, drop_legacy=args.drop_legacy,
                dry_run=args.dry_run, service=svc,
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
        res = svc_mod.split_file(
            args.path, fraction=args.fraction, axis=args.axis, out_dir=args.out, force=args.force, service=svc
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
        res = svc_mod.merge_files(args.paths, args.output, strategy=args.strategy, force=args.force, service=svc)
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
            lin = svc_mod.file_lineage(path, service=svc)
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


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return v


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
