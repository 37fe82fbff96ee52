"""The architecture rules are tested, not just written down."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold():
    exe = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_headless_core_imports_without_textual():
    """Block textual entirely: the core and the CLI must still import (the TUI is lazy)."""
    code = (
        "import sys\n"
        "sys.modules['textual'] = None\n"
        "sys.modules['textual_plotext'] = None\n"
        "import npztui.service, npztui.cli, npztui.npz.reader, npztui.npz.checks\n"
        "import npztui.circuit, npztui.catalog\n"
        "assert npztui.cli.main(['check', 'data/npz/precomputed/ptycho_sim_nphotons1e9.npz']) == 0\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
