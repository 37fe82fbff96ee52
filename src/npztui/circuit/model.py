"""The equivalent-circuit impedance model (SPEC §5), vectorised over rows and frequencies.

Circuit: a shunt resistor Rsh in parallel with two RC branches in series
(each branch a resistor R in parallel with a capacitor C)::

    ω  = 2πf
    Za = Ra / (1 + jωRaCa)
    Zb = Rb / (1 + jωRbCb)
    Z  = Rsh (Za + Zb) / (Rsh + Za + Zb)

resnorm = mean over frequencies of |Z − Zref|.

Everything here works on float64 / complex128 arrays of any leading shape:
`params` is (..., 5) in the order [Rsh, Ra, Ca, Rb, Cb] and the result has
shape (..., F). The grid computation uses a faster, table-driven evaluation of
the same formula (`compute.GridEvaluator`); this module is the readable
reference both are tested against.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

PARAM_NAMES: tuple[str, ...] = ("Rsh", "Ra", "Ca", "Rb", "Cb")
PARAM_UNITS: tuple[str, ...] = ("ohm", "ohm", "farad", "ohm", "farad")
SPECTRUM_COLUMNS: tuple[str, ...] = ("real", "imag", "magnitude", "phase")
N_PARAMS = len(PARAM_NAMES)

RESISTANCE_RANGE: tuple[float, float] = (10.0, 10_000.0)
CAPACITANCE_RANGE: tuple[float, float] = (0.1e-6, 50e-6)
DEFAULT_RANGES: dict[str, tuple[float, float]] = {
    "Rsh": RESISTANCE_RANGE,
    "Ra": RESISTANCE_RANGE,
    "Ca": CAPACITANCE_RANGE,
    "Rb": RESISTANCE_RANGE,
    "Cb": CAPACITANCE_RANGE,
}

DEFAULT_FREQ_MIN = 0.1
DEFAULT_FREQ_MAX = 100_000.0
DEFAULT_N_FREQUENCIES = 100
DEFAULT_GRID_SIZE = 5

# The producers' reference model (fixtures/README.md). Used when neither the
# caller nor the file says which reference a resnorm was measured against.
DEFAULT_REFERENCE: dict[str, float] = {
    "Rsh": 5005.0,
    "Ra": 5005.0,
    "Ca": 25.05e-6,
    "Rb": 5005.0,
    "Cb": 25.05e-6,
}


def frequencies(
    freq_min: float = DEFAULT_FREQ_MIN,
    freq_max: float = DEFAULT_FREQ_MAX,
    n: int = DEFAULT_N_FREQUENCIES,
) -> np.ndarray:
    """`n` log-spaced frequencies from `freq_min` to `freq_max` Hz (float64, both ends included)."""
    validate_frequencies(freq_min, freq_max, n)
    return np.logspace(math.log10(freq_min), math.log10(freq_max), int(n))


def validate_frequencies(freq_min: float, freq_max: float, n: int) -> None:
    if not (math.isfinite(freq_min) and math.isfinite(freq_max)) or freq_min <= 0 or freq_max <= 0:
        raise ValueError(f"frequencies must be positive and finite (got {freq_min:g}..{freq_max:g} Hz)")
    if freq_max < freq_min:
        raise ValueError(f"freq_max ({freq_max:g} Hz) is below freq_min ({freq_min:g} Hz)")
    if int(n) != n or n < 1:
        raise ValueError(f"the number of frequencies must be a positive integer (got {n})")
    if n > 1 and freq_max == freq_min:
        raise ValueError("several frequencies need freq_max > freq_min")


def parameter_vector(params: Mapping[str, float] | Sequence[float] | np.ndarray) -> np.ndarray:
    """[Rsh, Ra, Ca, Rb, Cb] as a float64 vector from a mapping (by name) or a sequence (by order)."""
    if isinstance(params, Mapping):
        missing = [n for n in PARAM_NAMES if n not in params]
        if missing:
            raise ValueError(f"missing circuit parameter(s): {', '.join(missing)}")
        unknown = [k for k in params if k not in PARAM_NAMES]
        if unknown:
            raise ValueError(f"unknown circuit parameter(s): {', '.join(map(str, unknown))}")
        vec = np.array([float(params[n]) for n in PARAM_NAMES], dtype=np.float64)
    else:
        vec = np.asarray(params, dtype=np.float64).reshape(-1)
        if vec.shape != (N_PARAMS,):
            raise ValueError(f"expected {N_PARAMS} circuit parameters, got {vec.size}")
    return vec


def parameter_dict(vec: Sequence[float] | np.ndarray) -> dict[str, float]:
    """{name: value} (Python floats) for one parameter row."""
    v = np.asarray(vec, dtype=np.float64).reshape(-1)
    return {n: float(x) for n, x in zip(PARAM_NAMES, v, strict=True)}


def validate_parameters(vec: np.ndarray) -> None:
    """Physical values only: finite, resistances > 0, capacitances ≥ 0."""
    v = parameter_vector(vec)
    for name, unit, x in zip(PARAM_NAMES, PARAM_UNITS, v, strict=True):
        if not math.isfinite(x):
            raise ValueError(f"{name} must be finite (got {x})")
        if unit == "ohm" and x <= 0:
            raise ValueError(f"{name} must be a positive resistance (got {x:g} Ω)")
        if unit == "farad" and x < 0:
            raise ValueError(f"{name} must be a non-negative capacitance (got {x:g} F)")


def impedance(params, freqs) -> np.ndarray:
    """Complex impedance Z for parameter rows (..., 5) at frequencies (F,) → (..., F) complex128."""
    p = np.asarray(params, dtype=np.float64)
    if p.shape[-1:] != (N_PARAMS,):
        raise ValueError(f"parameters must have a last axis of {N_PARAMS}, got shape {p.shape}")
    w = 2.0 * np.pi * np.asarray(freqs, dtype=np.float64)
    rsh, ra, ca, rb, cb = (p[..., i, None] for i in range(N_PARAMS))
    za = ra / (1.0 + 1j * w * ra * ca)
    zb = rb / (1.0 + 1j * w * rb * cb)
    s = za + zb
    return rsh * s / (rsh + s)


def reference_impedance(reference: Mapping[str, float] | Sequence[float], freqs) -> np.ndarray:
    """Zref (F,) complex128 for a reference parameter set."""
    return impedance(parameter_vector(reference), freqs)


def resnorm(params, freqs, z_ref: np.ndarray) -> np.ndarray:
    """mean_f |Z(params, f) − Zref(f)| → (...,) float64. `z_ref` is (F,) complex (see `reference_impedance`)."""
    z = impedance(params, freqs)
    return np.abs(z - np.asarray(z_ref)).mean(axis=-1)


def spectrum_columns(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(..., F) complex → (..., F, 4) [real, imag, magnitude, phase in degrees]."""
    z = np.asarray(z)
    if out is None:
        out = np.empty(z.shape + (4,), dtype=np.float64)
    out[..., 0] = z.real
    out[..., 1] = z.imag
    out[..., 2] = np.abs(z)
    out[..., 3] = np.degrees(np.angle(z))
    return out


def spectrum(params, freqs) -> np.ndarray:
    """Spectrum table (..., F, 4) float64 for parameter rows, columns as `SPECTRUM_COLUMNS`."""
    return spectrum_columns(impedance(params, freqs))


def dc_limit(params) -> np.ndarray:
    """Z at f → 0 (capacitors open): Rsh (Ra + Rb) / (Rsh + Ra + Rb)."""
    p = np.asarray(params, dtype=np.float64)
    rsh, ra, rb = p[..., 0], p[..., 1], p[..., 3]
    return rsh * (ra + rb) / (rsh + ra + rb)


__all__ = [
    "PARAM_NAMES", "PARAM_UNITS", "SPECTRUM_COLUMNS", "N_PARAMS",
    "RESISTANCE_RANGE", "CAPACITANCE_RANGE", "DEFAULT_RANGES",
    "DEFAULT_FREQ_MIN", "DEFAULT_FREQ_MAX", "DEFAULT_N_FREQUENCIES", "DEFAULT_GRID_SIZE",
    "DEFAULT_REFERENCE",
    "frequencies", "validate_frequencies", "parameter_vector", "parameter_dict", "validate_parameters",
    "impedance", "reference_impedance", "resnorm", "spectrum_columns", "spectrum", "dc_limit",
]
