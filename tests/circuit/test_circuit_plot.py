"""Plot data preparation and plotext rendering (no Textual)."""

from __future__ import annotations

import numpy as np
import pytest

from npztui.circuit import model
from npztui.circuit.plot import Curve, bode_data, bode_plot, nyquist_data, nyquist_plot, plot_data, render

F = model.frequencies(0.1, 1e5, 40)
ROW = Curve("rank 1", model.spectrum([1000.0, 200.0, 1e-6, 300.0, 2e-6], F))
REF = Curve("reference", model.spectrum(model.parameter_vector(model.DEFAULT_REFERENCE), F), reference=True)


def test_nyquist_series():
    d = nyquist_data([ROW], REF)
    [panel] = d.panels
    assert [s.label for s in panel.series] == ["reference", "rank 1"]  # reference drawn underneath
    assert panel.series[0].reference and not panel.series[1].reference
    s = panel.series[1]
    np.testing.assert_allclose(s.x, ROW.spectrum[:, 0])
    np.testing.assert_allclose(s.y, -ROW.spectrum[:, 1])
    assert min(s.y) >= 0  # capacitive arcs sit above the axis


def test_bode_series_drop_points_a_log_axis_cannot_show():
    spec = ROW.spectrum.copy()
    spec[3, 2] = 0.0
    spec[5, 3] = np.nan
    d = bode_data(F, [Curve("x", spec)])
    mag, phase = d.panels
    assert mag.xlog and mag.ylog and phase.xlog and not phase.ylog
    assert len(mag.series[0].x) == 39 and len(phase.series[0].x) == 39
    assert all(y > 0 for y in mag.series[0].y)
    assert d.kind == "bode" and plot_data("bode", F, [ROW]).kind == "bode"
    with pytest.raises(ValueError):
        plot_data("polar", F, [ROW])


@pytest.mark.parametrize(("kind", "width", "height"), [("nyquist", 70, 20), ("bode", 100, 30), ("nyquist", 40, 12)])
def test_render_honours_the_size(kind, width, height):
    text = render(plot_data(kind, F, [ROW], REF), width, height, color=False)
    lines = text.splitlines()
    assert len(lines) == height
    assert all(len(line) == width for line in lines)
    assert "reference" in text and "rank 1" in text
    assert "\x1b[" not in text
    if kind == "bode":
        assert "Bode |Z|" in text and "Bode phase" in text
    else:
        assert "Nyquist" in text


def test_colour_and_no_global_state():
    coloured = nyquist_plot([ROW], REF, 60, 16)
    assert "\x1b[" in coloured
    a = bode_plot(F, [ROW], REF, 60, 24, color=False)
    import plotext  # a caller's use of the global plotext figure must not leak into ours

    plotext.plotsize(10, 5)
    plotext.xscale("log")
    assert bode_plot(F, [ROW], REF, 60, 24, color=False) == a


def test_plot_module_does_not_import_textual():
    import npztui.circuit.plot as plot

    src = open(plot.__file__).read()
    assert "textual" not in src.replace("textual-plotext", "").replace("Textual", "")
