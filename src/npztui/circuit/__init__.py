"""Circuit impedance domain: model, grid computation, ranking, spectra and terminal plots (SPEC §5).

Imports only the format layer (`npztui.npz`); plotext is imported lazily by
`plot.render`, so importing this package stays cheap.
"""

from .compute import ComputeConfig, ComputeProgress, ComputeResult, SpectrumMode, compute_grid, output_filename
from .model import (
    DEFAULT_REFERENCE,
    PARAM_NAMES,
    PARAM_UNITS,
    SPECTRUM_COLUMNS,
    frequencies,
    impedance,
    resnorm,
    spectrum,
)
from .ranking import NotCircuitError, RankedRow, RankingResult, best, row_for_rank, search
from .spectrum import RowSpectrum, StoredComparison, row_spectrum
from .units import format_parameter, format_parameters, format_si, parse_quantity, parse_reference

__all__ = [
    "ComputeConfig", "ComputeProgress", "ComputeResult", "SpectrumMode", "compute_grid", "output_filename",
    "DEFAULT_REFERENCE", "PARAM_NAMES", "PARAM_UNITS", "SPECTRUM_COLUMNS",
    "frequencies", "impedance", "resnorm", "spectrum",
    "NotCircuitError", "RankedRow", "RankingResult", "best", "row_for_rank", "search",
    "RowSpectrum", "StoredComparison", "row_spectrum",
    "format_parameter", "format_parameters", "format_si", "parse_quantity", "parse_reference",
]
