"""Catalog sync benchmark (SPEC §10): 10 000 datasets + 10 000 tags to a local PostgreSQL and back.

    python bench/bench_sync.py             # full size (~30 s including the baselines)
    python bench/bench_sync.py --n 2000    # smaller

Starts its own PostgreSQL (the `pgserver` wheel) in a temporary directory with
default durability settings, and syncs as a non-superuser role so row-level
security is on the measured path. Prints:

* push: a local catalog with N datasets + N tags → the server (target < 5 s),
  against a naive push measured in the same run: one INSERT + COMMIT per row
  over the same connection, same role, same schema (triggers and RLS included);
* pull: the server → a fresh local catalog (target < 5 s), against a naive
  pull: rows fetched with one query, then one INSERT + COMMIT per row into
  SQLite with the catalog's own settings (WAL, synchronous=FULL);
* an incremental sync with nothing to do.

Naive baselines run on a sample of rows (`--sample`, default 2000) and are
scaled linearly to N: per-row commit cost does not depend on N, and running
20 000 synchronous commits would only make the benchmark slow.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from npztui.catalog import open_catalog, sync  # noqa: E402
from npztui.catalog.postgres import migrate_server, rows_between  # noqa: E402
from npztui.catalog.schema import DATASETS, JSON_COLUMNS, TAGS  # noqa: E402
from npztui.catalog.util import dumps  # noqa: E402

TARGET_S = 5.0
ROLE = "bench_user"


def start_server(base: Path):  # noqa: ANN201
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    return pgserver.get_server(base / "pgdata", cleanup_mode="stop")


def url_for(admin_url: str, dbname: str, user: str | None = None) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(admin_url, dbname=dbname, **({"user": user} if user else {}))


def record(i: int) -> dict[str, object]:
    """A scan record the size of a real one (metadata, array summary, finding counts)."""
    return {
        "path": f"project_{i // 500:02d}/grid_5_freq_0.1_100000_{i:05d}.npz",
        "data_root": "/scratch/results/npz",
        "kind": "circuit" if i % 3 else "ptycho",
        "sha256_16": f"{i * 2654435761 % (1 << 64):016x}",
        "size": 4_000_000 + i,
        "mtime_ns": 1_760_000_000_000_000_000 + i,
        "rows": 3125,
        "n_frequencies": 100,
        "grid_size": 5,
        "freq_min": 0.1,
        "freq_max": 100000.0,
        "best_resnorm": 0.01 * (i % 977),
        "metadata": {
            "grid_size": 5, "n_parameter_sets": 3125, "n_frequencies": 100, "freq_min": 0.1, "freq_max": 1e5,
            "param_names": ["Rsh", "Ra", "Ca", "Rb", "Cb"], "param_units": ["ohm", "ohm", "farad", "ohm", "farad"],
            "best_resnorm": 0.01 * (i % 977), "computation_complete": True,
        },
        "arrays": [{"name": "parameters", "shape": [3125, 5], "dtype": "<f4"},
                   {"name": "resnorms", "shape": [3125], "dtype": "<f4"},
                   {"name": "frequencies", "shape": [100], "dtype": "<f4"}],
        "findings": {"error": 0, "warning": i % 2, "info": 1},
    }


def build_local(path: Path, n: int) -> tuple[float, object]:
    t = time.perf_counter()
    cat = open_catalog(path, owner=ROLE)
    ids = cat.upsert_datasets([record(i) for i in range(n)])
    with cat.store.write():
        for i, ds in enumerate(ids):
            cat.add_tag(ds, 1 + i % 50, f"candidate {i}", category="fit", quality_score=(i % 11) / 10,
                        resnorm=0.01 * (i % 977), parameters={"Rsh": 5005.0, "Ra": 5005.0, "Ca": 2.505e-5,
                                                              "Rb": 5005.0, "Cb": 2.505e-5})
    return time.perf_counter() - t, cat


def naive_push(url: str, rows: list[tuple[object, dict]]) -> float:
    """One INSERT + COMMIT per row over one connection: what a first version would do."""
    with psycopg.connect(url) as conn:
        t = time.perf_counter()
        for table, row in rows:
            cols = [c for c in table.columns if c != "rev"]
            q = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                sql.Identifier("npztui", table.name), sql.SQL(", ").join(map(sql.Identifier, cols)),
                sql.SQL(", ").join(sql.Placeholder() * len(cols)))
            conn.execute(q, [dumps(row[c]) if c in JSON_COLUMNS and row[c] is not None else row[c] for c in cols])
            conn.commit()
        return time.perf_counter() - t


def naive_pull(url: str, path: Path, limit: int) -> tuple[float, int]:
    """Fetch with one query per table, then one INSERT + COMMIT per row into SQLite."""
    cat = open_catalog(path, owner=ROLE)  # same file settings as the real catalog (WAL, synchronous=FULL)
    store = cat.store
    t = time.perf_counter()
    done = 0
    with psycopg.connect(url, autocommit=True) as conn:
        for table in (DATASETS, TAGS):
            rows = list(rows_between(conn, table, 0, 1 << 62))[: limit // 2]
            for row in rows:
                store.conn.execute("BEGIN")
                store.insert(table, row)
                store.conn.execute("COMMIT")
                done += 1
    elapsed = time.perf_counter() - t
    cat.close()
    return elapsed, done


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="datasets (and tags) to sync")
    ap.add_argument("--sample", type=int, default=2000, help="rows the naive baselines actually run")
    args = ap.parse_args()
    n, sample = args.n, min(args.sample, 2 * args.n)
    tmp = Path(tempfile.mkdtemp(prefix="npztui-bench-"))
    server = None
    try:
        server = start_server(tmp)
        admin = server.get_uri()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(ROLE)))
            for db in ("bench", "naive"):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
            version = conn.execute("SHOW server_version").fetchone()[0]
            fsync = conn.execute("SHOW fsync").fetchone()[0]
        for db in ("bench", "naive"):
            migrate_server(url_for(admin, db))
        url, naive_url = url_for(admin, "bench", ROLE), url_for(admin, "naive", ROLE)
        print(f"== sync of {n:,} datasets + {n:,} tags (PostgreSQL {version}, pgserver, fsync={fsync}, "
              f"role {ROLE} under row-level security)")

        t_local, local = build_local(tmp / "local.sqlite3", n)
        print(f"  local catalog built           {t_local:6.2f} s   ({2 * n:,} rows + outbox, one transaction each kind)")

        res = sync(local, url)
        t_push = res.duration_s
        assert res.pushed == 2 * n and not res.errors, res

        # the same mix as the real push: sample/2 datasets, then one tag on each of them
        ds_sample = local.store.select(DATASETS, "1", suffix=f"ORDER BY rowid LIMIT {sample // 2}")
        wanted = {r["id"] for r in ds_sample}
        tag_sample = [r for r in local.store.select(TAGS, "1") if r["dataset_id"] in wanted]
        rows = [(DATASETS, r) for r in ds_sample] + [(TAGS, r) for r in tag_sample]
        t_naive_push = naive_push(naive_url, rows) * (2 * n) / len(rows)
        push_ok = t_push < TARGET_S
        print(f"  push  {2 * n:,} rows             {t_push:6.2f} s   (target < {TARGET_S:.0f} s) "
              f"{'OK' if push_ok else 'MISSED'}")
        print(f"    naive push (INSERT+COMMIT per row, {len(rows):,} measured, scaled): {t_naive_push:6.2f} s"
              f"   → {t_naive_push / t_push:.1f}× faster")

        fresh = open_catalog(tmp / "fresh.sqlite3", owner=ROLE)
        res = sync(fresh, url)
        t_pull = res.duration_s
        assert res.pulled == 2 * n and fresh.count_datasets() == n, res
        t_sample, done = naive_pull(url, tmp / "naive.sqlite3", sample)
        t_naive_pull = t_sample * (2 * n) / done
        pull_ok = t_pull < TARGET_S
        print(f"  pull  {2 * n:,} rows             {t_pull:6.2f} s   (target < {TARGET_S:.0f} s) "
              f"{'OK' if pull_ok else 'MISSED'}")
        print(f"    naive pull (INSERT+COMMIT per row into SQLite, {done:,} measured, scaled): "
              f"{t_naive_pull:6.2f} s   → {t_naive_pull / t_pull:.1f}× faster")

        res = sync(fresh, url)
        print(f"  incremental sync, nothing to do {res.duration_s * 1e3:6.1f} ms")
        local.close()
        fresh.close()
        ok = push_ok and pull_ok
        print("\nall targets met" if ok else "\nsome targets MISSED")
        return 0 if ok else 1
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
