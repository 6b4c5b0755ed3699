"""Per-cell aggregation over splits: mean, standard deviation, and variation in dex (log10) as the paper reports."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from energy_hpc import columns as col
from energy_hpc.columns import CELL_KEYS, METRICS
from energy_hpc.energy.attribution import NOT_ATTRIBUTABLE
from energy_hpc.paper_setup import mismatch

__all__ = ["CELL_KEYS", "METRICS", "summarize", "pareto_front"]
EXTRA_MEANS = [col.CPU_WH, col.GPU_WH, col.RAM_WH, col.MACRO_F1, col.INVALID_RATE,
               col.EMISSIONS_KG, col.FIT_ENERGY_WH, col.FIT_DURATION_S, col.OUTPUT_TOKENS,
               col.PROMPT_TOKENS, col.SCORE_MARGIN]
DEX = [col.ENERGY_WH, col.DURATION_S]
# quality: over every split, overlapping or not (the energy figures leave those out)
ACCURACY_METRICS = [col.ACCURACY, col.MACRO_F1, col.INVALID_RATE]
SETUP = [col.MODEL_WEIGHTS, col.N_CLASSES, col.N_TRAIN, col.N_TEST, col.GPUS_IDLE,
         col.CARBON_INTENSITY, "billed_gpus"]


def paper_mismatch_of(cell: pd.Series) -> str | None:
    """Why this cell's numbers must not sit beside the paper's (None: same setup)."""
    n_rows = None
    if not pd.isna(cell.get("n_train")) and not pd.isna(cell.get("n_test")):
        n_rows = int(cell["n_train"]) + int(cell["n_test"])
    weights = cell.get("model_weights")
    return mismatch(str(cell["model"]), None if pd.isna(weights) else str(weights),
                    str(cell["dataset"]),
                    None if pd.isna(cell.get("n_classes")) else int(cell["n_classes"]), n_rows,
                    llm_way(cell))


def llm_way(cell: pd.Series) -> dict[str, Any]:
    """How a cell's LLM was run, as recorded (None where a column is missing or empty)."""
    way = {k: cell.get(k) for k in (col.DECODING, col.BATCHING, col.FEW_SHOT, col.THINKING_TOKENS,
                                    col.QUANTIZATION)}
    return {k: None if v is None or (not isinstance(v, str) and pd.isna(v)) else v
            for k, v in way.items()}


OVERLAP_FLAGS = ("overlapping_window", "node_shared_with_jobs")
OVERLAPPING = ("exclude", "mark")
CI_LEVEL = 0.95
NO_INTERVAL = (float("nan"), float("nan"))
# the whole-host columns and the attributed ones that stand in for them (energy/attribution.py)
ATTRIBUTED = {col.ENERGY_WH: "energy_wh_attributed", col.CPU_WH: "cpu_wh_attributed",
              col.GPU_WH: "gpu_wh_attributed", col.RAM_WH: "ram_wh_attributed"}


def _flagged(records: pd.DataFrame, columns: tuple[str, ...]) -> pd.Series:
    def hit(flags: object) -> bool:
        return isinstance(flags, list | tuple | np.ndarray) and any(
            f in OVERLAP_FLAGS for f in flags)

    out = pd.Series(False, index=records.index)
    for column in columns:
        if column in records.columns:
            out |= records[column].map(hit).astype(bool)
    return out


def _not_attributable(status: pd.Series) -> pd.Series:
    return status.map(lambda v: isinstance(v, str) and v.startswith(NOT_ATTRIBUTABLE)).astype(bool)


def overlapping(records: pd.DataFrame) -> pd.Series:
    """Splits whose energy is left out: those whose whole-host energy could not be attributed to
    the cell (``attribution`` says why: a stranger on its GPU, a neighbour that slowed it, a
    foreign share past ``energy.max_foreign_share``). Records from before attribution: those
    whose window overlapped another measured window or ran beside another Slurm job."""
    flagged = _flagged(records, ("flags", "fit_flags"))
    if "attribution" not in records.columns:
        return flagged
    status = records["attribution"]
    known = status.map(lambda v: isinstance(v, str)).astype(bool)
    return _not_attributable(status).where(known, flagged).astype(bool)


def attributed_energy(records: pd.DataFrame) -> pd.DataFrame:
    """The records with the cell's own energy: where a split was ``attributed``, its attributed
    parts stand in for the whole-host ones (and the per-sample energy, emissions and average
    power follow); a fit that could not be attributed has no fit energy. ``energy_basis`` says
    which: ``alone``, ``attributed``, ``not attributable`` or ``whole host`` (older records)."""
    if "attribution" not in records.columns:
        return records.assign(energy_basis="whole host")
    out = records.copy()
    status = out["attribution"]
    use = status.map(lambda v: v == "attributed").astype(bool)
    whole = pd.to_numeric(out[col.ENERGY_WH], errors="coerce")
    for column, attributed in ATTRIBUTED.items():
        if attributed in out.columns and column in out.columns:
            out[column] = pd.to_numeric(out[column], errors="coerce").where(
                ~use, pd.to_numeric(out[attributed], errors="coerce"))
    energy = pd.to_numeric(out[col.ENERGY_WH], errors="coerce")
    scale = energy / whole.where(whole > 0)
    if col.N_TEST in out.columns and col.ENERGY_PER_SAMPLE_WH in out.columns:
        per = energy / pd.to_numeric(out[col.N_TEST], errors="coerce").where(lambda n: n > 0)
        out[col.ENERGY_PER_SAMPLE_WH] = per.where(use, out[col.ENERGY_PER_SAMPLE_WH])
    if col.EMISSIONS_KG in out.columns:
        out[col.EMISSIONS_KG] = (pd.to_numeric(out[col.EMISSIONS_KG], errors="coerce") * scale
                                 ).where(use, out[col.EMISSIONS_KG])
    if col.AVG_POWER_W in out.columns and col.DURATION_S in out.columns:
        power = energy * 3600 / pd.to_numeric(out[col.DURATION_S], errors="coerce")
        out[col.AVG_POWER_W] = power.where(use, out[col.AVG_POWER_W])
    if "fit_attribution" in out.columns and col.FIT_ENERGY_WH in out.columns:
        fit_status = out["fit_attribution"]
        fit_use = fit_status.map(lambda v: v == "attributed").astype(bool)
        fit = pd.to_numeric(out[col.FIT_ENERGY_WH], errors="coerce")
        if "fit_energy_wh_attributed" in out.columns:
            fit = fit.where(~fit_use, pd.to_numeric(out["fit_energy_wh_attributed"], errors="coerce"))
        out[col.FIT_ENERGY_WH] = fit.where(~_not_attributable(fit_status))
    basis = status.map(lambda v: v.split(":")[0] if isinstance(v, str) else "whole host")
    return out.assign(energy_basis=basis)


def t_interval(values: pd.Series, level: float = CI_LEVEL) -> tuple[float, float]:
    """The t-interval of the mean over splits (NaN for fewer than 2 splits or no spread data)."""
    from scipy import stats

    v = pd.to_numeric(values, errors="coerce").dropna()
    if len(v) < 2:
        return (float("nan"), float("nan"))
    mean, sem = float(v.mean()), float(v.std(ddof=1)) / np.sqrt(len(v))
    if sem == 0:
        return (mean, mean)
    half = float(stats.t.ppf((1 + level) / 2, len(v) - 1)) * sem
    return (mean - half, mean + half)


# what each metric can be: the interval is clipped to it (few splits give wide t-intervals)
RANGE = {"accuracy": (0.0, 1.0)}


def summarize(records: pd.DataFrame, overlapping_splits: str = "exclude") -> pd.DataFrame:
    """One row per cell: ``<metric>_mean``, ``<metric>_std``, ``<metric>_dex`` (std of log10),
    ``<metric>_ci_low/high`` (95% t-interval of the mean), ``splits``.

    Splits measured beside another measurement (:func:`overlapping`) are left out of every
    figure (``overlapping_splits="exclude"``, counted in ``overlapping_left_out``) or kept and
    counted in ``overlapping_kept`` (``"mark"``).
    """
    if overlapping_splits not in OVERLAPPING:
        raise ValueError(f"overlapping_splits={overlapping_splits!r}; use one of "
                         f"{', '.join(OVERLAPPING)}")
    if records.empty:
        return pd.DataFrame()
    keys = [k for k in CELL_KEYS if k in records.columns]
    frame = attributed_energy(records)
    if "model_kind" in frame:  # LLM records from before a column: 16-bit, zero-shot
        for column, before in ((col.QUANTIZATION, "none"), (col.FEW_SHOT, 0)):
            if column in frame:
                older = frame[column].isna() & (frame["model_kind"] == "llm")
                frame[column] = frame[column].astype(object)
                frame.loc[older, column] = before
    frame["_overlapping"] = overlapping(frame)
    for k in keys:
        frame[k] = frame[k].astype(object).where(frame[k].notna(), "-")
    flagged = frame.groupby(keys, sort=False)["_overlapping"].sum().astype(int)
    every = frame.drop(columns="_overlapping")  # every split, overlapping or not
    if overlapping_splits == "exclude":
        frame = frame[~frame["_overlapping"]]
        if frame.empty:  # every split overlapped: the cells stay, with their counts and no figures
            frame = records.iloc[0:0].copy()
    groups = [frame[k] for k in keys]
    out = frame.groupby(keys, sort=False).size().rename("splits").to_frame()
    out = out.reindex(flagged.index, fill_value=0)
    if "cell_repetitions" in records and "cell_id" in records:
        # planned: each cell's repetitions (meta.json), summed over the cells pooled in a row;
        # recorded: its records, overlapping or not. Fewer recorded than planned: incomplete.
        per_cell = every.groupby([*keys, "cell_id"], sort=False).agg(
            recorded=("split", "size"), planned=("cell_repetitions", "max"))
        per_cell["planned"] = pd.to_numeric(per_cell["planned"], errors="coerce")
        per_cell["planned"] = per_cell["planned"].fillna(per_cell["recorded"])
        totals = per_cell.groupby(level=list(range(len(keys))), sort=False).sum()
        out["splits_planned"] = totals["planned"].reindex(out.index).astype(int)
        out["incomplete"] = (totals["recorded"] < totals["planned"]).reindex(out.index)
    out["overlapping_left_out" if overlapping_splits == "exclude" else "overlapping_kept"] = flagged
    out["accuracy_splits"] = every.groupby(keys, sort=False).size().reindex(out.index, fill_value=0)
    by_cell = every.groupby(keys, sort=False)
    out["attributed_splits"] = by_cell["energy_basis"].agg(
        lambda b: int((b == "attributed").sum())).reindex(out.index, fill_value=0)
    if "foreign_cpu_share" in every.columns:
        # the largest share of the host's CPU work that was another's, among the splits used
        used = every[every["energy_basis"] == "attributed"]
        out["foreign_share_max"] = pd.to_numeric(used["foreign_cpu_share"], errors="coerce").groupby(
            [used[k] for k in keys], sort=False).max().reindex(out.index)
    if "attribution" in every.columns:
        def why(statuses: pd.Series) -> str | None:
            reasons = [v.split(": ", 1)[-1] for v in statuses
                       if isinstance(v, str) and v.startswith(NOT_ATTRIBUTABLE)]
            return max(set(reasons), key=reasons.count) if reasons else None

        out["energy_left_out_why"] = by_cell["attribution"].agg(why).reindex(out.index)
    for metric in METRICS + EXTRA_MEANS:
        # accuracy does not depend on what else ran on the host: over every split, always
        source = every if metric in ACCURACY_METRICS else frame
        if metric not in source.columns:
            continue
        values = pd.to_numeric(source[metric], errors="coerce")
        grouped = values.groupby([source[k] for k in keys], sort=False)
        out[f"{metric}_mean"] = grouped.mean()
        if metric in METRICS:
            out[f"{metric}_std"] = grouped.std(ddof=1)
            lo, hi = RANGE.get(metric, (0.0, np.inf))
            ci = grouped.apply(t_interval).reindex(out.index)
            ci = ci.map(lambda pair: pair if isinstance(pair, tuple) else NO_INTERVAL)
            out[f"{metric}_ci_low"] = ci.map(lambda pair: pair[0]).clip(lower=lo, upper=hi)
            out[f"{metric}_ci_high"] = ci.map(lambda pair: pair[1]).clip(lower=lo, upper=hi)
        if metric in DEX:
            logs = np.log10(values.where(values > 0))
            out[f"{metric}_dex"] = logs.groupby(groups, sort=False).std(ddof=1)
    if not frame.empty:
        from energy_hpc.analysis.quality import split_grades, worst

        quality = split_grades(frame)
        out["measurement"] = quality["grade"].groupby(groups, sort=False).agg(worst)
        attributed = out["attributed_splits"] > 0
        out["measurement"] = out["measurement"].where(
            ~attributed | out["measurement"].isna(), out["measurement"].astype(str) + ", attributed")
        out["modelled_share_mean"] = pd.to_numeric(quality["modelled_share"]).groupby(
            groups, sort=False).mean()
    # constant within a cell: what the paper comparison checks, from every record (a cell whose
    # splits were all left out is still the setup it is)
    for column in SETUP:
        if column in every.columns:
            out[column] = every.groupby(keys, sort=False)[column].first().reindex(out.index)
    out = out.reset_index()
    out["paper_mismatch"] = [paper_mismatch_of(row) for _, row in out.iterrows()]
    for k in ("gpus", "nodes"):
        if k in out.columns:
            out[k] = pd.to_numeric(out[k], errors="coerce").astype("Int64")
    return out


def left_out_reasons(summary: pd.DataFrame) -> list[str]:
    """Why configurations' splits have no energy (``energy_left_out_why``), each reason once."""
    return sorted({str(r) for r in summary.get("energy_left_out_why", pd.Series(dtype=object))
                   if isinstance(r, str)})


def model_labels(cells: pd.DataFrame) -> pd.Series:
    """What tables and figures call each cell's model: its display name, else its config name."""
    if "model_display" not in cells:
        return cells["model"].astype(str)
    display = cells["model_display"]
    return display.where(display.notna() & (display != "-"), cells["model"]).astype(str)


def _fmt(mean: float, std: float) -> str:
    if pd.isna(mean):
        return "n/a"
    std_txt = "" if pd.isna(std) else f" ± {std:.3g}"
    return f"{mean:.4g}{std_txt}"


def format_summary(summary: pd.DataFrame) -> str:
    """A plain-text table a person reads in a terminal."""
    headers = ["model", "dataset", "cluster", "nodes", "GPUs", "splits", "accuracy",
               "energy Wh/pass", "duration s/pass", "avg power W", "Wh/sample"]
    rows = []
    for _, r in summary.iterrows():
        splits = str(r["splits"])
        every = r.get("accuracy_splits")
        if every is not None and not pd.isna(every) and int(every) != int(r["splits"]):
            splits = f"{int(every)} ({int(r['splits'])} for energy)"
        rows.append([
            str(r.get("model_display", r["model"])), str(r["dataset"]), str(r["cluster"]),
            str(r.get("nodes", "-")), str(r.get("gpus", "-")), splits,
            *(_fmt(r.get(f"{m}_mean"), r.get(f"{m}_std")) for m in METRICS),
        ])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "-" * len(line)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(out)


def pareto_front(cells: pd.DataFrame, energy: str = "energy_wh_mean",
                 accuracy: str = "accuracy_mean") -> pd.DataFrame:
    """Cells no other cell beats on both lower energy and higher accuracy, by rising energy."""
    data = cells.dropna(subset=[energy, accuracy]).sort_values([energy, accuracy],
                                                                ascending=[True, False])
    front, best = [], float("-inf")
    for idx, row in data.iterrows():
        if row[accuracy] > best:
            front.append(idx)
            best = row[accuracy]
    return data.loc[front]
