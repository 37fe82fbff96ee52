"""`meta set` and `meta migrate`: values land where checks read them, untouched members
are copied byte for byte, legacy files convert to v1 without losing anything."""

from __future__ import annotations

import json
import os
import shutil
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from npztui.npz import checks, kinds, tools
from npztui.npz.metadata import discover
from npztui.npz.reader import NpzReader

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
COMPAT = FIXTURES / "compat"
REAL = FIXTURES / "real" / "ptychopinn"


def copy_fixture(tmp_path: Path, name: str, src_dir: Path = COMPAT) -> Path:
    dst = tmp_path / name
    shutil.copyfile(src_dir / name, dst)
    return dst


def findings(path: Path) -> list:
    with NpzReader(path) as r:
        meta = discover(r)
        return checks.intrinsic(r, meta, kinds.detect_kind(r.info))


def errors(path: Path) -> list[str]:
    return [f.code for f in findings(path) if f.severity == "error"]


def metadata(path: Path) -> tuple[dict | None, str | None, str | None]:
    with NpzReader(path) as r:
        m = discover(r)
        return m.data, m.source, m.encoding


def raw_members(path: Path) -> dict[str, tuple[int, bytes]]:
    """Each member's compression method and stored (compressed) bytes, read straight from the zip."""
    out = {}
    with NpzReader(path) as r:
        for a in r.info.arrays:
            with open(path, "rb") as f:
                f.seek(a.data_offset)
                out[a.name] = (r._zinfos[a.name].compress_type, f.read(a.stored_bytes))  # noqa: SLF001
    return out


# --------------------------------------------------------------------------
# meta set


def test_meta_set_updates_v1_and_records_old_value(tmp_path):
    p = copy_fixture(tmp_path, "ptycho_sim_nphotons1e9.npz")
    edit = tools.set_metadata(p, {"nphotons": 1e6, "physics_parameters.probe_scale": 4.0, "note": "from beamtime 3"})
    assert edit.written and edit.changed
    data, source, encoding = metadata(p)
    assert (source, encoding) == ("_metadata", "json")
    assert data["physics_parameters"]["nphotons"] == 1e6
    assert data["physics_parameters"]["probe_scale"] == 4.0
    assert data["additional_parameters"]["note"] == "from beamtime 3"
    rec = data["data_transformations"][-1]
    assert rec["tool"] == "npztui" and rec["operation"] == "meta set"
    changes = rec["parameters"]["changes"]
    assert changes["physics_parameters.nphotons"] == {"old": 1e9, "new": 1e6}
    assert changes["additional_parameters.note"] == {"new": "from beamtime 3"}  # did not exist before
    # everything else in the producer's metadata is still there
    assert data["training_parameters"] == {"batch_size": 16, "nepochs": 50, "n_images": 16}
    assert data["creation_info"]["script"] == "simulate_and_save.py"
    # written as a 0-d unicode array: loadable without pickle
    with np.load(p, allow_pickle=False) as z:
        assert json.loads(str(z["_metadata"]))["physics_parameters"]["nphotons"] == 1e6


def test_meta_set_copies_other_members_verbatim_and_keeps_them_deflated(tmp_path):
    p = copy_fixture(tmp_path, "sample_grid_5_test.npz")
    before = raw_members(p)
    assert all(ct == zipfile.ZIP_DEFLATED for ct, _ in before.values())
    tools.migrate(p)
    tools.set_metadata(p, {"grid_size": 5, "freq_max": 10000.0, "n_frequencies": 50, "circuit.label": "run 7"})
    after = raw_members(p)
    for name in ("parameters", "resnorms", "spectrum", "frequencies", "metadata"):
        assert after[name] == before[name], name  # same method, byte-identical compressed bytes
    assert after["parameters"][0] == zipfile.ZIP_DEFLATED
    assert after["_metadata"][0] == zipfile.ZIP_STORED  # npztui's own member: small JSON, stored
    assert errors(p) == []


def test_meta_set_preserves_permissions_and_member_order(tmp_path):
    p = copy_fixture(tmp_path, "ptycho_sim_nphotons1e9.npz")
    os.chmod(p, 0o640)
    names = zipfile.ZipFile(p).namelist()
    tools.set_metadata(p, {"N": 64})
    tools.set_metadata(p, {"gridsize": 1, "nphotons": 2e9})
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o640
    assert zipfile.ZipFile(p).namelist() == names
    with np.load(p, allow_pickle=False) as z:
        orig = np.load(COMPAT / "ptycho_sim_nphotons1e9.npz", allow_pickle=True)
        for k in ("diffraction", "Y", "objectGuess", "probeGuess", "xcoords", "ycoords", "scan_index"):
            np.testing.assert_array_equal(z[k], orig[k])


def test_meta_set_same_value_writes_nothing(tmp_path):
    p = copy_fixture(tmp_path, "ptycho_sim_nphotons1e9.npz")
    raw = p.read_bytes()
    edit = tools.set_metadata(p, {"nphotons": 1e9})
    assert not edit.changed and not edit.written
    assert p.read_bytes() == raw


def test_meta_set_dry_run_writes_nothing_and_shows_the_diff(tmp_path):
    p = copy_fixture(tmp_path, "ptycho_sim_nphotons1e9.npz")
    raw = p.read_bytes()
    edit = tools.set_metadata(p, {"nphotons": 1e6}, dry_run=True)
    assert edit.changed and not edit.written
    assert p.read_bytes() == raw
    assert "~ physics_parameters.nphotons: 1000000000.0 → 1000000.0" in edit.diff()


def test_meta_set_reports_findings_it_introduces(tmp_path):
    p = copy_fixture(tmp_path, "ptycho_sim_nphotons1e9.npz")
    edit = tools.set_metadata(p, {"N": 128})
    assert "PTY_N_SHAPE" in [f.code for f in edit.findings]


def test_meta_set_on_legacy_file_points_to_migrate(tmp_path):
    p = copy_fixture(tmp_path, "sample_grid_5_test.npz")
    raw = p.read_bytes()
    with pytest.raises(tools.ToolError, match="meta migrate"):
        tools.set_metadata(p, {"grid_size": 5})
    q = copy_fixture(tmp_path, "ptycho_legacy_no_metadata.npz")
    with pytest.raises(tools.ToolError, match="meta migrate"):
        tools.set_metadata(q, {"nphotons": 1e9})
    assert p.read_bytes() == raw


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("schema_version", "2.0.0", "managed by npztui"),
        ("data_transformations", [], "managed by npztui"),
        ("physics_parameters", 5, "is a section"),
        ("physics_parameters.nphotons.x", 1, "holds a value"),
        ("nphotons", float("nan"), "cannot hold"),
        ("a..b", 1, "invalid key"),
    ],
)
def test_meta_set_refuses_bad_keys(tmp_path, key, value, match):
    p = copy_fixture(tmp_path, "ptycho_sim_nphotons1e9.npz")
    raw = p.read_bytes()
    with pytest.raises(tools.ToolError, match=match):
        tools.set_metadata(p, {key: value})
    assert p.read_bytes() == raw


def test_meta_set_refuses_read_only_file(tmp_path):
    p = copy_fixture(tmp_path, "ptycho_sim_nphotons1e9.npz")
    os.chmod(p, 0o444)
    raw = p.read_bytes()
    with pytest.raises(tools.NpzError) as exc:
        tools.set_metadata(p, {"nphotons": 1e6})
    assert exc.value.code == "PERMISSION"
    assert p.read_bytes() == raw


def test_meta_set_through_symlink_keeps_the_link(tmp_path):
    real = copy_fixture(tmp_path, "ptycho_sim_nphotons1e9.npz")
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    tools.set_metadata(link, {"nphotons": 5e8})
    assert link.is_symlink()
    assert metadata(real)[0]["physics_parameters"]["nphotons"] == 5e8


def test_meta_set_keeps_non_array_members(tmp_path):
    p = tmp_path / "extra.npz"
    np.savez(p, x=np.arange(3))
    with zipfile.ZipFile(p, "a") as z:
        z.writestr("README.txt", "what the user wrote")
    tools.migrate(p, updates={"note": 1})
    tools.set_metadata(p, {"note": 2})
    with zipfile.ZipFile(p) as z:
        assert z.read("README.txt") == b"what the user wrote"


def test_meta_set_on_bare_npy_is_refused(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, np.arange(4))
    with pytest.raises(tools.ToolError, match="bare .npy"):
        tools.set_metadata(p, {"x": 1})


def test_setting_an_estimated_value_confirms_it(tmp_path):
    p = copy_fixture(tmp_path, "ptycho_legacy_no_metadata.npz")
    tools.migrate(p, estimate_values=True)
    assert metadata(p)[0]["additional_parameters"]["estimated_keys"] == [
        "physics_parameters.N", "physics_parameters.gridsize"
    ]
    tools.set_metadata(p, {"N": 64})
    data = metadata(p)[0]
    assert data["additional_parameters"]["estimated_keys"] == ["physics_parameters.gridsize"]
    assert data["data_transformations"][-1]["parameters"]["confirmed_estimates"] == ["physics_parameters.N"]


# --------------------------------------------------------------------------
# meta migrate


def test_migrate_ptycho_legacy_with_estimate_passes_check(tmp_path):
    p = copy_fixture(tmp_path, "ptycho_legacy_no_metadata.npz")
    before = raw_members(p)
    edit = tools.migrate(p, estimate_values=True)
    assert edit.written
    data, source, _ = metadata(p)
    assert source == "_metadata" and data["schema_version"] == "1.0.0"
    assert data["physics_parameters"]["N"] == 64
    assert data["physics_parameters"]["gridsize"] == 1
    assert "physics_parameters.N" in data["additional_parameters"]["estimated_keys"]
    rec = data["data_transformations"][-1]
    assert rec["operation"] == "meta migrate"
    assert rec["parameters"]["estimated"] == ["physics_parameters.N", "physics_parameters.gridsize"]
    assert rec["parameters"]["estimates"]["physics_parameters.N"] == 64
    assert errors(p) == []
    assert "META_MISSING" not in [f.code for f in findings(p)]
    after = raw_members(p)
    assert all(after[k] == v for k, v in before.items())


def test_migrate_set_wins_over_estimate_and_is_not_marked_estimated(tmp_path):
    p = copy_fixture(tmp_path, "ptycho_legacy_no_metadata.npz")
    tools.migrate(p, updates={"nphotons": 1e9, "N": 64}, estimate_values=True)
    data = metadata(p)[0]
    assert data["physics_parameters"]["nphotons"] == 1e9
    assert data["additional_parameters"]["estimated_keys"] == ["physics_parameters.gridsize"]
    assert [f for f in findings(p) if f.severity != "info"] == []


def test_migrate_circuit_pickled_dict_to_circuit_section(tmp_path):
    p = copy_fixture(tmp_path, "sample_grid_5_test.npz")
    legacy, _, enc = metadata(p)
    assert enc == "pickle-dict"
    edit = tools.migrate(p)
    data, source, encoding = metadata(p)
    assert (source, encoding) == ("_metadata", "json")
    circ = data["circuit"]
    for k in ("grid_size", "n_parameter_sets", "n_frequencies", "freq_min", "freq_max", "param_names",
              "param_units", "spectrum_columns", "best_resnorm"):
        assert circ[k] == legacy[k], k
    # the rest of the legacy dict is kept, nothing dropped
    for k in ("export_timestamp", "computation_complete", "user_generated", "storage_location", "filename",
              "ready_for_registration"):
        assert data["additional_parameters"][k] == legacy[k]
    assert edit.mapped["grid_size"] == "circuit.grid_size"
    assert "> grid_size → circuit.grid_size" in edit.diff()
    # legacy member kept by default, still readable by old readers
    with NpzReader(p) as r:
        assert "metadata" in r.info
    with np.load(p, allow_pickle=True) as z:
        assert z["metadata"].item()["grid_size"] == 5
    assert errors(p) == []
    assert [f.code for f in findings(p) if f.severity == "warning"] == []


def test_migrate_drop_legacy_keeps_content_in_lineage(tmp_path):
    p = copy_fixture(tmp_path, "sample_grid_5_test.npz")
    legacy = metadata(p)[0]
    edit = tools.migrate(p, drop_legacy=True)
    assert edit.dropped_members == ["metadata"]
    with NpzReader(p) as r:
        assert "metadata" not in r.info
    with np.load(p, allow_pickle=False) as z:  # nothing pickled left in the file
        assert set(z.files) == {"parameters", "resnorms", "spectrum", "frequencies", "_metadata"}
    rec = metadata(p)[0]["data_transformations"][-1]["parameters"]
    assert rec["legacy_member_kept"] is False
    assert rec["legacy_metadata"] == legacy


def test_migrate_circuit_estimate_on_bare_arrays(tmp_path):
    src = np.load(COMPAT / "sample_grid_5_test.npz", allow_pickle=True)
    p = tmp_path / "bare.npz"
    np.savez_compressed(p, parameters=src["parameters"], resnorms=src["resnorms"],
                        spectrum=src["spectrum"], frequencies=src["frequencies"])
    edit = tools.migrate(p, estimate_values=True)
    circ = metadata(p)[0]["circuit"]
    assert circ["grid_size"] == 5 and circ["n_parameter_sets"] == 3125
    assert circ["n_frequencies"] == 50 and circ["freq_min"] == 1.0 and circ["freq_max"] == 10000.0
    assert circ["best_resnorm"] == pytest.approx(float(src["resnorms"].min()), rel=1e-6)
    assert circ["param_names"] == ["Rsh", "Ra", "Ca", "Rb", "Cb"]
    assert set(edit.estimated) >= {"circuit.grid_size", "circuit.best_resnorm", "circuit.freq_min"}
    assert [f.code for f in findings(p) if f.severity != "info"] == []


def test_migrate_estimates_gridsize_from_channels(tmp_path):
    p = tmp_path / "c4.npz"
    np.savez(p, diffraction=np.zeros((6, 32, 32, 4), np.float32), xcoords=np.arange(6.0), ycoords=np.arange(6.0))
    tools.migrate(p, estimate_values=True)
    phys = metadata(p)[0]["physics_parameters"]
    assert phys == {"N": 32, "gridsize": 2}


def test_migrate_ptychopinn_metadata_json_keeps_structure(tmp_path):
    p = copy_fixture(tmp_path, "c4_bigT_probe.npz", REAL)
    legacy = metadata(p)[0]
    tools.migrate(p)
    data, source, _ = metadata(p)
    assert source == "_metadata"
    assert data["additional_parameters"]["data_config"] == legacy["data_config"]
    assert data["additional_parameters"]["case"] == "c4_bigT_probe"
    assert errors(p) == []
    # short keys still resolve into the kept structure
    assert checks.compare(data, {"nphotons": 1e5, "N": 64}) == []


def test_migrate_already_v1_is_a_no_op(tmp_path):
    p = copy_fixture(tmp_path, "ptycho_sim_nphotons1e9.npz")
    raw = p.read_bytes()
    edit = tools.migrate(p, estimate_values=True)  # N, gridsize, nphotons all present already
    assert edit.already_v1 and not edit.changed and not edit.written
    assert p.read_bytes() == raw


def test_migrate_dry_run_leaves_file_untouched(tmp_path):
    p = copy_fixture(tmp_path, "sample_grid_5_test.npz")
    raw = p.read_bytes()
    edit = tools.migrate(p, estimate_values=True, dry_run=True)
    assert edit.changed and not edit.written
    assert p.read_bytes() == raw
    assert any(line.startswith("+ schema_version") for line in edit.diff())


def test_migrate_refuses_to_overwrite_an_undecodable_metadata_member(tmp_path):
    """A hostile `_metadata` pickle is never executed and never silently replaced."""
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    p = tmp_path / "evil.npz"
    arr = np.empty((), dtype=object)
    arr[()] = Evil()
    with zipfile.ZipFile(p, "w") as z:
        with z.open("x.npy", "w") as f:
            np.lib.format.write_array(f, np.arange(3))
        with z.open("_metadata.npy", "w") as f:
            np.lib.format.write_array(f, arr, allow_pickle=True)
    assert pickle  # the standard unpickler is never involved
    raw = p.read_bytes()
    with pytest.raises(tools.ToolError, match="will not overwrite"):
        tools.migrate(p, estimate_values=True)
    assert p.read_bytes() == raw


def test_migrate_non_finite_legacy_values_become_strings(tmp_path):
    p = tmp_path / "nan.npz"
    np.savez(p, x=np.arange(3), metadata_json=np.array(json.dumps({"loss": float("nan"), "ok": 1.5})))
    edit = tools.migrate(p)
    data = metadata(p)[0]
    assert data["additional_parameters"]["loss"] == "NaN"
    assert data["additional_parameters"]["ok"] == 1.5
    assert any("NaN" in n for n in edit.notes)
