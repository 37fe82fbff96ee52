"""Checks (SPEC §4): every intrinsic rule on a crafted file, the fixtures, expectations, sets, modes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from npztui.npz import checks, kinds
from npztui.npz.checks import CheckOptions, compare, consistency, load_expect_file, parse_expect_args, parse_value, passes, values_equal
from npztui.npz.findings import RULES, SEVERITIES, Finding
from npztui.npz.metadata import discover
from npztui.npz.reader import NpzReader
from npztui.npz.writer import write_npz
from npztui.service import Service


def run(path, deep=False):
    with NpzReader(path) as r:
        meta = discover(r)
        return checks.intrinsic(r, meta, kinds.detect_kind(r.info), deep=deep)


def codes(findings, severity=None):
    return sorted({f.code for f in findings if severity is None or f.severity == severity})


def by_code(findings, code):
    return [f for f in findings if f.code == code]


# -- the fixtures ----------------------------------------------------------------------------


def test_mismatch_fixture_reports_pty_n_shape(fab):
    found = run(fab.COMPAT / "ptycho_mismatch_N.npz")
    (f,) = by_code(found, "PTY_N_SHAPE")
    assert f.severity == "error" and f.key == "physics_parameters.N"
    assert (f.expected, f.actual) == (128, 64)
    assert "128" in f.message and "64" in f.message
    assert codes(found, "error") == ["PTY_N_SHAPE"]


def test_expectation_on_the_mismatch_fixture(fab):
    svc = Service()
    (report,) = svc.check([fab.COMPAT / "ptycho_mismatch_N.npz"], CheckOptions(expect={"nphotons": 1e9}))
    (f,) = by_code(report.findings, "EXPECT_MISMATCH")
    assert f.severity == "error" and f.key == "physics_parameters.nphotons"
    assert (f.expected, f.actual) == (1e9, 1e6)
    assert report.ok is False
    (good,) = svc.check([fab.COMPAT / "ptycho_sim_nphotons1e9.npz"], CheckOptions(expect={"nphotons": 1e9, "N": 64}))
    assert good.ok and not by_code(good.findings, "EXPECT_MISMATCH")


def test_legacy_fixture_is_meta_missing_only(fab):
    found = run(fab.COMPAT / "ptycho_legacy_no_metadata.npz")
    assert [(f.code, f.severity) for f in found] == [("META_MISSING", "warning")]


@pytest.mark.parametrize(
    "where, name",
    [("COMPAT", "ptycho_sim_nphotons1e9.npz"), ("COMPAT", "sample_grid_5_test.npz"), ("COMPAT", "ptycho_legacy_no_metadata.npz")]
    + [("REAL", n) for n in ("c1_bigF.npz", "c1_bigT_probe.npz", "c1_bigT_uniform.npz", "c4_bigT_probe.npz",
                             "c4_bigT_uniform.npz", "compute_loss_c4_regression.npz", "fno_real_imag_tensor_path.npz")],
)
def test_clean_files_have_no_error_level_finding(fab, where, name):
    found = run(getattr(fab, where) / name, deep=True)
    assert codes(found, "error") == []
    assert all(f.severity in SEVERITIES for f in found)


def test_circuit_fixture_passes_every_circuit_rule(fab):
    found = run(fab.COMPAT / "sample_grid_5_test.npz", deep=True)
    assert codes(found) == ["META_LEGACY"]  # rows, freqs, spectrum, best_resnorm, sorted: all agree


# -- every intrinsic rule, triggered by a crafted file --------------------------------------------


def _v1(**sections):
    doc = {"schema_version": "1.0.0"}
    doc.update(sections)
    return doc


def _ptycho(n=4, N=8, channels=None, **extra):
    shape = (n, N, N) if channels is None else (n, N, N, channels)
    arrays = {
        "diffraction": np.ones(shape, "<f4"),
        "Y": np.ones(shape, "<c8"),
        "probeGuess": np.ones((N, N), "<c8"),
        "objectGuess": np.ones((4 * N, 4 * N), "<c8"),
        "xcoords": np.arange(n, dtype="<f8"),
        "ycoords": np.arange(n, dtype="<f8"),
    }
    arrays.update(extra)
    return arrays


PTY_META = {"nphotons": 1e9, "N": 8, "gridsize": 1}


def _circuit(rows=32, n_freq=5, sort=True, spectrum=True, **extra):
    resnorms = np.linspace(0.5, 3.0, rows).astype("<f4")
    arrays = {
        "parameters": np.ones((rows, 5), "<f4"),
        "resnorms": resnorms if sort else resnorms[::-1].copy(),
        "frequencies": np.logspace(0, 4, n_freq).astype("<f4"),
    }
    if spectrum:
        arrays["spectrum"] = np.zeros((rows, n_freq, 4), "<f4")
    arrays.update(extra)
    return arrays


CIRC_META = {"grid_size": 2, "n_parameter_sets": 32, "n_frequencies": 5, "freq_min": 1.0, "freq_max": 10000.0,
             "best_resnorm": 0.5}


def _with(base, **changes):
    out = dict(base)
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


CASES = {
    # code: (arrays, metadata or None, expected severity, deep)
    "META_MISSING": (_ptycho(), None, "warning", False),
    "META_LEGACY": (_circuit(), CIRC_META, "info", False),
    "META_SCHEMA/version": (_ptycho(), {"schema_version": "2.0.0", "physics_parameters": PTY_META}, "warning", False),
    "META_SCHEMA/section": (_ptycho(), _v1(physics_parameters=[1, 2]), "warning", False),
    "META_SCHEMA/type": (_ptycho(), _v1(physics_parameters=_with(PTY_META, N="sixty-four")), "warning", False),
    "PTY_N_SHAPE": (_ptycho(), _v1(physics_parameters=_with(PTY_META, N=16)), "error", False),
    "PTY_COORDS_LEN": (_ptycho(xcoords=np.arange(3.0)), _v1(physics_parameters=PTY_META), "error", False),
    "PTY_ARRAY_SHAPES/Y": (_ptycho(Y=np.ones((4, 8, 6), "<c8")), _v1(physics_parameters=PTY_META), "error", False),
    "PTY_ARRAY_SHAPES/probe": (_ptycho(probeGuess=np.ones((6, 6), "<c8")), _v1(physics_parameters=PTY_META), "error", False),
    "PTY_ARRAY_SHAPES/object": (_ptycho(objectGuess=np.ones((4, 4), "<c8")), _v1(physics_parameters=PTY_META), "error", False),
    "PTY_NPHOTONS/missing": (_ptycho(), _v1(physics_parameters=_with(PTY_META, nphotons=None)), "warning", False),
    "PTY_NPHOTONS/negative": (_ptycho(), _v1(physics_parameters=_with(PTY_META, nphotons=-5.0)), "error", False),
    "PTY_NPHOTONS/zero": (_ptycho(), _v1(physics_parameters=_with(PTY_META, nphotons=0)), "error", False),
    "PTY_GRIDSIZE/value": (_ptycho(), _v1(physics_parameters=_with(PTY_META, gridsize=0)), "error", False),
    "PTY_GRIDSIZE/channels": (_ptycho(channels=3), _v1(physics_parameters=_with(PTY_META, gridsize=2)), "error", False),
    "CIRC_ROWS/n_parameter_sets": (_circuit(), _v1(circuit=_with(CIRC_META, n_parameter_sets=40)), "error", False),
    "CIRC_ROWS/partial-grid": (_circuit(rows=20, spectrum=False), _v1(circuit=_with(CIRC_META, n_parameter_sets=None)), "warning", False),
    "CIRC_ROWS/resnorms": (_circuit(resnorms=np.arange(30, dtype="<f4")), _v1(circuit=CIRC_META), "error", False),
    "CIRC_FREQS/count": (_circuit(), _v1(circuit=_with(CIRC_META, n_frequencies=6)), "error", False),
    "CIRC_FREQS/min": (_circuit(), _v1(circuit=_with(CIRC_META, freq_min=1.01)), "error", False),
    "CIRC_FREQS/max": (_circuit(), _v1(circuit=_with(CIRC_META, freq_max=9000.0)), "error", False),
    "CIRC_SPECTRUM_SHAPE": (_with(_circuit(), spectrum=np.zeros((32, 5, 3), "<f4")), _v1(circuit=CIRC_META), "error", False),
    "CIRC_BEST_RESNORM": (_circuit(), _v1(circuit=_with(CIRC_META, best_resnorm=0.6)), "warning", False),
    "CIRC_UNSORTED": (_circuit(sort=False), _v1(circuit=CIRC_META), "info", False),
    "NONFINITE/resnorms": (_circuit(resnorms=np.array([0.5, np.nan] + [1.0] * 30, "<f4")), _v1(circuit=CIRC_META), "warning", True),
    "NONFINITE/diffraction": (_ptycho(diffraction=np.full((4, 8, 8), np.inf, "<f4")), _v1(physics_parameters=PTY_META), "warning", True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_intrinsic_rule(tmp_path, case):
    arrays, meta, severity, deep = CASES[case]
    arrays = {k: v for k, v in arrays.items() if v is not None}
    code = case.split("/")[0]
    path = write_npz(tmp_path / "case.npz", arrays, metadata=meta)
    found = run(path, deep=deep)
    hits = by_code(found, code)
    assert hits, f"{case}: expected {code}, got {[(f.code, f.message) for f in found]}"
    assert {f.severity for f in hits} == {severity}
    for f in found:
        assert f.message and "\n" not in f.message and f.explanation
    # nothing else at error level unless it is the rule under test
    assert set(codes(found, "error")) <= {code}
    if deep:  # NONFINITE needs --deep: the data is only read then
        assert not by_code(run(path, deep=False), "NONFINITE")


def test_unsafe_pickle_and_meta_invalid_reach_the_findings(fab, tmp_path):
    import os
    import pickle

    class Evil:
        def __reduce__(self):
            return os.system, ("true",)

    path = fab.with_pickled_metadata(tmp_path / "evil.npz", pickle.dumps(Evil()))
    found = run(path)
    assert [(f.code, f.severity) for f in found] == [("UNSAFE_PICKLE", "error")]
    bad = fab.zip_members(tmp_path / "bad.npz", {"x.npy": fab.npy_bytes(np.arange(2)),
                                                 "_metadata.npy": fab.npy_bytes(np.array("[1, 2]"))})
    assert [(f.code, f.severity) for f in run(bad)] == [("META_INVALID", "error")]


def test_rule_table_covers_spec_and_findings_serialise():
    spec = ["META_MISSING", "META_INVALID", "META_SCHEMA", "UNSAFE_PICKLE", "PTY_N_SHAPE", "PTY_COORDS_LEN",
            "PTY_ARRAY_SHAPES", "PTY_NPHOTONS", "PTY_GRIDSIZE", "CIRC_ROWS", "CIRC_FREQS", "CIRC_SPECTRUM_SHAPE",
            "CIRC_BEST_RESNORM", "CIRC_UNSORTED", "NONFINITE", "EXPECT_MISMATCH", "CONFIG_MISMATCH", "SET_INCONSISTENT"]
    defaults = {"META_MISSING": "warning", "META_INVALID": "error", "META_SCHEMA": "warning", "UNSAFE_PICKLE": "error",
                "PTY_N_SHAPE": "error", "CIRC_UNSORTED": "info", "NONFINITE": "warning", "CIRC_BEST_RESNORM": "warning"}
    for code in spec:
        assert code in RULES
    for code, sev in defaults.items():
        assert RULES[code][0] == sev
    f = Finding.make("PTY_N_SHAPE", "m", key="k", expected=np.int64(3), actual=np.float32(2.5))
    assert f.to_json() == {"code": "PTY_N_SHAPE", "severity": "error", "message": "m", "key": "k", "expected": 3, "actual": 2.5}
    assert checks.rule_explanation("NOPE") == "No description."


# -- modes -------------------------------------------------------------------------------------


def test_modes():
    w = [Finding.make("META_MISSING", "w")]
    e = [Finding.make("PTY_N_SHAPE", "e")]
    i = [Finding.make("CIRC_UNSORTED", "i")]
    table = {
        "strict": (True, False, False, True),
        "warn": (True, True, False, True),
        "permissive": (True, True, True, True),
    }
    for mode, (clean, warning, error, info) in table.items():
        assert passes([], mode) is clean
        assert passes(w, mode) is warning
        assert passes(e, mode) is error
        assert passes(i, mode) is info
    assert checks.MODES == ("strict", "warn", "permissive")


def test_modes_through_the_service(fab):
    svc = Service()
    legacy = fab.COMPAT / "ptycho_legacy_no_metadata.npz"
    bad = fab.COMPAT / "ptycho_mismatch_N.npz"
    for mode, (legacy_ok, bad_ok) in {"strict": (False, False), "warn": (True, False), "permissive": (True, True)}.items():
        r1, r2 = svc.check([legacy, bad], CheckOptions(mode=mode))
        assert (r1.ok, r2.ok) == (legacy_ok, bad_ok), mode
        assert by_code(r2.findings, "PTY_N_SHAPE")  # findings are reported in every mode


# -- expectations -------------------------------------------------------------------------------


def test_parse_values_and_expect_args():
    assert parse_value("1e9") == 1e9 and isinstance(parse_value("1e9"), float)
    assert parse_value("64") == 64 and isinstance(parse_value("64"), int)
    assert parse_value("true") is True and parse_value("False") is False and parse_value("null") is None
    assert parse_value("[1, 1]") == [1, 1]
    assert parse_value("Nearest") == "Nearest"
    assert math.isnan(parse_value("nan")) and parse_value("-inf") == -math.inf
    assert parse_expect_args(["nphotons=1e9", " N = 64 ", "name=a=b"]) == {"nphotons": 1e9, "N": 64, "name": "a=b"}
    for bad in (["nphotons"], ["=5"], [" =1"]):
        with pytest.raises(ValueError):
            parse_expect_args(bad)


def test_expect_file_flat_dotted_and_tables(tmp_path):
    toml = tmp_path / "expect.toml"
    toml.write_text(
        'nphotons = 1e9\n'
        'physics_parameters.N = 64\n'
        '"circuit.grid_size" = 5\n'
        '[training_parameters]\n'
        'batch_size = 16\n'
    )
    expected = load_expect_file(toml)
    assert expected == {"nphotons": 1e9, "physics_parameters.N": 64, "circuit.grid_size": 5,
                        "training_parameters.batch_size": 16}
    data = {"physics_parameters": {"nphotons": 1e9, "N": 64}, "circuit": {"grid_size": 4},
            "training_parameters": {"batch_size": 16}}
    found = compare(data, expected)
    assert [(f.code, f.key, f.expected, f.actual) for f in found] == [("EXPECT_MISMATCH", "circuit.grid_size", 5, 4)]
    with pytest.raises(Exception):
        bad = tmp_path / "bad.toml"
        bad.write_text("nphotons = = 1\n")
        load_expect_file(bad)


def test_expect_file_against_fixtures(fab, tmp_path):
    toml = tmp_path / "e.toml"
    toml.write_text("nphotons = 1e9\nN = 64\ngridsize = 1\n")
    svc = Service()
    good, bad = svc.check([fab.COMPAT / "ptycho_sim_nphotons1e9.npz", fab.COMPAT / "ptycho_mismatch_N.npz"],
                          CheckOptions(expect=load_expect_file(toml)))
    assert good.ok and not by_code(good.findings, "EXPECT_MISMATCH")
    assert sorted(f.key for f in by_code(bad.findings, "EXPECT_MISMATCH")) == ["physics_parameters.N", "physics_parameters.nphotons"]


def test_expectation_missing_from_metadata_and_no_metadata(fab):
    found = compare({"physics_parameters": {}}, {"nphotons": 1e9})
    assert [(f.code, f.key, f.actual) for f in found] == [("EXPECT_MISMATCH", "nphotons", None)]
    assert "not in metadata" in found[0].message
    (legacy,) = Service().check([fab.COMPAT / "ptycho_legacy_no_metadata.npz"], CheckOptions(expect={"nphotons": 1e9}))
    assert by_code(legacy.findings, "EXPECT_MISMATCH") and not legacy.ok


def test_expectation_on_legacy_top_level_and_ptychopinn_keys(fab):
    svc = Service()
    (grid,) = svc.check([fab.COMPAT / "sample_grid_5_test.npz"], CheckOptions(expect={"grid_size": 5, "n_frequencies": 50}))
    assert grid.ok and not by_code(grid.findings, "EXPECT_MISMATCH")
    (grid,) = svc.check([fab.COMPAT / "sample_grid_5_test.npz"], CheckOptions(expect={"grid_size": 6}))
    assert [f.key for f in by_code(grid.findings, "EXPECT_MISMATCH")] == ["grid_size"]
    (pinn,) = svc.check([fab.REAL / "c1_bigF.npz"], CheckOptions(expect={"nphotons": 1e5, "data_config.N": 64}))
    assert pinn.ok
    (pinn,) = svc.check([fab.REAL / "c1_bigF.npz"], CheckOptions(expect={"nphotons": 1e9}))
    assert [f.key for f in by_code(pinn.findings, "EXPECT_MISMATCH")] == ["data_config.nphotons"]


# -- float tolerance ----------------------------------------------------------------------------


def test_relative_tolerance():
    assert values_equal(1e9, 1e9 * (1 + 1e-10))
    assert not values_equal(1e9, 1e9 * (1 + 1e-8))
    assert values_equal(1e9, 1e9 * (1 + 1e-8), rel_tol=1e-6)
    assert values_equal(64, 64.0) and values_equal("64", 64) and values_equal(64, "64")
    assert not values_equal(0.0, 1e-12)  # relative, not absolute
    assert values_equal(float("nan"), float("nan")) and not values_equal(float("nan"), 1.0)
    assert values_equal([1, 1], [1.0, 1.0]) and not values_equal([1, 1], [1, 1, 1])
    assert values_equal({"a": 1.0}, {"a": 1}) and not values_equal({"a": 1}, {"b": 1})
    assert values_equal("Nearest", "Nearest") and not values_equal("a", "b")


def test_rel_tol_option_through_the_service(fab):
    svc = Service()
    path = fab.COMPAT / "ptycho_sim_nphotons1e9.npz"
    (strict,) = svc.check([path], CheckOptions(expect={"nphotons": 1.0000001e9}))
    assert by_code(strict.findings, "EXPECT_MISMATCH")
    (loose,) = svc.check([path], CheckOptions(expect={"nphotons": 1.0000001e9}, rel_tol=1e-6))
    assert not by_code(loose.findings, "EXPECT_MISMATCH") and loose.ok


# -- sets ---------------------------------------------------------------------------------------


def test_consistency_majority_and_pairs():
    a = {"physics_parameters": {"nphotons": 1e9, "N": 64}}
    b = {"physics_parameters": {"nphotons": 1e9, "N": 64}}
    c = {"physics_parameters": {"nphotons": 1e6, "N": 64}}
    out = consistency([("a", a), ("b", b), ("c", c)], ["nphotons", "N"])
    assert out["a"] == [] and out["b"] == []
    (f,) = out["c"]
    assert (f.code, f.key, f.expected, f.actual) == ("SET_INCONSISTENT", "nphotons", 1e9, 1e6)
    pair = consistency([("train", a), ("test", c)], ["nphotons"])
    assert all(len(v) == 1 and v[0].expected is None for v in pair.values())  # no majority: both flagged
    missing = consistency([("a", a), ("b", b), ("none", None)], ["nphotons"])
    assert [f.actual for f in missing["none"]] == [None] and missing["a"] == []
    close = consistency([("a", a), ("x", {"physics_parameters": {"nphotons": 1e9 * (1 + 1e-12)}})], ["nphotons"])
    assert close == {"a": [], "x": []}


def test_consistent_option_through_the_service(fab):
    paths = [fab.COMPAT / "ptycho_sim_nphotons1e9.npz", fab.COMPAT / "ptycho_mismatch_N.npz"]
    reports = Service().check(paths, CheckOptions(consistent=("nphotons", "N", "gridsize")))
    for r in reports:
        keys = sorted(f.key for f in by_code(r.findings, "SET_INCONSISTENT"))
        assert keys == ["N", "nphotons"]
        assert not r.ok


def test_check_options_defaults():
    o = CheckOptions()
    assert (o.mode, dict(o.expect), o.consistent, o.deep, o.rel_tol) == ("warn", {}, (), False, 1e-9)
    assert checks.DEFAULT_SET_KEYS[kinds.PTYCHO] == ("nphotons", "N", "gridsize")


# -- property: whatever the shapes and metadata values, rules give findings, never exceptions ----------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_NAMES = ["diffraction", "diff3d", "Y", "probeGuess", "objectGuess", "xcoords", "ycoords", "xcoords_start",
          "parameters", "resnorms", "resnorm", "frequencies", "spectrum", "spectrum_rows"]
_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["N", "nphotons", "x"]), inner, max_size=3),
    max_leaves=6,
)
_meta_keys = ["nphotons", "N", "gridsize", "grid_size", "n_parameter_sets", "n_frequencies", "freq_min", "freq_max",
              "best_resnorm"]


@st.composite
def _crafted(draw):
    arrays = {}
    for name in draw(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=8, unique=True)):
        shape = tuple(draw(st.lists(st.integers(0, 6), max_size=4)))
        if name == "parameters" and draw(st.booleans()):
            shape = (draw(st.integers(0, 6)), 5)
        dtype = draw(st.sampled_from(["<f4", "<f8", "<c8", "<i4", "|b1", "<U3"]))
        arr = np.zeros(shape, dtype=dtype)
        if arr.dtype.kind in "fc" and arr.size and draw(st.booleans()):
            arr.flat[0] = draw(st.sampled_from([np.nan, np.inf, -1.0, 1e30]))
        arrays[name] = arr
    meta = None
    if draw(st.booleans()):
        section = {k: draw(_value) for k in draw(st.lists(st.sampled_from(_meta_keys), max_size=6, unique=True))}
        meta = {"schema_version": draw(st.sampled_from(["1.0.0", "2", 1, None])),
                draw(st.sampled_from(["physics_parameters", "circuit", "other"])): section}
        meta.update({k: draw(_value) for k in draw(st.lists(st.sampled_from(_meta_keys), max_size=3, unique=True))})
    return arrays, meta


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(crafted=_crafted(), expect=st.dictionaries(st.sampled_from(_meta_keys), _value, max_size=3))
def test_rules_never_raise_on_odd_shapes_and_values(tmp_path_factory, crafted, expect):
    import json

    from npztui.npz.errors import NpzError

    arrays, meta = crafted

    def finite(v):  # write_npz writes strict JSON: no NaN/inf
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, list):
            return [finite(x) for x in v]
        if isinstance(v, dict):
            return {k: finite(x) for k, x in v.items()}
        return v

    meta = finite(meta)
    path = write_npz(tmp_path_factory.mktemp("odd") / "f.npz", arrays, metadata=meta)
    try:
        with NpzReader(path) as r:
            m = discover(r)
            kind = kinds.detect_kind(r.info)
            found = checks.intrinsic(r, m, kind, deep=True)
            kinds.row_count(r.info, kind)
    except NpzError:
        return
    found += compare(m.data, expect)
    found += consistency([("a", m.data), ("b", meta)], list(expect))["a"]
    for f in found:
        assert f.code in RULES and f.severity in SEVERITIES
        assert "\n" not in f.message
        json.dumps(f.to_json())
        checks.fmt(f.expected), checks.fmt(f.actual)
    assert isinstance(passes(found, "strict"), bool)
