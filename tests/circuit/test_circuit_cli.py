"""The circuit subcommands through `npztui.cli.main`: output, JSON lines, exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from npztui import cli
from npztui.npz.reader import NpzReader
from npztui.npz.writer import NpzWriter

SAMPLE = "sample_grid_5_test.npz"


def run(capsys, *argv):
    code = cli.main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("NPZTUI_DATA_ROOT", raising=False)


# ------------------------------------------------------------------ compute


def test_compute_writes_the_named_file(capsys, tmp_path):
    code, out, err = run(capsys, "compute", "--grid", "3", "--fmin", "1", "--fmax", "10k", "--points", "12",
                         "--ref", "Rsh=5005,Ra=5005,Ca=25.05e-6,Rb=5005,Cb=25.05e-6", "--out", str(tmp_path))
    assert code == 0, err
    path = tmp_path / "grid_3_freq_1_10000.npz"
    assert path.exists()
    assert out.splitlines()[0] == f"wrote {path}"
    assert "243 rows × 12 frequencies · spectrum full" in out
    assert "best resnorm" in out and "kΩ" in out and "µF" in out
    with NpzReader(path) as r:
        assert r.info.array("spectrum").shape == (243, 12, 4)
    # the same name again needs --force
    code, out, err = run(capsys, "compute", "--grid", "3", "--fmin", "1", "--fmax", "10000", "--points", "12",
                         "--out", str(tmp_path))
    assert code == 2 and "already exists" in err and "--force" in err and out == ""
    code, _, err = run(capsys, "compute", "--grid", "3", "--fmin", "1", "--fmax", "10000", "--points", "12",
                       "--out", str(tmp_path), "--force", "--spectrum", "none")
    assert code == 0, err
    with NpzReader(path) as r:
        assert "spectrum" not in r.info


def test_compute_json_and_options(capsys, tmp_path):
    code, out, err = run(capsys, "compute", "--grid", "2", "--points", "8", "--spectrum", "top:3", "--compress",
                         "--legacy-pickle", "--ref", "rsh=1k ra=300 ca=2u rb=600 cb=10u", "--out", str(tmp_path),
                         "--json")
    assert code == 0, err
    [j] = jsonl(out)
    assert j["rows"] == 32 and j["n_frequencies"] == 8 and j["spectrum"] == "top:3" and j["spectrum_rows"] == 3
    assert j["compressed"] is True and j["path"].endswith("grid_2_freq_0.1_100000.npz")
    with NpzReader(j["path"]) as r:
        names = {a.name for a in r.info.arrays}
        assert names == {"parameters", "resnorms", "spectrum", "spectrum_rows", "frequencies", "_metadata", "metadata"}
        meta = json.loads(str(r.read("_metadata")))
    assert meta["circuit"]["reference_parameters"] == {"Rsh": 1000.0, "Ra": 300.0, "Ca": 2e-6, "Rb": 600.0, "Cb": 1e-5}
    assert meta["creation_info"]["script"].startswith("npztui compute --grid 2")
    # the written file passes `npztui check`
    code, out, err = run(capsys, "check", j["path"], "--json")
    assert code == 0 and jsonl(out)[0]["ok"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ref", "Rsh=5005"], "--ref: missing circuit parameter"),
        (["--ref", "Rsh=5005,Ra=5005,Ca=25.05e-6,Rb=5005,Cb=-1"], "Cb must be"),
        (["--spectrum", "top:0"], "top:K"),
        (["--spectrum", "some"], "full, none or top:K"),
        (["--fmin", "10k", "--fmax", "1k"], "below freq_min"),
        (["--grid", "0"], "at least 1"),
        (["--fmin", "ten"], "not a number"),
    ],
)
def test_compute_usage_errors(capsys, tmp_path, args, message):
    code, out, err = run(capsys, "compute", "--grid", "2", "--out", str(tmp_path / "o"), *args)
    assert code == 2 and message in err and out == ""
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_compute_ctrl_c_writes_nothing(capsys, tmp_path, monkeypatch):
    calls = []

    def interrupt(self, ev):
        calls.append(ev.phase)
        if ev.phase == "spectrum":
            raise KeyboardInterrupt

    monkeypatch.setattr(cli._ComputeBar, "__call__", interrupt)
    code, out, err = run(capsys, "compute", "--grid", "4", "--points", "10", "--chunk-rows", "100",
                         "--out", str(tmp_path))
    assert code == 130 and "interrupted: nothing was written" in err
    assert calls[-1] == "spectrum"
    assert list(tmp_path.iterdir()) == []


def test_compute_progress_bar_on_stderr(capsys, tmp_path, monkeypatch):
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    code, out, err = run(capsys, "compute", "--grid", "4", "--points", "10", "--chunk-rows", "256",
                         "--out", str(tmp_path))
    assert code == 0
    assert "resnorms" in err and "spectra" in err and "rows/s" in err and "ETA" in err
    assert "1024/1024" in err
    code, out, err = run(capsys, "compute", "--grid", "2", "--out", str(tmp_path), "--no-progress")
    assert code == 0 and err == ""


def test_compute_unwritable_output_is_exit_3(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, out, err = run(capsys, "compute", "--grid", "2", "--out", str(blocker / "sub"), "--json")
    assert code == 3 and err.startswith("npztui: error: ")
    [j] = jsonl(out)
    assert j["error"]["code"] in ("NOT_FOUND", "CORRUPT") and "sub" in j["path"]


def test_compute_read_only_directory_is_exit_3(capsys, tmp_path):
    import os

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # running as root: permissions are not enforced
            pytest.skip("root ignores directory permissions")
        code, out, err = run(capsys, "compute", "--grid", "2", "--out", str(ro), "--json")
        assert code == 3 and "permission denied" in err
        assert jsonl(out)[0]["error"]["code"] == "PERMISSION"
    finally:
        ro.chmod(0o700)


# ------------------------------------------------------------------ best / search


def test_best_table_with_units(capsys, compat_dir):
    code, out, err = run(capsys, "best", str(compat_dir / SAMPLE), "-n", "3")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].endswith("3,125 rows (sorted)")
    assert lines[1].split() == ["rank", "row", "resnorm", "(Ω)", "Rsh", "Ra", "Ca", "Rb", "Cb"]
    assert len(lines) == 5
    assert lines[2].split()[:3] == ["1", "0", "230.153"]
    assert "10.0 kΩ" in lines[2] and "1.78 kΩ" in lines[2] and "50.0 µF" in lines[2] and "10.6 µF" in lines[2]
    assert lines[4].split()[:3] == ["3", "2", "231.522"]


def test_best_json_one_line_per_file_and_errors(capsys, compat_dir, tmp_path):
    missing = tmp_path / "gone.npz"
    code, out, err = run(capsys, "best", str(compat_dir / SAMPLE), str(missing),
                         str(compat_dir / "ptycho_sim_nphotons1e9.npz"), "-n", "2", "--json")
    assert code == 3  # the unreadable file wins over the usage-type refusal
    a, b, c = jsonl(out)
    assert [r["rank"] for r in a["rows"]] == [1, 2] and a["sorted"] is True and a["n_rows"] == 3125
    assert a["rows"][0]["parameters"]["Rsh"] == pytest.approx(10_000.0)
    assert b == {"path": str(missing), "error": {"code": "NOT_FOUND", "message": "no such file"}}
    assert c["error"]["code"] == "NOT_CIRCUIT"
    assert f"npztui: error: {missing}: no such file" in err
    assert "not a circuit file" in err
    code, out, err = run(capsys, "best", str(compat_dir / "ptycho_sim_nphotons1e9.npz"))
    assert code == 2 and out == ""


def test_best_on_an_unsorted_file(capsys, tmp_path):
    path = tmp_path / "u.npz"
    with NpzWriter(path) as w:
        w.add("parameters", np.array([[1, 1, 1e-6, 1, 1e-6], [2, 2, 2e-6, 2, 2e-6], [3, 3, 3e-6, 3, 3e-6]], np.float32))
        w.add("resnorm", np.array([9.0, 1.0, 5.0], np.float32))
    code, out, err = run(capsys, "best", str(path), "-n", "2", "--json")
    [j] = jsonl(out)
    assert code == 0 and j["sorted"] is False and j["resnorm_member"] == "resnorm"
    assert [(r["rank"], r["row"]) for r in j["rows"]] == [(1, 1), (2, 2)]
    code, out, _ = run(capsys, "best", str(path))
    assert "unsorted: ranks computed" in out


def test_search(capsys, compat_dir):
    code, out, err = run(capsys, "search", str(compat_dir / SAMPLE), "--max-resnorm", "240", "--limit", "3")
    assert code == 0, err
    assert "4 rows with resnorm ≤ 240, showing the best 3" in out
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:1] == ["rank"])
    assert [line.split()[0] for line in lines[head + 1:]] == ["1", "2", "3"]
    code, out, _ = run(capsys, "search", str(compat_dir / SAMPLE), "--max-resnorm", "240", "--json")
    [j] = jsonl(out)
    assert j["matches"] == 4 and len(j["rows"]) == 4 and j["max_resnorm"] == 240.0
    assert all(r["resnorm"] <= 240 for r in j["rows"])
    code, out, _ = run(capsys, "search", str(compat_dir / SAMPLE), "--max-resnorm", "1")
    assert code == 0 and "0 rows with resnorm ≤ 1" in out and "no matching rows" in out
    code, _, err = run(capsys, "search", str(compat_dir / SAMPLE))
    assert code == 2 and "--max-resnorm" in err


# ------------------------------------------------------------------ spectrum


def test_spectrum_table(capsys, compat_dir):
    code, out, err = run(capsys, "spectrum", str(compat_dir / SAMPLE), "--rank", "1")
    assert code == 0, err
    lines = out.splitlines()
    assert "rank 1 (row 0)" in lines[0] and "resnorm 230.153 Ω" in lines[0]
    assert "Rsh=10.0 kΩ" in out and "assumed" in out
    assert "stored spectrum: agrees" in out
    head = next(i for i, line in enumerate(lines) if "real (Ω)" in line)
    body = lines[head + 1:]
    assert len(body) == 50
    first = body[0].split()
    assert first[:2] == ["1.000", "Hz"] and float(first[2]) == pytest.approx(2412.76, rel=1e-5)
    assert float(first[-1]) == pytest.approx(-13.0251, abs=1e-3)


def test_spectrum_json_and_reference(capsys, compat_dir):
    code, out, _ = run(capsys, "spectrum", str(compat_dir / SAMPLE), "--rank", "2", "--json",
                       "--ref", "Rsh=1k,Ra=1k,Ca=1u,Rb=1k,Cb=1u")
    [j] = jsonl(out)
    assert code == 0 and j["rank"] == 2 and j["row"] == 1 and len(j["spectrum"]) == 50
    assert j["reference_source"] == "argument" and j["reference"]["Ca"] == 1e-6
    assert j["stored"]["status"] == "agrees" and j["findings"] == []
    assert j["columns"] == ["frequency", "real", "imag", "magnitude", "phase"]


def test_spectrum_disagreement_is_a_finding(capsys, compat_dir, tmp_path):
    with NpzReader(compat_dir / SAMPLE) as r:
        arrays = {n: r.read(n) for n in ("parameters", "resnorms", "spectrum", "frequencies")}
    arrays["spectrum"][0, :, 0] *= 1.5
    bad = tmp_path / "bad.npz"
    with NpzWriter(bad) as w:
        for k, v in arrays.items():
            w.add(k, v)
    code, out, err = run(capsys, "spectrum", str(bad), "--rank", "1")
    assert code == 0  # a warning finding: reported, not a failure
    assert "warning CIRC_SPECTRUM_STORED" in out and " of 50 frequencies" in out and "row 0" in out
    code, out, _ = run(capsys, "spectrum", str(bad), "--rank", "1", "--json")
    [j] = jsonl(out)
    assert j["stored"]["status"] == "disagrees" and j["findings"][0]["code"] == "CIRC_SPECTRUM_STORED"


@pytest.mark.parametrize(("kind", "title"), [("nyquist", "Nyquist"), ("bode", "Bode |Z|")])
def test_spectrum_plot(capsys, compat_dir, kind, title):
    code, out, err = run(capsys, "spectrum", str(compat_dir / SAMPLE), "--rank", "1", "--plot", kind,
                         "--width", "72", "--height", "26")
    assert code == 0, err
    assert title in out and "reference (assumed)" in out and "rank 1" in out
    assert "\x1b[" not in out  # not a terminal: no colour codes
    plot_lines = out.splitlines()[5:]
    assert len(plot_lines) == 26 and max(len(line) for line in plot_lines) == 72


def test_spectrum_usage_errors(capsys, compat_dir):
    code, out, err = run(capsys, "spectrum", str(compat_dir / SAMPLE), "--rank", "4000")
    assert code == 2 and "rank 4000 is out of range" in err
    code, out, err = run(capsys, "spectrum", str(compat_dir / SAMPLE), "--rank", "1", "--plot", "bode", "--json")
    assert code == 2 and "--plot" in err
    code, out, err = run(capsys, "spectrum", str(compat_dir / SAMPLE), "--rank", "0")
    assert code == 2
    code, out, err = run(capsys, "spectrum", str(compat_dir / SAMPLE), "--rank", "1", "--ref", "Rsh=x")
    assert code == 2 and "--ref" in err
