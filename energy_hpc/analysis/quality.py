"""How good each measurement is: counted or modelled, long enough for its meter, meters agreeing.

Per split (:func:`split_quality`): the share of the energy that is **modelled** (CodeCarbon's CPU
load × TDP or constant, its RAM model, the paper's 0.375 W/GB) rather than **counted** (RAPL,
NVML's energy counter or power sampling, CodeCarbon reading RAPL or NVML); the window against the
meter's resolution and CodeCarbon's sampling interval; the samples CodeCarbon took; the idle
share when the baseline is on. Per cell (:func:`cell_grades`): ``counted`` (nothing modelled),
``modelled`` (nothing counted) or ``partly modelled``. When several meters ran in one cell,
:func:`meter_agreement` gives their ratio per part (GPU: NVML vs CodeCarbon; CPU: RAPL vs
CodeCarbon) and flags a disagreement past ``AGREEMENT_TOLERANCE``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from energy_hpc import columns as col

COUNTED_MARKS = ("rapl", "nvml", "power_gadget", "powermetrics")
PARTS = ("cpu", "gpu", "ram")
AGREEMENT_TOLERANCE = 0.10
GRADES = ("counted", "partly modelled", "modelled")
# the other meter of each part's comparison, against CodeCarbon
COMPARED = {"gpu": "nvml", "cpu": "rapl", "ram": "rapl"}


def is_counted(method: Any) -> bool | None:
    """Whether a part's method reads a hardware counter or power sensor (None: no method)."""
    if not isinstance(method, str) or not method:
        return None
    return any(mark in method.lower() for mark in COUNTED_MARKS)


def split_quality(rec: pd.Series | dict[str, Any]) -> dict[str, Any]:
    """One split's measurement quality (the module docstring)."""
    get = rec.get
    counted = modelled = 0.0
    for part in PARTS:
        wh = get(f"{part}_wh")
        kind = is_counted(get(f"{part}_method"))
        if kind is None or wh is None or (isinstance(wh, float) and math.isnan(wh)):
            continue
        if kind:
            counted += float(wh)
        else:
            modelled += float(wh)
    total = counted + modelled
    share = modelled / total if total > 0 else None
    grade = None if share is None else "counted" if share == 0 else \
        "modelled" if share == 1 else "partly modelled"
    idle = get(col.IDLE_POWER_W)
    window = get(col.WINDOW_S)
    idle_share = None
    if idle is not None and window and get(col.WINDOW_ENERGY_WH):
        try:
            idle_share = float(idle) * float(window) / 3600 / float(get(col.WINDOW_ENERGY_WH))
        except (TypeError, ValueError, ZeroDivisionError):
            idle_share = None
    return {"modelled_share": share, "grade": grade, "samples": get(col.SAMPLES),
            "window_s": window, "idle_share": idle_share}


def split_grades(records: pd.DataFrame) -> pd.DataFrame:
    """:func:`split_quality` for every record (same index)."""
    return pd.DataFrame([split_quality(r) for _, r in records.iterrows()], index=records.index)


def grade_label(grade: str) -> str:
    """A grade as a count reads it: ``modelled, attributed`` → ``modelled (attributed)``."""
    return grade.replace(", attributed", " (attributed)")


def worst(grades: pd.Series) -> str | None:
    known = [g for g in grades if isinstance(g, str)]
    if not known:
        return None
    if set(known) == {"counted"}:
        return "counted"
    if set(known) == {"modelled"}:
        return "modelled"
    return "partly modelled"


def meter_agreement(records: pd.DataFrame) -> pd.DataFrame:
    """Per cell and part measured by CodeCarbon and by the part's direct meter: the median ratio
    direct ÷ CodeCarbon over splits, and whether it is past the tolerance (one row each)."""
    rows = []
    if records.empty or col.CELL_ID not in records:
        return pd.DataFrame()
    for part, other in COMPARED.items():
        a, b = f"{other}_{part}_wh", f"codecarbon_{part}_wh"
        if a not in records or b not in records:
            continue
        both = records.dropna(subset=[a, b])
        both = both[pd.to_numeric(both[b], errors="coerce") > 0]
        for cell_id, group in both.groupby(col.CELL_ID, sort=False):
            ratio = (pd.to_numeric(group[a]) / pd.to_numeric(group[b])).median()
            rows.append({"cell_id": cell_id, "model": group["model"].iloc[0], "part": part,
                         "meters": f"{other} / codecarbon", "ratio": float(ratio),
                         "splits": len(group),
                         "disagree": bool(abs(ratio - 1) > AGREEMENT_TOLERANCE)})
    rows += counter_agreement(records)
    return pd.DataFrame(rows)


def counter_agreement(records: pd.DataFrame) -> list[dict]:
    """Per cell: NVML's energy counter ÷ its power sampled on the same window (the check the
    meter makes once per GPU and job, ``nvml_counter_check``), median over the GPUs checked."""
    if "nvml_counter_check" not in records:
        return []
    rows = []
    for cell_id, group in records.groupby(col.CELL_ID, sort=False):
        checks = [c for value in group["nvml_counter_check"] if isinstance(value, list)
                  for c in value if isinstance(c, dict) and c.get("ratio") is not None]
        if checks:
            ratio = float(pd.Series([c["ratio"] for c in checks]).median())
            rows.append({"cell_id": cell_id, "model": group["model"].iloc[0], "part": "gpu",
                         "meters": "nvml counter / nvml power sampling", "ratio": ratio,
                         "splits": len(checks),
                         "disagree": bool(abs(ratio - 1) > AGREEMENT_TOLERANCE)})
    return rows
