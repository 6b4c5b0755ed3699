"""Per-cell mean and standard deviation over splits, as the CLI prints after a run."""

from __future__ import annotations

import pandas as pd

CELL_KEYS = ["model", "model_display", "model_family", "dataset", "cluster", "gpu_type", "gpus",
             "nodes", "decoding", "batching"]
METRICS = ["accuracy", "energy_wh", "duration_s", "avg_power_w", "energy_per_sample_wh"]


def summarize(records: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: ``<metric>_mean`` and ``<metric>_std`` over its splits, plus ``splits``."""
    keys = [k for k in CELL_KEYS if k in records.columns]
    frame = records.copy()
    for k in keys:
        frame[k] = frame[k].astype(object).where(frame[k].notna(), "-")
    grouped = frame.groupby(keys, dropna=False, sort=False)
    out = grouped.size().rename("splits").to_frame()
    for metric in METRICS:
        if metric in frame.columns:
            values = pd.to_numeric(frame[metric], errors="coerce")
            out[f"{metric}_mean"] = values.groupby([frame[k] for k in keys], sort=False).mean()
            out[f"{metric}_std"] = values.groupby([frame[k] for k in keys], sort=False).std(ddof=1)
    return out.reset_index()


def _fmt(mean: float, std: float) -> str:
    if pd.isna(mean):
        return "n/a"
    std_txt = "" if pd.isna(std) else f" ± {std:.3g}"
    return f"{mean:.4g}{std_txt}"


def format_summary(summary: pd.DataFrame) -> str:
    """A plain-text table a person reads in a terminal."""
    headers = ["model", "dataset", "cluster", "splits", "accuracy", "energy Wh", "duration s",
               "avg power W", "Wh/sample"]
    rows = []
    for _, r in summary.iterrows():
        rows.append([
            str(r.get("model_display", r["model"])), str(r["dataset"]), str(r["cluster"]),
            str(r["splits"]),
            *(_fmt(r.get(f"{m}_mean"), r.get(f"{m}_std")) for m in METRICS),
        ])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "-" * len(line)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(out)
