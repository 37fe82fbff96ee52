"""The Plot pane: impedance spectra with textual-plotext, ptycho images as a heatmap.

`SpectrumPlot.show_plot` takes the service's plot data (panels of labelled
x/y series with axis scales, Nyquist or Bode) and draws each panel as a
plotext subplot; the reference curve is drawn first, in a muted colour, so
the rows are painted over it. `Heatmap` draws a 2-d float array with
half-block characters (two pixels per cell), scaled to the pane.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.color import Color
from textual.containers import Vertical
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Static
from textual_plotext import PlotextPlot

SERIES_VARIABLES = ("accent", "primary", "success", "secondary", "warning", "error")


def _rgb(color: str | None, fallback: tuple[int, int, int]) -> tuple[int, int, int]:
    try:
        return Color.parse(color).rgb if color else fallback
    except Exception:  # noqa: BLE001 - a theme variable that is not a colour
        return fallback


class SpectrumPlot(PlotextPlot):
    """Draws panels of series; keeps the data so a resize or theme change redraws it."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._data: Any | None = None

    @property
    def data(self) -> Any | None:
        return self._data

    def show_plot(self, data: Any | None) -> None:
        self._data = data
        self._draw()
        self.refresh()

    def _series_colors(self) -> tuple[tuple[int, int, int], list[tuple[int, int, int]]]:
        v = self.app.theme_variables if self.is_mounted else {}
        muted = _rgb(v.get("foreground-muted") or v.get("text-muted"), (140, 140, 140))
        colors = [_rgb(v.get(name), (200, 200, 200)) for name in SERIES_VARIABLES]
        return muted, colors

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_figure()
        data = self._data
        if data is None or not getattr(data, "panels", None):
            return
        muted, colors = self._series_colors()
        panels = list(data.panels)
        plt.subplots(len(panels), 1)
        for i, panel in enumerate(panels, start=1):
            sub = plt.subplot(i, 1)
            sub.title(panel.title)
            sub.xlabel(panel.xlabel)
            sub.ylabel(panel.ylabel)
            drawn = False
            n = 0
            for s in panel.series:
                if not s.x:
                    continue
                if s.reference:
                    sub.plot(list(s.x), list(s.y), label=str(s.label), marker="dot", color=muted)
                else:
                    sub.plot(list(s.x), list(s.y), label=str(s.label), marker="braille", color=colors[n % len(colors)])
                    n += 1
                drawn = True
            if drawn:
                if getattr(panel, "xlog", False):
                    sub.xscale("log")
                if getattr(panel, "ylog", False):
                    sub.yscale("log")

    def render(self):
        # subplots are re-laid out for the current size on every render
        if self._data is not None:
            self._draw()
        return super().render()


class Heatmap(Widget):
    """A 2-d array as colour, two vertical pixels per cell (▀ with fg/bg)."""

    DEFAULT_CSS = """
    Heatmap {
        width: 1fr;
        height: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._image: np.ndarray | None = None
        self._cache: tuple[tuple[int, int], list[Strip]] | None = None

    def show_image(self, image: np.ndarray | None, *, log: bool = False) -> None:
        """Show a 2-d array (complex: its amplitude); `log` compresses a wide dynamic range."""
        if image is not None:
            image = np.asarray(image)
            image = np.abs(image) if np.iscomplexobj(image) else image.astype(np.float64, copy=False)
            if log:
                image = np.log1p(np.clip(image, 0, None))
        self._image = image
        self._cache = None
        self.refresh()

    def _scaled(self, width: int, height: int) -> np.ndarray | None:
        img = self._image
        if img is None or img.ndim != 2 or img.size == 0 or width < 1 or height < 1:
            return None
        rows, cols = img.shape
        # keep the aspect ratio: a cell is about twice as tall as wide, we draw 2 px per cell
        scale = min(width / cols, (2 * height) / rows)
        out_w = max(1, min(width, int(cols * scale)))
        out_h = max(2, min(2 * height, int(rows * scale)))
        yi = (np.arange(out_h) * rows / out_h).astype(int)
        xi = (np.arange(out_w) * cols / out_w).astype(int)
        sub = img[np.ix_(yi, xi)]
        finite = np.isfinite(sub)
        if not finite.any():
            return np.zeros_like(sub)
        lo, hi = float(np.min(sub[finite])), float(np.max(sub[finite]))
        norm = (sub - lo) / (hi - lo) if hi > lo else np.zeros_like(sub)
        return np.where(finite, norm, 0.0)

    def _palette(self) -> tuple[np.ndarray, np.ndarray]:
        v = self.app.theme_variables
        low = np.array(_rgb(v.get("surface"), (0, 0, 0)), dtype=float)
        high = np.array(_rgb(v.get("accent"), (255, 200, 0)), dtype=float)
        return low, high

    def _strips(self) -> list[Strip]:
        width, height = self.size
        if self._cache is not None and self._cache[0] == (width, height):
            return self._cache[1]
        norm = self._scaled(width, height)
        strips: list[Strip] = []
        if norm is not None:
            low, high = self._palette()
            rgb = (low + norm[..., None] * (high - low)).astype(int)
            if rgb.shape[0] % 2:
                rgb = np.concatenate([rgb, rgb[-1:]], axis=0)
            pad = width - rgb.shape[1]
            for y in range(0, rgb.shape[0], 2):
                top, bottom = rgb[y], rgb[y + 1]
                segs = [
                    Segment("▀", Style.from_color(_color(top[x]), _color(bottom[x])))
                    for x in range(rgb.shape[1])
                ]
                if pad > 0:
                    segs.append(Segment(" " * pad))
                strips.append(Strip(segs, width))
        self._cache = ((width, height), strips)
        return strips

    def render_line(self, y: int) -> Strip:
        strips = self._strips()
        if y < len(strips):
            return strips[y]
        return Strip.blank(self.size.width, self.rich_style)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache = None


def _color(rgb: Sequence[int]):
    from rich.color import Color as RichColor

    return RichColor.from_rgb(int(rgb[0]), int(rgb[1]), int(rgb[2]))


class PlotPane(Vertical, can_focus=True):
    """Caption + either the spectrum plot, the heatmap, or a message.

    Focusable: `j`/`k` (↓/↑) post `Step`, which the app turns into "plot the
    next/previous result row" (circuit) or "the next/previous pattern" (ptycho).
    """

    BINDINGS = [
        Binding("down,j", "step(1)", "Next row / pattern", show=False),
        Binding("up,k", "step(-1)", "Previous row / pattern", show=False),
    ]

    class Step(Message):
        def __init__(self, delta: int) -> None:
            super().__init__()
            self.delta = delta

    def action_step(self, delta: int) -> None:
        self.post_message(self.Step(delta))

    def compose(self) -> ComposeResult:
        yield Static(Text("Open a dataset to plot it."), id="plot-caption", classes="pane-caption")
        with ContentSwitcher(initial="plot-message", id="plot-switcher"):
            yield Static(Text(""), id="plot-message")
            yield SpectrumPlot(id="plot-spectrum")
            yield Heatmap(id="plot-heatmap")

    def show_message(self, message: str, caption: str | None = None) -> None:
        self.query_one("#plot-message", Static).update(Text(message, style="italic"))
        if caption is not None:
            self.query_one("#plot-caption", Static).update(Text(caption))
        self.query_one(ContentSwitcher).current = "plot-message"

    def show_spectra(self, data: Any, caption: Text | str) -> None:
        self.query_one("#plot-caption", Static).update(caption if isinstance(caption, Text) else Text(caption))
        self.query_one(SpectrumPlot).show_plot(data)
        self.query_one(ContentSwitcher).current = "plot-spectrum"

    def show_image(self, image: np.ndarray, caption: Text | str, *, log: bool = False) -> None:
        self.query_one("#plot-caption", Static).update(caption if isinstance(caption, Text) else Text(caption))
        self.query_one(Heatmap).show_image(image, log=log)
        self.query_one(ContentSwitcher).current = "plot-heatmap"
