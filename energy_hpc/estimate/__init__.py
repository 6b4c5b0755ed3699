"""Estimates of a cell's cost before it runs and ``python -m energy_hpc.estimate``.

By source: ``calibrated.py`` (earlier records), the model kinds' own (first principles for LLMs,
``llm.py``, with their output-token ranges; adapted encoders, ``adapted.py``; a rule of thumb for
the traditional pipelines, ``traditional.py``) and ``rough.py`` (the generous rule of thumb
packing fills jobs by when nothing estimates a cell). ``whole_cell.py`` makes a pass and a fit
into the whole cell; ``cost.py`` picks the best source and shows it (plan lines, totals, CSV,
record columns); ``values.py`` is what an estimate is.
"""

from __future__ import annotations

from energy_hpc.estimate.calibrated import from_records, records_for
from energy_hpc.estimate.cost import (
    CSV_COLUMNS,
    csv_row,
    estimate,
    from_kind,
    record_columns,
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
from energy_hpc.estimate.values import Estimate, FitGuess, PassGuess, midpoint
from energy_hpc.estimate.whole_cell import GPU_LOAD

__all__ = ["CSV_COLUMNS", "GPU_LOAD", "OUTPUT_TOKENS", "REQUEST_S", "U_DECODE", "U_PREFILL",
           "Estimate", "FitGuess", "PassGuess", "csv_row", "estimate", "first_principles_pass",
           "from_first_principles", "from_kind", "from_records", "midpoint", "record_columns",
           "records_for", "total", "with_estimates", "write_csv"]
