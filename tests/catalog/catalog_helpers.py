"""Plain helpers for the catalog tests (importable as `catalog_helpers`)."""

from __future__ import annotations

from typing import Any


def record(i: int, **over: object) -> dict[str, object]:
    """A plausible scan record for dataset number i."""
    rec: dict[str, object] = {
        "path": f"runs/grid_{i:04d}.npz",
        "data_root": "/data/npz",
        "kind": "circuit" if i % 2 == 0 else "ptycho",
        "size": 1000 + i,
        "mtime_ns": 1_700_000_000_000_000_000 + i,
        "rows": 3125,
        "sha256_16": f"{i:016x}",
        "metadata": {"grid_size": 5, "freq_min": 0.1, "freq_max": 1e5, "nested": {"i": i}},
        "arrays": [{"name": "resnorms", "shape": [3125], "dtype": "<f4"}],
        "findings": {"error": 0, "warning": i % 3, "info": 0},
        "best_resnorm": 0.5 + i,
    }
    rec.update(over)
    return rec


def server_rows(pg_db: Any, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run a query on the test database as the admin (superuser: sees every row)."""
    with pg_db.admin() as conn:
        return conn.execute(sql, params).fetchall()


def outbox_rows(cat: Any) -> list[tuple[str, str, str]]:
    with cat.store.lock:
        return cat.store.conn.execute("SELECT table_name, row_id, op FROM outbox ORDER BY seq").fetchall()


class Team:
    """A migrated server database plus the URLs of two non-superuser roles."""

    def __init__(self, db, roles) -> None:  # noqa: ANN001 - pg_fixtures types
        self.db = db
        self.roles = roles
        self.alice = roles.alice.name
        self.bob = roles.bob.name
        self.alice_url = db.url_as(roles.alice)
        self.bob_url = db.url_as(roles.bob)

    def connect(self, who: str):  # noqa: ANN201
        import psycopg

        return psycopg.connect(self.alice_url if who == "alice" else self.bob_url, autocommit=True)
