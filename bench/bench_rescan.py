"""An unchanged rescan of 1000 files vs the first scan (SPEC §10: target >= 10x faster).

The first scan inspects every file header-only, runs the intrinsic checks,
fingerprints it (sha256_16) and registers it in a fresh SQLite catalog; an
unchanged rescan only stats the files and compares (size, mtime_ns) with the
catalog. Both run in this process on the same corpus (the one
`bench_scan.py` generates, reused when present), warm: the corpus is read once
before timing so the page cache holds it for both. A third line times a rescan
after touching 1 % of the files, to show the cost follows the change.

    python bench/bench_rescan.py [--files 1000] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scan import build_corpus  # noqa: E402

from npztui.config import Settings  # noqa: E402
from npztui.service import Service  # noqa: E402

TARGET = 10.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parent / ".corpus")
    args = ap.parse_args()
    files = build_corpus(args.corpus, args.files)
    corpus = args.corpus
    for f in files:  # warm the page cache for both sides
        f.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        svc = Service(Settings(catalog=Path(tmp) / "catalog.sqlite3", config_file=Path(tmp) / "c.toml"))
        t0 = time.perf_counter()
        first = svc.scan(corpus)
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = svc.scan(corpus)
        t_again = time.perf_counter() - t0
        for f in files[:: max(len(files) // 10, 1)][: max(len(files) // 100, 1)]:
            os.utime(f)
        t0 = time.perf_counter()
        touched = svc.scan(corpus)
        t_touched = time.perf_counter() - t0
        svc.close()
    assert first.added == len(files) and again.unchanged == len(files), (first, again)
    ratio = t_first / t_again
    print(f"corpus: {len(files)} files in {corpus}")
    print(f"first scan (inspect + checks + sha256 + register): {t_first:8.3f} s")
    print(f"unchanged rescan (stat + compare):                 {t_again:8.3f} s")
    print(f"rescan after touching {touched.updated} files:              {t_touched:8.3f} s")
    print(f"ratio first / unchanged: {ratio:.1f}x (target >= {TARGET:.0f}x) -> {'OK' if ratio >= TARGET else 'MISSED'}")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
