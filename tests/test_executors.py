"""Executors by cluster kind, and the plan they run.

This module is also a plug-in (``ENERGY_HPC_PLUGINS=tests.test_executors``): importing it
registers a third executor, ``subprocess``, that runs each job of the plan in a child Python
process — one registration, no other file touched — and the CLI then runs a sweep on a cluster
file that says ``kind: subprocess``.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from energy_hpc.launch.executors import SweepRun, executor_for, register_executor
from tests.conftest import REPO, run_cli

CHILD = ("import pickle, sys\n"
         "from energy_hpc.runner import run_cell\n"
         "for cell in pickle.load(open(sys.argv[1], 'rb')):\n"
         "    run_cell(cell)\n"
         "    print('ran', cell.cell_id, flush=True)\n")


class SubprocessExecutor:
    """Each job of the plan in a child process (its cells pickled to it, as Slurm gets them)."""

    in_process = False

    def run(self, jobs, plan, outcome, run_here=None):
        for job in jobs:
            cells = list(job)
            with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as f:
                pickle.dump(cells, f)
            try:
                proc = subprocess.run([sys.executable, "-c", CHILD, f.name], capture_output=True,
                                      text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
            finally:
                os.unlink(f.name)
            if proc.returncode != 0:
                outcome.fail(f"{plan.origins.get(cells[0].cell_id, cells[0].cell_id)}: child "
                             f"exited {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            print(proc.stdout, end="")
            outcome.mark_ran(cells)


register_executor("subprocess", SubprocessExecutor)


@pytest.fixture
def site(tmp_path):
    conf = tmp_path / "hydra_conf" / "cluster"
    conf.mkdir(parents=True)
    (conf / "subproc.yaml").write_text(
        "name: subproc\nkind: subprocess\ndescription: each job in a child process\n"
        "nodes_available: 1\ngpus_per_node: 0\n")
    return tmp_path


def test_a_third_executor_from_a_test_module_runs_a_sweep_end_to_end(site):
    env = {"ENERGY_HPC_PLUGINS": "tests.test_executors",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = site / "out"
    common = ["cluster=subproc", "repetitions=2", "progress=false", f"out_dir={out}",
              "energy.min_window_s=0.05", "energy.interval_s=1"]
    ran = run_cli("-m", "model=linear_bow,linear_tfidf", *common, cwd=site, env=env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert ran.stdout.count("ran linear_") == 2  # each job printed by its child process
    assert "sweep 'default': 2 cell(s) run by this command" in ran.stdout

    from energy_hpc.results import load

    records = load(out)
    assert len(records) == 4 and set(records["cluster"]) == {"subproc"}
    assert set(records["model"]) == {"linear_bow", "linear_tfidf"}
    # without the plug-in the kind is unknown, and the message lists the kinds there are
    plain = run_cli("model=linear_bow", *common, cwd=site)
    assert plain.returncode == 2
    assert "cluster.kind" in plain.stderr and "'subprocess'" in plain.stderr, plain.stderr[-2000:]
    assert "local, slurm" in plain.stderr


def test_an_unknown_kind_has_no_executor_and_the_plan_runs_in_process_kinds_first(tmp_path):
    from energy_hpc.cell import compose_cell
    from energy_hpc.errors import UserError
    from energy_hpc.launch.executors import run_plan
    from energy_hpc.launch.plan import Plan, build_plan

    with pytest.raises(UserError, match="cluster kind 'nope' has no executor; known: .*local"):
        executor_for("nope")
    order: list[str] = []

    class Recording:
        def __init__(self, kind, in_process):
            self.kind, self.in_process = kind, in_process

        def run(self, jobs, plan, outcome, run_here=None):
            order.append(self.kind)
            outcome.mark_ran([c for job in jobs for c in job])

    register_executor("subprocess", lambda: Recording("subprocess", False))
    register_executor("local", lambda: Recording("local", True))
    try:
        cells = [compose_cell(["cluster.kind=subprocess", "cluster.detect_gpus=false",
                              f"out_dir={tmp_path}", "seed=1"]),
                 compose_cell([f"out_dir={tmp_path}"]),
                 compose_cell(["cluster=dev_slurm", f"out_dir={tmp_path}"])]
        plan = build_plan(cells)
        assert [job.kind for job in plan.jobs] == ["subprocess", "local", "slurm"]
        assert plan.job_times() == {cells[2].cell_id: plan.jobs[2].time_min}
        assert all(cell.estimate is not None for cell in plan.cells)  # estimated once, here
        outcome = run_plan(Plan(plan.cells, plan.jobs[:2]))
        assert order == ["local", "subprocess"]  # cells of this process first, as always
        assert set(outcome.ran) == {c.cell_id for c in cells[:2]}
    finally:
        from energy_hpc.launch.executors import LocalExecutor

        register_executor("subprocess", SubprocessExecutor)
        register_executor("local", LocalExecutor)


def test_failure_lines_name_the_sweep_job_and_redact_secrets():
    outcome = SweepRun()
    outcome.fail("job 3 (model=x +cluster.env.HF_TOKEN=hf_abcdefghijklmnop): boom")
    assert "hf_abcdefghijklmnop" not in outcome.failed[0] and "boom" in outcome.failed[0]


def test_the_cli_keeps_no_process_wide_state_for_sweeps():
    import energy_hpc.cli as cli

    assert not any(hasattr(cli, name) for name in ("PLANNED", "RAN", "HELD", "_failures"))
    assert Path(cli.__file__).read_text().count("global ") == 0
