"""Measurement quality grades per meter kind, and meters checked against each other."""

from __future__ import annotations

import pandas as pd
import pytest

from energy_hpc.analysis.quality import meter_agreement, split_quality, worst

# the methods each meter writes (codecarbon_meter.py, rapl.py, nvml.py)
CASES = [
    ({"cpu_method": "codecarbon-cpu_load", "ram_method": "codecarbon-3.3.0-ram-model",
      "cpu_wh": 1.0, "ram_wh": 0.5}, "modelled", 1.0),
    ({"cpu_method": "rapl", "ram_method": "rapl-dram", "cpu_wh": 1.0, "ram_wh": 0.5},
     "counted", 0.0),
    ({"gpu_method": "nvml-counter", "gpu_wh": 3.0}, "counted", 0.0),
    ({"gpu_method": "nvml-power-sampling@0.1s", "gpu_wh": 3.0}, "counted", 0.0),
    ({"cpu_method": "codecarbon-intel_rapl", "gpu_method": "codecarbon-nvml",
      "ram_method": "paper-0.375W/GB-job-memory", "cpu_wh": 1.0, "gpu_wh": 2.0, "ram_wh": 1.0},
     "partly modelled", 0.25),
]


@pytest.mark.parametrize(("rec", "grade", "share"), CASES)
def test_each_meter_kind_gets_its_grade(rec, grade, share):
    q = split_quality(rec)
    assert q["grade"] == grade and q["modelled_share"] == pytest.approx(share)


def test_a_cell_takes_the_worst_grade_and_the_summary_shows_it():
    from energy_hpc.analysis.summary import summarize

    assert worst(pd.Series(["counted", "counted"])) == "counted"
    assert worst(pd.Series(["counted", "modelled"])) == "partly modelled"
    assert worst(pd.Series([None])) is None
    rows = [{"model": "m", "dataset": "d", "cluster": "c", "accuracy": 0.5, "energy_wh": 1.5,
             "duration_s": 1.0, "avg_power_w": 1.0, "energy_per_sample_wh": 0.01,
             "window_s": 2.0, "samples": 1, **CASES[i][0]} for i in (0, 0)]
    out = summarize(pd.DataFrame(rows))
    assert list(out["measurement"]) == ["modelled"] and list(out["modelled_share_mean"]) == [1.0]


def test_meters_that_disagree_past_ten_percent_are_flagged():
    records = pd.DataFrame([
        {"cell_id": "a", "model": "m", "nvml_gpu_wh": 10.0, "codecarbon_gpu_wh": 10.5,
         "rapl_cpu_wh": 5.0, "codecarbon_cpu_wh": 8.0},
        {"cell_id": "a", "model": "m", "nvml_gpu_wh": 11.0, "codecarbon_gpu_wh": 10.9,
         "rapl_cpu_wh": 5.2, "codecarbon_cpu_wh": 8.1},
    ])
    table = meter_agreement(records).set_index("part")
    assert not table.loc["gpu", "disagree"] and table.loc["cpu", "disagree"]
    assert table.loc["cpu", "ratio"] == pytest.approx(((5 / 8) + (5.2 / 8.1)) / 2)
    assert meter_agreement(pd.DataFrame([{"cell_id": "a", "model": "m", "codecarbon_cpu_wh": 1.0}])).empty
    checked = pd.DataFrame([{"cell_id": "b", "model": "m", "nvml_counter_check": [
        {"gpu": 0, "ratio": 0.8}, {"gpu": 1, "ratio": 0.84}]}, {"cell_id": "b", "model": "m",
                                                                "nvml_counter_check": None}])
    row = meter_agreement(checked).iloc[0]
    assert row["meters"] == "nvml counter / nvml power sampling" and row["disagree"]
    assert row["ratio"] == pytest.approx(0.82) and row["splits"] == 2


def test_the_report_says_beside_each_figure_how_its_configurations_were_measured(tmp_path):
    """Figure 2 draws only single-node configurations, figure 4 the model on both node counts:
    each says the grades of the configurations it draws, not the sweep's."""
    import json

    pytest.importorskip("matplotlib")
    from energy_hpc.analysis.figures import drawn_configurations, grade_note
    from energy_hpc.analysis.summary import summarize
    from energy_hpc.report import build_report

    def row(model, nodes, split, methods):
        return {"schema_version": 1, "cell_id": f"{model}-n{nodes}", "model": model,
                "model_display": model, "model_family": "traditional", "dataset": "demo",
                "cluster": "dev_slurm", "gpu_type": "-", "gpus": 0, "nodes": nodes, "split": split,
                "accuracy": 0.6 + 0.01 * split, "energy_wh": 1e-3 * nodes * (1 + 0.1 * split),
                "duration_s": 0.5 * (1 + 0.1 * split), "avg_power_w": 5.0,
                "energy_per_sample_wh": 1e-5, "window_s": 2.0, "samples": 2, "cpu_wh": None,
                "gpu_wh": None, "ram_wh": None, "decoding": None, "batching": None,
                "est_basis": "rule of thumb", "est_duration_s_low": 0.4,
                "est_duration_s_high": 0.6, "est_energy_wh_low": 1e-3,
                "est_energy_wh_high": 2e-3, **methods}

    counted, modelled = CASES[1][0], CASES[0][0]
    rows = [row("linear_bow", 1, s, counted) for s in range(2)]
    rows += [row("linear_bow", 2, s, modelled) for s in range(2)]
    rows += [row("linear_tfidf", 1, s, modelled) for s in range(2)]
    drawn = drawn_configurations(summarize(pd.DataFrame(rows)))
    assert grade_note(drawn["figure2"]) == "1 counted, 1 modelled"  # the two single-node ones
    assert grade_note(drawn["figure4"]) == "1 counted, 1 modelled"  # linear_bow on 1 and 2 nodes
    assert len(drawn["figure4"]) == 2 and set(drawn["figure4"]["model"]) == {"linear_bow"}
    assert grade_note(drawn["figure6"]) == "1 counted, 2 modelled"
    assert drawn["figure3"].empty and grade_note(drawn["figure3"].assign(measurement=[])) is None

    path = tmp_path / "in" / "cells" / "x" / "records.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = build_report([str(tmp_path / "in")], tmp_path / "out", progress=False).read_text()
    figures = text.split("## Figures")[1]
    fig2 = figures.split("### figure2")[1].split("###")[0]
    assert "Measurement of the 2 configuration(s) drawn: 1 counted, 1 modelled" in fig2
    fig6 = figures.split("### figure6")[1].split("###")[0]
    assert "Measurement of the 3 configuration(s) drawn: 1 counted, 2 modelled" in fig6
    assert "Measurement of the" not in figures.split("### figure3")[1].split("###")[0]
    # figure 7 draws the cells that kept an estimate: matched to their configurations although
    # the records' None is the summary's "-"
    fig7 = figures.split("### figure7")[1].split("###")[0]
    assert "Measurement of the 3 configuration(s) drawn: 1 counted, 2 modelled" in fig7
