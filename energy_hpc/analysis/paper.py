"""The paper's published numbers (Tables B1–B5), shipped as reference data for side-by-side views."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import pandas as pd


@lru_cache(maxsize=1)
def _raw() -> dict:
    return json.loads((resources.files("energy_hpc.analysis") / "paper_reference.json").read_text())


def paper_reference(table: str | None = None) -> pd.DataFrame:
    """Rows of the paper's tables: model (our short name), dataset, cluster, energy, accuracy, duration."""
    frame = pd.DataFrame(_raw()["rows"])
    if table is not None:
        frame = frame[frame["table"] == table]
    return frame.reset_index(drop=True)


def display_name(model: str) -> str:
    return _raw()["display_names"].get(model, model)


def paper_cells(dataset: str) -> pd.DataFrame:
    """The paper's single-node Capella numbers for one dataset (B1 for fktg, B4/B5 otherwise)."""
    frame = paper_reference()
    frame = frame[(frame["dataset"] == dataset) & frame["table"].isin(["B1", "B4", "B5"])]
    return frame.reset_index(drop=True)
