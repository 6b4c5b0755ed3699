"""Read records, aggregate per cell, build the paper's tables and figures and a recommendation."""

from __future__ import annotations
