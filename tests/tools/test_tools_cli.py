"""CLI: `meta set|migrate`, `split`, `merge`, `lineage` — exit codes, one-line errors, --json shapes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from npztui import cli, service
from npztui.npz import writer

COMPAT = Path(__file__).resolve().parents[1] / "fixtures" / "compat"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("NPZTUI_CATALOG", str(tmp_path / "catalog.sqlite3"))
    monkeypatch.setenv("NPZTUI_CONFIG", str(tmp_path / "config.toml"))


def copy_fixture(tmp_path: Path, name: str) -> Path:
    dst = tmp_path / name
    shutil.copyfile(COMPAT / name, dst)
    return dst


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_meta_set_human_and_json(tmp_path, capsys):
    p = copy_fixture(tmp_path, "ptycho_sim_nphotons1e9.npz")
    code, out, err = run(capsys, "meta", "set", p, "nphotons=1e6", "physics_parameters.probe_scale=2")
    assert code == 0 and err == ""
    assert out.splitlines()[0] == f"{p}: 2 values changed"
    assert "  ~ physics_parameters.nphotons: 1000000000.0 → 1000000.0" in out.splitlines()
    code, out, err = run(capsys, "meta", "set", p, "N=128", "--json")
    assert code == 0
    (obj,) = json_lines(out)
    assert obj["path"] == str(p) and obj["written"] is True and obj["operation"] == "meta set"
    assert obj["changes"] == {"physics_parameters.N": {"old": 64, "new": 128}}
    assert obj["metadata"]["physics_parameters"]["N"] == 128
    assert "PTY_N_SHAPE" in [f["code"] for f in obj["findings"]]
    assert {"diff", "dry_run", "metadata_source", "notes"} <= obj.keys()


def test_meta_set_dry_run(tmp_path, capsys):
    p = copy_fixture(tmp_path, "ptycho_sim_nphotons1e9.npz")
    raw = p.read_bytes()
    code, out, _ = run(capsys, "meta", "set", p, "nphotons=5e8", "--dry-run")
    assert code == 0 and "dry run: nothing written" in out
    assert p.read_bytes() == raw


def test_meta_set_usage_errors_exit_2(tmp_path, capsys):
    legacy = copy_fixture(tmp_path, "sample_grid_5_test.npz")
    code, out, err = run(capsys, "meta", "set", legacy, "grid_size=5")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "meta migrate" in err and err.startswith("npztui: error: ")
    code, out, err = run(capsys, "meta", "set", legacy, "grid_size=5", "--json")
    assert code == 2
    assert json_lines(out)[0]["error"]["code"] == "USAGE"
    p = copy_fixture(tmp_path, "ptycho_sim_nphotons1e9.npz")
    code, _, err = run(capsys, "meta", "set", p, "novalue")
    assert code == 2 and "KEY=VALUE" in err
    code, _, err = run(capsys, "meta", "set", p, "schema_version=2")
    assert code == 2 and "managed by npztui" in err


def test_meta_set_unreadable_file_exits_3(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip at all")
    code, out, err = run(capsys, "meta", "set", bad, "x=1", "--json")
    assert code == 3
    assert json_lines(out) == [{"path": str(bad), "error": {"code": "NOT_NPZ", "message": json_lines(out)[0]["error"]["message"]}}]
    assert err.startswith(f"npztui: error: {bad}: ") and err.count("\n") == 1
    code, _, _ = run(capsys, "meta", "set", tmp_path / "missing.npz", "x=1")
    assert code == 3


def test_meta_set_cannot_write_exits_3_one_line(tmp_path, capsys, monkeypatch):
    p = copy_fixture(tmp_path, "ptycho_sim_nphotons1e9.npz")
    raw = p.read_bytes()

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(writer.tempfile, "mkstemp", denied)
    code, out, err = run(capsys, "meta", "set", p, "nphotons=1e6")
    assert code == 3 and out == ""
    assert err == f"npztui: error: {p}: cannot write in {tmp_path}: permission denied; nothing changed\n"
    code, out, err = run(capsys, "meta", "set", p, "nphotons=1e6", "--json")
    assert json_lines(out)[0]["error"]["code"] == "PERMISSION"
    assert p.read_bytes() == raw


def test_meta_migrate_several_files_highest_code_wins(tmp_path, capsys):
    a = copy_fixture(tmp_path, "ptycho_legacy_no_metadata.npz")
    b = copy_fixture(tmp_path, "sample_grid_5_test.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"")
    code, out, err = run(capsys, "meta", "migrate", a, bad, b, "--estimate", "--set", "nphotons=1e9", "--json")
    assert code == 3
    objs = json_lines(out)
    assert [o["path"] for o in objs] == [str(a), str(bad), str(b)]
    assert objs[0]["written"] and objs[0]["estimated"] == {"physics_parameters.N": 64, "physics_parameters.gridsize": 1}
    assert objs[0]["changes"]["physics_parameters.nphotons"] == {"new": 1e9}
    assert objs[1]["error"]["code"] == "NOT_NPZ"
    assert objs[2]["metadata"]["circuit"]["grid_size"] == 5 and objs[2]["kept_members"] == ["metadata"]
    code, out, _ = run(capsys, "check", a, b)
    assert code == 0


def test_meta_migrate_human_dry_run_and_already_v1(tmp_path, capsys):
    b = copy_fixture(tmp_path, "sample_grid_5_test.npz")
    raw = b.read_bytes()
    code, out, _ = run(capsys, "meta", "migrate", b, "--dry-run")
    assert code == 0
    assert "would migrate 'metadata' (pickle-dict) to v1 '_metadata'" in out
    assert "  > grid_size → circuit.grid_size" in out.splitlines()
    assert b.read_bytes() == raw
    v1 = copy_fixture(tmp_path, "ptycho_sim_nphotons1e9.npz")
    code, out, _ = run(capsys, "meta", "migrate", v1)
    assert code == 0 and "already schema v1" in out


def test_split_cli(tmp_path, capsys):
    p = copy_fixture(tmp_path, "ptycho_sim_nphotons1e9.npz")
    code, out, err = run(capsys, "split", p, "--fraction", "0.75", "--axis", "x", "--out", tmp_path / "parts", "--json")
    assert code == 0 and err == ""
    (obj,) = json_lines(out)
    assert obj["train"]["rows"] == 12 and obj["test"]["rows"] == 4
    assert Path(obj["train"]["path"]).name == "ptycho_sim_nphotons1e9_train.npz"
    assert obj["axis"] == "x" and obj["fraction"] == 0.75 and obj["source_rows"] == 16
    assert obj["record"]["parameters"]["source_sha256_16"]
    code, out, err = run(capsys, "split", p, "--out", tmp_path / "parts")
    assert code == 2 and "already exists" in err
    code, out, err = run(capsys, "split", p, "--fraction", "1.5")
    assert code == 2 and "between 0 and 1" in err
    c = copy_fixture(tmp_path, "sample_grid_5_test.npz")
    code, out, err = run(capsys, "split", c, "--axis", "y")
    assert code == 2 and "--axis rows" in err
    code, out, _ = run(capsys, "split", c)
    assert code == 0 and "split along rows" in out


def test_merge_cli_exit_codes(tmp_path, capsys):
    a = copy_fixture(tmp_path, "ptycho_sim_nphotons1e9.npz")
    b = copy_fixture(tmp_path, "ptycho_mismatch_N.npz")
    out_path = tmp_path / "m.npz"
    code, out, err = run(capsys, "merge", a, b, "-o", out_path, "--strategy", "validate_consistent", "--json")
    assert code == 1
    (obj,) = json_lines(out)
    assert obj["written"] is False and obj["error"]["code"] == "SET_INCONSISTENT"
    assert {f["key"] for f in obj["findings"]} == {"nphotons", "N"}
    assert all(f["code"] == "SET_INCONSISTENT" and f["path"] in (str(a), str(b)) for f in obj["findings"])
    assert err.startswith("npztui: error: ") and err.count("\n") == 1
    assert not out_path.exists()
    code, out, err = run(capsys, "merge", a, b, "-o", out_path)
    assert code == 0
    assert out.splitlines()[0] == f"{out_path}: merged 2 files, 32 rows (preserve_first)"
    assert "warning SET_INCONSISTENT" in out
    code, out, _ = run(capsys, "merge", a, b, "-o", out_path, "--json", "--force")
    (obj,) = json_lines(out)
    assert obj["written"] and obj["rows"] == 32 and [s["name"] for s in obj["sources"]] == [a.name, b.name]
    assert all(len(s["sha256_16"]) == 16 for s in obj["sources"])
    code, _, err = run(capsys, "merge", a, "-o", out_path, "--force")
    assert code == 2 and "at least two" in err
    code, _, _ = run(capsys, "merge", a, b)  # -o is required
    assert code == 2


def test_lineage_cli(tmp_path, capsys):
    p = copy_fixture(tmp_path, "sample_grid_5_test.npz")
    code, out, _ = run(capsys, "lineage", p)
    assert code == 0 and "legacy metadata in 'metadata'" in out
    run(capsys, "meta", "migrate", p)
    run(capsys, "meta", "set", p, "grid_size=5", "note=ok")
    code, out, _ = run(capsys, "lineage", p)
    lines = out.splitlines()
    assert lines[0] == str(p)
    assert lines[1].startswith("  created ") and "npztui meta migrate" in lines[1]
    assert lines[2].startswith("  1. ") and "meta migrate" in lines[2]
    assert lines[3].startswith("  2. ") and 'additional_parameters.note: (new) → "ok"' in lines[3]
    code, out, _ = run(capsys, "lineage", p, "--json")
    (obj,) = json_lines(out)
    assert obj["schema_version"] == "1.0.0"
    assert [t["operation"] for t in obj["transformations"]] == ["meta migrate", "meta set"]
    assert obj["metadata_source"] == {"member": "_metadata", "encoding": "json"}
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"junk")
    code, out, err = run(capsys, "lineage", p, bad, "--json")
    assert code == 3 and len(json_lines(out)) == 2


def test_cli_imports_only_the_facade():
    svc = service.Service
    assert svc.meta_set and svc.split and svc.merge and svc.lineage and svc.meta_migrate
    src = Path(cli.__file__).read_text()
    assert "from .npz" not in src and "import npztui.npz" not in src
