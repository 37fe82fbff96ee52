"""The catalog through the CLI and the service: scan, tags, configurations, sync, db status."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from npztui import cli
from npztui.service import Service

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "npz" / "precomputed"


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "npz"
    shutil.copytree(SAMPLES, r / "precomputed")
    return r


def test_scan_registers_then_skips_unchanged_and_marks_vanished(capsys, root):
    code, out, _ = run(capsys, "scan", root, "--json")
    first = json_lines(out)[0]
    assert code == 0 and first["added"] == 4 and first["unchanged"] == 0
    svc = Service()
    by_name = {d.filename: d for d in svc.list_datasets(limit=None)}
    assert by_name["sample_grid_5_test.npz"].kind == "circuit"
    assert by_name["sample_grid_5_test.npz"].rows == 3125
    assert by_name["sample_grid_5_test.npz"].grid_size == 5
    assert by_name["sample_grid_5_test.npz"].freq_min == pytest.approx(1.0)
    assert by_name["sample_grid_5_test.npz"].best_resnorm == pytest.approx(230.1529, rel=1e-5)
    assert by_name["ptycho_mismatch_N.npz"].findings["error"] == 1
    assert "PTY_N_SHAPE" in by_name["ptycho_mismatch_N.npz"].findings["codes"]
    assert len(by_name["ptycho_sim_nphotons1e9.npz"].sha256_16) == 16

    code, out, _ = run(capsys, "scan", root, "--json")
    second = json_lines(out)[0]
    assert second["unchanged"] == 4 and second["added"] == second["updated"] == 0

    victim = root / "precomputed" / "ptycho_legacy_no_metadata.npz"
    os.utime(root / "precomputed" / "ptycho_sim_nphotons1e9.npz", ns=(1, 1))
    victim.unlink()
    code, out, _ = run(capsys, "scan", root, "--json")
    third = json_lines(out)[0]
    assert third["updated"] == 1 and third["unavailable"] == 1
    gone = [d for d in Service().list_datasets(limit=None) if d.filename == victim.name]
    assert len(gone) == 1 and gone[0].is_available is False


def test_scan_of_a_subdirectory_reuses_the_known_root(capsys, root):
    run(capsys, "scan", root)
    code, out, _ = run(capsys, "scan", root / "precomputed", "--json")
    res = json_lines(out)[0]
    assert code == 0 and res["root"] == str(root.resolve()) and res["unchanged"] == 4
    assert Service().count_datasets() == 4


def test_scan_registers_an_unreadable_file_with_its_error(capsys, root):
    (root / "broken.npz").write_bytes(b"PK\x03\x04 truncated")
    code, out, err = run(capsys, "scan", root, "--json")
    assert code == 3 and "broken.npz" in err
    assert json_lines(out)[0]["added"] == 5
    broken = [d for d in Service().list_datasets(limit=None) if d.filename == "broken.npz"][0]
    assert broken.findings["unreadable"].startswith("TRUNCATED")


def test_tag_add_list_rm_roundtrip_stores_rank_resnorm_and_parameters(capsys, root):
    grid = root / "precomputed" / "sample_grid_5_test.npz"
    code, out, _ = run(capsys, "tag", "add", grid, "--rank", "2", "--label", "runner-up", "--quality", "0.8",
                       "--category", "fit", "--reference", "--json")
    assert code == 0
    tag = json_lines(out)[0]
    best = Service().best(grid, 2).rows[1]
    assert tag["row_index"] == 2 and tag["is_reference"] is True and tag["quality_score"] == 0.8
    assert tag["resnorm"] == pytest.approx(float(best.resnorm))
    assert tag["parameters"]["Rsh"] == pytest.approx(float(best.parameters["Rsh"]))

    code, out, _ = run(capsys, "tag", "list", grid, "--json")
    assert [t["label"] for t in json_lines(out)] == ["runner-up"]
    assert Service().catalog.pending_outbox_count() >= 2  # the dataset and the tag wait for a server

    code, _, err = run(capsys, "tag", "add", grid, "--rank", "2", "--label", "again")
    assert code == 2 and "already tagged" in err

    code, out, _ = run(capsys, "tag", "rm", tag["id"][:8])
    assert code == 0
    code, out, _ = run(capsys, "tag", "list", "--json")
    assert json_lines(out) == []


def test_tag_validation_is_a_usage_error_and_writes_nothing(capsys, root):
    grid = root / "precomputed" / "sample_grid_5_test.npz"
    code, _, err = run(capsys, "tag", "add", grid, "--rank", "1", "--label", "x", "--quality", "1.5")
    assert code == 2 and "between 0 and 1" in err
    ptycho = root / "precomputed" / "ptycho_sim_nphotons1e9.npz"
    code, _, err = run(capsys, "tag", "add", ptycho, "--row", "99", "--label", "x")
    assert code == 2 and "out of range" in err
    assert Service().list_tags() == []


def test_tag_a_non_circuit_row_by_index(capsys, root):
    ptycho = root / "precomputed" / "ptycho_sim_nphotons1e9.npz"
    code, out, _ = run(capsys, "tag", "add", ptycho, "--row", "3", "--label", "sharp", "--json")
    tag = json_lines(out)[0]
    assert code == 0 and tag["row_index"] == 3 and tag["resnorm"] is None


def test_linked_configuration_drives_config_mismatch(capsys, root):
    grid = root / "precomputed" / "sample_grid_5_test.npz"
    assert run(capsys, "config", "add", "producer", "--grid", "5", "--fmin", "1", "--fmax", "10k",
               "--points", "50")[0] == 0
    assert run(capsys, "config", "add", "wrong", "--grid", "4", "--fmin", "1", "--fmax", "10k",
               "--points", "50")[0] == 0
    assert run(capsys, "config", "link", grid, "producer")[0] == 0
    code, out, _ = run(capsys, "check", grid, "--json")
    assert code == 0 and not [f for f in json_lines(out)[0]["findings"] if f["code"] == "CONFIG_MISMATCH"]
    assert run(capsys, "config", "link", grid, "wrong")[0] == 0
    code, out, _ = run(capsys, "check", grid, "--json")
    mismatches = [f for f in json_lines(out)[0]["findings"] if f["code"] == "CONFIG_MISMATCH"]
    assert code == 1 and [f["key"] for f in mismatches] == ["grid_size"]
    assert mismatches[0]["expected"] == 4 and mismatches[0]["actual"] == 5


def test_sessions_are_created_and_listed(capsys):
    assert run(capsys, "config", "add", "c1")[0] == 0
    code, out, _ = run(capsys, "session", "add", "evening", "--config", "c1", "--json")
    assert code == 0 and json_lines(out)[0]["current_circuit_config_id"]
    code, out, _ = run(capsys, "session", "list", "--json")
    assert [s["session_name"] for s in json_lines(out)] == ["evening"]


def test_db_status_masks_the_password_and_reports_an_unreachable_server(capsys):
    url = "postgresql://alice:s3cr3t-pw@127.0.0.1:1/npz?connect_timeout=1"
    code, out, err = run(capsys, "db", "status", "--database-url", url, "--json")
    lines = json_lines(out)
    assert code == 4
    assert [s["backend"] for s in lines] == ["sqlite", "postgresql"]
    assert lines[1]["reachable"] is False
    assert "s3cr3t-pw" not in out + err


def test_sync_without_a_server_is_a_usage_error(capsys):
    code, _, err = run(capsys, "sync")
    assert code == 2 and "no server configured" in err


def test_sync_against_an_unreachable_server_keeps_the_outbox(capsys, root, monkeypatch):
    grid = root / "precomputed" / "sample_grid_5_test.npz"
    run(capsys, "tag", "add", grid, "--rank", "1", "--label", "best")
    pending = Service().catalog.pending_outbox_count()
    monkeypatch.setenv("NPZTUI_DATABASE_URL", "postgresql://bob:pw@127.0.0.1:1/x?connect_timeout=1")
    code, out, err = run(capsys, "sync", "--json")
    assert code == 4 and json_lines(out)[0]["ok"] is False
    assert Service().catalog.pending_outbox_count() == pending
    assert ":pw@" not in err


@pytest.mark.postgres
def test_tags_sync_to_postgres_and_reach_a_second_catalog(capsys, root, pg_catalog_db, pg_roles, monkeypatch,
                                                          tmp_path):
    url = pg_catalog_db.url_as(pg_roles.alice)
    grid = root / "precomputed" / "sample_grid_5_test.npz"
    run(capsys, "tag", "add", grid, "--rank", "1", "--label", "best", "--quality", "0.9")
    monkeypatch.setenv("NPZTUI_DATABASE_URL", url)
    code, out, _ = run(capsys, "sync", "--json")
    res = json_lines(out)[0]
    assert code == 0 and res["ok"] and res["pushed"] >= 2 and res["owner"] == pg_roles.alice.name
    assert Service().catalog.pending_outbox_count() == 0

    monkeypatch.setenv("NPZTUI_CATALOG", str(tmp_path / "second.sqlite3"))
    code, out, _ = run(capsys, "sync", "--json")
    assert code == 0 and json_lines(out)[0]["pulled"] >= 2
    tags = Service().list_tags()
    assert [(t.label, t.row_index, t.quality_score) for t in tags] == [("best", 1, 0.9)]


def test_catalog_failure_is_exit_4(capsys, tmp_path, monkeypatch):
    bad = tmp_path / "not-a-db.sqlite3"
    bad.write_bytes(b"this is not sqlite" * 100)
    monkeypatch.setenv("NPZTUI_CATALOG", str(bad))
    code, _, err = run(capsys, "tag", "list")
    assert code == 4 and err.startswith("npztui: error:") and "Traceback" not in err
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(bad).execute("select 1 from sqlite_master").fetchall()


def test_one_record_per_file_whatever_the_scan_order(capsys, tmp_path, monkeypatch):
    """compute registers its output first, then the whole data root is scanned: no duplicate."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(SAMPLES, tmp_path / "data" / "npz" / "precomputed")
    assert run(capsys, "compute", "--grid", "3", "--points", "10", "--spectrum", "none")[0] == 0
    code, out, _ = run(capsys, "scan", "data/npz", "--json")
    assert json_lines(out)[0]["added"] == 4  # the computed file is already known
    assert Service().count_datasets() == 5
    # a sub-directory scanned first, then its parent: still one record per file
    other = tmp_path / "elsewhere"
    shutil.copytree(SAMPLES, other / "sub")
    run(capsys, "scan", other / "sub")
    code, out, _ = run(capsys, "scan", other, "--json")
    res = json_lines(out)[0]
    assert res["unchanged"] == 4 and res["added"] == 0
    assert Service().count_datasets() == 9


def test_scanning_a_subdirectory_does_not_mark_its_siblings_unavailable(capsys, root):
    shutil.copytree(root / "precomputed", root / "other")
    run(capsys, "scan", root)
    code, out, _ = run(capsys, "scan", root / "other", "--json")
    assert json_lines(out)[0]["unavailable"] == 0
    assert Service().count_datasets(available=False) == 0
    (root / "other" / "sample_grid_5_test.npz").unlink()
    code, out, _ = run(capsys, "scan", root / "other", "--json")
    assert json_lines(out)[0]["unavailable"] == 1
    assert [d.path for d in Service().list_datasets(available=False)] == ["other/sample_grid_5_test.npz"]


def test_check_works_with_a_broken_catalog(capsys, tmp_path, monkeypatch):
    bad = tmp_path / "broken.sqlite3"
    bad.write_bytes(b"not sqlite at all" * 64)
    monkeypatch.setenv("NPZTUI_CATALOG", str(bad))
    code, out, err = run(capsys, "check", SAMPLES / "ptycho_sim_nphotons1e9.npz")
    assert code == 0 and err == "" and "ok" in out
