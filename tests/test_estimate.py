"""Estimates before a run: the first-principles arithmetic by hand, calibration from records."""

from __future__ import annotations

import pandas as pd
import pytest

from energy_hpc.cell import compose_cell
from energy_hpc.config import ConfigError, compose_settings
from energy_hpc.estimate import U_DECODE, U_PREFILL, estimate, first_principles_pass, total


def test_first_principles_by_hand_8b_189_texts_one_h100():
    # 8 B params in bf16 (2 bytes) on one H100 (989 TFLOP/s bf16, 3,350 GB/s); 400 prompt tokens,
    # 25 answer tokens per text
    prefill = 2 * 8e9 * 400 / (989e12 * U_PREFILL)  # 6.4 TFLOP per prompt
    per_token = 16e9 / (3350e9 * U_DECODE)  # the 16 GB of weights read once per token
    assert prefill == pytest.approx(0.018489, rel=1e-4) and per_token == pytest.approx(0.0086839, rel=1e-4)
    sequential = first_principles_pass(8, 2, 1, 1, 989, 3350, 189, 400, 25, batched=False)
    batched = first_principles_pass(8, 2, 1, 1, 989, 3350, 189, 400, 25, batched=True)
    assert sequential == pytest.approx(189 * (0.018489 + 25 * 0.0086839), rel=1e-4)  # 44.5 s
    assert batched == pytest.approx(189 * 0.018489 + 25 * 0.0086839, rel=1e-4)  # 3.7 s
    two_gpus = first_principles_pass(8, 2, 2, 1, 989, 3350, 189, 400, 25, batched=False)
    assert two_gpus == pytest.approx(sequential / 2)  # TP splits both phases
    assert first_principles_pass(8, 2, 1, 2, 989, 3350, 189, 400, 25, batched=False) == sequential


def test_a_dry_run_estimate_says_its_basis_and_ranges():
    seq = estimate(compose_cell(["cluster=capella", "model=llama8b"]))
    bat = estimate(compose_cell(["cluster=capella", "model=llama8b", "model.batching=batched"]))
    assert seq.basis.startswith("first principles") and seq.available
    assert seq.wall_s[0] < seq.wall_s[1] and bat.wall_s[1] < seq.wall_s[0]
    assert "GPU-h" in seq.describe() and "PUE not stated" in seq.describe()
    reasoning = estimate(compose_cell(["cluster=capella", "model=ds_llama8b"]))
    assert reasoning.wall_s[1] > 10 * seq.wall_s[1]  # long answers: a range, not a point
    assert "5 cell(s)" not in total([seq, bat])
    assert "estimated total for 2 cell(s)" in total([seq, bat, estimate(compose_cell(["cluster=dev_slurm"]))])


def test_without_datasheet_facts_the_estimate_says_so_and_never_blocks():
    none = estimate(compose_cell(["cluster=dev_slurm", "model=llama8b", "model.engine=transformers"]))
    assert not none.available
    assert "no GPU datasheet facts for cluster dev_slurm" in none.describe()
    traditional = estimate(compose_cell(["cluster=capella"]))
    assert "nothing measured yet" in traditional.basis


def test_calibrated_from_records_of_the_same_model_and_cluster():
    cell = compose_cell(["cluster=capella", "model=llama8b", "repetitions=10"])
    records = pd.DataFrame([
        {"cell_id": "a", "model": "llama8b", "cluster": "capella", "gpus": 1, "nodes": 1,
         "duration_s": 36.0, "energy_wh": 5.4, "n_test": 180},  # 0.2 s, 0.03 Wh per text
        {"cell_id": "b", "model": "llama8b", "cluster": "capella", "gpus": 1, "nodes": 1,
         "duration_s": 50.0, "energy_wh": 8.0, "n_test": 200},  # 0.25 s, 0.04 Wh per text
        {"cell_id": "c", "model": "llama8b", "cluster": "clara", "gpus": 1, "nodes": 1,
         "duration_s": 1.0, "energy_wh": 1.0, "n_test": 200},  # another cluster: not used
    ])
    est = estimate(cell, records)
    assert est.basis == "calibrated from 2 cell(s)"
    assert est.pass_s == pytest.approx((40.0, 50.0)) and est.pass_wh == pytest.approx((6.0, 8.0))
    assert est.energy_wh == pytest.approx((60.0, 80.0))  # one pass per LLM split, 10 splits


@pytest.mark.parametrize(("override", "pattern"), [
    ("cluster.pue=0.8", r"cluster.pue=0.8 is not valid; a power usage effectiveness is >= 1"),
    ("cluster.gpu_tflops_bf16=-1", r"cluster.gpu_tflops_bf16=-1.0 is not valid; it must be > 0"),
    ("cluster.gpu_mem_bandwidth_gbs=0", r"cluster.gpu_mem_bandwidth_gbs=0.0 is not valid"),
])
def test_bad_datasheet_facts_are_refused_naming_the_field(override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        compose_settings(["cluster=capella", override])


def test_datasheet_facts_do_not_change_the_cell_id():
    assert compose_cell(["cluster=capella", "cluster.pue=1.3", "cluster.gpu_tflops_bf16=900"]).cell_id \
        == compose_cell(["cluster=capella"]).cell_id
