"""Estimates of a cell's cost before it runs (``cost.py``) and ``python -m energy_hpc.estimate``."""

from __future__ import annotations

from energy_hpc.estimate.cost import (
    CSV_COLUMNS,
    GPU_LOAD,
    OUTPUT_TOKENS,
    REQUEST_S,
    U_DECODE,
    U_PREFILL,
    Estimate,
    csv_row,
    estimate,
    first_principles_pass,
    from_first_principles,
    from_records,
    midpoint,
    record_columns,
    records_for,
    total,
    with_estimates,
    write_csv,
)

__all__ = ["CSV_COLUMNS", "GPU_LOAD", "OUTPUT_TOKENS", "REQUEST_S", "U_DECODE", "U_PREFILL",
           "Estimate", "csv_row", "estimate", "first_principles_pass", "from_first_principles",
           "from_records", "midpoint", "record_columns", "records_for", "total", "with_estimates", "write_csv"]
