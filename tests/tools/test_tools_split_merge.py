"""split and merge: row subsets streamed, the rest copied raw, metadata and lineage kept,
and split-then-merge gives the original rows back."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from npztui.npz import checks, kinds, tools
from npztui.npz.metadata import discover
from npztui.npz.reader import NpzReader, fingerprint

COMPAT = Path(__file__).resolve().parents[1] / "fixtures" / "compat"
PTYCHO = "ptycho_sim_nphotons1e9.npz"
CIRCUIT = "sample_grid_5_test.npz"
PTY_ROW_ARRAYS = ("diffraction", "Y", "xcoords", "ycoords", "scan_index")


def copy_fixture(tmp_path: Path, name: str) -> Path:
    dst = tmp_path / name
    shutil.copyfile(COMPAT / name, dst)
    return dst


def load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files if k not in ("metadata", "_metadata")} | (
            {"_metadata": json.loads(str(z["_metadata"]))} if "_metadata" in z.files else {}
        )


def load_original(name: str) -> dict[str, np.ndarray]:
    with np.load(COMPAT / name, allow_pickle=True) as z:
        return {k: z[k] for k in z.files if k not in ("metadata", "_metadata")}


def problems(path: Path) -> list[str]:
    with NpzReader(path) as r:
        meta = discover(r)
        return [f.code for f in checks.intrinsic(r, meta, kinds.detect_kind(r.info)) if f.severity == "error"]


def rows_as_set(d: dict[str, np.ndarray], names) -> set[bytes]:
    n = d[names[0]].shape[0]
    return {b"".join(np.ascontiguousarray(d[k][i]).tobytes() for k in names) for i in range(n)}


def compression(path: Path) -> dict[str, int]:
    with zipfile.ZipFile(path) as z:
        return {i.filename.removesuffix(".npy"): i.compress_type for i in z.infolist()}


# --------------------------------------------------------------------------
# ptycho


@pytest.mark.parametrize("axis", ["x", "y"])
def test_ptycho_split_by_coordinate(tmp_path, axis):
    src = copy_fixture(tmp_path, PTYCHO)
    raw = src.read_bytes()
    res = tools.split(src, fraction=0.8, axis=axis, out_dir=tmp_path / "out")
    assert src.read_bytes() == raw  # the input is never touched
    assert res.train.path == (tmp_path / "out" / "ptycho_sim_nphotons1e9_train.npz").resolve()
    assert (res.train.rows, res.test.rows) == (12, 4)
    assert sorted(res.row_arrays) == sorted(PTY_ROW_ARRAYS)
    assert sorted(res.copied) == ["objectGuess", "probeGuess"]
    orig = load_original(PTYCHO)
    tr, te = load(res.train.path), load(res.test.path)
    c = f"{axis}coords"
    assert tr[c].max() < te[c].min()  # spatially disjoint
    # rows keep the source order within each part
    order = np.argsort(orig[c], kind="stable")
    train_idx = np.sort(order[:12])
    for k in PTY_ROW_ARRAYS:
        np.testing.assert_array_equal(tr[k], orig[k][train_idx])
    for k in ("objectGuess", "probeGuess"):
        np.testing.assert_array_equal(tr[k], orig[k])
        np.testing.assert_array_equal(te[k], orig[k])
    # metadata preserved, plus a record
    for part, d, rows in (("train", tr, 12), ("test", te, 4)):
        md = d["_metadata"]
        assert md["physics_parameters"]["nphotons"] == 1e9 and md["physics_parameters"]["N"] == 64
        assert md["training_parameters"]["batch_size"] == 16
        rec = md["data_transformations"][-1]
        assert rec["operation"] == "split"
        p = rec["parameters"]
        assert p["part"] == part and p["fraction"] == 0.8 and p["axis"] == axis
        assert p["source_sha256_16"] == fingerprint(src) and p["rows"] == rows and p["source_rows"] == 16
    assert problems(res.train.path) == [] and problems(res.test.path) == []


def test_split_copies_global_arrays_raw(tmp_path):
    src = copy_fixture(tmp_path, PTYCHO)
    res = tools.split(src, fraction=0.5, axis="y")
    with NpzReader(src) as r, NpzReader(res.train.path) as t:
        for name in ("objectGuess", "probeGuess"):
            a, b = r.array_info(name), t.array_info(name)
            assert (a.compression, a.stored_bytes) == (b.compression, b.stored_bytes)
            with open(src, "rb") as f1, open(res.train.path, "rb") as f2:
                f1.seek(a.data_offset)
                f2.seek(b.data_offset)
                assert f1.read(a.stored_bytes) == f2.read(b.stored_bytes)


def test_ptycho_split_then_merge_gives_the_original_rows(tmp_path):
    src = copy_fixture(tmp_path, PTYCHO)
    res = tools.split(src, fraction=0.8, axis="y")
    out = tmp_path / "merged.npz"
    m = tools.merge([res.train.path, res.test.path], out, strategy="validate_consistent")
    assert m.rows == 16 and m.dropped == {}
    orig, merged = load_original(PTYCHO), load(out)
    assert rows_as_set(merged, PTY_ROW_ARRAYS) == rows_as_set(orig, PTY_ROW_ARRAYS)
    for k in ("objectGuess", "probeGuess"):
        np.testing.assert_array_equal(merged[k], orig[k])
    md = merged["_metadata"]
    assert md["physics_parameters"] == load(res.train.path)["_metadata"]["physics_parameters"]
    ops = [r["operation"] for r in md["data_transformations"]]
    assert ops == ["split", "merge"]
    srcs = md["data_transformations"][-1]["parameters"]["sources"]
    assert [s["sha256_16"] for s in srcs] == [fingerprint(res.train.path), fingerprint(res.test.path)]
    assert problems(out) == []


def test_split_never_cuts_between_equal_coordinates(tmp_path):
    """A raster scan has whole lines of equal y: a line goes to one side only."""
    p = tmp_path / "raster.npz"
    ys = np.repeat(np.arange(4.0), 4)  # 4 lines of 4 positions
    xs = np.tile(np.arange(4.0), 4)
    np.savez(p, diffraction=np.random.default_rng(0).random((16, 8, 8), dtype=np.float32),
             xcoords=xs, ycoords=ys, probeGuess=np.ones((8, 8), np.complex64))
    res = tools.split(p, fraction=0.8, axis="y")  # 12.8 → the nearest line boundary, 12
    tr, te = load(res.train.path), load(res.test.path)
    assert (res.train.rows, res.test.rows) == (12, 4)
    assert set(tr["ycoords"]) == {0.0, 1.0, 2.0} and set(te["ycoords"]) == {3.0}
    res = tools.split(p, fraction=0.6, axis="y", force=True)  # 9.6 → 8 (closer than 12)
    assert res.train.rows == 8


def test_split_refuses_empty_side_and_bad_arguments(tmp_path):
    p = tmp_path / "line.npz"
    np.savez(p, diffraction=np.zeros((4, 8, 8), np.float32), xcoords=np.zeros(4), ycoords=np.arange(4.0))
    with pytest.raises(tools.ToolError, match="one side would be empty"):
        tools.split(p, fraction=0.5, axis="x")  # every x equal
    with pytest.raises(tools.ToolError, match="between 0 and 1"):
        tools.split(p, fraction=1.0)
    with pytest.raises(tools.ToolError, match="--axis"):
        tools.split(p, axis="z")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["line.npz"]


def test_split_refuses_when_coordinates_and_patterns_disagree(tmp_path):
    p = tmp_path / "bad.npz"
    np.savez(p, diffraction=np.zeros((5, 8, 8), np.float32), xcoords=np.arange(4.0), ycoords=np.arange(5.0))
    with pytest.raises(tools.FindingsError) as exc:
        tools.split(p, axis="y")
    assert [f.code for _, f in exc.value.findings] == ["PTY_COORDS_LEN"]


def test_split_refuses_to_overwrite_without_force(tmp_path):
    src = copy_fixture(tmp_path, PTYCHO)
    res = tools.split(src)
    before = res.train.path.read_bytes()
    with pytest.raises(tools.ToolError, match="already exists"):
        tools.split(src, fraction=0.5)
    assert res.train.path.read_bytes() == before
    res2 = tools.split(src, fraction=0.5, force=True)
    assert res2.train.rows == 8


def test_split_refuses_object_row_arrays(tmp_path):
    p = tmp_path / "obj.npz"
    objs = np.empty(4, dtype=object)
    objs[:] = [{"a": i} for i in range(4)]
    np.savez(p, diffraction=np.zeros((4, 8, 8), np.float32), xcoords=np.arange(4.0), ycoords=np.arange(4.0),
             labels=objs)
    with pytest.raises(tools.ToolError, match="Python objects"):
        tools.split(p)


def test_split_streams_in_bounded_chunks(tmp_path, monkeypatch):
    """With a tiny chunk size the result is the same: rows really are streamed chunk by chunk."""
    monkeypatch.setattr(tools, "_CHUNK_BYTES", 4096)  # 1 row of diffraction per chunk
    calls = []
    real = NpzReader.iter_rows

    def spy(self, name, chunk_rows=None):
        for start, chunk in real(self, name, chunk_rows):
            calls.append((name, len(chunk)))
            yield start, chunk

    monkeypatch.setattr(NpzReader, "iter_rows", spy)
    src = copy_fixture(tmp_path, PTYCHO)
    res = tools.split(src, fraction=0.75, axis="x")
    assert max(n for name, n in calls if name == "diffraction") == 1
    orig = load_original(PTYCHO)
    tr = load(res.train.path)
    order = np.sort(np.argsort(orig["xcoords"], kind="stable")[:12])
    np.testing.assert_array_equal(tr["diffraction"], orig["diffraction"][order])


# --------------------------------------------------------------------------
# circuit


def test_circuit_split_by_rows_keeps_resnorm_order(tmp_path):
    src = copy_fixture(tmp_path, CIRCUIT)
    tools.migrate(src)
    res = tools.split(src, fraction=0.8)
    assert res.axis == "rows"
    orig = load_original(CIRCUIT)
    tr, te = load(res.train.path), load(res.test.path)
    n = res.train.rows
    # 2500 would separate two mirror-image models with equal resnorm: the cut moves by one
    assert n == 2499 and res.test.rows == 626
    assert orig["resnorms"][n - 1] < orig["resnorms"][n]
    for k in ("parameters", "resnorms", "spectrum"):
        np.testing.assert_array_equal(tr[k], orig[k][:n])
        np.testing.assert_array_equal(te[k], orig[k][n:])
    np.testing.assert_array_equal(tr["frequencies"], orig["frequencies"])
    for d, rows in ((tr, n), (te, 3125 - n)):
        circ = d["_metadata"]["circuit"]
        assert circ["n_parameter_sets"] == rows
        assert circ["best_resnorm"] == pytest.approx(float(d["resnorms"][0]), rel=1e-6)
        assert circ["grid_size"] == 5 and circ["n_frequencies"] == 50
    assert compression(res.train.path)["spectrum"] == zipfile.ZIP_DEFLATED  # deflated stays deflated
    assert problems(res.train.path) == [] and problems(res.test.path) == []


def test_circuit_split_merge_round_trip_in_original_order(tmp_path):
    src = copy_fixture(tmp_path, CIRCUIT)  # legacy pickled metadata: converted in the outputs
    res = tools.split(src, fraction=0.3)
    orig = load_original(CIRCUIT)
    for inputs in ([res.train.path, res.test.path], [res.test.path, res.train.path]):
        out = tmp_path / "merged.npz"
        m = tools.merge(inputs, out, strategy="validate_consistent", force=True)
        assert m.sorted_by_resnorm is True
        merged = load(out)
        for k in ("parameters", "resnorms", "spectrum", "frequencies"):
            np.testing.assert_array_equal(merged[k], orig[k])
        circ = merged["_metadata"]["circuit"]
        assert circ["n_parameter_sets"] == 3125 and circ["grid_size"] == 5
        assert circ["best_resnorm"] == pytest.approx(float(orig["resnorms"][0]), rel=1e-6)
        assert problems(out) == []
        with NpzReader(out) as r:
            assert "metadata" not in r.info  # no pickled member in files npztui creates
            assert [f.code for f in checks.intrinsic(r, discover(r), kinds.CIRCUIT)] == []


def test_circuit_merge_interleaves_by_resnorm(tmp_path):
    rng = np.random.default_rng(1)

    def make(path, res):
        res = np.sort(res).astype(np.float32)
        params = rng.random((res.size, 5), dtype=np.float32)
        np.savez(path, parameters=params, resnorms=res, frequencies=np.array([1.0, 10.0], np.float32))
        return params, res

    pa, ra = make(tmp_path / "a.npz", rng.random(50))
    pb, rb = make(tmp_path / "b.npz", rng.random(70))
    m = tools.merge([tmp_path / "a.npz", tmp_path / "b.npz"], tmp_path / "ab.npz")
    merged = load(tmp_path / "ab.npz")
    assert m.sorted_by_resnorm and m.rows == 120
    assert np.all(np.diff(merged["resnorms"]) >= 0)
    allp = np.concatenate([pa, pb])
    allr = np.concatenate([ra, rb])
    order = np.argsort(allr, kind="stable")
    np.testing.assert_array_equal(merged["parameters"], allp[order])


def test_circuit_merge_of_unsorted_inputs_concatenates(tmp_path):
    for name, vals in (("a.npz", [3.0, 1.0]), ("b.npz", [0.5, 2.0])):
        np.savez(tmp_path / name, parameters=np.zeros((2, 5), np.float32), resnorms=np.array(vals, np.float32))
    m = tools.merge([tmp_path / "a.npz", tmp_path / "b.npz"], tmp_path / "ab.npz")
    assert m.sorted_by_resnorm is False and m.notes
    np.testing.assert_array_equal(load(tmp_path / "ab.npz")["resnorms"], [3.0, 1.0, 0.5, 2.0])


def _top_k_file(path: Path, rows: int, k: int, offset: float = 0.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(int(offset * 10) + rows)
    res = (np.sort(rng.random(rows)) + offset).astype(np.float32)
    d = {
        "parameters": rng.random((rows, 5), dtype=np.float32),
        "resnorms": res,
        "spectrum": rng.random((k, 3, 4), dtype=np.float32),
        "spectrum_rows": np.arange(k, dtype=np.int64),
        "frequencies": np.array([1.0, 10.0, 100.0], np.float32),
    }
    np.savez(path, **d)
    return d


def test_top_k_spectra_follow_their_rows(tmp_path):
    """`compute --spectrum top:K`: spectrum has K rows and `spectrum_rows` says which."""
    d = _top_k_file(tmp_path / "g.npz", rows=40, k=10)
    res = tools.split(tmp_path / "g.npz", fraction=0.5)
    tr, te = load(res.train.path), load(res.test.path)
    assert tr["spectrum"].shape[0] == 10 and te["spectrum"].shape[0] == 0  # the top 10 are all in train
    np.testing.assert_array_equal(tr["spectrum_rows"], np.arange(10))
    np.testing.assert_array_equal(tr["spectrum"], d["spectrum"])
    assert problems(res.train.path) == [] and problems(res.test.path) == []

    e = _top_k_file(tmp_path / "h.npz", rows=30, k=5, offset=0.5)
    out = tmp_path / "gh.npz"
    tools.merge([tmp_path / "g.npz", tmp_path / "h.npz"], out)
    m = load(out)
    allr = np.concatenate([d["resnorms"], e["resnorms"]])
    allp = np.concatenate([d["parameters"], e["parameters"]])
    order = np.argsort(allr, kind="stable")
    np.testing.assert_array_equal(m["parameters"], allp[order])
    np.testing.assert_array_equal(m["spectrum"], np.concatenate([d["spectrum"], e["spectrum"]]))
    # each spectrum row still belongs to the parameters it was computed for
    for j, row in enumerate(m["spectrum_rows"]):
        src_row = order[row]
        want = d["spectrum"][src_row] if src_row < 40 else e["spectrum"][src_row - 40]
        np.testing.assert_array_equal(m["spectrum"][j], want)
    assert problems(out) == []


# --------------------------------------------------------------------------
# merge policies


def test_merge_validate_consistent_refuses_with_set_inconsistent(tmp_path):
    a = copy_fixture(tmp_path, PTYCHO)
    b = copy_fixture(tmp_path, "ptycho_mismatch_N.npz")
    out = tmp_path / "m.npz"
    with pytest.raises(tools.FindingsError) as exc:
        tools.merge([a, b], out, strategy="validate_consistent")
    codes = {(Path(p).name, f.code, f.key) for p, f in exc.value.findings}
    assert ("ptycho_mismatch_N.npz", "SET_INCONSISTENT", "nphotons") in codes
    assert ("ptycho_mismatch_N.npz", "SET_INCONSISTENT", "N") in codes
    assert not out.exists()
    assert [x.name for x in tmp_path.iterdir() if x.name.startswith(".npztui-tmp-")] == []


def test_merge_preserve_first_reports_and_keeps_first_metadata(tmp_path):
    a = copy_fixture(tmp_path, PTYCHO)
    b = copy_fixture(tmp_path, "ptycho_mismatch_N.npz")
    out = tmp_path / "m.npz"
    m = tools.merge([a, b], out)
    assert {f.key for _, f in m.findings} == {"nphotons", "N"}
    assert m.dropped == {"scan_index": "not a per-row array in ptycho_mismatch_N.npz"}
    md = load(out)["_metadata"]
    assert md["physics_parameters"]["nphotons"] == 1e9
    rec = md["data_transformations"][-1]["parameters"]
    assert rec["strategy"] == "preserve_first" and rec["dropped"] == m.dropped
    assert {x["key"] for x in rec["inconsistent"]} == {"nphotons", "N"}


def test_merge_reports_differing_global_arrays(tmp_path):
    def make(path, obj):
        np.savez(path, diffraction=np.zeros((3, 4, 4), np.float32), xcoords=np.arange(3.0),
                 ycoords=np.arange(3.0), objectGuess=obj)

    make(tmp_path / "a.npz", np.ones((8, 8), np.complex64))
    make(tmp_path / "b.npz", np.zeros((8, 8), np.complex64))
    with pytest.raises(tools.FindingsError) as exc:
        tools.merge([tmp_path / "a.npz", tmp_path / "b.npz"], tmp_path / "m.npz", strategy="validate_consistent")
    assert [f.key for _, f in exc.value.findings] == ["objectGuess"]
    m = tools.merge([tmp_path / "a.npz", tmp_path / "b.npz"], tmp_path / "m.npz")
    np.testing.assert_array_equal(load(tmp_path / "m.npz")["objectGuess"], np.ones((8, 8)))
    assert m.record["parameters"]["differing_arrays_kept_from_first"] == ["objectGuess"]


def test_merge_refuses_mixed_kinds_and_single_input(tmp_path):
    a = copy_fixture(tmp_path, PTYCHO)
    c = copy_fixture(tmp_path, CIRCUIT)
    with pytest.raises(tools.ToolError, match="different kinds"):
        tools.merge([a, c], tmp_path / "m.npz")
    with pytest.raises(tools.ToolError, match="at least two"):
        tools.merge([a], tmp_path / "m.npz")
    with pytest.raises(tools.ToolError, match="already exists"):
        tools.merge([a, a], c)


def test_merge_promotes_dtypes_and_drops_shape_mismatches(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.arange(3, dtype=np.int32), y=np.zeros((3, 2)))
    np.savez(tmp_path / "b.npz", x=np.arange(4, dtype=np.int64), y=np.zeros((4, 3)))
    m = tools.merge([tmp_path / "a.npz", tmp_path / "b.npz"], tmp_path / "m.npz")
    d = load(tmp_path / "m.npz")
    assert d["x"].dtype == np.int64 and list(d["x"]) == [0, 1, 2, 0, 1, 2, 3]
    assert "y" not in d and "trailing shapes differ" in m.dropped["y"]


def test_lineage_lists_the_history(tmp_path):
    src = copy_fixture(tmp_path, CIRCUIT)
    assert tools.lineage(src).transformations == [] and tools.lineage(src).legacy
    tools.migrate(src)
    tools.set_metadata(src, {"grid_size": 5, "note": "x"})
    res = tools.split(src, fraction=0.5)
    lin = tools.lineage(res.test.path)
    assert [r["operation"] for r in lin.transformations] == ["meta migrate", "meta set", "split"]
    assert lin.schema_version == "1.0.0" and not lin.legacy
    text = [tools.describe_transformation(r) for r in lin.transformations]
    assert "additional_parameters.note: (new) → \"x\"" in text[1]
    assert "source_sha256_16=" in text[2]
    j = lin.to_json()
    assert j["path"] == str(res.test.path) and len(j["transformations"]) == 3


def test_merge_treats_resnorm_and_resnorms_as_one_array(tmp_path):
    np.savez(tmp_path / "a.npz", parameters=np.zeros((3, 5), np.float32), resnorms=np.array([0, 1, 2], np.float32))
    np.savez(tmp_path / "b.npz", parameters=np.ones((2, 5), np.float32), resnorm=np.array([0.5, 9], np.float32))
    m = tools.merge([tmp_path / "a.npz", tmp_path / "b.npz"], tmp_path / "ab.npz")
    assert m.dropped == {} and m.sorted_by_resnorm
    d = load(tmp_path / "ab.npz")
    np.testing.assert_array_equal(d["resnorms"], [0, 0.5, 1, 2, 9])
    np.testing.assert_array_equal(d["parameters"][:, 0], [0, 1, 0, 0, 1])
