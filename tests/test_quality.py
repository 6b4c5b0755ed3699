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
