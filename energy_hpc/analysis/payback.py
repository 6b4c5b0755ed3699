"""When adapting pays back: fit energy + per-text inference energy, totals at given volumes, and
the break-even count between two cells (the texts after which one has used less energy in
total than the other).

A cell's total to classify N texts is ``fit + N x per_text``: ``fit_energy_wh_mean`` (one split's
whole fit: training a traditional model, SetFit's contrastive training, fine-tuning an encoder;
0 for a zero-shot LLM) and ``energy_per_sample_wh_mean`` (the measured inference per text).
"""

from __future__ import annotations

import math
from itertools import combinations

import pandas as pd

from energy_hpc import columns as rc
from energy_hpc.analysis.summary import model_labels, pareto_front

VOLUMES = (1_000, 100_000, 10_000_000)


def _fit(cell: pd.Series) -> float | None:
    value = cell.get("fit_energy_wh_mean")
    return None if value is None or pd.isna(value) else float(value)


def _per_text(cell: pd.Series) -> float | None:
    value = cell.get("energy_per_sample_wh_mean")
    return None if value is None or pd.isna(value) else float(value)


def total_wh(cell: pd.Series, texts: float) -> float | None:
    fit, per = _fit(cell), _per_text(cell)
    return None if fit is None or per is None else fit + texts * per


def break_even(adapted: pd.Series, other: pd.Series) -> float | None:
    """Texts after which ``adapted`` (the one that costs more to fit) has used less energy in
    total than ``other``; ``math.inf`` when it never does (it is not cheaper per text); None
    when either lacks a fit or an inference measurement."""
    fa, fo, pa, po = _fit(adapted), _fit(other), _per_text(adapted), _per_text(other)
    if None in (fa, fo, pa, po):
        return None
    assert fa is not None and fo is not None and pa is not None and po is not None
    if fa <= fo:
        return 0.0 if pa <= po else math.inf
    if pa >= po:
        return math.inf
    return (fa - fo) / (po - pa)


def total_cost_table(summary: pd.DataFrame, volumes: tuple[int, ...] = VOLUMES,
                     volume: int | None = None) -> pd.DataFrame:
    """Per configuration: fit energy, per-text inference energy, the total for each volume; with
    ``volume`` (texts a year) that total in kWh and kg CO2 a year (the records' carbon
    intensity)."""
    rows = []
    for _, cell in summary.iterrows():
        row = {"Model": model_labels(cell.to_frame().T).iloc[0], "Dataset": cell[rc.DATASET],
               "Cluster": cell[rc.CLUSTER], "GPUs": cell.get(rc.GPUS), "Nodes": cell.get(rc.NODES),
               "Accuracy": cell.get("accuracy_mean"),
               "Fit (Wh)": _fit(cell), "Inference per text (Wh)": _per_text(cell)}
        for n in volumes:
            row[f"Total {n:,} texts (Wh)"] = total_wh(cell, n)
        if volume is not None:
            wh = total_wh(cell, volume)
            row[f"{volume:,} texts/year (kWh)"] = wh / 1000 if wh is not None else None
            intensity = cell.get(rc.CARBON_INTENSITY)
            row[f"{volume:,} texts/year (kg CO2)"] = (
                wh / 1000 * float(intensity) / 1000
                if wh is not None and intensity is not None and not pd.isna(intensity) else None)
        rows.append(row)
    return pd.DataFrame(rows)


def frontier_pairs(summary: pd.DataFrame) -> list[tuple[pd.Series, pd.Series, float | None]]:
    """For each dataset and cluster, every pair of cells on the accuracy / per-pass energy
    frontier as (the one costlier to fit, the other, break-even texts)."""
    pairs = []
    for _, group in summary.groupby([rc.DATASET, rc.CLUSTER], sort=False):
        front = pareto_front(group)
        for (_, a), (_, b) in combinations(front.iterrows(), 2):
            fa, fb = _fit(a), _fit(b)
            adapted, other = (a, b) if (fa or 0) >= (fb or 0) else (b, a)
            pairs.append((adapted, other, break_even(adapted, other)))
    return pairs


def adapted_pairs(summary: pd.DataFrame) -> list[tuple[pd.Series, pd.Series, float | None]]:
    """Each adapted cell (family ``adapted``) against every other cell of its dataset and cluster
    that costs less to fit: (adapted, other, break-even texts)."""
    pairs = []
    if rc.MODEL_FAMILY not in summary:
        return pairs
    for _, group in summary.groupby([rc.DATASET, rc.CLUSTER], sort=False):
        for _, a in group[group[rc.MODEL_FAMILY] == "adapted"].iterrows():
            for _, b in group.iterrows():
                if b.name != a.name and (_fit(b) or 0) < (_fit(a) or 0):
                    pairs.append((a, b, break_even(a, b)))
    return pairs


def _texts(n: float | None) -> str:
    if n is None:
        return "–"
    if math.isinf(n):
        return "never"
    return f"{math.ceil(n):,}"


def break_even_table(summary: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for adapted, other, n in frontier_pairs(summary):
        rows.append({"Dataset": adapted[rc.DATASET], "Cluster": adapted[rc.CLUSTER],
                     "Costlier to fit": model_labels(adapted.to_frame().T).iloc[0],
                     "Fit (Wh)": _fit(adapted),
                     "Other": model_labels(other.to_frame().T).iloc[0], "Other fit (Wh)": _fit(other),
                     "Break-even (texts)": _texts(n)})
    return pd.DataFrame(rows)


def payback_sentence(summary: pd.DataFrame, dataset: str, cluster: str | None = None) -> str | None:
    """"X reaches 0.86, 0.05 more than Y; its 1.9 Wh of training is paid back against Z after
    310 texts." for the most accurate adapted cell (model family ``adapted``), compared with the
    most accurate cell of another family; None when no adapted cell was measured."""
    cells = summary[summary[rc.DATASET] == dataset]
    if cluster is not None:
        cells = cells[cells[rc.CLUSTER] == cluster]
    cells = cells.dropna(subset=["accuracy_mean"])
    if rc.MODEL_FAMILY not in cells or "fit_energy_wh_mean" not in cells:
        return None
    adapted = cells[(cells[rc.MODEL_FAMILY] == "adapted") & cells["fit_energy_wh_mean"].notna()]
    if adapted.empty:
        return None
    best = adapted.loc[adapted["accuracy_mean"].idxmax()]
    said = f"{model_labels(best.to_frame().T).iloc[0]} reaches {best['accuracy_mean']:.3f}"
    others = cells[cells[rc.MODEL_FAMILY] != "adapted"]
    if not others.empty:
        rival = others.loc[others["accuracy_mean"].idxmax()]
        gap = float(best["accuracy_mean"] - rival["accuracy_mean"])
        name = model_labels(rival.to_frame().T).iloc[0]
        said += (f", {gap:.3f} more than {name}" if gap > 5e-4 else
                 f", {-gap:.3f} less than {name}" if gap < -5e-4 else f", as accurate as {name}")
    fit = _fit(best) or 0.0
    rivals = [(other, break_even(best, other)) for _, other in cells.iterrows()
              if other.name != best.name and (_per_text(other) or 0) > (_per_text(best) or 0)
              and (_fit(other) or 0) < fit]
    rivals = [(o, n) for o, n in rivals if n is not None and not math.isinf(n)]
    if rivals:
        other, n = max(rivals, key=lambda r: r[0]["accuracy_mean"])
        said += (f"; its {fit:.3g} Wh of training is paid back against "
                 f"{model_labels(other.to_frame().T).iloc[0]} after {_texts(n)} texts")
    else:
        said += (f"; its {fit:.3g} Wh of training is paid back against no cell here (each costs "
                 "less to fit or less per text)")
    return said + "."
