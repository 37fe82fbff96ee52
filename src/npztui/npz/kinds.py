"""Recognising what a file holds from its array names and shapes alone.

Recognition is header-only so the dataset list can show a kind for every file
without reading data. The names are the producers' contracts (SPEC §1, §5).
"""

from __future__ import annotations

from .reader import NpzInfo

CIRCUIT = "circuit"
PTYCHO = "ptycho"
GENERIC = "generic"
KINDS = (CIRCUIT, PTYCHO, GENERIC)

RESNORM_NAMES = ("resnorms", "resnorm")
DIFFRACTION_NAMES = ("diffraction", "diff3d")


def resnorm_name(info: NpzInfo) -> str | None:
    return next((n for n in RESNORM_NAMES if n in info), None)


def diffraction_name(info: NpzInfo) -> str | None:
    return next((n for n in DIFFRACTION_NAMES if n in info), None)


def detect_kind(info: NpzInfo) -> str:
    """circuit: a (rows, 5) `parameters` with `resnorms`; ptycho: `diffraction`/`diff3d` of 3-4 dims."""
    params = info.array("parameters")
    if params is not None and resnorm_name(info) and len(params.shape) == 2 and params.shape[1] == 5:
        return CIRCUIT
    d = diffraction_name(info)
    if d is not None and len(info.array(d).shape) in (3, 4):
        return PTYCHO
    return GENERIC


def row_count(info: NpzInfo, kind: str) -> int | None:
    """The number of "rows" a user thinks of: models for circuit, patterns for ptycho."""
    if kind == CIRCUIT:
        return info.array("parameters").shape[0]
    if kind == PTYCHO:
        return info.array(diffraction_name(info)).shape[0]
    firsts = {a.shape[0] for a in info.arrays if a.shape and not a.name.startswith("_")}
    return firsts.pop() if len(firsts) == 1 else None
