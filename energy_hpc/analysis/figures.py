"""The paper's figures (1–6) from aggregated cells; each saved as PNG and PDF.

A figure whose data is absent from the records is not drawn; :func:`make_figures` says why.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from energy_hpc.analysis.paper import paper_cells
from energy_hpc.analysis.recommend import pareto_front
from energy_hpc.analysis.summary import model_labels
from energy_hpc.paper_setup import data_mismatch

FAMILY_STYLE = {"traditional": ("#1b9e77", "o"), "llm": ("#d95f02", "s"), "reasoning": ("#7570b3", "^")}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_dir: Path, name: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    fig.tight_layout()
    for p in paths:
        fig.savefig(p, dpi=150)
    _plt().close(fig)
    return paths


def _spread_labels(ax, xs, ys, labels) -> None:
    """Label each point beside it, where the rendered label (measured, not guessed) overlaps no
    other label and no other point and stays inside the axes: right first, then left, moving
    down and up in steps; a label that had to move gets a leader line."""
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    style = {"textcoords": "offset points", "fontsize": 7, "va": "center", "zorder": 4,
             "bbox": {"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8}}
    from matplotlib.transforms import Bbox

    points = [ax.transData.transform((x, y)) for x, y in zip(xs, ys, strict=True)]
    dots = [Bbox.from_extents(px - 5, py - 5, px + 5, py + 5) for px, py in points]
    placed: list = []
    steps = [0.0] + [d for k in range(1, 40) for d in (-9.0 * k, 9.0 * k)]
    for i in np.argsort(-np.asarray(ys)):
        others = placed + [d for j, d in enumerate(dots) if j != i]
        choice = None
        for dy in steps:
            for dx, ha in ((6, "left"), (-6, "right")):
                probe = ax.annotate(labels[i], (xs[i], ys[i]), xytext=(dx, dy), ha=ha, **style)
                box = probe.get_window_extent(renderer)
                probe.remove()
                inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
                if inside and not any(box.overlaps(other) for other in others):
                    choice = (dx, dy, ha, box)
                    break
            if choice:
                break
        dx, dy, ha, box = choice or (6, 0.0, "left", None)
        note = ax.annotate(labels[i], (xs[i], ys[i]), xytext=(dx, dy), ha=ha, **style,
                           arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "grey"} if dy else None)
        placed.append(box if box is not None else note.get_window_extent(renderer))


def point_labels(cells: pd.DataFrame) -> list[str]:
    """A model's label plus whatever tells its cells apart in this panel: cluster, nodes, GPUs."""
    labels = model_labels(cells).to_numpy(dtype=object).copy()
    parts = [("cluster", lambda v: f"@{v}"), ("nodes", lambda v: f"{v} node" + ("s" if v != 1 else "")),
             ("gpus", lambda v: f"{v} GPU" + ("s" if v != 1 else ""))]
    for column, fmt in parts:
        if column in cells and cells[column].nunique() > 1:
            labels = labels + np.array([" " + fmt(v) for v in cells[column]], dtype=object)
    return [str(x) for x in labels]


def same_data(cells: pd.DataFrame) -> bool:
    """Whether some cell of a dataset panel ran the paper's data (classes and split sizes)."""
    for _, cell in cells.iterrows():
        rows = (int(cell["n_train"]) + int(cell["n_test"])
                if not pd.isna(cell.get("n_train")) and not pd.isna(cell.get("n_test")) else None)
        classes = None if pd.isna(cell.get("n_classes")) else int(cell["n_classes"])
        if data_mismatch(str(cell["dataset"]), classes, rows) is None:
            return True
    return False


def figure1(summary: pd.DataFrame, out_dir: Path, with_paper: bool = True) -> list[Path]:
    """Accuracy vs energy (log), families distinguished, Pareto front drawn; one panel per dataset.
    Every cell is a point (1- and 2-node cells alike), labelled with what sets it apart."""
    plt = _plt()
    cells = summary.dropna(subset=["energy_wh_mean", "accuracy_mean"])
    datasets = list(dict.fromkeys(cells["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(7 * len(datasets), 5.5), squeeze=False)
    for ax, ds in zip(axes[0], datasets, strict=True):
        sub = cells[cells["dataset"] == ds]
        for fam, (color, marker) in FAMILY_STYLE.items():
            part = sub[sub["model_family"] == fam]
            if not part.empty:
                ax.scatter(part["energy_wh_mean"], part["accuracy_mean"], c=color, marker=marker,
                           s=45, label=f"{fam} (this run)", zorder=3)
        front = pareto_front(sub)
        if len(front) >= 2:  # one point is no line: no legend entry for a line not drawn
            ax.step(front["energy_wh_mean"], front["accuracy_mean"], where="post", color="black",
                    lw=1, ls="--", label="Pareto front", zorder=2)
        if with_paper and same_data(sub):  # the paper's points only beside the paper's data
            ref = paper_cells(ds).dropna(subset=["energy_wh"])
            if not ref.empty:
                ax.scatter(ref["energy_wh"], ref["accuracy"], facecolors="none", edgecolors="grey",
                           s=45, label="paper (Capella H100)", zorder=1)
        ax.set_xscale("log")
        ax.set_xlabel("energy per pass over the test set (Wh, log scale)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"accuracy vs energy: {ds}")
        ax.grid(True, which="both", alpha=0.3)
        ax.margins(x=0.35, y=0.12)
        _log_ticks(ax)
        _spread_labels(ax, sub["energy_wh_mean"].to_numpy(), sub["accuracy_mean"].to_numpy(),
                       point_labels(sub))
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4)
    return _save(fig, out_dir, "figure1_accuracy_vs_energy")


def _log_ticks(ax) -> None:
    """Label minor ticks (2×, 5×) when the log axis spans under two decades, else decades only;
    a one-decade axis would otherwise show a single number."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    lo, hi = ax.get_xlim()
    if lo > 0 and math.log10(hi / lo) < 2:
        short = FuncFormatter(lambda x, _: f"{x:.0e}".replace("e-0", "e-").replace("e+0", "e"))
        ax.xaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        ax.xaxis.set_major_formatter(short)
        ax.xaxis.set_minor_formatter(short)
        ax.tick_params(axis="x", which="both", labelsize=8)
    else:
        ax.xaxis.set_minor_formatter(NullFormatter())


def figure2(summary: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Energy split into CPU, GPU and RAM per model (share of the total; total in the label)."""
    plt = _plt()
    cells = summary[summary["nodes"] == 1].copy()
    cells["label"] = [f"{label} [{ds}]" for label, ds in zip(point_labels(cells), cells["dataset"],
                                                           strict=True)]
    parts = cells[["cpu_wh_mean", "gpu_wh_mean", "ram_wh_mean"]].astype(float)
    total = parts.sum(axis=1, min_count=1)
    share = parts.div(total, axis=0).fillna(0)
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(cells) + 2))
    left = np.zeros(len(cells))
    ys = np.arange(len(cells))
    for col, name, color in (("cpu_wh_mean", "CPU", "#1f78b4"), ("gpu_wh_mean", "GPU", "#e31a1c"),
                             ("ram_wh_mean", "RAM", "#33a02c")):
        ax.barh(ys, share[col], left=left, color=color, label=name)
        left += share[col].to_numpy()
    ax.set_yticks(ys)
    ax.set_yticklabels(cells["label"], fontsize=8)
    for i, t in enumerate(total):
        ax.text(1.01, i, f"{t:.3g} Wh" if not pd.isna(t) else "n/a", va="center", fontsize=7)
    ax.set_xlim(0, 1.25)
    ax.set_xlabel("share of the energy per pass over the test set (unknown parts count as 0)")
    ax.set_title("energy by device class")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3)
    return _save(fig, out_dir, "figure2_energy_parts")


FIGURE3_LINE = ["model", "dataset", "cluster", "nodes"]


def figure3(summary: pd.DataFrame, out_dir: Path) -> list[Path]:
    """GPU count vs duration and energy: a line per model, dataset, cluster and node count (cells
    of different clusters are never joined)."""
    from matplotlib.ticker import MaxNLocator

    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    for (_model, ds, cluster, nodes), g in summary.groupby(FIGURE3_LINE, sort=False):
        if g["gpus"].nunique() < 2:
            continue
        g = g.sort_values("gpus")
        label = f"{model_labels(g).iloc[0]} [{ds}, {cluster}, {nodes} node(s)]"
        a1.plot(g["gpus"], g["duration_s_mean"], marker="o", label=label)
        a2.plot(g["gpus"], g["energy_wh_mean"], marker="o", label=label)
    for ax, y in ((a1, "duration per pass (s)"), (a2, "energy per pass (Wh)")):
        ax.set_xlabel("GPUs")
        ax.set_ylabel(y)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    a1.set_title("more GPUs: duration")
    a2.set_title("more GPUs: energy")
    a2.legend(fontsize=7)
    return _save(fig, out_dir, "figure3_gpu_count")


def _grouped_bars(ax, labels, series: dict[str, list[float]], ylabel: str) -> None:
    x = np.arange(len(labels))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + i * width, values, width, label=name)
    ax.set_xticks(x + width * (len(series) - 1) / 2)
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)


def _duration_energy_bars(labels: list[str], durations: dict[str, list[float]],
                          energies: dict[str, list[float]], title: str, out_dir: Path,
                          name: str) -> list[Path]:
    """Two panels of grouped bars: duration (s) left, energy (Wh) right."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    _grouped_bars(a1, labels, durations, "duration per pass (s)")
    _grouped_bars(a2, labels, energies, "energy per pass (Wh)")
    a1.set_title(f"{title}: duration")
    a2.set_title(f"{title}: energy")
    a2.legend(fontsize=8)
    return _save(fig, out_dir, name)


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
    """GPU architectures side by side."""
    dur = [c for c in table_b3.columns if c.startswith("Duration ")]
    eng = [c for c in table_b3.columns if c.startswith("Energy ")]
    return _duration_energy_bars(
        list(table_b3["Model"]), {c[9:-4]: list(table_b3[c]) for c in dur},
        {c[7:-5]: list(table_b3[c]) for c in eng}, "GPU architectures", out_dir, "figure5_architectures")


def figure6(summary: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Energy vs duration with a fitted line per GPU count."""
    plt = _plt()
    cells = summary.dropna(subset=["energy_wh_mean", "duration_s_mean"])
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for gpus, g in cells.groupby("gpus", sort=True):
        x, y = g["duration_s_mean"].astype(float), g["energy_wh_mean"].astype(float)
        pts = ax.scatter(x, y, s=30, label=f"{gpus} GPU(s)")
        if len(g) >= 2 and x.nunique() > 1:
            slope, intercept = np.polyfit(x, y, 1)
            xs = np.linspace(x.min(), x.max(), 50)
            ax.plot(xs, slope * xs + intercept, color=pts.get_facecolor()[0], lw=1,
                    label=f"fit {gpus} GPU(s): {slope * 3600:.3g} W")
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
    for ax, metric, name, unit in ((axes[0], "duration_s", "Duration", "s"),
                                   (axes[1], "energy_wh", "Energy", "Wh")):
        lo = pd.to_numeric(summary.get(f"est_{metric}_low"), errors="coerce")
        hi = pd.to_numeric(summary.get(f"est_{metric}_high"), errors="coerce")
        measured = pd.to_numeric(summary[f"{metric}_mean"], errors="coerce")
        ok = lo.notna() & hi.notna() & (lo > 0) & (measured > 0)
        for kind, (color, marker) in BASIS_STYLE.items():
            pick = ok & (basis == kind)
            if not pick.any():
                continue
            mid = np.sqrt(lo[pick] * hi[pick])
            ax.errorbar(measured[pick], mid, yerr=np.vstack([mid - lo[pick], hi[pick] - mid]),
                        fmt=marker, color=color, ms=6, capsize=3, lw=1,
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
        ax.legend(fontsize=7)
    return _save(fig, out_dir, "figure7_estimate_vs_measured")


def make_figures(summary: pd.DataFrame, b2: pd.DataFrame, b3: pd.DataFrame, out_dir: Path,
                 with_paper: bool = True, by_cell: pd.DataFrame | None = None,
                 ) -> tuple[dict[str, list[Path]], dict[str, str]]:
    """Draw every figure the records allow; return the files and, per skipped figure, why."""
    made: dict[str, list[Path]] = {}
    skipped: dict[str, str] = {}
    single = summary[summary["nodes"] == 1]
    if summary.dropna(subset=["energy_wh_mean", "accuracy_mean"]).empty:
        skipped["figure1"] = "no cells with energy and accuracy"
    else:
        made["figure1"] = figure1(summary, out_dir, with_paper)
    if single.empty:
        skipped["figure2"] = "no single-node cells"
    else:
        made["figure2"] = figure2(summary, out_dir)
    if not any(g["gpus"].nunique() > 1 for _, g in summary.groupby(FIGURE3_LINE)):
        skipped["figure3"] = "no model measured with more than one GPU count on one cluster"
    else:
        made["figure3"] = figure3(summary, out_dir)
    both = b2.dropna(subset=["Duration single (s)", "Duration double (s)"]) if not b2.empty else b2
    if both.empty:
        skipped["figure4"] = "no model measured on both one and two nodes"
    else:
        made["figure4"] = figure4(both, out_dir)
    if len([c for c in b3.columns if c.startswith("Duration ")]) < 2:
        skipped["figure5"] = "fewer than two GPU types (clusters) in these records"
    else:
        made["figure5"] = figure5(b3, out_dir)
    made["figure6"] = figure6(summary, out_dir)
    if by_cell is None or by_cell.empty:
        skipped["figure7"] = ("no cell in these records kept an estimate (recorded before "
                              "estimates, or none could be made)")
    else:
        made["figure7"] = figure7(by_cell, out_dir)
    return made, skipped
