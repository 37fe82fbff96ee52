"""A real PostgreSQL for the tests, started once per session.

Where the server comes from, in order:
1. `NPZTUI_TEST_DATABASE_URL` (a role that may CREATE DATABASE and CREATE ROLE);
2. the `pgserver` wheel, started in a temporary directory;
3. local PostgreSQL binaries (`initdb` / `pg_ctl` on PATH or in `PG_BINDIR`).
If none works the PostgreSQL tests are skipped — except when `CI` is set,
where a missing server fails the run instead of silently testing less.
`NPZTUI_TEST_PG=pgserver|binaries` forces one of the self-started kinds.

Isolation: every test that asks for `pg_db` gets a fresh database (dropped
afterwards). Roles are cluster-wide, so `pg_roles` creates non-superuser
roles with a per-session suffix; superusers bypass row-level security, so RLS
and sync tests must connect as these roles.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

__all__ = ["PgDb", "PgServer", "pg_catalog_db", "pg_db", "pg_roles", "pg_server", "start_private_server"]


class PgServer:
    """A server the tests may use: an admin URL plus, for servers we own, stop/start."""

    source = "external"

    def __init__(self, url: str) -> None:
        self.url = url

    def url_for(self, dbname: str | None = None, user: str | None = None, password: str | None = None) -> str:
        from psycopg.conninfo import make_conninfo

        extra = {k: v for k, v in (("dbname", dbname), ("user", user), ("password", password)) if v}
        return make_conninfo(self.url, **extra)

    def admin(self, dbname: str | None = None):
        import psycopg

        return psycopg.connect(self.url_for(dbname), autocommit=True)

    @property
    def can_restart(self) -> bool:
        return False

    def stop(self) -> None:  # pragma: no cover - only self-started servers
        raise NotImplementedError

    def start(self) -> None:  # pragma: no cover
        raise NotImplementedError

    def shutdown(self) -> None:
        pass

    def tune_for_tests(self) -> None:
        """Durability is irrelevant for a throwaway cluster; speed is not."""
        with self.admin() as conn:
            conn.execute("ALTER SYSTEM SET fsync = off")
            conn.execute("ALTER SYSTEM SET synchronous_commit = off")
            conn.execute("ALTER SYSTEM SET full_page_writes = off")
            conn.execute("SELECT pg_reload_conf()")


class _PgserverServer(PgServer):
    source = "pgserver"

    def __init__(self, base: Path) -> None:
        with warnings.catch_warnings():  # pgserver asks platformdirs for XDG_RUNTIME_DIR at import
            warnings.simplefilter("ignore")
            import pgserver

        self.base = base
        self._srv = pgserver.get_server(base / "pgdata", cleanup_mode="stop")
        super().__init__(self._srv.get_uri())

    @property
    def can_restart(self) -> bool:
        return True

    def stop(self) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self._srv.pgdata, user=self._srv.system_user)

    def start(self) -> None:
        self._srv.ensure_postgres_running()
        self.url = self._srv.get_uri()

    def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self._srv.cleanup()
        shutil.rmtree(self.base, ignore_errors=True)


class _BinariesServer(PgServer):
    """initdb + pg_ctl from a local PostgreSQL installation (run as a non-root user if we are root)."""

    source = "binaries"

    def __init__(self, base: Path) -> None:
        bindir = os.environ.get("PG_BINDIR")
        pg_ctl = Path(bindir, "pg_ctl") if bindir else shutil.which("pg_ctl")
        if not pg_ctl or not Path(pg_ctl).exists():
            raise RuntimeError("no pg_ctl on PATH (set PG_BINDIR)")
        self.bindir = Path(pg_ctl).resolve().parent
        self.base = base
        self.data = base / "data"
        self.sock = base / "sock"
        self.sock.mkdir(parents=True)
        self.user: str | None = None
        if os.geteuid() == 0:  # initdb refuses to run as root
            for name in ("postgres", "nobody"):
                with contextlib.suppress(KeyError):
                    pwd.getpwnam(name)
                    self.user = name
                    break
            if self.user is None:
                raise RuntimeError("running as root and no 'postgres'/'nobody' user to run PostgreSQL as")
            os.chmod(base, 0o755)
            for p in (base, self.sock):
                shutil.chown(p, self.user)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.start()
        super().__init__(f"postgresql://postgres@/postgres?host={self.sock}")

    def _run(self, exe: str, *args: str) -> None:
        subprocess.run([str(self.bindir / exe), *args], check=True, capture_output=True, user=self.user,
                       timeout=120)

    @property
    def can_restart(self) -> bool:
        return True

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.base / "log"),
                  "-o", f"-k {self.sock} -h '' -c fsync=off", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "fast", "stop")

    def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def start_private_server() -> PgServer:
    """Start a throwaway server we own (pgserver, else local binaries). Raises if neither works."""
    forced = os.environ.get("NPZTUI_TEST_PG", "")
    kinds = [k for k in ("pgserver", "binaries") if not forced or forced == k]
    errors: list[str] = []
    for kind in kinds:
        base = Path(tempfile.mkdtemp(prefix="npztui-pg-"))
        try:
            server: PgServer = _PgserverServer(base) if kind == "pgserver" else _BinariesServer(base)
            server.tune_for_tests()
            return server
        except Exception as exc:  # noqa: BLE001 - report every way we tried
            errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            shutil.rmtree(base, ignore_errors=True)
    raise RuntimeError("; ".join(errors) or "no server kind selected")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI but unavailable: {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL for the tests: {reason}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    url = os.environ.get("NPZTUI_TEST_DATABASE_URL")
    if url:
        server = PgServer(url)
        try:
            server.admin().close()
        except Exception as exc:  # noqa: BLE001
            _unavailable(f"NPZTUI_TEST_DATABASE_URL does not connect: {type(exc).__name__}")
        yield server
        return
    try:
        server = start_private_server()
    except Exception as exc:  # noqa: BLE001
        _unavailable(str(exc))
    try:
        yield server
    finally:
        server.shutdown()


@dataclass
class Role:
    name: str
    password: str


@dataclass
class PgRoles:
    alice: Role
    bob: Role
    admin: Role  # a non-superuser that owns databases it creates (CREATEDB)


@pytest.fixture(scope="session")
def pg_roles(pg_server: PgServer) -> Iterator[PgRoles]:
    """Non-superuser login roles alice, bob and admin, unique to this test session."""
    from psycopg import sql

    suffix = secrets.token_hex(3)
    roles = PgRoles(*(Role(f"{n}_{suffix}", secrets.token_urlsafe(12)) for n in ("alice", "bob", "admin")))
    with pg_server.admin() as conn:
        for r in (roles.alice, roles.bob, roles.admin):
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOBYPASSRLS").format(
                sql.Identifier(r.name), sql.Literal(r.password)))
        conn.execute(sql.SQL("ALTER ROLE {} CREATEDB").format(sql.Identifier(roles.admin.name)))
    yield roles
    with contextlib.suppress(Exception), pg_server.admin() as conn:
        for r in (roles.alice, roles.bob, roles.admin):
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(r.name)))


@dataclass
class PgDb:
    """A fresh database for one test."""

    server: PgServer
    name: str

    @property
    def url(self) -> str:
        """Connects as the server's admin role (a superuser for self-started servers)."""
        return self.server.url_for(self.name)

    def url_as(self, role: Role) -> str:
        return self.server.url_for(self.name, role.name, role.password)

    def admin(self):
        return self.server.admin(self.name)


@pytest.fixture
def pg_db(pg_server: PgServer) -> Iterator[PgDb]:
    from psycopg import sql

    name = f"npztui_t_{secrets.token_hex(5)}"
    with pg_server.admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield PgDb(pg_server, name)
    finally:
        with contextlib.suppress(Exception), pg_server.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def pg_catalog_db(pg_db: PgDb) -> PgDb:
    """A fresh database with the npztui schema applied by the admin connection."""
    from npztui.catalog.postgres import migrate_server

    migrate_server(pg_db.url)
    return pg_db
