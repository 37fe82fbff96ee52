"""The finding record and the catalogue of rules it can come from.

Kept apart from `checks` so metadata discovery can report problems it meets
(an unsafe pickle, invalid JSON) without importing the rule engine. The rule
texts are what the TUI's Findings pane shows to explain a finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEVERITIES = ("error", "warning", "info")

# code -> (default severity, what the rule means)
RULES: dict[str, tuple[str, str]] = {
    "META_MISSING": ("warning", "No metadata member found: a legacy file. `npztui meta migrate` adds v1 metadata."),
    "META_INVALID": ("error", "Metadata is present but is not valid JSON, not a JSON object, or too large."),
    "META_SCHEMA": ("warning", "Unknown schema_version, or a known key has the wrong type."),
    "META_LEGACY": ("info", "Metadata uses a legacy layout without schema_version; `npztui meta migrate` converts it."),
    "UNSAFE_PICKLE": ("error", "The metadata pickle refers to something outside the allowed plain-data set. Nothing was executed."),
    "PTY_N_SHAPE": ("error", "Metadata N differs from the diffraction patch size (the last two spatial axes)."),
    "PTY_COORDS_LEN": ("error", "len(xcoords) or len(ycoords) differs from the number of diffraction patterns."),
    "PTY_ARRAY_SHAPES": ("error", "Y or probeGuess shapes disagree with the diffraction patterns and N."),
    "PTY_NPHOTONS": ("warning", "nphotons is missing (1e9 assumed: warning) or not a positive number (error)."),
    "PTY_GRIDSIZE": ("error", "gridsize is not a positive integer, or the channel count of 4-d diffraction is not gridsize²."),
    "CIRC_ROWS": ("error", "n_parameter_sets differs from the rows present (error); grid_size⁵ differs (partial grid: warning)."),
    "CIRC_FREQS": ("error", "n_frequencies, freq_min or freq_max disagree with the `frequencies` array (rel 1e-3)."),
    "CIRC_SPECTRUM_SHAPE": ("error", "spectrum is not (rows, n_frequencies, 4) [real, imag, magnitude, phase]."),
    "CIRC_BEST_RESNORM": ("warning", "best_resnorm in metadata differs from min(resnorms) (rel 1e-5)."),
    "CIRC_UNSORTED": ("info", "resnorms are not ascending; rank order is computed instead of read."),
    "CIRC_SPECTRUM_STORED": ("warning", "A stored spectrum row disagrees with the model recomputed from its parameters (rel 1e-3)."),
    "NONFINITE": ("warning", "NaN or infinity found in the data (only with --deep, which reads the arrays)."),
    "EXPECT_MISMATCH": ("error", "A metadata value differs from the expectation given with --expect / --expect-file."),
    "CONFIG_MISMATCH": ("error", "The file disagrees with the circuit configuration it is linked to in the catalog."),
    "SET_INCONSISTENT": ("error", "Files checked together as a set (--consistent, merge) disagree on a parameter."),
}


@dataclass(frozen=True)
class Finding:
    """One problem (or note) about a file, with enough context to act on it."""

    code: str
    severity: str
    message: str
    key: str | None = None
    expected: Any = None
    actual: Any = None

    @classmethod
    def make(cls, code: str, message: str, *, severity: str | None = None, **kw: Any) -> Finding:
        return cls(code, severity or RULES[code][0], message, **kw)

    @property
    def explanation(self) -> str:
        return RULES.get(self.code, ("", ""))[1]

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "key": self.key,
            "expected": _jsonable(self.expected),
            "actual": _jsonable(self.actual),
        }


def _jsonable(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 13_000:
        # past ~3900 digits json.dumps (int -> str) refuses; keep the finding printable
        return f"<a {int(v.bit_length() * 0.30103) + 1}-digit integer>"
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if hasattr(v, "item"):
        try:
            return v.item()
        except (ValueError, AttributeError):
            pass
    return str(v)
