"""When adapting pays back: totals per volume, break-even counts, Figure 8, the sentence."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from energy_hpc.analysis.payback import (
    break_even,
    break_even_table,
    frontier_pairs,
    payback_sentence,
    total_cost_table,
)
from energy_hpc.analysis.summary import summarize
from tests.conftest import NEEDS_ANALYSIS


def rec(model, fit_wh, per_text_wh, acc, *, display=None, cluster="local", split=0,
        family="traditional"):
    return {"schema_version": 1, "cell_id": f"{model}-{cluster}", "split": split, "model": model,
            "model_display": display or model, "model_family": family, "dataset": "demo",
            "cluster": cluster, "gpu_type": "-", "gpus": 0, "nodes": 1, "decoding": None,
            "batching": None, "accuracy": acc, "energy_wh": per_text_wh * 200, "duration_s": 1.0,
            "avg_power_w": 1.0, "energy_per_sample_wh": per_text_wh, "fit_energy_wh": fit_wh,
            "fit_duration_s": 1.0, "carbon_intensity_g_per_kwh": 400.0}


def known() -> pd.DataFrame:
    # SetFit: 2 Wh to fit, 1e-4 Wh a text; an LLM: nothing to fit, 1e-2 Wh a text; Tf-idf: cheap
    return summarize(pd.DataFrame([
        rec("setfit_minilm", 2.0, 1e-4, 0.86, display="SetFit (MiniLM)", family="adapted"),
        rec("llama8b", 0.0, 1e-2, 0.80, display="Llama 3.1 8B", family="llm"),
        rec("linear_embedding", 0.01, 1e-4, 0.81, display="Linear Embedding"),
        rec("linear_tfidf", 1e-4, 1e-6, 0.70, display="Linear Tf-idf")]))


def test_break_even_is_the_fit_difference_over_the_per_text_difference():
    s = known().set_index("model")
    n = break_even(s.loc["setfit_minilm"], s.loc["llama8b"])
    assert n == pytest.approx(2.0 / (1e-2 - 1e-4))  # 202.02… texts
    assert break_even(s.loc["setfit_minilm"], s.loc["linear_tfidf"]) == math.inf  # dearer per text too
    assert break_even(s.loc["linear_tfidf"], s.loc["llama8b"]) == pytest.approx(1e-4 / (1e-2 - 1e-6))


def test_total_cost_table_at_volumes_and_a_users_year():
    table = total_cost_table(known(), volume=1_000_000).set_index("Model")
    row = table.loc["SetFit (MiniLM)"]
    assert row["Fit (Wh)"] == 2.0 and row["Inference per text (Wh)"] == 1e-4
    assert row["Total 1,000 texts (Wh)"] == pytest.approx(2.1)
    assert row["Total 10,000,000 texts (Wh)"] == pytest.approx(1002.0)
    assert row["1,000,000 texts/year (kWh)"] == pytest.approx(0.102)
    assert row["1,000,000 texts/year (kg CO2)"] == pytest.approx(0.102 * 0.4)


def test_break_even_table_covers_frontier_pairs_and_says_never():
    table = break_even_table(known())
    front = {(r["Costlier to fit"], r["Other"]): r["Break-even (texts)"] for _, r in table.iterrows()}
    assert front[("SetFit (MiniLM)", "Linear Tf-idf")] == "never"
    assert ("SetFit (MiniLM)", "Llama 3.1 8B") not in front  # the LLM is not on the frontier
    assert len(frontier_pairs(known())) == len(table)


def test_the_sentence_names_accuracy_gain_and_payback():
    said = payback_sentence(known(), "demo")
    assert said == ("SetFit (MiniLM) reaches 0.860, 0.050 more than Linear Embedding; its 2 Wh of "
                    "training is paid back against Llama 3.1 8B after 203 texts.")
    no_adapted = known()[known()["model"] != "setfit_minilm"]
    assert payback_sentence(no_adapted, "demo") is None


@NEEDS_ANALYSIS
def test_figure8_marks_the_break_even_points(tmp_path, monkeypatch):
    from energy_hpc.analysis import figures

    kept = {}
    monkeypatch.setattr(figures, "_save", lambda fig, out, name: kept.setdefault(name, fig) and [])
    s = summarize(pd.DataFrame([rec("setfit_minilm", 2.0, 1e-4, 0.86, display="SetFit",
                                    family="adapted"),
                                rec("llama8b", 0.0, 1e-2, 0.90, display="Llama")]))
    figures.figure8(s, tmp_path)
    ax = kept["figure8_cumulative_energy"].axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert [line.get_label() for line in ax.get_lines()] == ["SetFit", "Llama"]
    marks = ax.collections  # only break-even points are scattered in figure 8
    points = {tuple(m.get_offsets()[0]) for m in marks}  # the frontier pair and the adapted pair
    assert len(points) == 1
    [(x, y)] = points
    assert x == pytest.approx(2.0 / (1e-2 - 1e-4)) and y == pytest.approx(2.0 + x * 1e-4)
