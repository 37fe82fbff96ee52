"""Checks applied before anything is written, with errors a form can show.

The database has the same rules as CHECK constraints (so a pulled or hand-made
row cannot break them either); checking here first gives a clear message and
the name of the offending field instead of "CHECK constraint failed".
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .errors import ValidationError
from .schema import RUN_STATUSES, STORAGE_LOCATIONS
from .util import dumps


def quality(value: Any) -> float | None:
    """quality_score: None or a finite number in [0, 1]."""
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        q = float(value)
    except (TypeError, ValueError):
        raise ValidationError(
            f"quality_score must be a number between 0 and 1, got {value!r}", field="quality_score", value=value
        ) from None
    if not math.isfinite(q) or not 0.0 <= q <= 1.0:
        raise ValidationError(
            f"quality_score must be between 0 and 1, got {value!r}", field="quality_score", value=value
        )
    return q


def text(value: Any, field: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValidationError(f"{field} must be a non-empty string, got {value!r}", field=field, value=value)
    return value


def integer(value: Any, field: str, *, minimum: int | None = None, required: bool = False) -> int | None:
    if value is None:
        if required:
            raise ValidationError(f"{field} is required", field=field)
        return None
    if isinstance(value, bool):
        raise ValidationError(f"{field} must be an integer, got {value!r}", field=field, value=value)
    try:
        i = int(value)
        if i != value and not isinstance(value, str):
            raise ValueError
    except (TypeError, ValueError):
        raise ValidationError(f"{field} must be an integer, got {value!r}", field=field, value=value) from None
    if minimum is not None and i < minimum:
        raise ValidationError(f"{field} must be ≥ {minimum}, got {value!r}", field=field, value=value)
    return i


def number(value: Any, field: str, *, positive: bool = False, finite: bool = False) -> float | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        f = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{field} must be a number, got {value!r}", field=field, value=value) from None
    if math.isnan(f) and not (finite or positive):
        return None  # "no value": SQLite stores NaN as NULL anyway, so say so on both sides
    if (finite or positive) and not math.isfinite(f):
        raise ValidationError(f"{field} must be finite, got {value!r}", field=field, value=value)
    if positive and f <= 0:
        raise ValidationError(f"{field} must be > 0, got {value!r}", field=field, value=value)
    return f


def freq_range(min_freq: Any, max_freq: Any, prefix: str = "") -> tuple[float, float]:
    lo = number(min_freq, f"{prefix}min_freq", positive=True)
    hi = number(max_freq, f"{prefix}max_freq", positive=True)
    assert lo is not None and hi is not None
    if hi <= lo:
        raise ValidationError(
            f"{prefix}max_freq ({hi:g}) must be greater than {prefix}min_freq ({lo:g})", field=f"{prefix}max_freq"
        )
    return lo, hi


def storage_location(value: Any) -> str:
    if value not in STORAGE_LOCATIONS:
        raise ValidationError(
            f"storage_location must be one of {', '.join(STORAGE_LOCATIONS)}, got {value!r}",
            field="storage_location", value=value,
        )
    return str(value)


def run_status(value: Any) -> str:
    if value not in RUN_STATUSES:
        raise ValidationError(
            f"run status must be one of {', '.join(RUN_STATUSES)}, got {value!r}", field="status", value=value
        )
    return str(value)


def _plain(value: Any) -> Any:
    """The value exactly as it will read back: numpy values as lists/numbers, NaN as null.

    Comparing a fresh scan record with the stored row must be exact (an
    unchanged rescan writes nothing); NaN != NaN and numpy arrays compare
    element-wise, so records are normalised through JSON first.
    """
    return json.loads(dumps(value))


def json_object(value: Any, field: str, *, allow_none: bool = False) -> Any:
    if value is None:
        if allow_none:
            return None
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"{field} must be a JSON object (dict), got {type(value).__name__}", field=field)
    return _plain(dict(value))


def json_list(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise ValidationError(f"{field} must be a list, got {type(value).__name__}", field=field)
    return _plain(list(value))
