"""The figures (the paper's 1–6; 7: estimated vs measured; 8: cumulative energy) from aggregated
cells; each saved as PNG and PDF (drawn with :mod:`energy_hpc.analysis.figure_parts`).

A figure whose data is absent from the records is not drawn; :func:`make_figures` says why.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from energy_hpc import columns as rc
from energy_hpc.analysis.figure_parts import (  # noqa: F401 - _nearest: tests read it here
    CI_NOTE,
    LOG_CI_NOTE,
    _ci_bars,
    _ci_err,
    _duration_energy_bars,
    _log_ticks,
    _nearest,
    _plt,
    _save,
    label_points,
    point_labels,
    same_data,
)
from energy_hpc.analysis.paper import display_name, paper_cells
from energy_hpc.analysis.summary import model_labels, pareto_front

FAMILY_STYLE = {"traditional": ("#1b9e77", "o"), "adapted": ("#e7298a", "D"), "llm": ("#d95f02", "s"),
                "reasoning": ("#7570b3", "^")}


def figure1(summary: pd.DataFrame, out_dir: Path, with_paper: bool = True) -> list[Path]:
    """Accuracy vs energy (log), families distinguished, Pareto front drawn; one panel per dataset.
    Every cell is a point (1- and 2-node cells alike), labelled with what sets it apart."""
    plt = _plt()
    cells = summary.dropna(subset=["energy_wh_mean", "accuracy_mean"])
    datasets = list(dict.fromkeys(cells[rc.DATASET]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(7 * len(datasets), 5.5), squeeze=False)
    for ax, ds in zip(axes[0], datasets, strict=True):
        sub = cells[cells[rc.DATASET] == ds]
        for fam, (color, marker) in FAMILY_STYLE.items():
            part = sub[sub[rc.MODEL_FAMILY] == fam]
            if not part.empty:
                ax.scatter(part["energy_wh_mean"], part["accuracy_mean"], c=color, marker=marker,
                           s=45, label=f"{fam} (this run)", zorder=3)
                _ci_bars(ax, part, rc.ENERGY_WH, rc.ACCURACY, color, log_x=True)
        # a front per cluster: cells are compared only with their own cluster's (other hardware
        # and meters), as the recommendation does
        clusters = list(dict.fromkeys(sub[rc.CLUSTER]))
        for n, cluster in enumerate(clusters):
            front = pareto_front(sub[sub[rc.CLUSTER] == cluster])
            if len(front) >= 2:  # one point is no line: no legend entry for a line not drawn
                ax.step(front["energy_wh_mean"], front["accuracy_mean"], where="post",
                        color="black", lw=1, ls=("--", ":", "-.")[n % 3], zorder=2,
                        label="Pareto front" + (f" ({cluster})" if len(clusters) > 1 else ""))
        xs, ys = sub["energy_wh_mean"].to_numpy(), sub["accuracy_mean"].to_numpy()
        labels = list(point_labels(sub))
        if with_paper and same_data(sub):  # the paper's points only beside the paper's data
            ref = paper_cells(ds).dropna(subset=[rc.ENERGY_WH])
            if not ref.empty:
                ax.scatter(ref[rc.ENERGY_WH], ref[rc.ACCURACY], facecolors="none", edgecolors="grey",
                           s=45, label="paper (Capella H100)", zorder=1)
                # named with ours, placed together: a hollow point is not a riddle
                xs = np.concatenate([xs, ref[rc.ENERGY_WH].to_numpy(float)])
                ys = np.concatenate([ys, ref[rc.ACCURACY].to_numpy(float)])
                labels += [f"paper: {display_name(m)}" for m in ref[rc.MODEL]]
        ax.set_xscale("log")
        ax.set_xlabel("energy per pass over the test set (Wh, log scale)")
        ax.set_ylabel(rc.ACCURACY)
        ax.set_title(f"accuracy vs energy: {ds}")
        ax.grid(True, which="both", alpha=0.3)
        ax.margins(x=0.35, y=0.12)
        _log_ticks(ax)
        label_points(ax, xs, ys, labels)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4)
    fig.text(0.01, 0.01, LOG_CI_NOTE, fontsize=7, color="dimgrey")
    return _save(fig, out_dir, "figure1_accuracy_vs_energy")


def figure2(summary: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Energy split into CPU, GPU and RAM per model (share of the total; total in the label).
    A device class no cell measured is left out of the bars and the legend."""
    plt = _plt()
    cells = summary[(summary[rc.NODES] == 1) & summary["energy_wh_mean"].notna()].copy()
    parts = cells[["cpu_wh_mean", "gpu_wh_mean", "ram_wh_mean"]].astype(float)
    total = parts.sum(axis=1, min_count=1)
    share = parts.div(total, axis=0).fillna(0)
    cells["label"] = [f"{label} [{ds}]: " + (f"{t:.3g} Wh" if not pd.isna(t) else "n/a")
                      for label, ds, t in zip(point_labels(cells), cells[rc.DATASET], total,
                                              strict=True)]
    fig, ax = plt.subplots(figsize=(11, 0.35 * len(cells) + 2))
    left = np.zeros(len(cells))
    ys = np.arange(len(cells))
    for col, name, color in (("cpu_wh_mean", "CPU", "#1f78b4"), ("gpu_wh_mean", "GPU", "#e31a1c"),
                             ("ram_wh_mean", "RAM", "#33a02c")):
        if not (share[col] > 0).any():
            continue
        ax.barh(ys, share[col], left=left, color=color, label=name)
        left += share[col].to_numpy()
    ax.set_yticks(ys)
    ax.set_yticklabels(cells["label"], fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the energy per pass over the test set (total per pass in the label; "
                  "unknown parts count as 0)", fontsize=8)
    ax.set_title("energy by device class", pad=26)  # room for the legend above the bars
    if ax.get_legend_handles_labels()[0]:  # no part measured anywhere: no legend to draw
        ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.01), ncol=3)
    return _save(fig, out_dir, "figure2_energy_parts")


FIGURE3_LINE = [rc.MODEL, rc.DATASET, rc.CLUSTER, rc.NODES]


def figure3(summary: pd.DataFrame, out_dir: Path) -> list[Path]:
    """GPU count vs duration and energy: a line per model, dataset, cluster and node count (cells
    of different clusters are never joined)."""
    from matplotlib.ticker import MaxNLocator

    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    for (_model, ds, cluster, nodes), g in summary.groupby(FIGURE3_LINE, sort=False):
        if g[rc.GPUS].nunique() < 2:
            continue
        g = g.sort_values(rc.GPUS)
        label = f"{model_labels(g).iloc[0]} [{ds}, {cluster}, {nodes} node(s)]"
        for ax, metric in ((a1, rc.DURATION_S), (a2, rc.ENERGY_WH)):
            (line,) = ax.plot(g[rc.GPUS], g[f"{metric}_mean"], marker="o", label=label)
            err = _ci_err(g, metric)
            if err is not None:
                ax.errorbar(g[rc.GPUS], g[f"{metric}_mean"], yerr=err, fmt="none",
                            ecolor=line.get_color(), capsize=3, lw=1)
    for ax, y in ((a1, "duration per pass (s)"), (a2, "energy per pass (Wh)")):
        ax.set_xlabel("GPUs")
        ax.set_ylabel(y)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    a1.set_title("more GPUs: duration")
    a2.set_title("more GPUs: energy")
    a2.legend(fontsize=7)
    fig.text(0.01, 0.01, CI_NOTE, fontsize=7, color="dimgrey")
    return _save(fig, out_dir, "figure3_gpu_count")


def figure4(table_b2: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Single vs double node: duration and energy."""
    labels = [f"{m} [{d}, {c}]" for m, d, c in zip(table_b2["Model"], table_b2["Dataset"],
                                                    table_b2["Cluster"], strict=True)]
    return _duration_energy_bars(
        labels,
        {"single": list(table_b2["Duration single (s)"]), "double": list(table_b2["Duration double (s)"])},
        {"single": list(table_b2["Energy single (Wh)"]), "double": list(table_b2["Energy double (Wh)"])},
        "one node vs two nodes", out_dir, "figure4_nodes")


def figure5(table_b3: pd.DataFrame, out_dir: Path) -> list[Path]:
    """GPU architectures side by side (cells that compute on GPUs, as Table B3)."""
    dur = [c for c in table_b3.columns if c.startswith("Duration ")]
    eng = [c for c in table_b3.columns if c.startswith("Energy ")]
    return _duration_energy_bars(
        list(table_b3["Model"]), {c[9:-4]: list(table_b3[c]) for c in dur},
        {c[7:-5]: list(table_b3[c]) for c in eng}, "GPU architectures (GPU cells)", out_dir,
        "figure5_architectures")


def figure6(summary: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Energy vs duration with a fitted line per GPU count."""
    plt = _plt()
    cells = summary.dropna(subset=["energy_wh_mean", "duration_s_mean"])
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for gpus, g in cells.groupby(rc.GPUS, sort=True):
        x, y = g["duration_s_mean"].astype(float), g["energy_wh_mean"].astype(float)
        pts = ax.scatter(x, y, s=30, label=f"{gpus} GPU(s)")
        if len(g) >= 2 and x.nunique() > 1:
            slope, intercept = np.polyfit(x, y, 1)
            xs = np.geomspace(x.min(), x.max(), 50) if x.min() > 0 else np.linspace(x.min(), x.max(), 50)
            ax.plot(xs, slope * xs + intercept, color=pts.get_facecolor()[0], lw=1,
                    label=f"fit {gpus} GPU(s): {slope * 3600:.3g} W")
    x_all, y_all = cells["duration_s_mean"].astype(float), cells["energy_wh_mean"].astype(float)
    spread = (x_all[x_all > 0].max() / x_all[x_all > 0].min()) if (x_all > 0).any() else 1.0
    if spread > 10 and (x_all > 0).all() and (y_all > 0).all():
        ax.set_xscale("log")  # cells seconds and hours apart: linear axes pile the short at 0
        ax.set_yscale("log")
        ax.set_xlabel("duration per pass (s, log scale)")
        ax.set_ylabel("energy per pass (Wh, log scale)")
    else:
        ax.set_xlabel("duration per pass (s)")
        ax.set_ylabel("energy per pass (Wh)")
    ax.set_title("energy vs duration by GPU count")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, out_dir, "figure6_energy_vs_duration")


BASIS_STYLE = {"calibrated": ("#1b9e77", "o"), "first principles": ("#d95f02", "s"),
               "rule of thumb": ("#7570b3", "^")}


def figure7(by_cell: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Estimated vs measured per cell (``tables.estimates_by_cell``): the estimate's geometric
    middle with its range as a bar, against the measured mean; the diagonal is a perfect
    estimate, the band a factor 2."""
    summary = by_cell
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    basis = summary["basis_kind"]
    for ax, metric, name, unit in ((axes[0], rc.DURATION_S, "Duration", "s"),
                                   (axes[1], rc.ENERGY_WH, "Energy", "Wh")):
        lo = pd.to_numeric(summary.get(f"est_{metric}_low"), errors="coerce")
        hi = pd.to_numeric(summary.get(f"est_{metric}_high"), errors="coerce")
        measured = pd.to_numeric(summary[f"{metric}_mean"], errors="coerce")
        ok = lo.notna() & hi.notna() & (lo > 0) & (measured > 0)
        for kind, (color, marker) in BASIS_STYLE.items():
            pick = ok & (basis == kind)
            if not pick.any():
                continue
            mid = np.sqrt(lo[pick] * hi[pick])
            xerr = _ci_err(summary[pick], metric) if f"{metric}_ci_low" in summary else None
            ax.errorbar(measured[pick], mid, yerr=np.vstack([mid - lo[pick], hi[pick] - mid]),
                        xerr=xerr, fmt=marker, color=color, ms=6, capsize=3, lw=1,
                        label=f"{kind} ({int(pick.sum())})")
        if ok.any():
            low = float(min(measured[ok].min(), lo[ok].min())) / 2
            high = float(max(measured[ok].max(), hi[ok].max())) * 2
            line = np.array([low, high])
            ax.plot(line, line, color="black", lw=1, label="estimate = measured")
            ax.fill_between(line, line / 2, line * 2, color="grey", alpha=0.15, label="within x2")
            ax.set_xlim(low, high)
            ax.set_ylim(low, high)
        ax.set_xscale("log")
        ax.set_yscale("log")
        _log_ticks(ax)
        ax.yaxis.set_minor_formatter(_plt().NullFormatter())
        ax.set_xlabel(f"measured {name.lower()} per pass ({unit})")
        ax.set_ylabel(f"estimated {name.lower()} per pass ({unit})")
        ax.set_title(f"{name}: estimate (range) vs measured")
        ax.grid(alpha=0.3, which="both")
        if ok.any():
            ax.legend(fontsize=7)
        else:  # e.g. energy on a cluster file without power facts: said, not an empty frame
            ax.text(0.5, 0.5, f"no cell has an estimate of its {name.lower()}\n(energy needs the "
                    "cluster file's power facts:\ngpu_power_w, cpu_power_w, ram_gb)",
                    transform=ax.transAxes, ha="center", va="center", fontsize=9, color="dimgrey")
    fig.text(0.01, 0.01, CI_NOTE, fontsize=7, color="dimgrey")
    return _save(fig, out_dir, "figure7_estimate_vs_measured")


def figure8(summary: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Cumulative energy (fit + inference) against texts classified, log-log, a line per cell,
    one panel per dataset and cluster; the break-even points of frontier pairs and of each
    adapted cell against the cells cheaper to fit marked."""
    from energy_hpc.analysis.payback import adapted_pairs, frontier_pairs, total_wh

    plt = _plt()
    cells = summary.dropna(subset=["fit_energy_wh_mean", "energy_per_sample_wh_mean"])
    panels = list(dict.fromkeys(zip(cells[rc.DATASET], cells[rc.CLUSTER], strict=True)))
    columns = min(2, len(panels))  # two panels a row: three in a row were too small to read
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(7.5 * columns, 5.8 * rows), squeeze=False)
    for spare in axes.flat[len(panels):]:
        spare.set_visible(False)
    texts = np.geomspace(1, 1e8, 200)
    pairs = frontier_pairs(cells) + adapted_pairs(cells)
    for ax, (ds, cluster) in zip(axes.flat, panels, strict=False):
        sub = cells[(cells[rc.DATASET] == ds) & (cells[rc.CLUSTER] == cluster)]
        for label, (_, cell) in zip(point_labels(sub), sub.iterrows(), strict=True):
            ax.plot(texts, [total_wh(cell, n) for n in texts], lw=1.2, label=label)
        marked = False
        for adapted, _other, n in pairs:
            if adapted[rc.DATASET] != ds or adapted[rc.CLUSTER] != cluster or n is None \
                    or math.isinf(n) or not 1 <= n <= 1e8:
                continue
            ax.scatter([n], [total_wh(adapted, n)], marker="x", color="black", s=40, zorder=4,
                       label=None if marked else "break-even")
            marked = True
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("texts classified (log scale)")
        ax.set_ylabel("energy: fit + inference (Wh, log scale)")
        ax.set_title(f"cumulative energy: {ds} @ {cluster}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    fig.text(0.01, -0.015, "x: break-even of a pair the table Break-even compares (neighbours on a "
             "cluster's accuracy/energy frontier, or an adapted cell against one cheaper to fit); "
             "curves that cross without an x are pairs the table does not compare (not "
             "neighbours on a frontier: docs/adapted.md)", fontsize=7, color="dimgrey", wrap=True)
    return _save(fig, out_dir, "figure8_cumulative_energy")


def drawn_configurations(summary: pd.DataFrame, by_cell: pd.DataFrame | None = None,
                         ) -> dict[str, pd.DataFrame]:
    """Per figure, the summary rows (configurations) it draws; empty: the figure is not drawn.

    One place decides what each figure shows, so the report can say beside each figure how the
    configurations in it were measured (their grades, docs/measurement.md#quality)."""
    from energy_hpc.analysis.summary import CELL_KEYS
    from energy_hpc.analysis.tables import gpu_cells, table_b3

    empty = summary.iloc[0:0]
    measured = summary.dropna(subset=["energy_wh_mean", "duration_s_mean"])
    single = summary[(summary[rc.NODES] == 1) & summary["energy_wh_mean"].notna()]
    multi_gpu = summary.groupby(FIGURE3_LINE, sort=False)[rc.GPUS].transform("nunique") > 1
    nodes = summary.groupby([rc.MODEL, rc.DATASET, rc.CLUSTER], sort=False)[rc.NODES]
    both_nodes = (nodes.transform(lambda n: (n == 1).any() and (n == 2).any())
                  & summary["duration_s_mean"].notna())
    on_gpus = gpu_cells(single)
    gpu_types = 0 if on_gpus.empty else len(
        [c for c in table_b3(summary).columns if c.startswith("Duration ")])
    drawn = {
        "figure1": summary.dropna(subset=["energy_wh_mean", "accuracy_mean"]),
        "figure2": single,
        "figure3": summary[multi_gpu],
        "figure4": summary[both_nodes.astype(bool)],
        "figure5": on_gpus if gpu_types >= 2 else empty,
        "figure6": measured,
        "figure7": empty,
        "figure8": (summary.dropna(subset=["fit_energy_wh_mean"])
                    if "fit_energy_wh_mean" in summary else empty),
    }
    if by_cell is not None and not by_cell.empty:
        keys = [k for k in CELL_KEYS if k in by_cell.columns and k in summary.columns]
        # what figure 7 draws: cells with an estimate and a measured mean
        shown = by_cell[(pd.to_numeric(by_cell[f"{rc.ENERGY_WH}_mean"], errors="coerce") > 0)
                        | (pd.to_numeric(by_cell[f"{rc.DURATION_S}_mean"], errors="coerce") > 0)]
        wanted = set(map(tuple, _key_text(shown[keys])))
        hit = [tuple(row) in wanted for row in _key_text(summary[keys])]
        drawn["figure7"] = summary[hit]
    return drawn


def _key_text(frame: pd.DataFrame) -> list[list[str]]:
    """Cell keys as text that matches across frames (``1`` and ``1.0`` GPUs are one key, None and
    NaN and the summary's ``-`` are one missing value)."""
    def text(value: Any) -> str:
        if value == "-" or (not isinstance(value, (list, tuple, dict)) and pd.isna(value)):
            return ""  # None in the records is NaN, or the summary's "-", in the summary
        number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
        return f"{number:g}" if pd.notna(number) else str(value)
    return [[text(v) for v in row] for row in frame.to_numpy()]


def grade_note(cells: pd.DataFrame) -> str | None:
    """How the configurations in one figure were measured: ``3 counted, 2 modelled``."""
    if "measurement" not in cells or cells["measurement"].isna().all():
        return None
    counts = cells["measurement"].fillna("ungraded").value_counts()
    grades = [v for g in ("counted", "partly modelled", "modelled") for v in (g, f"{g}, attributed")]
    order = [g for g in (*grades, "ungraded") if g in counts]
    from energy_hpc.analysis.quality import grade_label

    return ", ".join(f"{int(counts[g])} {grade_label(g)}" for g in order)


def make_figures(records: pd.DataFrame, out_dir: Path, with_paper: bool = True,
                 summary: pd.DataFrame | None = None, by_cell: pd.DataFrame | None = None,
                 drawn: dict[str, pd.DataFrame] | None = None,
                 overlapping_splits: str = "exclude",
                 ) -> tuple[dict[str, list[Path]], dict[str, str]]:
    """Draw every figure the records allow; return the files and, per skipped figure, why.

    The report and the notebook both call this with the loaded records, so both draw the same
    figures (``summary``, ``by_cell``, ``drawn``: the records' :func:`summarize`,
    :func:`estimates_by_cell` and :func:`drawn_configurations`, when the caller has them)."""
    from energy_hpc.analysis.summary import summarize
    from energy_hpc.analysis.tables import estimates_by_cell, table_b2, table_b3

    if summary is None:
        summary = summarize(records, overlapping_splits)
    if by_cell is None:
        by_cell = estimates_by_cell(records, overlapping_splits)
    if drawn is None:
        drawn = drawn_configurations(summary, by_cell)
    b2, b3 = table_b2(summary), table_b3(summary)
    draw = {
        "figure1": (lambda: figure1(summary, out_dir, with_paper), "no cells with energy and accuracy"),
        "figure2": (lambda: figure2(summary, out_dir), "no single-node cells with a measured energy"),
        "figure3": (lambda: figure3(summary, out_dir),
                    "no model measured with more than one GPU count on one cluster"),
        "figure4": (lambda: figure4(b2.dropna(subset=["Duration single (s)", "Duration double (s)"]),
                                    out_dir), "no model measured on both one and two nodes"),
        "figure5": (lambda: figure5(b3, out_dir),
                    "fewer than two GPU types among the cells that compute on GPUs "
                    "(CPU-only cells are no GPU comparison)"),
        "figure6": (lambda: figure6(summary, out_dir), "no cells with a measured energy and duration"),
        "figure7": (lambda: figure7(by_cell, out_dir),
                    "no cell in these records kept an estimate (recorded before estimates, or "
                    "none could be made)"),
        "figure8": (lambda: figure8(summary, out_dir),
                    "no cell in these records measured its fit (recorded before fit windows)"),
    }
    made: dict[str, list[Path]] = {}
    skipped: dict[str, str] = {}
    for name, (make, why_not) in draw.items():
        nothing = by_cell.empty if name == "figure7" else drawn[name].empty
        if nothing:
            skipped[name] = why_not
        else:
            made[name] = make()
    return made, skipped
