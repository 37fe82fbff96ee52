"""Header-only listing of 1000 `.npz` files vs the naive `np.load` + `.shape` baseline.

SPEC §10: listing 1000 files (header-only) must be >= 50x faster than opening
each with `np.load` and taking the shape of every array (which reads, and for
deflated members decompresses, every array), measured in the same run.

The corpus (1000 files: most small, some several MB; stored and deflated; a few
arrays each, plus a JSON `_metadata` in some) is generated once under
`bench/.corpus/` (git-ignored; bench_rescan.py reuses it) and reused. Both sides are timed warm: each is
run once untimed first so the page cache holds the files for both, then the
best of several interleaved timed runs is reported, in CPU time of this process
(a shared machine's other load would otherwise dominate the short header-only
runs); wall-clock times are printed as well.

    python bench/bench_scan.py [--files 1000] [--repeat 3] [--corpus DIR] [--fresh]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from npztui.npz.reader import inspect  # noqa: E402

TARGET = 50.0
HERE = Path(__file__).resolve().parent
CORPUS_VERSION = "2"


def _small_arrays(rng: np.random.Generator, target: int) -> dict[str, np.ndarray]:
    """2-5 arrays totalling about `target` bytes: parameters, scores, a few scalars."""
    n_arrays = int(rng.integers(2, 6))
    out: dict[str, np.ndarray] = {}
    for j in range(n_arrays):
        share = max(target // n_arrays, 64)
        kind = j % 4
        if kind == 0:
            cols = int(rng.integers(1, 9))
            out[f"a{j}"] = rng.standard_normal((max(share // (4 * cols), 1), cols)).astype("<f4")
        elif kind == 1:
            out[f"a{j}"] = np.sort(rng.random(max(share // 8, 1))).astype("<f8")
        elif kind == 2:
            out[f"a{j}"] = rng.integers(0, 1000, size=max(share // 8, 1)).astype("<i8")
        else:
            out[f"a{j}"] = np.float64(rng.random())
    return out


_BLOB = None


def _large_arrays(rng: np.random.Generator, target: int) -> dict[str, np.ndarray]:
    """A stack of 64x64 diffraction-like patterns (Poisson counts, mostly dark) + coordinates."""
    global _BLOB
    if _BLOB is None:
        y, x = np.mgrid[-32:32, -32:32]
        _BLOB = (2000.0 * np.exp(-(x**2 + y**2) / 60.0)).astype("<f4")
    n = max(target // (64 * 64 * 4), 1)
    scale = rng.uniform(0.2, 1.5, size=(n, 1, 1)).astype("<f4")
    patterns = rng.poisson(_BLOB[None] * scale).astype("<f4")
    return {
        "diffraction": patterns,
        "xcoords": rng.uniform(0, 100, n),
        "ycoords": rng.uniform(0, 100, n),
        "probe": (rng.standard_normal((64, 64)) + 1j * rng.standard_normal((64, 64))).astype("<c8"),
    }


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> int:
    return int(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def build_corpus(root: Path, n_files: int, seed: int = 1234) -> list[Path]:
    """Most files small (16 KiB - 1 MiB), one in five large (2 - 32 MiB of arrays).

    Half the small files and two thirds of the large ones are deflated
    (`np.savez_compressed`), the rest stored (`np.savez`); a third carry a JSON
    `_metadata` member the way npztui writes it.
    """
    stamp = root / ".complete"
    want = f"{CORPUS_VERSION} {n_files} {seed}"
    if stamp.exists() and stamp.read_text() == want:
        return sorted(root.glob("f[0-9][0-9][0-9][0-9].npz"))
    root.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    for old in root.glob("f[0-9][0-9][0-9][0-9].npz"):  # only our own files: the directory is shared
        old.unlink()
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n_files):
        large = i % 5 == 0
        if large:
            arrays = _large_arrays(rng, _log_uniform(rng, 2 << 20, 32 << 20))
            compressed = i % 15 != 0
        else:
            arrays = _small_arrays(rng, _log_uniform(rng, 16 << 10, 1 << 20))
            compressed = i % 2 == 1
        if i % 3 == 0:
            arrays["_metadata"] = np.array(json.dumps({"schema_version": "1.0.0", "i": i}))
        path = root / f"f{i:04d}.npz"
        (np.savez_compressed if compressed else np.savez)(path, **arrays)
        paths.append(path)
    stamp.write_text(want)
    return paths


def list_header_only(paths: list[Path], per_file: list[float]) -> int:
    n = 0
    clock = time.process_time
    for p in paths:
        t0 = clock()
        for a in inspect(p).arrays:
            n += len(a.shape)
        per_file.append(clock() - t0)
    return n


def list_naive(paths: list[Path], per_file: list[float]) -> int:
    n = 0
    clock = time.process_time
    for p in paths:
        t0 = clock()
        with np.load(p) as z:
            for k in z.files:
                n += len(z[k].shape)
        per_file.append(clock() - t0)
    return n


def measure(paths: list[Path], repeat: int) -> dict[str, tuple[float, float, int, list[float]]]:
    """Best (CPU time, wall time, result, per-file CPU times) of `repeat` interleaved runs per side."""
    sides = {"fast": list_header_only, "naive": list_naive}
    for fn in sides.values():
        fn(paths, [])  # warm: page cache, imports, lazy numpy paths — for both sides alike
    best: dict[str, tuple[float, float, int, list[float]]] = {}
    for _ in range(repeat):
        for name, fn in sides.items():  # interleaved, so both see the same machine state
            per_file: list[float] = []
            c0, w0 = time.process_time(), time.perf_counter()
            result = fn(paths, per_file)
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            if name not in best or cpu < best[name][0]:
                best[name] = (cpu, wall, result, per_file)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--corpus", type=Path, default=HERE / ".corpus")  # shared with bench_rescan.py
    ap.add_argument("--fresh", action="store_true", help="regenerate the corpus")
    args = ap.parse_args(argv)
    if args.fresh:
        (args.corpus / ".complete").unlink(missing_ok=True)
    t0 = time.perf_counter()
    paths = build_corpus(args.corpus, args.files)
    built = time.perf_counter() - t0
    total = sum(p.stat().st_size for p in paths)
    n_members = 0
    n_deflated = 0
    for p in paths:
        with zipfile.ZipFile(p) as z:
            n_members += len(z.infolist())
            n_deflated += sum(zi.compress_type == zipfile.ZIP_DEFLATED for zi in z.infolist())
    print(f"corpus: {len(paths)} files, {n_members} arrays ({n_deflated} deflated), "
          f"{total / 2**20:.1f} MiB in {args.corpus} (ready in {built:.1f} s)")
    print(f"timing: warm (each side run once untimed first, so the page cache is hot for both), "
          f"best of {args.repeat} interleaved runs, CPU time of this process (other load on the "
          f"machine does not skew it; wall time shown too)")

    best = measure(paths, args.repeat)
    t_fast, w_fast, dims_fast, fast_files = best["fast"]
    t_naive, w_naive, dims_naive, naive_files = best["naive"]
    if dims_fast != dims_naive:
        print(f"MISMATCH: header-only saw {dims_fast} dimensions, np.load saw {dims_naive}")
        return 1
    ratio = t_naive / t_fast
    n = len(paths)
    print(f"header-only inspect():     {t_fast * 1e3:9.1f} ms CPU ({t_fast / n * 1e6:7.1f} us/file), wall {w_fast * 1e3:9.1f} ms")
    print(f"np.load + .shape (naive):  {t_naive * 1e3:9.1f} ms CPU ({t_naive / n * 1e6:7.1f} us/file), wall {w_naive * 1e3:9.1f} ms")
    sizes = [p.stat().st_size for p in paths]
    for label, keep in (("files <= 1 MiB", lambda b: b <= 1 << 20), ("files > 1 MiB", lambda b: b > 1 << 20)):
        idx = [i for i, b in enumerate(sizes) if keep(b)]
        if idx:
            f = sum(fast_files[i] for i in idx)
            g = sum(naive_files[i] for i in idx)
            print(f"  {label:15s} {len(idx):5d} files: header-only {f / len(idx) * 1e6:7.1f} us/file, "
                  f"naive {g / len(idx) * 1e6:8.1f} us/file, ratio {g / max(f, 1e-9):6.1f}x")
    print(f"wall-clock ratio: {w_naive / w_fast:.1f}x")
    verdict = "ok" if ratio >= TARGET else "BELOW TARGET"
    print(f"ratio (CPU): {ratio:.1f}x  (target >= {TARGET:.0f}x) {verdict}")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
