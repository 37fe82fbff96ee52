"""Engineering formatting (SI prefixes) and parsing of circuit quantities.

Formatting rounds the value's shortest decimal form half-up to three
significant digits (5005 Ω → `5.01 kΩ`, 25.05e-6 F → `25.1 µF`, 230 Ω →
`230 Ω`) — what a person reading a resistor's value expects, rather than
binary float rounding (5.005 is stored as 5.00499…).

Parsing accepts plain numbers (`5005`, `25.05e-6`), SI prefixes (`5k`,
`25.05u`, `25.05µ`, `25.05μ`, `1M`, `10m`) and an optional unit matching the
parameter (`5kΩ`, `5 kohm`, `25.05uF`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal

from .model import PARAM_NAMES, PARAM_UNITS, parameter_vector, validate_parameters

UNIT_SYMBOLS = {"ohm": "Ω", "farad": "F", "hertz": "Hz", "degree": "°", "second": "s"}
_ASCII_SYMBOLS = {"ohm": "ohm", "farad": "F", "hertz": "Hz", "degree": "deg", "second": "s"}

PREFIXES = {-12: "p", -9: "n", -6: "µ", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T"}
_ASCII_PREFIXES = {**PREFIXES, -6: "u"}
# prefix -> power of ten (applied in decimal, so 2.5u is exactly the float nearest 2.5e-6)
_PREFIX_EXPONENTS = {
    "p": -12, "n": -9, "u": -6, "µ": -6, "μ": -6, "m": -3,
    "": 0, "k": 3, "K": 3, "M": 6, "G": 9, "T": 12,
}
_UNIT_WORDS = {
    "ohm": ("Ω", "ω", "ohm", "ohms"),
    "farad": ("f", "farad", "farads"),
    "hertz": ("hz", "hertz"),
}
_NUMBER = re.compile(
    r"^\s*(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*"
    r"(?P<prefix>[pnuµμmkKMGT]?)\s*(?P<unit>[^\d\s.+-][^\s]*)?\s*$"
)


def format_si(value: float, unit: str = "", digits: int = 3, *, ascii: bool = False) -> str:
    """`value` with an SI prefix and `digits` significant digits: format_si(5005, "ohm") → '5.01 kΩ'."""
    symbol = (_ASCII_SYMBOLS if ascii else UNIT_SYMBOLS).get(unit, unit)
    prefixes = _ASCII_PREFIXES if ascii else PREFIXES
    suffix = f" {{}}{symbol}" if symbol else "{}"
    v = float(value)
    if not math.isfinite(v):
        return (f"{v}" + suffix.format("")).strip()
    if v == 0:
        return ("0" + suffix.format("")).rstrip()
    d = Decimal(repr(v))
    if not min(prefixes) <= d.adjusted() < max(prefixes) + 3:
        return (f"{v:.{digits - 1}e}" + suffix.format("")).rstrip()
    for _ in range(2):  # a second pass when rounding carries into the next prefix (999.96 → 1.00 k)
        e3 = max(min((d.adjusted() // 3) * 3, max(prefixes)), min(prefixes))
        mant = d.scaleb(-e3)
        q = mant.quantize(Decimal(1).scaleb(mant.adjusted() - digits + 1), rounding=ROUND_HALF_UP)
        if abs(q) < 1000 or e3 == max(prefixes):
            break
        d = q.scaleb(e3)
    if abs(q) >= 1000:
        return (f"{v:.{digits - 1}e}" + suffix.format("")).rstrip()
    text = f"{q:f}"
    return (text + suffix.format(prefixes[e3])).rstrip()


def format_parameter(name: str, value: float, digits: int = 3, *, ascii: bool = False) -> str:
    """A circuit parameter with its unit: format_parameter('Ca', 25.05e-6) → '25.1 µF'."""
    unit = PARAM_UNITS[PARAM_NAMES.index(name)]
    return format_si(value, unit, digits, ascii=ascii)


def format_parameters(params: Mapping[str, float], digits: int = 3, *, ascii: bool = False, sep: str = "  ") -> str:
    """'Rsh=5.01 kΩ  Ra=…' for a whole parameter row."""
    return sep.join(f"{n}={format_parameter(n, params[n], digits, ascii=ascii)}" for n in PARAM_NAMES if n in params)


def format_frequency(f: float, digits: int = 3, *, ascii: bool = False) -> str:
    return format_si(f, "hertz", digits, ascii=ascii)


def parse_quantity(text: str, unit: str | None = None) -> float:
    """'25.05u' / '25.05µF' / '5k' / '5 kΩ' / '2.5e-5' → float. `unit` (ohm, farad, hertz) checks a written unit."""
    m = _NUMBER.match(str(text))
    if not m:
        raise ValueError(f"not a number: {text!r}")
    prefix, written = m.group("prefix"), m.group("unit")
    value = float(Decimal(m.group("num")).scaleb(_PREFIX_EXPONENTS[prefix]))
    if written is not None:
        w = written.lower() if written not in ("Ω", "ω") else written
        owner = next((u for u, words in _UNIT_WORDS.items() if w in words), None)
        if owner is None:
            raise ValueError(f"unknown unit {written!r} in {text!r}")
        if unit is not None and owner != unit:
            raise ValueError(f"{text!r} is in {owner}, expected {unit}")
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text!r}")
    return value


def parse_assignments(text: str) -> list[tuple[str, str]]:
    """'Rsh=5005, Ra=5 k' → [('Rsh', '5005'), ('Ra', '5 k')], in order, duplicates kept.

    Items are separated by commas or semicolons, or by whitespace before the
    next NAME= (so values may contain a space: `Ra=5 kΩ`).
    """
    out: list[tuple[str, str]] = []
    for piece in re.split(r"[,;]", str(text)):
        for item in re.split(r"\s+(?=[A-Za-z_]\w*\s*=)", piece.strip()):
            if not item:
                continue
            if "=" not in item:
                raise ValueError(f"expected NAME=VALUE, got {item!r}")
            k, v = item.split("=", 1)
            out.append((k.strip(), v.strip()))
    return out


def parse_reference(text: str, defaults: Mapping[str, float] | None = None) -> dict[str, float]:
    """Parse `--ref Rsh=5005,Ra=5005,Ca=25.05e-6,Rb=5005,Cb=25.05e-6` (names case-insensitive).

    Every parameter is required unless `defaults` supplies the missing ones.
    Raises ValueError with a message naming the offending parameter.
    """
    by_lower = {n.lower(): n for n in PARAM_NAMES}
    values: dict[str, float] = {}
    for key, raw in parse_assignments(text):
        name = by_lower.get(key.lower())
        if name is None:
            raise ValueError(f"unknown circuit parameter {key!r} (expected {', '.join(PARAM_NAMES)})")
        if name in values:
            raise ValueError(f"{name} given twice")
        unit = PARAM_UNITS[PARAM_NAMES.index(name)]
        try:
            values[name] = parse_quantity(raw, unit)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    if defaults is not None:
        values = {**{k: float(v) for k, v in defaults.items()}, **values}
    missing = [n for n in PARAM_NAMES if n not in values]
    if missing:
        raise ValueError(f"missing circuit parameter(s): {', '.join(missing)}")
    validate_parameters(parameter_vector(values))
    return {n: values[n] for n in PARAM_NAMES}


__all__ = [
    "format_si", "format_parameter", "format_parameters", "format_frequency",
    "parse_quantity", "parse_assignments", "parse_reference", "UNIT_SYMBOLS", "PREFIXES",
]
