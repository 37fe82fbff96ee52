"""Atomic writes: a failure at any point leaves the original byte-identical, and no
temp file survives the next run. A live writer's temp file is never removed."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from npztui.npz import tools, writer
from npztui.npz.writer import TEMP_PREFIX, NpzWriter, cleanup_stale_temps

COMPAT = Path(__file__).resolve().parents[1] / "fixtures" / "compat"
PTYCHO = "ptycho_sim_nphotons1e9.npz"
SRC = str(Path(__file__).resolve().parents[2] / "src")


def copy_fixture(tmp_path: Path, name: str = PTYCHO) -> Path:
    dst = tmp_path / name
    shutil.copyfile(COMPAT / name, dst)
    return dst


def temps(d: Path) -> list[Path]:
    return sorted(d.glob(TEMP_PREFIX + "*"))


def test_failure_between_temp_write_and_rename_leaves_original(tmp_path, monkeypatch):
    p = copy_fixture(tmp_path)
    raw = p.read_bytes()

    def broken_replace(src, dst):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(writer.os, "replace", broken_replace)
    with pytest.raises(tools.NpzError) as exc:
        tools.set_metadata(p, {"nphotons": 1e6})
    assert exc.value.code == "WRITE_FAILED"
    assert "nothing changed" in exc.value.message
    assert p.read_bytes() == raw
    assert temps(tmp_path) == []


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_failure_while_copying_members_leaves_original(tmp_path, monkeypatch, exc_type):
    p = copy_fixture(tmp_path, "sample_grid_5_test.npz")
    raw = p.read_bytes()
    real = NpzWriter.copy_raw
    calls = []

    def flaky(self, reader, name):
        calls.append(name)
        if len(calls) == 3:
            raise exc_type("injected")
        return real(self, reader, name)

    monkeypatch.setattr(NpzWriter, "copy_raw", flaky)
    with pytest.raises(exc_type):
        tools.migrate(p, estimate_values=True)
    assert p.read_bytes() == raw
    assert temps(tmp_path) == []


def test_disk_full_during_split_leaves_no_outputs(tmp_path, monkeypatch):
    p = copy_fixture(tmp_path)
    real = NpzWriter.commit
    n = []

    def second_commit_fails(self):
        n.append(self.path)
        if len(n) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self)

    monkeypatch.setattr(NpzWriter, "commit", second_commit_fails)
    with pytest.raises(tools.NpzError, match="No space left"):
        tools.split(p, fraction=0.5)
    # the first output was committed, then rolled back: never half a pair
    assert sorted(x.name for x in tmp_path.iterdir()) == [PTYCHO]


def test_file_changed_during_rewrite_is_not_clobbered(tmp_path, monkeypatch):
    p = copy_fixture(tmp_path)
    real = NpzWriter.add_metadata

    def someone_else_writes(self, metadata, name="_metadata"):
        with open(p, "ab") as f:  # another program appends to the file meanwhile
            f.write(b"\0")
        return real(self, metadata, name)

    monkeypatch.setattr(NpzWriter, "add_metadata", someone_else_writes)
    with pytest.raises(tools.NpzError, match="changed on disk"):
        tools.set_metadata(p, {"nphotons": 1e6})
    assert p.read_bytes() == (COMPAT / PTYCHO).read_bytes() + b"\0"  # their change survives
    assert temps(tmp_path) == []


CRASH = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {src!r})
    from npztui.npz import tools, writer
    def crash(src, dst):
        os._exit(9)          # killed between the fsynced temp file and the rename
    writer.os.replace = crash
    tools.set_metadata({path!r}, {{"nphotons": 1e6}})
    """
)


def test_crash_leaves_original_and_next_run_removes_the_temp(tmp_path):
    p = copy_fixture(tmp_path)
    raw = p.read_bytes()
    r = subprocess.run([sys.executable, "-c", CRASH.format(src=SRC, path=str(p))], capture_output=True)
    assert r.returncode == 9
    left = temps(tmp_path)
    assert len(left) == 1 and left[0].stat().st_size > 0  # the killed writer's complete temp file
    assert p.read_bytes() == raw
    tools.set_metadata(p, {"nphotons": 2e6})  # the next run
    assert temps(tmp_path) == []
    assert tools.lineage(p).transformations[-1]["parameters"]["changes"]["physics_parameters.nphotons"]["new"] == 2e6


def test_cleanup_spares_a_live_writers_temp(tmp_path):
    """`compute` may be streaming a big file into the same directory: its temp must survive."""
    p = copy_fixture(tmp_path)
    live = NpzWriter(tmp_path / "grid.npz")
    live.add("x", np.arange(1000))
    tmp = temps(tmp_path)[0]
    old = time.time() - 3600
    os.utime(tmp, (old, old))
    tools.set_metadata(p, {"nphotons": 1e6})  # cleans stale temps in this directory
    assert tmp.exists()
    live.commit()
    assert (tmp_path / "grid.npz").exists() and temps(tmp_path) == []


def test_cleanup_removes_unlocked_temps(tmp_path):
    stale = tmp_path / (TEMP_PREFIX + "dead.npz")
    stale.write_bytes(b"PK partial")
    assert cleanup_stale_temps(tmp_path) == [stale]
    assert not stale.exists()


def _read_only_runner() -> list[str] | None:
    """How to run a command that cannot write into a 0555 directory (root ignores modes)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    probe = subprocess.run(
        [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", "--", "true"],
        capture_output=True,
    )
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", "--"] if probe.returncode == 0 else None


def test_meta_set_in_read_only_directory_exits_3_with_one_line(tmp_path):
    runner = _read_only_runner()
    if runner is None:
        pytest.skip("running as root without setpriv: cannot make a directory read-only for this process")
    d = tmp_path / "ro"
    d.mkdir()
    p = copy_fixture(d)
    raw = p.read_bytes()
    os.chmod(d, 0o555)
    try:
        env = {**os.environ, "PYTHONPATH": SRC, "NPZTUI_CATALOG": str(tmp_path / "c.sqlite3")}
        r = subprocess.run(
            runner + [sys.executable, "-m", "npztui.cli", "meta", "set", str(p), "nphotons=1e6"],
            capture_output=True, text=True, env=env,
        )
    finally:
        os.chmod(d, 0o755)
    assert r.returncode == 3
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert lines[0] == f"npztui: error: {p}: cannot write in {d}: permission denied; nothing changed"
    assert p.read_bytes() == raw
    assert temps(d) == []
