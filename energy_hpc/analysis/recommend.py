"""The decision the paper argues for: the least energy for the accuracy you need, on the Pareto front."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from energy_hpc import columns as rc
from energy_hpc.analysis.summary import pareto_front

__all__ = ["pareto_front", "Recommendation"]


@dataclass
class Recommendation:
    dataset: str
    sentence: str
    chosen: pd.Series | None
    most_accurate: pd.Series | None
    floor: float | None
    reached: bool


def _name(row: pd.Series) -> str:
    label = row.get(rc.MODEL_DISPLAY) if row.get(rc.MODEL_DISPLAY) not in (None, "-") else row[rc.MODEL]
    where = f"{row['cluster']}"
    if row.get(rc.GPUS) not in (None, 0) and not pd.isna(row.get(rc.GPUS)):
        where += f", {row['gpus']} GPU(s)"
    if row.get(rc.NODES, 1) not in (1, None):
        where += f", {row['nodes']} nodes"
    return f"{label} ({where})"


def ratio_interval(a: pd.Series, b: pd.Series, metric: str = rc.ENERGY_WH,
                   level: float = 0.95) -> tuple[float, float] | None:
    """95% interval of mean_a / mean_b over splits: the delta method on the log ratio
    (se² = sd_a²/(n_a·mean_a²) + sd_b²/(n_b·mean_b²)) with the t quantile of the fewer splits;
    None when either cell has fewer than 2 splits."""
    import math

    from scipy import stats

    try:
        ma, mb = float(a[f"{metric}_mean"]), float(b[f"{metric}_mean"])
        sa, sb = float(a[f"{metric}_std"]), float(b[f"{metric}_std"])
        na, nb = int(a["splits"]), int(b["splits"])
    except (KeyError, TypeError, ValueError):
        return None
    if min(na, nb) < 2 or not (ma > 0 and mb > 0) or math.isnan(sa) or math.isnan(sb):
        return None
    se = math.sqrt(sa ** 2 / (na * ma ** 2) + sb ** 2 / (nb * mb ** 2))
    t = float(stats.t.ppf((1 + level) / 2, min(na, nb) - 1))
    ratio = ma / mb
    return ratio * math.exp(-t * se), ratio * math.exp(t * se)


def apart(a: pd.Series, b: pd.Series, metric: str) -> bool | None:
    """Whether two cells' 95% intervals of ``metric`` do not overlap (None: no intervals)."""
    try:
        lo_a, hi_a = float(a[f"{metric}_ci_low"]), float(a[f"{metric}_ci_high"])
        lo_b, hi_b = float(b[f"{metric}_ci_low"]), float(b[f"{metric}_ci_high"])
    except (KeyError, TypeError, ValueError):
        return None
    if any(pd.isna(v) for v in (lo_a, hi_a, lo_b, hi_b)):
        return None
    return hi_a < lo_b or hi_b < lo_a


DEFAULT_WITHIN = 0.01  # without --floor or --within: what one accuracy point below the best buys


def percents(point: float, low: float, high: float) -> tuple[str, str, str]:
    """A point and its interval as percentages at one precision, fine enough that the interval
    does not collapse onto one number while the point differs (99.94% in 99.91% to 99.97%, never
    99.9% in 100% to 100%); rounding one way keeps the point inside."""
    texts = ("", "", "")
    for digits in range(0, 5):
        texts = tuple(f"{v:.{digits}%}" for v in (point, low, high))  # type: ignore[assignment]
        if texts[1] != texts[2] or low == high:
            break
    return texts


def recommend_all(summary: pd.DataFrame, accuracy_floor: float | None = None,
                  within: float | None = None) -> list[Recommendation]:
    """One recommendation per dataset and cluster: a cell is compared with cells measured on the
    same cluster (the same hardware and meters), never with another cluster's. Without a floor
    or ``within``, ``within`` is :data:`DEFAULT_WITHIN` (and the sentence says so)."""
    from energy_hpc.analysis.payback import payback_sentence  # payback imports this module

    for name, value in (("accuracy_floor", accuracy_floor), ("within", within)):
        if value is not None and not 0 <= value <= 1:  # one rule for both: an accuracy's range
            raise ValueError(f"{name}={value} must lie between 0 and 1 (accuracies and their "
                             "differences are fractions)")
    said = accuracy_floor is not None or within is not None
    if not said:
        within = DEFAULT_WITHIN
    out = []
    for ds in dict.fromkeys(summary[rc.DATASET]):
        clusters = list(dict.fromkeys(summary.loc[summary[rc.DATASET] == ds, rc.CLUSTER]))
        for cluster in clusters:
            rec = recommend(summary, ds, accuracy_floor, within,
                            cluster=cluster if len(clusters) > 1 else None)
            if not said and rec.chosen is not None:
                rec.sentence += (f" (Cells within {DEFAULT_WITHIN} of the best accuracy count as "
                                 "good enough; --within or --floor sets that.)")
            payback = payback_sentence(summary, ds, cluster if len(clusters) > 1 else None)
            if payback:
                rec.sentence += " " + payback
            out.append(rec)
    return out


def recommend(summary: pd.DataFrame, dataset: str, accuracy_floor: float | None = None,
              within: float | None = None, cluster: str | None = None) -> Recommendation:
    """Name the least-energy cell reaching the floor (or ``best - within``) and what it saves;
    with ``cluster``, among that cluster's cells only."""
    cells = summary[summary[rc.DATASET] == dataset]
    where = dataset
    if cluster is not None:
        cells = cells[cells[rc.CLUSTER] == cluster]
        where = f"{dataset} @ {cluster} (compared within this cluster)"
    cells = cells.dropna(subset=["energy_wh_mean", "accuracy_mean"])
    if cells.empty:
        return Recommendation(dataset, f"No measured cells for {where}.", None, None, None, False)
    front = pareto_front(cells)
    top = front.iloc[-1]
    floor = accuracy_floor
    if floor is None and within is not None:
        floor = float(top["accuracy_mean"]) - within
    if floor is None:
        floor = float(top["accuracy_mean"])
    ok = front[front["accuracy_mean"] >= floor - 1e-12]
    if ok.empty:
        return Recommendation(
            dataset,
            f"On {where}, no cell reaches accuracy {floor:.3f}; the best available is {_name(top)} "
            f"at {top['accuracy_mean']:.3f} for {top['energy_wh_mean']:.3g} Wh.",
            top, top, floor, False)
    chosen = ok.iloc[0]
    e_c, e_t = float(chosen["energy_wh_mean"]), float(top["energy_wh_mean"])
    if chosen.name == top.name:
        sentence = (f"On {where}, {_name(top)} is the most accurate cell ({top['accuracy_mean']:.3f}) "
                    f"and nothing cheaper reaches {floor:.3f}; it uses {e_t:.3g} Wh per pass over the test set.")
    else:
        saving = 1 - e_c / e_t if e_t > 0 else float("nan")
        factor = e_t / e_c if e_c > 0 else float("inf")
        ci = ratio_interval(chosen, top)
        ci_text = ""
        saving_text = f"{saving:.1%}"
        if ci is not None:
            saving_text, low, high = percents(saving, 1 - ci[1], 1 - ci[0])
            ci_text = f" (95% CI {low} to {high})"
            if ci[0] <= 1 <= ci[1]:
                ci_text += ", which the splits cannot tell apart from no saving"
        sentence = (f"On {where}, {_name(chosen)} reaches {chosen['accuracy_mean']:.3f} accuracy "
                    f"(floor {floor:.3f}) for {e_c:.3g} Wh per pass over the test set: {saving_text} less energy"
                    f"{ci_text} ({factor:.3g}x) than the most accurate, {_name(top)} "
                    f"({top['accuracy_mean']:.3f}, {e_t:.3g} Wh).")
        if apart(chosen, top, rc.ACCURACY) is False:
            sentence += (f" Their accuracies cannot be told apart at 95% "
                         f"({chosen['accuracy_ci_low']:.3f}–{chosen['accuracy_ci_high']:.3f} vs "
                         f"{top['accuracy_ci_low']:.3f}–{top['accuracy_ci_high']:.3f}).")
    return Recommendation(dataset, sentence, chosen, top, floor, True)


def cheapest_ways(summary: pd.DataFrame, within: float | None = None) -> list[str]:
    """Per LLM measured more than one way (tables.table_llm_methods): the way of least energy per
    text whose accuracy is within ``within`` of that model's best way, and what it saves against
    the paper's way."""
    from energy_hpc.analysis.summary import model_labels
    from energy_hpc.analysis.tables import is_papers_way, llm_method_groups, way_of

    within = DEFAULT_WITHIN if within is None else within
    out = []
    for group in llm_method_groups(summary):
        cells = group.dropna(subset=["energy_per_sample_wh_mean", "accuracy_mean"])
        if len(cells) < 2:
            continue
        good = cells[cells["accuracy_mean"] >= cells["accuracy_mean"].max() - within]
        best = good.loc[good["energy_per_sample_wh_mean"].idxmin()]
        name = model_labels(cells.loc[[best.name]]).iloc[0]
        sentence = (f"{name} on {best[rc.DATASET]} @ {best[rc.CLUSTER]}: of {len(cells)} ways, the "
                    f"cheapest within {within:g} of its best accuracy is **{way_of(best)}** "
                    f"({best['energy_per_sample_wh_mean']:.3g} Wh per text, accuracy "
                    f"{best['accuracy_mean']:.3f})")
        papers = cells[[is_papers_way(c) for _, c in cells.iterrows()]]
        if not papers.empty and best.name not in papers.index:
            ratio = papers["energy_per_sample_wh_mean"].min() / best["energy_per_sample_wh_mean"]
            sentence += f", {ratio:.3g}x less energy than the paper's way (free, sequential)"
        out.append(sentence + ".")
    return out
