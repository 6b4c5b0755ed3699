"""Estimates of a cell's cost before it runs and ``python -m energy_hpc.estimate``.

``cost.py`` makes a pass and a fit into the whole cell (and calibrates from records); each model
kind brings its own pass and fit estimates (``llm.py``, ``traditional.py``, ``adapted.py``).
"""

from __future__ import annotations

from energy_hpc.estimate.cost import (
    CSV_COLUMNS,
    GPU_LOAD,
    Estimate,
    FitGuess,
    PassGuess,
    csv_row,
    estimate,
    from_kind,
    from_records,
    midpoint,
    record_columns,
    records_for,
    total,
    with_estimates,
    write_csv,
)
from energy_hpc.estimate.llm import (
    OUTPUT_TOKENS,
    REQUEST_S,
    U_DECODE,
    U_PREFILL,
    first_principles_pass,
    from_first_principles,
)

__all__ = ["CSV_COLUMNS", "GPU_LOAD", "OUTPUT_TOKENS", "REQUEST_S", "U_DECODE", "U_PREFILL",
           "Estimate", "FitGuess", "PassGuess", "csv_row", "estimate", "first_principles_pass",
           "from_first_principles", "from_kind", "from_records", "midpoint", "record_columns",
           "records_for", "total", "with_estimates", "write_csv"]
