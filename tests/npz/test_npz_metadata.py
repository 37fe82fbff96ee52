"""Metadata discovery on every real fixture, discovery order, encodings, key resolution, kinds."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from npztui.npz import kinds
from npztui.npz.metadata import (
    ALIASES,
    CANDIDATES,
    MISSING,
    SCHEMA_VERSION,
    discover,
    get_path,
    lookup,
    new_metadata,
    resolve,
    to_jsonable,
    transformation_record,
)
from npztui.npz.reader import NpzReader, inspect
from npztui.npz.writer import write_npz


def meta_of(path):
    with NpzReader(path) as r:
        return discover(r)


# -- every fixture: which member and encoding ---------------------------------------------


@pytest.mark.parametrize(
    "name, member, encoding, kind",
    [
        ("ptycho_sim_nphotons1e9.npz", "_metadata", "pickle-json", kinds.PTYCHO),
        ("ptycho_mismatch_N.npz", "_metadata", "pickle-json", kinds.PTYCHO),
        ("sample_grid_5_test.npz", "metadata", "pickle-dict", kinds.CIRCUIT),
        ("ptycho_legacy_no_metadata.npz", None, None, kinds.PTYCHO),
    ],
)
def test_compat_fixtures(fab, name, member, encoding, kind):
    meta = meta_of(fab.COMPAT / name)
    assert (meta.source, meta.encoding) == (member, encoding)
    assert meta.findings == []
    assert meta.found == (member is not None)
    assert meta.to_json() == {"member": member, "encoding": encoding}
    assert kinds.detect_kind(inspect(fab.COMPAT / name)) == kind


@pytest.mark.parametrize("name", ["c1_bigF.npz", "c1_bigT_probe.npz", "c1_bigT_uniform.npz", "c4_bigT_probe.npz", "c4_bigT_uniform.npz"])
def test_ptychopinn_fixtures_with_metadata_json(fab, name):
    meta = meta_of(fab.REAL / name)
    assert (meta.source, meta.encoding, meta.findings) == ("metadata_json", "json", [])
    assert meta.legacy  # no schema_version: a third convention
    assert meta.data["case"] == name[:-4]
    # a PtychoPINN data_config.nphotons is found by the breadth-first search
    assert resolve(meta.data, "nphotons") == ("data_config.nphotons", 100000.0)
    assert resolve(meta.data, "N") == ("data_config.N", 64)
    channels = inspect(fab.REAL / name).array("x_real").shape[1]
    assert resolve(meta.data, "grid_size")[1] == ([1, 1] if channels == 1 else [2, 2])
    assert kinds.detect_kind(inspect(fab.REAL / name)) == kinds.GENERIC


@pytest.mark.parametrize("name", ["compute_loss_c4_regression.npz", "fno_real_imag_tensor_path.npz"])
def test_ptychopinn_fixtures_without_metadata(fab, name):
    meta = meta_of(fab.REAL / name)
    assert not meta.found and meta.findings == [] and meta.candidates == []
    assert (meta.source, meta.encoding) == (None, None)


def test_fixture_values_and_schema(fab):
    sim = meta_of(fab.COMPAT / "ptycho_sim_nphotons1e9.npz").data
    assert sim["schema_version"] == "1.0.0"
    assert (lookup(sim, "nphotons"), lookup(sim, "N"), lookup(sim, "gridsize")) == (1e9, 64, 1)
    bad = meta_of(fab.COMPAT / "ptycho_mismatch_N.npz").data
    assert (lookup(bad, "nphotons"), lookup(bad, "N")) == (1e6, 128)
    grid = meta_of(fab.COMPAT / "sample_grid_5_test.npz").data
    assert grid["param_names"] == ["Rsh", "Ra", "Ca", "Rb", "Cb"]
    assert resolve(grid, "grid_size") == ("grid_size", 5)  # the legacy top-level key
    assert resolve(grid, "n_parameter_sets") == ("n_parameter_sets", 3125)
    assert lookup(grid, "best_resnorm") == pytest.approx(230.1529716797405)


# -- discovery order and encodings -------------------------------------------------------------


def _members(fab, **meta_members):
    out = {"x.npy": fab.npy_bytes(np.arange(3.0))}
    for name, arr in meta_members.items():
        out[f"{name}.npy"] = fab.npy_bytes(arr, allow_pickle=arr.dtype.hasobject)
    return out


def _obj(value):
    arr = np.empty((), dtype=object)
    arr[()] = value
    return arr


def test_discovery_order(fab, tmp_path):
    order = {
        "_metadata": np.array('{"who": "_metadata"}'),
        "metadata": _obj({"who": "metadata"}),
        "metadata_json": np.array('{"who": "metadata_json"}'),
        "zz_config": np.array('{"who": "any 0-d string"}'),
    }
    names = list(order)
    for i, winner in enumerate(names):
        present = {k: order[k] for k in names[i:]}
        path = fab.zip_members(tmp_path / f"o{i}.npz", _members(fab, **present))
        meta = meta_of(path)
        assert meta.source == winner
        assert meta.candidates[: len(present)] == list(present)
    assert CANDIDATES == ("_metadata", "metadata", "metadata_json")


def test_candidates_listed_even_when_a_later_zip_position(fab, tmp_path):
    # discovery order is by convention, not by position in the archive
    members = {"metadata_json.npy": fab.npy_bytes(np.array('{"a": 1}')), "x.npy": fab.npy_bytes(np.arange(2)),
               "_metadata.npy": fab.npy_bytes(np.array('{"b": 2}'))}
    meta = meta_of(fab.zip_members(tmp_path / "pos.npz", members))
    assert meta.source == "_metadata" and meta.data == {"b": 2}


@pytest.mark.parametrize(
    "arr, encoding, data",
    [
        (np.array('{"a": 1}'), "json", {"a": 1}),
        (np.array(b'{"a": 1}'), "json-bytes", {"a": 1}),
        (_obj('{"a": 1}'), "pickle-json", {"a": 1}),
        (_obj(b'{"a": 1}'), "pickle-json", {"a": 1}),
        (_obj({"a": 1, "t": (1, 2), "s": {3}}), "pickle-dict", {"a": 1, "t": [1, 2], "s": [3]}),
        (np.array(['{"a": 1}']), "json", {"a": 1}),  # shape (1,) is accepted too
    ],
)
def test_accepted_encodings(fab, tmp_path, arr, encoding, data):
    meta = meta_of(fab.zip_members(tmp_path / "e.npz", _members(fab, _metadata=arr)))
    assert (meta.source, meta.encoding, meta.data, meta.findings) == ("_metadata", encoding, data, [])


def test_zero_d_strings_that_are_not_json_objects_are_just_strings(fab, tmp_path):
    members = _members(fab, label=np.array("hello"), items=np.array("[1, 2]"), blob=np.array(b"\xff\xfe"))
    meta = meta_of(fab.zip_members(tmp_path / "s.npz", members))
    assert not meta.found and meta.findings == []
    assert sorted(meta.candidates) == ["blob", "items", "label"]


def test_failed_candidate_falls_through_to_the_next(fab, tmp_path):
    members = _members(fab, _metadata=np.array("{broken"), metadata=_obj({"grid_size": 5}))
    meta = meta_of(fab.zip_members(tmp_path / "f.npz", members))
    assert (meta.source, meta.encoding) == ("metadata", "pickle-dict")
    assert [(f.code, f.key) for f in meta.findings] == [("META_INVALID", "_metadata")]


def test_metadata_member_that_is_not_a_string(fab, tmp_path):
    meta = meta_of(fab.zip_members(tmp_path / "n.npz", _members(fab, metadata=np.arange(3))))
    assert not meta.found
    assert [f.code for f in meta.findings] == ["META_INVALID"]
    assert "not a JSON string" in meta.findings[0].message


# -- key resolution ----------------------------------------------------------------------------


V1 = {
    "schema_version": "1.0.0",
    "physics_parameters": {"nphotons": 1e9, "N": 64, "gridsize": 1},
    "training_parameters": {"batch_size": 16},
    "circuit": {"grid_size": 7, "freq_min": 1.0},
    "grid_size": 5,
    "a": {"x": 1},
    "b": {"c": {"x": 2}, "x": 3},
}


def test_resolution_rules():
    assert resolve(V1, "nphotons") == ("physics_parameters.nphotons", 1e9)
    assert resolve(V1, "grid_size") == ("grid_size", 5)  # an exact top-level key wins
    assert resolve({k: v for k, v in V1.items() if k != "grid_size"}, "grid_size") == ("circuit.grid_size", 7)
    assert resolve(V1, "physics_parameters.N") == ("physics_parameters.N", 64)
    assert resolve(V1, "batch_size") == ("training_parameters.batch_size", 16)  # section search
    assert resolve(V1, "x") == ("a.x", 1)  # breadth-first: shallowest, first
    assert resolve(V1, "c.x") is None  # dotted keys are exact paths from the top
    assert resolve(V1, "physics_parameters.missing") is None  # dotted keys are exact
    assert resolve(V1, "nothing") is None
    assert resolve(None, "nphotons") is None and resolve({}, "nphotons") is None
    assert lookup(V1, "nothing", default=42) == 42
    assert get_path(V1, "circuit.freq_min") == 1.0 and get_path(V1, "circuit.nope") is MISSING
    assert "nphotons" in ALIASES and ALIASES["grid_size"] == ("circuit.grid_size", "grid_size")


def test_resolution_does_not_descend_into_lists():
    data = {"runs": [{"nphotons": 1}], "cfg": {"nphotons": 2}}
    assert resolve(data, "nphotons") == ("cfg.nphotons", 2)


# -- schema v1 as npztui writes it ---------------------------------------------------------------


def test_written_metadata_is_v1_json_under_underscore_metadata(tmp_path):
    doc = new_metadata(script="test", physics={"nphotons": 1e9, "N": 64, "gridsize": 1},
                       transformations=[transformation_record("split", "train/test", {"fraction": 0.8})])
    assert doc["schema_version"] == SCHEMA_VERSION == "1.0.0"
    assert set(doc["creation_info"]) >= {"timestamp", "script", "hostname", "tool_version"}
    assert doc["creation_info"]["timestamp"].endswith("Z")
    path = write_npz(tmp_path / "w.npz", {"diffraction": np.zeros((2, 4, 4), "<f4")}, metadata=doc)
    meta = meta_of(path)
    assert (meta.source, meta.encoding) == ("_metadata", "json")
    assert meta.data == json.loads(json.dumps(doc))
    with np.load(path, allow_pickle=False) as z:  # loadable without pickle
        assert json.loads(z["_metadata"].item()) == meta.data


def test_to_jsonable_plain_conversions():
    import collections
    import datetime

    value = {
        1: np.float32(1.5), "arr": np.arange(3), "c": 1 + 2j, "b": b"ab", "when": datetime.date(2024, 1, 2),
        "td": datetime.timedelta(seconds=90), "od": collections.OrderedDict(z=1), "fs": frozenset({2, 1}),
        "nested": [np.int64(7), (np.bool_(True), None)],
    }
    out = to_jsonable(value)
    assert out == {"1": 1.5, "arr": [0, 1, 2], "c": [1.0, 2.0], "b": "ab", "when": "2024-01-02", "td": 90.0,
                   "od": {"z": 1}, "fs": [1, 2], "nested": [7, [True, None]]}
    json.dumps(out)


def test_to_jsonable_bounds_shared_references():
    from npztui.npz.metadata import _Invalid

    level = [0]
    for _ in range(40):  # 2**40 leaves through shared references
        level = [level, level]
    with pytest.raises(_Invalid):
        to_jsonable(level)


def test_pickled_shared_reference_bomb_is_meta_invalid(fab, tmp_path):
    level = ["x"]
    for _ in range(40):
        level = [level, level]
    payload = pickle.dumps({"bomb": level}, protocol=2)  # a few hundred bytes
    assert len(payload) < 2000
    meta = meta_of(fab.with_pickled_metadata(tmp_path / "b.npz", payload, name="metadata"))
    assert not meta.found and [f.code for f in meta.findings] == ["META_INVALID"]


# -- kinds --------------------------------------------------------------------------------------


def test_kind_detection_rules(tmp_path):
    def kind(**arrays):
        path = write_npz(tmp_path / "k.npz", arrays)
        return kinds.detect_kind(inspect(path))

    assert kind(parameters=np.zeros((3, 5)), resnorms=np.zeros(3)) == kinds.CIRCUIT
    assert kind(parameters=np.zeros((3, 5)), resnorm=np.zeros(3)) == kinds.CIRCUIT
    assert kind(parameters=np.zeros((3, 4)), resnorms=np.zeros(3)) == kinds.GENERIC
    assert kind(parameters=np.zeros((3, 5))) == kinds.GENERIC
    assert kind(diffraction=np.zeros((2, 4, 4))) == kinds.PTYCHO
    assert kind(diff3d=np.zeros((2, 4, 4, 1))) == kinds.PTYCHO
    assert kind(diffraction=np.zeros((4, 4))) == kinds.GENERIC
    assert kind(x=np.zeros(3)) == kinds.GENERIC


def test_row_counts(fab, tmp_path):
    assert kinds.row_count(inspect(fab.COMPAT / "sample_grid_5_test.npz"), kinds.CIRCUIT) == 3125
    assert kinds.row_count(inspect(fab.COMPAT / "ptycho_legacy_no_metadata.npz"), kinds.PTYCHO) == 16
    path = write_npz(tmp_path / "g.npz", {"a": np.zeros((4, 2)), "b": np.zeros(4), "_hidden": np.zeros(9)})
    assert kinds.row_count(inspect(path), kinds.GENERIC) == 4
    path = write_npz(tmp_path / "h.npz", {"a": np.zeros((4, 2)), "b": np.zeros(5)})
    assert kinds.row_count(inspect(path), kinds.GENERIC) is None
