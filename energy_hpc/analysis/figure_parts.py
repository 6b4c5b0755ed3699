"""The parts every figure is drawn with: matplotlib without a screen, saving PNG and PDF, labels
that sit beside their own point (or numbers and a key), error bars from the 95% intervals, log
ticks, grouped bars."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from energy_hpc import columns as rc
from energy_hpc.analysis.summary import model_labels
from energy_hpc.paper_setup import data_mismatch


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_dir: Path, name: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    fig.tight_layout()
    keys = [t for ax in fig.axes for t in ax.texts if getattr(t, "outside_key", False)]
    if keys:  # given extra artists, the tight box must be told of the legends and notes too
        keys += [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        keys += list(fig.texts)
    for p in paths:  # tight: a legend, label or key outside the axes is never cut off
        fig.savefig(p, dpi=150, bbox_inches="tight", bbox_extra_artists=keys or None)
    _plt().close(fig)
    return paths


def _spread_labels(ax, xs, ys, labels, strict: bool = True) -> bool:
    """Label each point beside it, where the rendered label (measured, not guessed) overlaps no
    other label and no other point, stays inside the axes and sits nearer its own point than any
    other: right first, then left, moving down and up in steps; a label that had to move gets a
    leader line. Returns False (and draws nothing) when some label finds no such place."""
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    style = {"textcoords": "offset points", "fontsize": 7, "va": "center", "zorder": 4,
             "bbox": {"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8}}
    from matplotlib.transforms import Bbox

    points = [ax.transData.transform((x, y)) for x, y in zip(xs, ys, strict=True)]
    dots = [Bbox.from_extents(px - 5, py - 5, px + 5, py + 5) for px, py in points]
    placed: list = []
    choices: dict[int, tuple] = {}
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
                if inside and not any(box.overlaps(other) for other in others) \
                        and (not strict or _nearest(box, points) == i):
                    choice = (dx, dy, ha, box)
                    break
            if choice:
                break
        if choice is None and strict:
            return False
        if choice is None:  # nowhere free: beside the point, with a leader line
            probe = ax.annotate(labels[i], (xs[i], ys[i]), xytext=(6, 9.0), ha="left", **style)
            choice = (6, 9.0, "left", probe.get_window_extent(renderer))
            probe.remove()
        choices[int(i)] = choice
        placed.append(choice[3])
    for i, (dx, dy, ha, _box) in choices.items():
        ax.annotate(labels[i], (xs[i], ys[i]), xytext=(dx, dy), ha=ha, **style,
                    arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "grey"} if dy else None)
    return True


def label_points(ax, xs, ys, labels) -> None:
    """Full labels beside the points where they all fit cleanly; else a number beside each point
    (points that coincide on screen share one label, "7, 8") and a key of the numbers beside the
    axes, so no label can be read as its neighbour's."""
    if _spread_labels(ax, xs, ys, labels):
        return
    pixels = [ax.transData.transform((x, y)) for x, y in zip(xs, ys, strict=True)]
    groups: list[list[int]] = []
    for i, p in enumerate(pixels):
        near = next((g for g in groups if math.dist(pixels[g[0]], p) < 8), None)
        if near is None:
            groups.append([i])
        else:
            near.append(i)
    gx = [xs[g[0]] for g in groups]
    gy = [ys[g[0]] for g in groups]
    names = [", ".join(str(i + 1) for i in g) for g in groups]
    if not _spread_labels(ax, gx, gy, names):
        _spread_labels(ax, gx, gy, names, strict=False)
    key = ax.text(1.02, 1.0, "\n".join(f"{k + 1:>2}  {label}" for k, label in enumerate(labels)),
                  transform=ax.transAxes, va="top", ha="left", fontsize=7, family="monospace")
    key.set_in_layout(False)  # the axes keep their size; the saved figure grows to hold the key
    key.outside_key = True  # type: ignore[attr-defined]  # _save includes it in the saved bbox


def _nearest(box, points) -> int:
    """The point closest to a label's box (0 inside it): a label must sit nearest its own point,
    or a reader takes it for its neighbour's."""
    def gap(p) -> float:
        dx = max(box.x0 - p[0], 0.0, p[0] - box.x1)
        dy = max(box.y0 - p[1], 0.0, p[1] - box.y1)
        return math.hypot(dx, dy)

    return min(range(len(points)), key=lambda j: gap(points[j]))


def point_labels(cells: pd.DataFrame) -> list[str]:
    """A model's label plus whatever tells its cells apart in this panel: cluster, nodes, GPUs."""
    labels = model_labels(cells).to_numpy(dtype=object).copy()
    parts = [(rc.CLUSTER, lambda v: f"@{v}"), (rc.NODES, lambda v: f"{v} node" + ("s" if v != 1 else "")),
             (rc.GPUS, lambda v: f"{v} GPU" + ("s" if v != 1 else ""))]
    for column, fmt in parts:
        if column in cells and cells[column].nunique() > 1:
            labels = labels + np.array([" " + fmt(v) for v in cells[column]], dtype=object)
    return [str(x) for x in labels]


def same_data(cells: pd.DataFrame) -> bool:
    """Whether some cell of a dataset panel ran the paper's data (classes and split sizes)."""
    for _, cell in cells.iterrows():
        rows = (int(cell[rc.N_TRAIN]) + int(cell[rc.N_TEST])
                if not pd.isna(cell.get(rc.N_TRAIN)) and not pd.isna(cell.get(rc.N_TEST)) else None)
        classes = None if pd.isna(cell.get(rc.N_CLASSES)) else int(cell[rc.N_CLASSES])
        if data_mismatch(str(cell[rc.DATASET]), classes, rows) is None:
            return True
    return False


CI_NOTE = "error bars: 95% t-interval of the mean over splits"
LOG_CI_NOTE = (CI_NOTE + "; on a log axis an interval reaching 0 is drawn from its point "
               "rightwards only")


def _ci_err(cells: pd.DataFrame, metric: str) -> np.ndarray | None:
    """Asymmetric error bars (below, above the mean) from ``<metric>_ci_low/high``; None when the
    summary has no intervals (fewer than 2 splits everywhere)."""
    lo, hi = cells.get(f"{metric}_ci_low"), cells.get(f"{metric}_ci_high")
    if lo is None or hi is None:
        return None
    mean = pd.to_numeric(cells[f"{metric}_mean"], errors="coerce").to_numpy(float)
    lo, hi = pd.to_numeric(lo, errors="coerce").to_numpy(float), pd.to_numeric(hi, errors="coerce").to_numpy(float)
    below, above = np.nan_to_num(mean - lo), np.nan_to_num(hi - mean)
    return np.vstack([np.clip(below, 0, None), np.clip(above, 0, None)])


def _ci_bars(ax: Any, cells: pd.DataFrame, x: str, y: str, color: str,
             log_x: bool = False) -> None:
    """Error bars; on a log x axis an interval whose low end is at or below 0 has no left arm
    (a line to the axis' edge would read as a reference line): the caption says so."""
    xerr = _ci_err(cells, x)
    if log_x and xerr is not None:
        low = pd.to_numeric(cells.get(f"{x}_ci_low"), errors="coerce").to_numpy(float)
        xerr[0] = np.where(np.nan_to_num(low, nan=1.0) <= 0, 0.0, xerr[0])
    ax.errorbar(cells[f"{x}_mean"], cells[f"{y}_mean"], xerr=xerr,
                yerr=_ci_err(cells, y), fmt="none", ecolor=color, alpha=0.6, lw=1, capsize=2,
                zorder=2)


class DistinctTicks:
    """Tick labels in short scientific form (``2e-4``) with as many significant digits as it
    takes for the visible ticks to read differently (``1.9e-4, 2e-4, 2.1e-4``)."""

    def __new__(cls) -> Any:
        from matplotlib.ticker import Formatter

        class _Distinct(Formatter):
            digits = 1
            seen: list[float] = []

            def set_locs(self, locs: Any) -> None:
                self.seen = sorted(set(self.seen) | {float(v) for v in locs if v > 0})
                lo, hi = self.axis.get_view_interval() if self.axis is not None else (0, math.inf)
                shown = [v for v in self.seen if lo <= v <= hi]
                for digits in range(1, 6):
                    self.digits = digits
                    if len({_short(v, digits) for v in shown}) == len(shown):
                        break

            def __call__(self, x: float, pos: Any = None) -> str:
                return _short(x, self.digits) if x > 0 else ""

        return _Distinct()


def _short(value: float, digits: int) -> str:
    text = f"{value:.{digits - 1}e}"
    mantissa, exponent = text.split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def _log_ticks(ax) -> None:
    """Label minor ticks (2×, 5×) when the log axis spans under two decades, else decades only;
    a one-decade axis would otherwise show a single number."""
    from matplotlib.ticker import LogLocator, NullFormatter

    lo, hi = ax.get_xlim()
    if lo > 0 and hi / lo < 3:  # too narrow for 1-2-5: a few evenly spaced ticks
        from matplotlib.ticker import MaxNLocator, NullLocator

        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(DistinctTicks())
        ax.tick_params(axis="x", which="both", labelsize=8)
    elif lo > 0 and math.log10(hi / lo) < 2:
        ax.xaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        # one formatter for both: an axis narrower than a factor 2 gets linear ticks, which
        # one significant digit would print as "2e-4, 2e-4, 2e-4"
        short = DistinctTicks()
        ax.xaxis.set_major_formatter(short)
        ax.xaxis.set_minor_formatter(short)
        ax.tick_params(axis="x", which="both", labelsize=8)
    else:
        ax.xaxis.set_minor_formatter(NullFormatter())


def _grouped_bars(ax, labels, series: dict[str, list[float]], ylabel: str) -> None:
    """Bars on a log scale when the values span more than a decade (small bars stay visible)."""
    x = np.arange(len(labels))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + i * width, values, width, label=name)
    values = pd.to_numeric(pd.Series([v for vs in series.values() for v in vs]), errors="coerce")
    values = values[values > 0]
    if len(values) and values.max() / values.min() > 10:
        ax.set_yscale("log")
        ax.set_ylim(bottom=values.min() / 3)  # a bar's foot shows: its height reads from 0
        ylabel += ", log scale"
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
    for ax in (a1, a2):
        ax.legend(fontsize=8)
    return _save(fig, out_dir, name)
