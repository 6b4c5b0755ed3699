"""Estimates before a run: the first-principles arithmetic by hand, calibration from records."""

from __future__ import annotations

import pandas as pd
import pytest

from energy_hpc.cell import compose_cell
from energy_hpc.config import ConfigError, compose_settings
from energy_hpc.estimate import (
    REQUEST_S,
    U_DECODE,
    U_PREFILL,
    estimate,
    first_principles_pass,
    total,
)


def test_first_principles_by_hand_8b_189_texts_one_h100():
    # 8 B params in bf16 (2 bytes) on one H100 (989 TFLOP/s bf16, 3,350 GB/s); 400 prompt tokens,
    # 25 answer tokens per text
    prefill = 2 * 8e9 * 400 / (989e12 * U_PREFILL)  # 6.4 TFLOP per prompt
    per_token = 16e9 / (3350e9 * U_DECODE)  # the 16 GB of weights read once per token
    assert (U_PREFILL, U_DECODE, REQUEST_S) == (0.35, 0.7, 0.06)  # the fitted factors (docs)
    assert prefill == pytest.approx(0.018489, rel=1e-4) and per_token == pytest.approx(0.0068230, rel=1e-4)
    sequential = first_principles_pass(8, 2, 1, 1, 989, 3350, 189, 400, 25, batched=False)
    batched = first_principles_pass(8, 2, 1, 1, 989, 3350, 189, 400, 25, batched=True)
    assert sequential == pytest.approx(189 * (0.018489 + 25 * 0.0068230 + 0.06), rel=1e-4)  # 47.6 s
    assert batched == pytest.approx(189 * 0.018489 + 25 * 0.0068230 + 0.06, rel=1e-4)  # 3.7 s
    two_gpus = first_principles_pass(8, 2, 2, 1, 989, 3350, 189, 400, 25, batched=False)
    assert two_gpus == pytest.approx(189 * ((0.018489 + 25 * 0.0068230) / 2 + 0.06), rel=1e-4)  # TP splits both
    assert first_principles_pass(8, 2, 1, 2, 989, 3350, 189, 400, 25, batched=False) == sequential
    # a mixture of experts with 2 B of its 8 B active: a quarter of the compute and the reads
    moe = first_principles_pass(8, 2, 1, 1, 989, 3350, 189, 400, 25, batched=False, decode_params_b=2)
    assert moe == pytest.approx(189 * ((0.018489 + 25 * 0.0068230) / 4 + 0.06), rel=1e-4)


def test_a_mixture_of_experts_spans_its_active_to_its_total_parameters():
    moe = compose_cell(["cluster=capella", "model=phi_moe"])
    assert moe.settings.model.active_params_billion == 6.6
    est = estimate(moe)
    dense = estimate(compose_cell(["cluster=capella", "model=phi_moe", "model.active_params_billion=null"]))
    assert est.pass_s[0] < dense.pass_s[0] / 3 and est.pass_s[1] == pytest.approx(dense.pass_s[1])
    assert "6.6 of 41.9 B parameters active" in est.basis
    with pytest.raises(ConfigError, match=r"model.active_params_billion=50.0 is not valid; it must be "
                                          r"<= model.params_billion=41.9"):
        compose_settings(["model=phi_moe", "model.active_params_billion=50"])


def test_traditional_models_get_a_rule_of_thumb_until_records_exist():
    bow = estimate(compose_cell(["cluster=capella", "model=linear_bow", "repetitions=10"]))
    assert bow.basis == "rule of thumb for bow + logreg (nothing measured yet)"
    # per split: the window (min_window_s, filled by whole passes), a warm-up pass and the fit
    s = compose_cell(["cluster=capella", "model=linear_bow"]).settings
    assert bow.wall_s[0] >= 10 * s.energy.min_window_s and bow.energy_wh is not None
    emb = estimate(compose_cell(["cluster=capella", "model=xgboost_embedding"]))
    assert emb.wall_s[1] > bow.wall_s[1] + 100  # the encoder's load and encoding the texts
    local = estimate(compose_cell(["cluster=local", "model=linear_bow"]))
    assert local.energy_wh is None and "energy unknown (the cluster file states no power" in local.describe()
    assert "energy unknown" in total([local])


def test_a_dry_run_estimate_says_its_basis_and_ranges():
    seq = estimate(compose_cell(["cluster=capella", "model=llama8b"]))
    bat = estimate(compose_cell(["cluster=capella", "model=llama8b", "model.batching=batched"]))
    assert seq.basis.startswith("first principles") and seq.available
    assert seq.wall_s[0] < seq.wall_s[1] and bat.wall_s[1] < seq.wall_s[0]
    assert "GPU-h" in seq.describe() and "PUE not stated" in seq.describe()
    reasoning = estimate(compose_cell(["cluster=capella", "model=ds_llama8b"]))
    assert reasoning.wall_s[1] > 10 * seq.wall_s[1]  # long answers: a range, not a point
    assert "5 cell(s)" not in total([seq, bat])
    unknown = estimate(compose_cell(["cluster=dev_slurm", "model=llama8b", "model.engine=transformers"]))
    assert "estimated total for 2 cell(s)" in total([seq, bat, unknown])
    assert total([seq, bat, unknown]).endswith("; 1 cell(s) without an estimate")


def test_without_datasheet_facts_the_estimate_says_so_and_never_blocks():
    none = estimate(compose_cell(["cluster=dev_slurm", "model=llama8b", "model.engine=transformers"]))
    assert not none.available
    assert "no GPU datasheet facts for cluster dev_slurm" in none.describe()
    assert none.basis.startswith("nothing measured yet; no GPU datasheet facts")
    assert "1 cell(s) without an estimate" in total([none, estimate(compose_cell(["cluster=capella"]))])


def test_calibrated_from_records_of_the_same_model_and_cluster():
    from energy_hpc.estimate.calibrated import CALIBRATED_SPREAD as k
    from energy_hpc.estimate.calibrated import time_key

    cell = compose_cell(["cluster=capella", "model=llama8b", "repetitions=10"])  # demo: 200 texts
    records = pd.DataFrame([
        {"cell_id": "a", "model": "llama8b", "cluster": "capella", "gpus": 1, "nodes": 1,
         "duration_s": 36.0, "energy_wh": 5.4, "n_test": 180, "engine_load_s": 90.0},  # 0.2 s, 0.03 Wh per text
        {"cell_id": "b", "model": "llama8b", "cluster": "capella", "gpus": 1, "nodes": 1,
         "duration_s": 50.0, "energy_wh": 8.0, "n_test": 200, "engine_load_s": 60.0},  # 0.25 s, 0.04 Wh per text
        {"cell_id": "c", "model": "llama8b", "cluster": "clara", "gpus": 1, "nodes": 1,
         "duration_s": 1.0, "energy_wh": 1.0, "n_test": 200},  # another cluster: not used
    ]).assign(time_key=time_key(cell.settings))
    other = compose_cell(["cluster=capella", "model=llama8b", "model.decoding=choice"])
    records = pd.concat([records, pd.DataFrame([
        {"cell_id": "d", "model": "llama8b", "cluster": "capella", "gpus": 1, "nodes": 1,
         "duration_s": 1.0, "energy_wh": 0.1, "n_test": 200,
         "time_key": time_key(other.settings)}])], ignore_index=True)  # other decoding: not used
    est = estimate(cell, records)
    assert est.basis == "calibrated from 2 cell(s)"
    assert est.pass_s == pytest.approx((40.0 / k, 50.0 * k)) and est.pass_wh == pytest.approx((6.0 / k, 8.0 * k))
    assert est.energy_wh == pytest.approx((60.0 / k, 80.0 * k))  # one pass per LLM split, 10 splits
    assert est.wall_s[0] >= 90.0 + 10 * 40.0 / k  # the slowest recorded load, then 10 passes
    # texts twice as long as the records': from "no effect" to "proportional"
    chars = pd.Series([cell_chars(cell) / 2] * 3)
    longer = estimate(cell, records.assign(text_chars_mean=chars))
    assert longer.pass_s == pytest.approx((40.0 / k, 50.0 * k * 2))
    # records from an old schema (no n_test): first principles instead, not a failed estimate
    old = estimate(cell, records.drop(columns=["n_test"]))
    assert old.basis.startswith("first principles") and old.available
    # beside a neighbour: the attributed energy calibrates, a split that could not be is unused
    shared = records.assign(attribution="alone", energy_wh_attributed=records["energy_wh"])
    shared.loc[0, ["energy_wh", "attribution"]] = [9.0, "attributed"]  # 5.4 of 9.0 was the cell's
    shared.loc[1, ["energy_wh", "attribution", "energy_wh_attributed"]] = [
        80.0, "not attributable: another user's process on gpu 0", None]
    est = estimate(cell, shared)
    assert est.basis == "calibrated from 1 cell(s)"
    assert est.pass_wh == pytest.approx((6.0 / k, 6.0 * k))  # 0.03 Wh per text, from cell a alone


def test_calibration_only_from_cells_whose_time_defining_settings_match(tmp_path):
    """Two max_steps values: each calibrates only itself, and the whole cell counts every
    split's fit (the time recorded outside the window) for every split."""
    from energy_hpc.estimate.calibrated import time_key

    twenty = compose_cell(["model=setfit_minilm", "model.max_steps=20", "repetitions=10"])
    default = compose_cell(["model=setfit_minilm", "repetitions=10"])
    assert time_key(twenty.settings) != time_key(default.settings)
    assert time_key(twenty.settings) != time_key(compose_cell(
        ["model=setfit_minilm", "model.max_steps=20", "dataset.n_train=100"]).settings)
    assert time_key(twenty.settings) == time_key(compose_cell(
        ["model=setfit_minilm", "model.max_steps=20", "seed=7"]).settings)
    # a max_steps=20 cell: 2 s windows, 110 s of training per split (started to ended: 112 s)
    records = pd.DataFrame([
        {"cell_id": "a", "model": "setfit_minilm", "cluster": "local", "gpus": 0, "nodes": 1,
         "duration_s": 0.7, "energy_wh": 0.005, "n_test": 200, "n_train": 200,
         "window_s": 2.0, "fit_duration_s": 110.0, "fit_energy_wh": 0.9,
         "started_at": f"2026-12-01T10:{2 * i:02d}:00+00:00",
         "ended_at": f"2026-12-01T10:{2 * i + 1:02d}:52+00:00",
         "time_key": time_key(twenty.settings)} for i in range(3)])
    est = estimate(twenty, records)
    assert est.basis == "calibrated from 1 cell(s)"
    assert est.wall_s[0] >= 10 * 110.0, est.wall_s  # every split's fit, all ten
    assert not estimate(default, records).basis.startswith("calibrated")
    # records from before the key: not a basis for any calibration
    assert not estimate(twenty, records.drop(columns=["time_key"])).basis.startswith("calibrated")


def test_a_time_is_never_below_what_an_earlier_run_of_the_cell_needed(tmp_path):
    from energy_hpc.launch.packing import known_s
    from energy_hpc.results import CellStore

    cell = compose_cell(["model=linear_bow", "repetitions=10", f"out_dir={tmp_path}"])
    store = CellStore(tmp_path, cell.cell_id)
    store.add_record({"schema_version": 1, "split": 0, "started_at": "2026-12-01T10:00:00+00:00",
                      "ended_at": "2026-12-01T10:05:00+00:00"})  # then killed at its --time
    assert known_s(cell) >= 10 * 300.0


def cell_chars(cell):
    from energy_hpc.estimate.whole_cell import text_facts

    return text_facts(cell)[0]


def test_records_keep_the_estimate_they_were_planned_with(tmp_path):
    from energy_hpc.results import CellStore
    from energy_hpc.runner import run_cell

    cell = compose_cell(["model=linear_bow", "repetitions=1", f"out_dir={tmp_path}", "progress=false",
                         "energy.meters=[codecarbon]"])
    planned = cell.with_estimate(estimate(cell))
    [record] = run_cell(planned)
    assert record["est_basis"] == planned.estimate.basis
    assert (record["est_duration_s_low"], record["est_duration_s_high"]) == planned.estimate.pass_s
    assert record["text_chars_mean"] > 0
    meta = CellStore(str(tmp_path), cell.cell_id).meta()
    assert meta["estimate"]["basis"] == planned.estimate.basis
    # a sibling (another seed) is now calibrated from this cell's record
    sibling = compose_cell(["model=linear_bow", "repetitions=1", "seed=3", f"out_dir={tmp_path}"])
    from energy_hpc.estimate import records_for

    assert estimate(sibling, records_for(tmp_path)).basis == "calibrated from 1 cell(s)"


def test_the_report_compares_estimated_and_measured_per_cell():
    from energy_hpc.analysis.tables import estimates_by_cell, table_estimates

    base = {"model": "llama8b", "dataset": "demo", "cluster": "capella", "gpus": 1, "nodes": 1,
            "est_basis": "first principles: 199 prompt tokens", "est_duration_s_low": 10.0,
            "est_duration_s_high": 40.0, "est_energy_wh_low": 1.0, "est_energy_wh_high": 4.0}
    records = pd.DataFrame([
        {**base, "cell_id": "a", "duration_s": 18.0, "energy_wh": 2.0},
        {**base, "cell_id": "a", "duration_s": 22.0, "energy_wh": 6.0},  # mean 20 s, 4 Wh
        {**base, "cell_id": "b", "dataset": "news", "duration_s": 50.0, "energy_wh": 0.5},
        {**base, "cell_id": "c", "est_duration_s_low": None, "est_duration_s_high": None,
         "duration_s": 1.0, "energy_wh": 1.0},  # recorded before estimates: not in the table
    ])
    by_cell = estimates_by_cell(records)
    assert list(by_cell["cell_id"]) == ["a", "b"]
    a, b = by_cell.iloc[0], by_cell.iloc[1]
    assert a["duration_s_ratio"] == pytest.approx(20.0 / 20.0) and a["energy_wh_ratio"] == pytest.approx(2.0 / 4.0)
    assert a["duration_s_inside"] and a["energy_wh_inside"] and not b["duration_s_inside"]
    table = table_estimates(by_cell)
    assert list(table["Basis"]) == ["first principles", "first principles"]
    assert list(table["Duration inside"]) == ["yes", "no"] and table["Duration estimated (s)"][0] == "10–40"
    assert estimates_by_cell(records.drop(columns=[c for c in records if c.startswith("est_")])).empty
    # an overlapping split: left out (Splits counts the rest) or kept with --overlapping mark,
    # as in the summary and Table B1
    flagged = records.assign(flags=[[], ["overlapping_window"], [], []])
    left = estimates_by_cell(flagged).set_index("cell_id").loc["a"]
    kept = estimates_by_cell(flagged, "mark").set_index("cell_id").loc["a"]
    assert left["splits"] == 1 and left["energy_wh_mean"] == pytest.approx(2.0)
    assert kept["splits"] == 2 and kept["energy_wh_mean"] == pytest.approx(4.0)


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


def _estimate_cli(*args, cwd):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "energy_hpc.estimate", *args], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, "PYTHONWARNINGS": "ignore"},
                          timeout=300)


def test_python_m_energy_hpc_estimate_prints_the_plan_and_writes_a_csv(tmp_path):
    import csv

    from energy_hpc.estimate import CSV_COLUMNS

    proc = _estimate_cli("model=llama8b,linear_bow", "cluster=capella,local", f"out_dir={tmp_path}",
                         cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr  # llama8b cannot run on local (no GPUs): said, not hidden
    assert "llama8b on vLLM needs GPUs" in proc.stderr
    assert "first principles: " in proc.stdout and "rule of thumb for bow + logreg" in proc.stdout
    assert "--time=" in proc.stdout and "estimated total for 3 cell(s)" in proc.stdout
    rows = list(csv.DictReader(open(tmp_path / "estimates" / "default.csv")))
    assert list(rows[0]) == CSV_COLUMNS and len(rows) == 3
    slurm = [r for r in rows if r["runs"] == "slurm" and r["model"] == "llama8b"]
    assert slurm[0]["gpus"] == "1" and float(slurm[0]["gpu_h_high"]) > float(slurm[0]["gpu_h_low"]) > 0
    assert int(slurm[0]["job_time_min"]) * 60 >= float(slurm[0]["wall_s_high"])
    assert not (tmp_path / "cells").exists()  # nothing measured
    proc = _estimate_cli("cluster=capella", f"out_dir={tmp_path}", "--csv", "my costs.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "my costs.csv").read_text().count("\n") == 2
    bad = _estimate_cli("--bogus", cwd=tmp_path)
    assert bad.returncode == 2 and "energy_hpc.estimate: error: unknown option --bogus" in bad.stderr
    (tmp_path / "a_file").write_text("")
    unwritable = _estimate_cli("cluster=capella", f"out_dir={tmp_path}", "--csv",
                               str(tmp_path / "a_file" / "x.csv"), cwd=tmp_path)
    assert unwritable.returncode == 2 and "a_file/x.csv: cannot write it" in unwritable.stderr


def test_power_counts_ram_as_the_energy_config_does():
    from codecarbon.external.ram import RAM

    from energy_hpc.estimate.whole_cell import power_w, ram_w

    paper = compose_cell(["cluster=capella", "model=llama8b", "energy=paper"])
    assert ram_w(paper)[:2] == (0.375 * 768, 0.375 * 768)  # the paper's 0.375 W/GB of 768 GB
    assert power_w(paper, 0.5) == pytest.approx(700 * 0.5 + 288)  # one H100 at half its rating
    own = compose_cell(["cluster=capella", "model=llama8b"])  # energy.ram_model=codecarbon
    assert ram_w(own)[:2] == (RAM(tracking_mode="machine")._calculate_ram_power(768),) * 2
    rss = compose_cell(["cluster=capella", "model=llama8b", "energy=paper", "energy.ram_model=paper_rss"])
    assert ram_w(rss)[:2] == (0.0, 288.0)
    e_paper, e_own = estimate(paper), estimate(own)
    assert e_paper.pass_s == e_own.pass_s and e_paper.pass_wh[0] > e_own.pass_wh[0]


def test_the_admin_docs_worked_example_gets_an_estimate(tmp_path):
    from tests.conftest import REPO, run_cli

    text = (REPO / "docs" / "admin.md").read_text()
    yaml_text = text.split("## Worked example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    folder = tmp_path / "hydra_conf" / "cluster"
    folder.mkdir(parents=True)
    (folder / "alpha.yaml").write_text(yaml_text)
    proc = run_cli("cluster=alpha", "cluster.account=p_llm", "model=llama70b", "gpus=auto",
                   "dry_run=true", f"out_dir={tmp_path / 'out'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "first principles" in proc.stdout and "without an estimate" not in proc.stdout
    # a cluster file lacking facts names only those it lacks
    (folder / "alpha.yaml").write_text(yaml_text.replace("gpu_tflops_bf16: 312\n", ""))
    lacking = run_cli("cluster=alpha", "model=llama70b", "dry_run=true",
                      f"out_dir={tmp_path / 'out'}", cwd=tmp_path)
    assert "the cluster file lacks gpu_tflops_bf16)" in lacking.stdout


def test_the_dry_run_says_what_an_exclusive_job_bills_beside_what_the_cell_uses(tmp_path):
    from energy_hpc.estimate.cost import csv_row

    one = compose_cell(["cluster=capella", "model=llama8b", "gpus=1", "cluster.isolation=exclusive",
                        f"out_dir={tmp_path}"])
    est = estimate(one)
    assert one.shape.exclusive and est.gpus == 1 and est.billed_gpus == 4  # a Capella node: 4
    assert "GPU-h billed (the job holds 4 GPU(s) --exclusive for its 1)" in est.describe()
    row = csv_row(one.with_estimate(est))
    assert row["billed_gpus"] == 4
    assert row["billed_gpu_h_high"] == pytest.approx(4 * row["gpu_h_high"])
    assert "GPU-h billed: --exclusive jobs hold whole nodes" in total([est])
    shared = compose_cell(["cluster=capella", "model=llama8b", "gpus=1", f"out_dir={tmp_path}"])
    alone = estimate(shared)
    assert alone.billed_gpus == 1 and "billed" not in alone.describe()
    here = estimate(compose_cell(["model=linear_bow", f"out_dir={tmp_path}"]))
    assert here.billed_gpus == 0 and "billed" not in total([here])
