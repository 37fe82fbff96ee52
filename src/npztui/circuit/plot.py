"""Nyquist and Bode plots of circuit spectra: shared series preparation + plotext rendering.

`nyquist_data` / `bode_data` turn spectra into plain `PlotData` (panels of
labelled x/y series with axis scales) that any front end can draw: `render`
draws it with plotext into a string for the CLI, and the TUI feeds the same
`PlotData` to textual-plotext. Nothing here imports Textual.

Nyquist: x = Re Z, y = −Im Z (capacitive arcs above the axis), both in Ω.
Bode: |Z| (Ω, log) and phase (degrees) against frequency (Hz, log).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

PLOT_KINDS = ("nyquist", "bode")


@dataclass(frozen=True)
class Curve:
    """One spectrum to plot: a label and its (F, 4) table [real, imag, magnitude, phase°]."""

    label: str
    spectrum: np.ndarray
    reference: bool = False


@dataclass(frozen=True)
class Series:
    label: str
    x: list[float]
    y: list[float]
    reference: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    xlabel: str
    ylabel: str
    series: list[Series]
    xlog: bool = False
    ylog: bool = False


@dataclass(frozen=True)
class PlotData:
    kind: str
    panels: list[Panel] = field(default_factory=list)


def _curves(curves: Sequence[Curve], reference: Curve | None) -> list[Curve]:
    # The reference is drawn first so the rows are painted over it.
    return ([reference] if reference is not None else []) + list(curves)


def _finite_xy(x: np.ndarray, y: np.ndarray, *, xpos: bool = False, ypos: bool = False) -> tuple[list[float], list[float]]:
    ok = np.isfinite(x) & np.isfinite(y)
    if xpos:
        ok &= x > 0
    if ypos:
        ok &= y > 0
    return x[ok].astype(float).tolist(), y[ok].astype(float).tolist()


def nyquist_data(curves: Sequence[Curve], reference: Curve | None = None) -> PlotData:
    series = []
    for c in _curves(curves, reference):
        s = np.asarray(c.spectrum, dtype=np.float64)
        x, y = _finite_xy(s[:, 0], -s[:, 1])
        series.append(Series(c.label, x, y, c.reference))
    return PlotData("nyquist", [Panel("Nyquist", "Re Z (Ω)", "−Im Z (Ω)", series)])


def bode_data(frequencies: np.ndarray, curves: Sequence[Curve], reference: Curve | None = None) -> PlotData:
    f = np.asarray(frequencies, dtype=np.float64)
    mag, phase = [], []
    for c in _curves(curves, reference):
        s = np.asarray(c.spectrum, dtype=np.float64)
        mag.append(Series(c.label, *_finite_xy(f, s[:, 2], xpos=True, ypos=True), c.reference))
        phase.append(Series(c.label, *_finite_xy(f, s[:, 3], xpos=True), c.reference))
    return PlotData(
        "bode",
        [
            Panel("Bode |Z|", "f (Hz)", "|Z| (Ω)", mag, xlog=True, ylog=True),
            Panel("Bode phase", "f (Hz)", "phase (°)", phase, xlog=True),
        ],
    )


def plot_data(kind: str, frequencies: np.ndarray, curves: Sequence[Curve], reference: Curve | None = None) -> PlotData:
    if kind == "nyquist":
        return nyquist_data(curves, reference)
    if kind == "bode":
        return bode_data(frequencies, curves, reference)
    raise ValueError(f"plot kind must be one of {', '.join(PLOT_KINDS)} (got {kind!r})")


def render(data: PlotData, width: int = 80, height: int = 24, *, color: bool = True) -> str:
    """Draw `data` with plotext into a string of `height` lines × `width` columns."""
    import plotext
    from plotext._figure import _figure_class  # a private, independent figure: no global state

    width, height = max(int(width), 20), max(int(height), 6 * len(data.panels))
    fig = _figure_class()
    fig._limit_size(False, False)  # honour the caller's size, not the terminal's
    fig.plot_size(width, height)
    fig.subplots(len(data.panels), 1)
    for i, panel in enumerate(data.panels, start=1):
        sub = fig.subplot(i, 1)
        sub.title(panel.title)
        sub.xlabel(panel.xlabel)
        sub.ylabel(panel.ylabel)
        drawn = False
        for s in panel.series:
            if not s.x:
                continue
            if s.reference:  # grey in colour; without colour a different marker tells it apart
                sub.plot(s.x, s.y, label=s.label, marker="braille" if color else "dot", color="gray")
            else:
                sub.plot(s.x, s.y, label=s.label, marker="braille")
            drawn = True
        if drawn:
            if panel.xlog:
                sub.xscale("log")
            if panel.ylog:
                sub.yscale("log")
    out = fig.build()
    return out if color else plotext.uncolorize(out)


def nyquist_plot(curves: Sequence[Curve], reference: Curve | None = None, width: int = 80, height: int = 24, *, color: bool = True) -> str:
    return render(nyquist_data(curves, reference), width, height, color=color)


def bode_plot(
    frequencies: np.ndarray,
    curves: Sequence[Curve],
    reference: Curve | None = None,
    width: int = 80,
    height: int = 24,
    *,
    color: bool = True,
) -> str:
    return render(bode_data(frequencies, curves, reference), width, height, color=color)


__all__ = [
    "PLOT_KINDS", "Curve", "Series", "Panel", "PlotData",
    "nyquist_data", "bode_data", "plot_data", "render", "nyquist_plot", "bode_plot",
]
