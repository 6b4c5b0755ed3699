"""The paper's tables (B1–B6) from aggregated cells, each written as Markdown, CSV and LaTeX.

Missing cells stay in the tables as missing ("–"), so a gap in a sweep is visible, not dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from energy_hpc import columns as rc
from energy_hpc.analysis.paper import display_name, paper_cells
from energy_hpc.analysis.summary import llm_way, model_labels
from energy_hpc.paper_setup import way_mismatch

MISSING = "–"


def table_b1(summary: pd.DataFrame, dataset: str, cluster: str | None = None,
             with_paper: bool = True) -> pd.DataFrame:
    """Model, GPUs, energy, accuracy, duration, average power for one dataset (single node)."""
    cells = summary[(summary[rc.DATASET] == dataset) & (summary[rc.NODES] == 1)]
    if cluster is not None:
        cells = cells[cells[rc.CLUSTER] == cluster]
    out = pd.DataFrame({
        "Model": model_labels(cells), "Cluster": cells[rc.CLUSTER], "GPUs": cells[rc.GPUS],
        "Energy (Wh)": cells["energy_wh_mean"], "Energy 95% CI (Wh)": _ci(cells, rc.ENERGY_WH),
        "Accuracy": cells["accuracy_mean"], "Accuracy 95% CI": _ci(cells, rc.ACCURACY),
        "Duration (s)": cells["duration_s_mean"], "Average Power (W)": cells["avg_power_w_mean"],
        "Measurement": cells["measurement"] if "measurement" in cells else MISSING,
        rc.MODEL: cells[rc.MODEL], "mismatch": _mismatches(cells),
    })
    if with_paper:
        ref = paper_cells(dataset)
        if not ref.empty:
            ref = ref.rename(columns={rc.ENERGY_WH: "Paper Energy (Wh)", rc.ACCURACY: "Paper Accuracy"})
            out = out.merge(ref[[rc.MODEL, "Paper Energy (Wh)", "Paper Accuracy", "energy_wh_below"]],
                            on=rc.MODEL, how="outer")
            below = out.pop("energy_wh_below")
            out["Paper Energy (Wh)"] = [
                f"<{b:g}" if pd.isna(e) and not pd.isna(b) else e
                for e, b in zip(out["Paper Energy (Wh)"], below, strict=True)]
            out["Model"] = out["Model"].fillna(out[rc.MODEL].map(display_name))
            # a published number only beside a cell that ran the paper's setup
            other = out["mismatch"].notna()
            for column in ("Paper Energy (Wh)", "Paper Accuracy"):
                out[column] = out[column].astype(object).where(~other, NOT_COMPARABLE)
            # one rule, whatever was measured or left out: a row of ours says whether it is the
            # paper's setup; a paper-only row (no cell of ours) says nothing
            out["Paper setup"] = [
                "" if pd.isna(c) else ("same" if pd.isna(m) else m)
                for c, m in zip(out["Cluster"], out["mismatch"], strict=True)]
    return out.drop(columns=[rc.MODEL, "mismatch"]).reset_index(drop=True)


NOT_COMPARABLE = "not comparable"


def _ci(cells: pd.DataFrame, metric: str) -> pd.Series:
    """'low–high' of the 95% t-interval over splits (– for fewer than 2 splits)."""
    lo, hi = cells.get(f"{metric}_ci_low"), cells.get(f"{metric}_ci_high")
    if lo is None or hi is None:
        return pd.Series([MISSING] * len(cells), index=cells.index, dtype=object)
    return pd.Series([MISSING if pd.isna(a) or pd.isna(b) else f"{a:.3g}–{b:.3g}"
                      for a, b in zip(lo, hi, strict=True)], index=cells.index, dtype=object)


def _mismatches(cells: pd.DataFrame) -> pd.Series:
    if "paper_mismatch" in cells:
        return cells["paper_mismatch"]
    return pd.Series([None] * len(cells), index=cells.index, dtype=object)


def table_b2(summary: pd.DataFrame, dataset: str | None = None) -> pd.DataFrame:
    """Single vs double node: duration and energy with ratios (double ÷ single)."""
    cells = summary if dataset is None else summary[summary[rc.DATASET] == dataset]
    rows = []
    keys = [rc.MODEL, *([rc.QUANTIZATION] if rc.QUANTIZATION in cells else [])]
    for (*_model, ds, cluster), group in cells.groupby([*keys, rc.DATASET, rc.CLUSTER], sort=False):
        one, two = group[group[rc.NODES] == 1], group[group[rc.NODES] == 2]
        if one.empty and two.empty:
            continue
        d1 = one["duration_s_mean"].min() if not one.empty else np.nan
        d2 = two["duration_s_mean"].min() if not two.empty else np.nan
        e1 = one["energy_wh_mean"].min() if not one.empty else np.nan
        e2 = two["energy_wh_mean"].min() if not two.empty else np.nan
        rows.append({"Model": model_labels(group).iloc[0], "Dataset": ds, "Cluster": cluster,
                     "Duration single (s)": d1, "Duration double (s)": d2, "Duration ratio": d2 / d1,
                     "Energy single (Wh)": e1, "Energy double (Wh)": e2, "Energy ratio": e2 / e1})
    return pd.DataFrame(rows)


def table_precisions(summary: pd.DataFrame) -> pd.DataFrame:
    """One model's precisions side by side (``-m model.quantization=none,fp8``): where cells of
    one model, dataset, cluster, decoding and batching differ in quantization, each one's
    accuracy, energy per text and GPUs, and its energy against the 16-bit cell's."""
    if rc.QUANTIZATION not in summary or summary.empty:
        return pd.DataFrame()
    keys = [k for k in (rc.MODEL, rc.DATASET, rc.CLUSTER, rc.NODES, rc.DECODING, rc.BATCHING)
            if k in summary]
    rows = []
    for _, group in summary.groupby(keys, sort=False):
        if group[rc.QUANTIZATION].nunique() < 2:
            continue
        rows += _side_by_side(group, group[rc.QUANTIZATION] == "none", "Energy vs 16-bit",
                              lambda cell: {"Quantization": cell[rc.QUANTIZATION]})
    return pd.DataFrame(rows)


Columns = Callable[[pd.Series], dict[str, Any]]


def _side_by_side(group: pd.DataFrame, base: pd.Series, ratio: str, what: Columns,
                  between: Columns = lambda cell: {}) -> list[dict[str, Any]]:
    """One row per cell of ``group``: model, dataset, cluster, ``what(cell)``, GPUs, accuracy
    (CI), ``between(cell)``, energy per text (CI of the pass), and ``ratio``: its energy per
    text ÷ the least of the ``base`` cells' (NaN without one)."""
    base_wh = group.loc[base, "energy_per_sample_wh_mean"].min() if base.any() else np.nan
    rows = []
    for (i, cell), label in zip(group.iterrows(), model_labels(group), strict=True):
        one, per_text = group.loc[[i]], cell.get("energy_per_sample_wh_mean", np.nan)
        rows.append({"Model": label, "Dataset": cell[rc.DATASET], "Cluster": cell[rc.CLUSTER],
                     **what(cell), "GPUs": cell[rc.GPUS], "Accuracy": cell["accuracy_mean"],
                     "Accuracy 95% CI": _ci(one, rc.ACCURACY).iloc[0], **between(cell),
                     "Energy per text (Wh)": per_text,
                     "Energy 95% CI (Wh per pass)": _ci(one, rc.ENERGY_WH).iloc[0],
                     ratio: per_text / base_wh if base_wh else np.nan})
    return rows


LLM_FAMILIES = ("llm", "reasoning")
def way_of(cell: pd.Series) -> str:
    """How an LLM cell classifies, in words: decoding, batching, shots, quantization."""
    shots = cell.get(rc.FEW_SHOT)
    quant = cell.get(rc.QUANTIZATION)
    parts = [str(cell.get(rc.DECODING)), str(cell.get(rc.BATCHING)),
             f"{int(shots)}-shot" if isinstance(shots, int | float) and not pd.isna(shots) else "0-shot"]
    thinking = cell.get(rc.THINKING_TOKENS)
    if isinstance(thinking, int | float) and not pd.isna(thinking):
        parts.append(f"thinking <= {int(thinking)}")
    if isinstance(quant, str) and quant not in ("none", "-"):
        parts.append(quant)
    return ", ".join(parts)


def is_papers_way(cell: pd.Series) -> bool:
    """Free generation, one text at a time, zero-shot, 16-bit: how the paper classified."""
    return way_mismatch(llm_way(cell)) is None


def llm_method_groups(summary: pd.DataFrame) -> list[pd.DataFrame]:
    """Cells of one LLM on one dataset, cluster and node count measured more than one way."""
    if summary.empty or rc.MODEL_FAMILY not in summary:
        return []
    cells = summary[summary[rc.MODEL_FAMILY].isin(LLM_FAMILIES)]
    keys = [k for k in (rc.MODEL, rc.DATASET, rc.CLUSTER, rc.NODES) if k in cells]
    return [g for _, g in cells.groupby(keys, sort=False) if len(g) > 1]


def table_llm_methods(summary: pd.DataFrame) -> pd.DataFrame:
    """Classifying with one LLM, each way (decoding, batching, few-shot, quantization): accuracy,
    invalid answers, generated tokens and energy per text, and energy ÷ the paper's way (free
    generation, one text at a time, zero-shot, 16-bit). ``score`` has no invalid answers by
    construction: a different method, not a faster copy of free generation."""
    rows = []
    for group in llm_method_groups(summary):
        papers = pd.Series([is_papers_way(c) for _, c in group.iterrows()], index=group.index)
        rows += _side_by_side(
            group, papers, "Energy vs the paper's way", lambda cell: {"Way": way_of(cell)},
            lambda cell: {"Invalid rate": cell.get(f"{rc.INVALID_RATE}_mean", np.nan),
                          "Output tokens per text": cell.get(f"{rc.OUTPUT_TOKENS}_mean", np.nan)})
    return pd.DataFrame(rows)


def gpu_cells(summary: pd.DataFrame) -> pd.DataFrame:
    """Cells whose model computes on GPUs: a CPU-only cell (0 GPUs, or GPUs held idle by a CPU
    model) says nothing about a GPU architecture."""
    gpus = pd.to_numeric(summary[rc.GPUS], errors="coerce").fillna(0)
    idle = summary[rc.GPUS_IDLE].astype(str).isin(["True", "true", "1"]) \
        if rc.GPUS_IDLE in summary else pd.Series(False, index=summary.index)
    return summary[(gpus > 0) & ~idle]


def table_b3(summary: pd.DataFrame, dataset: str | None = None) -> pd.DataFrame:
    """GPU architectures side by side: duration and energy per GPU type (single node), over the
    cells that compute on GPUs (:func:`gpu_cells`)."""
    cells = gpu_cells(summary[summary[rc.NODES] == 1])
    if dataset is not None:
        cells = cells[cells[rc.DATASET] == dataset]
    cells = cells.assign(arch=cells[rc.GPU_TYPE].where(cells[rc.GPU_TYPE] != "-", cells[rc.CLUSTER]),
                         label=model_labels(cells))
    dur = cells.pivot_table(index="label", columns="arch", values="duration_s_mean", aggfunc="min")
    eng = cells.pivot_table(index="label", columns="arch", values="energy_wh_mean", aggfunc="min")
    dur.columns = [f"Duration {c} (s)" for c in dur.columns]
    eng.columns = [f"Energy {c} (Wh)" for c in eng.columns]
    out = pd.concat([dur, eng], axis=1).reset_index().rename(columns={"label": "Model"})
    return out


def table_b45(summary: pd.DataFrame, datasets: list[str] | None = None,
              with_paper: bool = False) -> pd.DataFrame:
    """Energy and accuracy per dataset (B4/B5 shape): one row per model, two columns per dataset;
    ``with_paper`` adds the paper's accuracy for the same model and dataset where it published one."""
    cells = summary[summary[rc.NODES] == 1]
    label = model_labels(cells)
    if cells[rc.CLUSTER].nunique() > 1:  # one row per model and cluster, named, not one value
        label = label + " @" + cells[rc.CLUSTER].astype(str)
    cells = cells.assign(label=label)
    datasets = datasets or list(dict.fromkeys(cells[rc.DATASET]))
    keys = cells.drop_duplicates("label").set_index("label")[rc.MODEL]
    out = pd.DataFrame({"Model": list(keys.index)})
    for ds in datasets:
        here = cells[cells[rc.DATASET] == ds].assign(mismatch=_mismatches(cells[cells[rc.DATASET] == ds]))
        sub = here.groupby("label")
        out[f"{ds} Energy (Wh)"] = out["Model"].map(sub["energy_wh_mean"].min())
        out[f"{ds} Accuracy"] = out["Model"].map(sub["accuracy_mean"].max())
        if with_paper:
            ref = paper_cells(ds).set_index(rc.MODEL)
            if not ref.empty:
                paper = out["Model"].map(keys).map(ref[rc.ACCURACY]).astype(object)
                other = out["Model"].map(sub["mismatch"].first()).notna()
                out[f"{ds} Paper Accuracy"] = paper.where(~other, NOT_COMPARABLE)
    return out


def table_b6(summary: pd.DataFrame) -> pd.DataFrame:
    """OLS of energy on duration, GPUs and their interaction per dataset (statsmodels), with SEs."""
    import statsmodels.formula.api as smf

    columns: dict[str, dict[str, str]] = {}
    for ds, group in summary.groupby(rc.DATASET, sort=False):
        data = pd.DataFrame({"energy": group["energy_wh_mean"].astype(float),
                             "duration": group["duration_s_mean"].astype(float),
                             rc.GPUS: pd.to_numeric(group[rc.GPUS], errors="coerce").astype(float)}).dropna()
        col: dict[str, str] = {}
        varying = data[rc.GPUS].nunique() > 1
        formula = "energy ~ duration * gpus" if varying else "energy ~ duration"
        n_params = 4 if varying else 2
        if len(data) <= n_params:
            col["Duration"] = f"insufficient data ({len(data)} cells)"
            columns[str(ds)] = col
            continue
        import numpy as np

        design = smf.ols(formula, data=data)
        rank = int(np.linalg.matrix_rank(design.exog))
        if rank < design.exog.shape[1]:  # e.g. GPUs fixed by duration: say so, fit nothing
            col["Duration"] = (f"rank-deficient design ({rank} of {design.exog.shape[1]} terms "
                               f"separable over {len(data)} cells): no unique fit")
            col["Observations"] = str(len(data))
            columns[str(ds)] = col
            continue
        fit = design.fit()
        names = {"duration": "Duration", rc.GPUS: "GPUs", "duration:gpus": "Duration:GPUs",
                 "Intercept": "Constant"}
        for term, label in names.items():
            if term in fit.params:
                p = fit.pvalues[term]
                stars = "***" if p < 0.01 else "**" if p < 0.05 else "*" if p < 0.1 else ""
                col[label] = f"{fit.params[term]:.3f}{stars} ({fit.bse[term]:.3f})"
            else:
                col[label] = "no variation in GPUs" if term != "Intercept" else MISSING
        col["Observations"] = str(int(fit.nobs))
        col["R2"] = f"{fit.rsquared:.3f}"
        col["Adjusted R2"] = f"{fit.rsquared_adj:.3f}"
        columns[str(ds)] = col
    order = ["Duration", "GPUs", "Duration:GPUs", "Constant", "Observations", "R2", "Adjusted R2"]
    out = pd.DataFrame(columns).reindex(order).fillna(MISSING)
    out.index.name = "Dependent variable: Energy"
    return out.reset_index()


def estimates_by_cell(records: pd.DataFrame, overlapping_splits: str = "exclude") -> pd.DataFrame:
    """Per cell id: the estimate it was planned with (per pass) beside its measured means; the
    estimate's geometric middle ÷ the measurement; empty when no record kept an estimate.
    Overlapping splits are left out or kept as in :func:`summarize` (``overlapping_splits``), and
    ``splits`` counts the splits the means are over."""
    from energy_hpc.analysis.summary import CELL_KEYS

    needed = {rc.CELL_ID, "est_duration_s_low", "est_duration_s_high"}
    if records.empty or not needed <= set(records.columns):
        return pd.DataFrame()
    frame = records.dropna(subset=["est_duration_s_low", "est_duration_s_high"])
    if frame.empty:
        return pd.DataFrame()
    keys = [k for k in CELL_KEYS if k in frame.columns]
    first = frame.groupby(rc.CELL_ID, sort=False)[[*keys, "est_basis"]].first()
    from energy_hpc.analysis.summary import attributed_energy, overlapping, t_interval

    frame = attributed_energy(frame)
    hit = overlapping(frame)
    used = frame[~hit] if overlapping_splits == "exclude" else frame
    out = first.assign(splits=used.groupby(rc.CELL_ID, sort=False).size().reindex(
        first.index, fill_value=0))
    if {rc.SEED, rc.SPLIT} <= set(frame.columns):  # split i has seed + i: the cell's own seed
        seeds = pd.to_numeric(frame[rc.SEED], errors="coerce") - pd.to_numeric(frame[rc.SPLIT],
                                                                             errors="coerce")
        out["cell_seed"] = seeds.groupby(frame[rc.CELL_ID], sort=False).min().astype("Int64")
    frame = used  # as the summary: overlapped splits measured others' work
    for metric in (rc.DURATION_S, rc.ENERGY_WH):
        values = pd.to_numeric(frame[metric], errors="coerce")
        out[f"{metric}_mean"] = values.groupby(frame[rc.CELL_ID], sort=False).mean()
        ci = values.groupby(frame[rc.CELL_ID], sort=False).apply(t_interval)
        out[f"{metric}_ci_low"] = ci.map(lambda pair: max(pair[0], 0.0))
        out[f"{metric}_ci_high"] = ci.map(lambda pair: pair[1])
        for end in ("low", "high"):
            column = f"est_{metric}_{end}"
            out[column] = (pd.to_numeric(frame[column], errors="coerce")
                           .groupby(frame[rc.CELL_ID], sort=False).first()
                           if column in frame else np.nan)
        lo, hi, measured = out[f"est_{metric}_low"], out[f"est_{metric}_high"], out[f"{metric}_mean"]
        mid = np.sqrt(lo.where(lo > 0) * hi.where(hi > 0))
        out[f"{metric}_ratio"] = mid / measured.where(measured > 0)
        inside = ((lo <= measured) & (measured <= hi)).astype(object)
        out[f"{metric}_inside"] = inside.where(lo.notna() & hi.notna() & measured.notna(), None)
    out["basis"] = out["est_basis"].map(_short_basis)
    out["basis_kind"] = out["est_basis"].map(basis_kind)
    return out.reset_index()


def table_estimates(by_cell: pd.DataFrame) -> pd.DataFrame:
    """:func:`estimates_by_cell` as the report prints it."""
    if by_cell.empty:
        return pd.DataFrame()
    rows = []
    for _, c in by_cell.iterrows():
        row = {"Model": model_labels(c.to_frame().T).iloc[0], "Dataset": c[rc.DATASET],
               "Cluster": c[rc.CLUSTER], "GPUs": c[rc.GPUS], "Nodes": c[rc.NODES],
               "Seed": c.get("cell_seed", MISSING), "Cell": c[rc.CELL_ID],
               "Basis": c["basis"], "Splits": c["splits"]}
        for metric, name, unit in ((rc.DURATION_S, "Duration", "s"), (rc.ENERGY_WH, "Energy", "Wh")):
            lo, hi = c[f"est_{metric}_low"], c[f"est_{metric}_high"]
            row[f"{name} measured ({unit})"] = c[f"{metric}_mean"]
            row[f"{name} estimated ({unit})"] = (MISSING if pd.isna(lo) or pd.isna(hi)
                                                 else f"{_fmt(float(lo))}–{_fmt(float(hi))}")
            row[f"{name} est./meas."] = c[f"{metric}_ratio"]
            inside = c[f"{metric}_inside"]
            row[f"{name} inside"] = MISSING if pd.isna(inside) else ("yes" if inside else "no")
        rows.append(row)
    return pd.DataFrame(rows)


BASIS_KINDS = ("calibrated", "first principles", "rule of thumb")


def basis_kind(basis: object) -> str:
    """Which source an estimate came from (its ``basis`` text begins with it)."""
    text = str(basis)
    return next((kind for kind in BASIS_KINDS if text.startswith(kind)), "none")


def _short_basis(basis: object) -> str:
    text = str(basis)
    return text.split(":")[0].split(" (")[0] if basis_kind(text) != "none" else text


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return MISSING
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v == 0:
            return "0"
        if abs(v) >= 999.5:
            return f"{v:,.0f}"
        # three significant digits: 0.998 stays 0.998 (not 1.00), 0.034 s stays 0.034
        return f"{v:.3g}" if abs(v) >= 0.01 else f"{v:.2e}"
    return str(value)


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    return table.apply(lambda col: col.map(_fmt)) if not table.empty else table


def as_markdown(table: pd.DataFrame) -> str:
    """Markdown with :func:`_fmt`'s numbers kept as written (tabulate would re-parse "0.998" and
    "7.27e-03"), numeric columns right-aligned."""
    align = ["right" if pd.api.types.is_numeric_dtype(table[c]) else "left" for c in table.columns]
    return formatted(table).to_markdown(index=False, disable_numparse=True, colalign=align)


def write_table(table: pd.DataFrame, out_dir: Path, name: str, caption: str) -> dict[str, Path]:
    """``name.md``, ``name.csv`` (raw numbers), ``name.tex``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: out_dir / f"{name}.{ext}" for ext in ("md", "csv", "tex")}
    table.to_csv(paths["csv"], index=False)
    shown = formatted(table)
    if shown.empty:
        paths["md"].write_text(f"*{caption}: no cells in these records.*\n")
        paths["tex"].write_text(f"% {caption}: no cells in these records.\n")
        return paths
    paths["md"].write_text(as_markdown(table) + "\n")
    paths["tex"].write_text(shown.to_latex(index=False, caption=caption, label=f"tab:{name}",
                                           escape=True))
    return paths


# what of our measurement each scope covers: Slurm's rapl plugin adds the packages' and the DRAM
# counters (acct_gather_energy_rapl.c, _get_joules_task), so CPU and RAM together
SCOPE_PARTS = {"gpu": (rc.GPU_WH,), "cpu": (rc.CPU_WH, rc.RAM_WH), "node": (rc.ENERGY_WH,)}


def _numbers(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as numbers, 0 where missing (records from before fit windows have none)."""
    if column not in frame:
        return pd.Series(0.0, index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce").fillna(0)


def table_site_accounting(records: pd.DataFrame) -> pd.DataFrame:
    """Per Slurm job: the site's ConsumedEnergy (its scope) beside what the job's cells measured
    in their windows (fit and inference, the part the scope covers: GPUs, CPUs or all), and how
    much of the job's elapsed time those windows cover (the rest, start-up, loading and the time
    between windows, the site counts and we do not)."""
    from energy_hpc.cluster.accounting import SCOPE_WORDS

    if records.empty or "slurm_job_id" not in records or records["slurm_job_id"].isna().all():
        return pd.DataFrame()
    rows = []
    for job, group in records.dropna(subset=["slurm_job_id"]).groupby("slurm_job_id", sort=False):
        first = group.iloc[0]
        scope = first.get("slurm_energy_scope")
        parts = SCOPE_PARTS.get(scope, ()) if isinstance(scope, str) else ()
        measured = windows_s = None
        if parts:
            passes = pd.to_numeric(group[rc.PASSES], errors="coerce")
            fit_passes = _numbers(group, "fit_passes")
            measured = 0.0
            for part in parts:
                if part not in group:
                    continue
                inference = pd.to_numeric(group[part], errors="coerce") * passes
                fit = _numbers(group, f"fit_{part}") * fit_passes
                measured += float((inference.fillna(0) + fit).sum())
        windows_s = float(pd.to_numeric(group[rc.WINDOW_S], errors="coerce").sum()
                          + _numbers(group, "fit_window_s").sum())
        site = first.get("slurm_consumed_energy_wh")
        elapsed = first.get("slurm_job_elapsed_s")
        rows.append({
            "Slurm job": job, "Cells": group[rc.CELL_ID].nunique(),
            "Plugin": first.get("slurm_energy_plugin"), "Scope": SCOPE_WORDS.get(scope, "–"),
            "Site (Wh)": site if not pd.isna(site) else MISSING,
            "Measured in windows (Wh)": measured if measured is not None else MISSING,
            "Site / measured": (site / measured) if measured and not pd.isna(site) else MISSING,
            "Windows / elapsed": (windows_s / elapsed) if elapsed else MISSING,
            "Why none": first.get("slurm_energy_reason") or ""})
    return pd.DataFrame(rows)

