"""The foundation commands through `npztui.cli.main`: info, check, meta show (SPEC §7).

Exit codes 0/1/2/3 (highest wins across inputs), one-line `npztui: error: PATH: message`
on stderr and never a traceback, `--json` as one object per input per line (an
unreadable file is a `{"path", "error"}` line *and* the stderr line), directories
expanding to every `*.npz` under them, and human output within 80 columns.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from npztui.cli import main

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "npz" / "precomputed"
COMPAT = ROOT / "tests" / "fixtures" / "compat"
REAL = ROOT / "tests" / "fixtures" / "real" / "ptychopinn"
GOOD = COMPAT / "ptycho_sim_nphotons1e9.npz"
MISMATCH = COMPAT / "ptycho_mismatch_N.npz"
LEGACY = COMPAT / "ptycho_legacy_no_metadata.npz"
GRID = COMPAT / "sample_grid_5_test.npz"


def npy_bytes(arr, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=allow_pickle)
    return buf.getvalue()


def zip_members(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def raw_npy(header: str, payload: bytes = b"") -> bytes:
    text = header.encode("latin1")
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + payload


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    got = capsys.readouterr()
    return code, got.out, got.err


def json_lines(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def strict_json_lines(text: str) -> list[dict]:
    """RFC 8259 JSON: NaN/Infinity are not JSON (jq and most parsers reject them)."""

    def refuse(const):
        raise ValueError(f"non-standard JSON constant {const}")

    return [json.loads(line, parse_constant=refuse) for line in text.splitlines() if line.strip()]


def no_traceback(err: str) -> None:
    assert "Traceback" not in err and 'File "' not in err


@pytest.fixture
def broken(tmp_path) -> Path:
    p = tmp_path / "broken.npz"
    p.write_bytes(GOOD.read_bytes()[:5000])  # truncated: the central directory is gone
    return p


# -- info --------------------------------------------------------------------------------------


def test_info_json_lists_arrays_exactly_as_specified(capsys):
    code, out, err = run(capsys, "info", "--json", GOOD, GRID, REAL / "c1_bigF.npz", LEGACY)
    assert code == 0 and err == ""
    docs = json_lines(out)
    assert [d["path"] for d in docs] == [str(GOOD), str(GRID), str(REAL / "c1_bigF.npz"), str(LEGACY)]
    good = docs[0]
    assert good["kind"] == "ptycho" and good["rows"] == 16
    assert good["metadata_source"] == {"member": "_metadata", "encoding": "pickle-json"}
    assert good["metadata"]["physics_parameters"]["nphotons"] == 1e9
    arrays = {a["name"]: a for a in good["arrays"]}
    assert set(arrays["diffraction"]) == {"name", "shape", "dtype", "fortran_order", "compressed", "stored_bytes", "nbytes"}
    assert arrays["diffraction"] == {"name": "diffraction", "shape": [16, 64, 64], "dtype": "<f4", "fortran_order": False,
                                     "compressed": False, "stored_bytes": arrays["diffraction"]["stored_bytes"],
                                     "nbytes": 16 * 64 * 64 * 4}
    assert arrays["Y"]["dtype"] == "<c8" and arrays["_metadata"]["dtype"] == "|O"
    with np.load(GOOD, allow_pickle=True) as z:  # dtype is numpy's dtype.str, shapes agree
        for name, a in arrays.items():
            assert a["dtype"] == z[name].dtype.str and a["shape"] == list(z[name].shape)
    assert docs[1]["metadata_source"] == {"member": "metadata", "encoding": "pickle-dict"}
    assert docs[1]["kind"] == "circuit" and all(a["compressed"] for a in docs[1]["arrays"])
    assert docs[2]["metadata_source"] == {"member": "metadata_json", "encoding": "json"}
    assert docs[3]["metadata_source"] == {"member": None, "encoding": None} and docs[3]["metadata"] is None


def test_info_human_output(capsys):
    code, out, err = run(capsys, "info", GOOD, LEGACY)
    assert code == 0 and err == ""
    assert "metadata in '_metadata' (pickle-json)" in out
    assert "metadata: none (legacy file)" in out
    assert "diffraction" in out and "(16, 64, 64)" in out and "<f4" in out


def test_info_unreadable_file_exit_3_one_line(capsys, broken):
    code, out, err = run(capsys, "info", broken)
    assert code == 3 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"npztui: error: {broken}: ")
    no_traceback(err)


def test_info_json_unreadable_goes_to_stdout_and_stderr(capsys, broken, tmp_path):
    missing = tmp_path / "missing.npz"
    code, out, err = run(capsys, "info", "--json", GOOD, broken, missing)
    assert code == 3
    docs = json_lines(out)
    assert len(docs) == 3
    assert docs[0]["path"] == str(GOOD) and "arrays" in docs[0]
    assert docs[1] == {"path": str(broken), "error": {"code": "TRUNCATED", "message": docs[1]["error"]["message"]}}
    assert docs[2]["error"]["code"] == "NOT_FOUND"
    errs = err.splitlines()
    assert errs == [f"npztui: error: {broken}: {docs[1]['error']['message']}",
                    f"npztui: error: {missing}: {docs[2]['error']['message']}"]
    no_traceback(err)


# -- check -------------------------------------------------------------------------------------


def test_check_exit_codes(capsys, broken):
    assert run(capsys, "check", GOOD)[0] == 0
    assert run(capsys, "check", GRID)[0] == 0
    assert run(capsys, "check", LEGACY)[0] == 0  # a warning passes in warn mode
    assert run(capsys, "check", "--mode", "strict", LEGACY)[0] == 1
    assert run(capsys, "check", MISMATCH)[0] == 1
    assert run(capsys, "check", "--mode", "permissive", MISMATCH)[0] == 0
    assert run(capsys, "check", GOOD, "--expect", "nphotons=1e6")[0] == 1
    assert run(capsys, "check", broken)[0] == 3


def test_highest_exit_code_wins_and_every_file_is_processed(capsys, broken):
    code, out, err = run(capsys, "check", GOOD, MISMATCH, broken, LEGACY)
    assert code == 3
    assert str(GOOD) in out and str(MISMATCH) in out and str(LEGACY) in out  # after the broken one too
    assert "PTY_N_SHAPE" in out and f"npztui: error: {broken}:" in err
    assert "4 files checked (mode warn): 2 ok, 2 not ok" in out
    assert run(capsys, "check", GOOD, MISMATCH)[0] == 1
    assert run(capsys, "check", GOOD, LEGACY)[0] == 0
    assert run(capsys, "info", GOOD, broken, LEGACY)[0] == 3


def test_check_json_lines(capsys, broken):
    code, out, err = run(capsys, "check", "--json", "--expect", "nphotons=1e9", GOOD, MISMATCH, broken)
    assert code == 3
    docs = json_lines(out)
    assert [d["path"] for d in docs] == [str(GOOD), str(MISMATCH), str(broken)]
    assert docs[0]["ok"] is True and docs[0]["findings"] == []
    assert docs[1]["ok"] is False
    got = {(f["code"], f["severity"], f["key"]) for f in docs[1]["findings"]}
    assert got == {("PTY_N_SHAPE", "error", "physics_parameters.N"), ("EXPECT_MISMATCH", "error", "physics_parameters.nphotons")}
    mismatch = next(f for f in docs[1]["findings"] if f["code"] == "EXPECT_MISMATCH")
    assert (mismatch["expected"], mismatch["actual"]) == (1e9, 1e6)
    assert set(mismatch) == {"code", "severity", "message", "key", "expected", "actual"}
    assert docs[2]["error"]["code"] == "TRUNCATED"
    assert err.startswith(f"npztui: error: {broken}: ")


def test_check_expect_file_and_consistent(capsys, tmp_path):
    toml = tmp_path / "expect.toml"
    toml.write_text('physics_parameters.nphotons = 1e9\n"N" = 64\n')
    code, out, _ = run(capsys, "check", "--json", "--expect-file", toml, GOOD, MISMATCH)
    assert code == 1
    good, bad = json_lines(out)
    assert good["ok"] and sorted(f["key"] for f in bad["findings"] if f["code"] == "EXPECT_MISMATCH") == [
        "physics_parameters.N", "physics_parameters.nphotons"]
    # --expect overrides the file for the same key
    code, out, _ = run(capsys, "check", "--json", "--expect-file", toml, "--expect", "N=128", MISMATCH)
    (bad,) = json_lines(out)
    assert [f["key"] for f in bad["findings"] if f["code"] == "EXPECT_MISMATCH"] == ["physics_parameters.nphotons"]
    code, out, _ = run(capsys, "check", "--json", "--consistent", "nphotons,N", GOOD, MISMATCH)
    assert code == 1
    for doc in json_lines(out):
        assert sorted(f["key"] for f in doc["findings"] if f["code"] == "SET_INCONSISTENT") == ["N", "nphotons"]


def test_check_rel_tol(capsys):
    assert run(capsys, "check", GOOD, "--expect", "nphotons=1.0000001e9")[0] == 1
    assert run(capsys, "check", GOOD, "--expect", "nphotons=1.0000001e9", "--rel-tol", "1e-6")[0] == 0


def test_check_deep_reads_data(capsys, tmp_path):
    from npztui.npz.writer import write_npz

    path = write_npz(tmp_path / "nan.npz", {"x": np.array([1.0, np.nan])}, metadata={"schema_version": "1.0.0"})
    code, out, _ = run(capsys, "check", "--json", path)
    assert code == 0 and json_lines(out)[0]["findings"] == []
    code, out, _ = run(capsys, "check", "--json", "--deep", path)
    assert [f["code"] for f in json_lines(out)[0]["findings"]] == ["NONFINITE"]
    assert run(capsys, "check", "--deep", "--mode", "strict", path)[0] == 1


# -- usage errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["check"],
        ["info"],
        ["check", "--mode", "lenient", "x.npz"],
        ["check", "--rel-tol", "tiny", "x.npz"],
        ["check", "--bogus", "x.npz"],
        ["meta"],
        ["meta", "frobnicate", "x.npz"],
        ["info", "--max-read", "lots", "x.npz"],
    ],
)
def test_argparse_usage_errors_exit_2(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert "usage:" in err and "error:" in err
    no_traceback(err)


def test_usage_errors_found_after_parsing_exit_2(capsys, tmp_path):
    code, _, err = run(capsys, "check", GOOD, "--expect", "nphotons")
    assert code == 2 and err.startswith("npztui: error: ") and err.count("\n") == 1
    code, _, err = run(capsys, "check", GOOD, "--expect-file", tmp_path / "nope.toml")
    assert code == 2 and err.startswith("npztui: error: ")
    bad = tmp_path / "bad.toml"
    bad.write_text("nphotons = = 1\n")
    code, _, err = run(capsys, "check", GOOD, "--expect-file", bad)
    assert code == 2 and err.count("\n") == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "info", empty)
    assert code == 2 and "no .npz files" in err
    for e in (err,):
        no_traceback(e)


# -- directories -------------------------------------------------------------------------------------


def test_directory_means_every_npz_under_it(capsys, tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    shutil.copy(GOOD, tmp_path / "a" / "one.npz")
    shutil.copy(GRID, tmp_path / "a" / "deep" / "two.npz")
    shutil.copy(LEGACY, tmp_path / "zz.npz")
    (tmp_path / "a" / "notes.txt").write_text("not an npz")
    (tmp_path / "a" / "data.npy").write_bytes(b"")
    (tmp_path / ".npztui-tmp-abc.npz").write_bytes(b"half written")  # an atomic writer's temp file
    code, out, err = run(capsys, "info", "--json", tmp_path)
    assert code == 0 and err == ""
    paths = [d["path"] for d in json_lines(out)]
    assert paths == sorted(paths)
    assert paths == [str(tmp_path / "a" / "deep" / "two.npz"), str(tmp_path / "a" / "one.npz"), str(tmp_path / "zz.npz")]
    code, out, _ = run(capsys, "check", "--json", tmp_path, GOOD)
    assert len(json_lines(out)) == 4


# -- meta show ---------------------------------------------------------------------------------------


def test_meta_show(capsys, broken):
    code, out, err = run(capsys, "meta", "show", "--json", GOOD, GRID, LEGACY, REAL / "c1_bigF.npz")
    assert code == 0 and err == ""
    docs = json_lines(out)
    assert [d["metadata_source"]["member"] for d in docs] == ["_metadata", "metadata", None, "metadata_json"]
    assert [d["metadata_source"]["encoding"] for d in docs] == ["pickle-json", "pickle-dict", None, "json"]
    assert docs[1]["metadata"]["grid_size"] == 5 and docs[2]["metadata"] is None
    code, out, err = run(capsys, "meta", "show", GOOD)
    assert code == 0 and "metadata in '_metadata' (pickle-json)" in out
    assert json.loads(out.split("\n", 2)[2])["physics_parameters"]["N"] == 64
    code, out, err = run(capsys, "meta", "show", "--json", broken)
    assert code == 3 and json_lines(out)[0]["error"]["code"] == "TRUNCATED" and err.startswith("npztui: error: ")


# -- no tracebacks, ever ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["empty", "text", "dir-as-file", "no-npy", "bad-header", "hostile-pickle"])
def test_hostile_inputs_never_print_a_traceback(capsys, tmp_path, kind):
    path = tmp_path / f"{kind}.npz"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("hello\n")
    elif kind == "dir-as-file":
        path.mkdir()
        (path / "inner.npz").write_bytes(GOOD.read_bytes())
    elif kind == "no-npy":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("README", "x")
    elif kind == "bad-header":
        zip_members(path, {"a.npy": raw_npy("{'descr': 'zz', 'fortran_order': False, 'shape': (1,)}")})
    else:
        import os
        import pickle

        class Evil:
            def __reduce__(self):
                return os.system, ("true",)

        meta = npy_bytes(np.empty((), dtype=object), allow_pickle=True)[:128] + pickle.dumps(Evil())
        zip_members(path, {"x.npy": npy_bytes(np.arange(3)), "_metadata.npy": meta})
    for cmd in (["info"], ["check"], ["meta", "show"], ["info", "--json"], ["check", "--json", "--deep"]):
        code, out, err = run(capsys, *cmd, path)
        no_traceback(err)
        assert code in (0, 1, 3)
        for line in err.splitlines():
            assert line.startswith("npztui: error: ")
        if "--json" in cmd:
            json_lines(out)


def test_debug_flag_is_accepted(capsys, broken):
    code, _, err = run(capsys, "info", "--debug", broken)
    assert code == 3 and f"npztui: error: {broken}:" in err


# -- 80 columns ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["info"], ["check"], ["check", "--mode", "strict"], ["check", "--expect", "nphotons=1e9"]])
def test_human_output_fits_80_columns_for_the_shipped_samples(capsys, monkeypatch, argv):
    monkeypatch.chdir(ROOT)  # the paths as a user types them from the project root
    code, out, err = run(capsys, *argv, "data/npz/precomputed")
    assert code in (0, 1)
    too_wide = [line for line in (out + err).splitlines() if len(line) > 80]
    assert too_wide == []


def test_human_output_fits_80_columns_for_each_sample_by_name(capsys, monkeypatch):
    monkeypatch.chdir(SAMPLES)
    for name in sorted(p.name for p in SAMPLES.glob("*.npz")):
        for argv in (["info", name], ["check", name], ["meta", "show", name]):
            _, out, err = run(capsys, *argv)
            assert [line for line in (out + err).splitlines() if len(line) > 80] == [], argv


def test_meta_show_fits_80_columns_with_sample_paths(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)  # the paths as a user types them from the project root
    _, out, err = run(capsys, "meta", "show", "data/npz/precomputed")
    assert [line for line in (out + err).splitlines() if len(line) > 80] == []


def test_json_output_is_strict_json_even_with_nan_metadata(capsys, tmp_path):
    text = '{"schema_version": "1.0.0", "physics_parameters": {"nphotons": NaN, "N": Infinity}}'
    path = zip_members(tmp_path / "nan.npz", {"x.npy": npy_bytes(np.arange(2.0)), "_metadata.npy": npy_bytes(np.array(text))})
    for cmd in (["info", "--json"], ["check", "--json"], ["meta", "show", "--json"]):
        _, out, _ = run(capsys, *cmd, path)
        docs = strict_json_lines(out)  # a standard JSON parser accepts every line
        if "metadata" in docs[0]:  # non-finite values are null, the key is kept
            assert docs[0]["metadata"]["physics_parameters"] == {"nphotons": None, "N": None}


def test_unexpected_failure_is_one_line_and_debug_shows_the_traceback(capsys, monkeypatch):
    from npztui import service

    def boom(self, path):
        raise RuntimeError("boom")

    monkeypatch.setattr(service.Service, "inspect", boom)
    code, out, err = run(capsys, "info", GOOD)
    assert code != 0 and out == ""
    assert err.splitlines() == ["npztui: error: RuntimeError: boom (run with --debug for details)"]
    code, _, err = run(capsys, "info", "--debug", GOOD)
    assert code != 0 and "Traceback" in err and err.rstrip().endswith("npztui: error: RuntimeError: boom")


def test_max_read_flag_caps_reads(capsys, tmp_path):
    from npztui.npz.writer import write_npz

    path = write_npz(tmp_path / "f.npz", {"x": np.asfortranarray(np.zeros((64, 64)))}, metadata={"schema_version": "1.0.0"})
    assert run(capsys, "check", "--deep", path)[0] == 0
    code, out, err = run(capsys, "check", "--deep", "--max-read", "1k", path)
    assert code == 3 and "read limit" in err and err.count("\n") == 1


def test_check_output_wraps_long_set_messages_within_80_columns(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, _ = run(capsys, "check", "--consistent", "nphotons,N", "data/npz/precomputed")
    assert code == 1 and "SET_INCONSISTENT" in out
    assert [line for line in out.splitlines() if len(line) > 80] == []
    assert "ptycho_sim_nphotons1e9.npz=1e+09" in out  # wrapped, not cut
