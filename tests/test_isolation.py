"""Every measured window isolated or flagged: the per-host ledger, the planner's --exclusive, and
the report leaving overlapped splits out of its figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from energy_hpc import RECORD_SCHEMA_VERSION
from energy_hpc.energy.ledger import OVERLAP_FLAG, WindowLedger
from tests.conftest import REPO

FAST = ["progress=false", "energy.min_window_s=1.5", "repetitions=3"]


def _cli(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "energy_hpc", *args], cwd=REPO,
                            env={**os.environ, "PYTHONWARNINGS": "ignore", **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_concurrent_local_runs_are_flagged_each_naming_the_other(tmp_path):
    from energy_hpc.results import load

    env = {"ENERGY_HPC_LEDGER_DIR": str(tmp_path / "ledger")}
    runs = {name: _cli(f"model={name}", f"out_dir={tmp_path / name}", *FAST, env=env)
            for name in ("linear_bow", "linear_tfidf")}
    for proc in runs.values():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    bow, tfidf = load(tmp_path / "linear_bow"), load(tmp_path / "linear_tfidf")
    bow_id, tfidf_id = bow["cell_id"].iloc[0], tfidf["cell_id"].iloc[0]
    for mine, other_id in ((bow, tfidf_id), (tfidf, bow_id)):
        flagged = mine[mine["flags"].map(lambda f: OVERLAP_FLAG in f)]
        assert len(flagged) >= 1, mine[["split", "started_at", "ended_at", "flags"]]
        assert all(row == [other_id] for row in flagged["overlapped_with"])
        fit_flagged = mine[mine["fit_flags"].map(lambda f: OVERLAP_FLAG in f)]
        assert all(row == [other_id] for row in fit_flagged["fit_overlapped_with"])
        unflagged = mine[~mine.index.isin(flagged.index)]
        assert all(row == [] for row in unflagged["overlapped_with"])
    # the CLI's summary and the report leave them out, saying how many
    alone = _cli("model=linear_bow", f"out_dir={tmp_path / 'alone'}", *FAST, env=env)
    _, err = alone.communicate(timeout=300)
    assert alone.returncode == 0, err[-2000:]
    solo = load(tmp_path / "alone")
    assert (solo["overlapped_with"].map(len) == 0).all()
    assert not solo["flags"].map(lambda f: OVERLAP_FLAG in f).any()
    assert not any((tmp_path / "ledger").glob("*.json"))  # nothing left once nothing is open


def test_the_ledger_names_overlaps_closes_dead_holders_and_tidies(tmp_path):
    ledger = WindowLedger(tmp_path)
    a = ledger.open("cell-a")
    b = ledger.open("cell-b")
    same = ledger.open("cell-b")  # a multi-node cell's head and its node meter: one measurement
    assert ledger.close(same) == ["cell-a"]
    assert ledger.close(b) == ["cell-a"]
    assert ledger.close(a) == ["cell-b"]  # b closed meanwhile, but it overlapped a
    assert list(tmp_path.glob("*.json")) == []  # nothing open: nothing can overlap them any more
    c = ledger.open("cell-c")
    assert ledger.close(c) == []  # after the others: no overlap

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    crashed = tmp_path / "crashed.json"
    crashed.write_text(json.dumps({"label": "cell-dead", "pid": int(dead), "host": ledger.host,
                                   "start": time.time() - 5, "end": None}))
    d = ledger.open("cell-d")  # it died before d started: not d's neighbour, and cleared
    assert not crashed.exists()
    assert ledger.close(d) == []
    e = ledger.open("cell-e")
    crashed.write_text(json.dumps({"label": "cell-dead", "pid": int(dead), "host": ledger.host,
                                   "start": time.time(), "end": None}))  # died during e
    assert ledger.close(e) == ["cell-dead"]  # conservatively: it may have run until found dead
    assert not crashed.exists()


def test_a_ledger_that_cannot_be_written_never_fails_the_measurement(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    ledger = WindowLedger(blocker / "ledger")
    entry = ledger.open("cell")
    assert entry is None and ledger.close(entry) == []


def test_idle_baseline_and_fit_windows_enter_the_ledger(tmp_path, monkeypatch):
    from energy_hpc.energy.window import measure_idle, measure_window

    monkeypatch.setenv("ENERGY_HPC_LEDGER_DIR", str(tmp_path))
    other = WindowLedger(tmp_path).open("someone-else")
    idle = measure_idle([_Meter()], 0.01, ledger_label="mine")
    window = measure_window([_Meter()], lambda: None, ledger_label="mine")
    assert idle[0].info["overlapped_with"] == ["someone-else"] and OVERLAP_FLAG in idle[0].flags
    assert window.readings[0].info["overlapped_with"] == ["someone-else"]
    assert other is not None
    plain = measure_window([_Meter()], lambda: None)  # no label: not entered, nothing flagged
    assert plain.readings[0].flags == []


class _Meter:
    name = "fixed"
    resolution_s = 0.0
    scope = "job"

    def start(self) -> None:
        self.t0 = time.perf_counter()

    def stop(self):
        from energy_hpc.energy.base import Reading

        return Reading(meter="fixed", duration_s=time.perf_counter() - self.t0, cpu_wh=1.0,
                       gpu_wh=None, ram_wh=None)


# --- the planner: a job holds what its cell needs unless the site or the user wants whole nodes --


@pytest.mark.parametrize(("overrides", "exclusive", "why"), [
    ([], False, "cluster.isolation=attribute: the job holds only its 0 GPU(s) and 16 core(s); what "
                "a neighbour adds to the whole-node meters (codecarbon) is measured and attributed"),
    (["energy=auto"], False, "whole-node meters (auto)"),
    (["energy.meters=[nvml]"], False, "read only the job's own devices"),
    (["cluster.isolation=exclusive"], True, "cluster.isolation=exclusive: the node to itself "
                                            "(bills 4 GPU(s) of each node)"),
    (["cluster.exclusive=true"], True, "cluster.exclusive=true: the site hands out whole nodes"),
    (["cluster.isolation=exclusive", "cluster.share_nodes=true"], False,
     "cluster.isolation=attribute"),  # share_nodes: the older spelling of attribute
])
def test_a_job_is_exclusive_only_where_the_site_or_the_user_says(overrides, exclusive, why):
    from energy_hpc.cell import compose_cell

    cell = compose_cell(["cluster=capella", *overrides])
    assert cell.shape.exclusive is exclusive
    assert why in cell.shape.exclusive_why
    assert ("--exclusive" in cell.shape.sbatch_args()) is exclusive


def test_isolation_is_checked_and_a_shared_job_asks_for_its_share_of_memory():
    from energy_hpc.cell import compose_cell
    from energy_hpc.errors import ConfigError

    with pytest.raises(ConfigError, match=r"cluster.isolation='shared' is not valid.*attribute, "
                                          r"exclusive"):
        compose_cell(["cluster=dev_slurm", "cluster.isolation=shared"])
    one = compose_cell(["cluster=capella", "model=llama8b", "gpus=1"])
    assert not one.shape.exclusive and one.shape.cpus_per_task == 16  # 64 cores / 4 GPUs
    assert "--mem=196608M" in one.shape.sbatch_args()  # a quarter of 768 GB
    whole = compose_cell(["cluster=capella", "model=llama8b", "gpus=1", "cluster.isolation=exclusive"])
    assert whole.shape.exclusive and whole.shape.mem_gb is None
    assert whole.cell_id != one.cell_id  # another measurement condition, another cell
    assert one.cell_id == compose_cell(["cluster=capella", "model=llama8b", "gpus=1",
                                        "cluster.isolation=attribute"]).cell_id


def test_the_plan_says_why_a_job_is_exclusive_or_shares(tmp_path):
    from tests.conftest import run_cli

    proc = run_cli("cluster=dev_slurm", "cluster.isolation=attribute", "dry_run=true",
                   f"out_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "shared node: cluster.isolation=attribute: the job holds only" in proc.stdout
    proc = run_cli("cluster=dev_slurm", "dry_run=true", f"out_dir={tmp_path}")
    assert "--exclusive: cluster.isolation=exclusive: the node to itself" in proc.stdout


# --- the summary, the report and the recommendation ------------------------------------------


def _records() -> pd.DataFrame:
    rows = []
    for model, energies, accs in (("a", [1.0, 2.0, 3.0, 50.0], [0.8, 0.8, 0.9, 0.9]),
                                  ("b", [10.0, 11.0, 12.0], [0.85, 0.86, 0.87])):
        for i, (e, acc) in enumerate(zip(energies, accs, strict=True)):
            rows.append({"schema_version": RECORD_SCHEMA_VERSION, "model": model, "dataset": "d", "cluster": "c", "gpus": 0, "nodes": 1,
                         "cell_id": model, "split": i, "accuracy": acc, "energy_wh": e,
                         "duration_s": 1.0, "avg_power_w": 10.0, "energy_per_sample_wh": e / 100,
                         "flags": [OVERLAP_FLAG] if e == 50.0 else [], "fit_flags": [],
                         "gpu_type": None, "model_family": "traditional", "model_display": model,
                         "model_kind": "traditional", "n_train": 200, "n_test": 100,
                         "n_classes": 2, "fit_energy_wh": 0.1, "fit_duration_s": 1.0})
    return pd.DataFrame(rows)


def test_overlapped_splits_are_left_out_or_marked_and_intervals_are_t_intervals():
    from energy_hpc.analysis.summary import summarize

    out = summarize(_records()).set_index("model")
    assert out.loc["a", "splits"] == 3 and out.loc["a", "overlapping_left_out"] == 1
    assert out.loc["a", "energy_wh_mean"] == pytest.approx(2.0)  # 50 Wh left out
    # mean 2, sd 1, n 3: 2 ± t(0.975, 2) x 1/sqrt(3) = 2 ± 4.303 x 0.577
    assert out.loc["a", "energy_wh_ci_low"] == pytest.approx(0.0)  # clipped: energy is >= 0
    assert out.loc["a", "energy_wh_ci_high"] == pytest.approx(2 + 4.302653 / 3 ** 0.5, rel=1e-5)
    assert out.loc["b", "accuracy_ci_low"] == pytest.approx(0.86 - 4.302653 * 0.01 / 3 ** 0.5)
    marked = summarize(_records(), "mark").set_index("model")
    assert marked.loc["a", "splits"] == 4 and marked.loc["a", "overlapping_kept"] == 1
    assert marked.loc["a", "energy_wh_mean"] == pytest.approx(14.0)


def test_the_recommendation_gives_the_saving_with_its_interval():
    from energy_hpc.analysis.recommend import ratio_interval, recommend
    from energy_hpc.analysis.summary import summarize

    summary = summarize(_records())
    a, b = (summary[summary["model"] == m].iloc[0] for m in ("a", "b"))
    lo, hi = ratio_interval(a, b)
    assert lo < 2.0 / 11.0 < hi
    rec = recommend(summary, "d", within=0.1)
    assert rec.chosen["model"] == "a"
    assert f"(95% CI {1 - hi:.0%} to {1 - lo:.0%})" in rec.sentence
    assert "Their accuracies cannot be told apart at 95%" in rec.sentence


def test_the_report_says_how_many_splits_it_left_out(tmp_path):
    pytest.importorskip("matplotlib")
    from energy_hpc.report import build_report
    from tests.conftest import run_cli

    out = tmp_path / "out"
    proc = run_cli("model=linear_bow", "repetitions=3", "progress=false",
                   "energy.min_window_s=0.05", f"out_dir={out}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    path = next(out.glob("cells/*/records.jsonl"))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines[0]["flags"].append(OVERLAP_FLAG)  # the ledger saw another window; the OS saw it idle
    lines[0]["overlapped_with"] = ["another-cell"]
    lines[1]["attribution"] = "not attributable: another user's process on gpu 0"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    text = build_report([str(out)], tmp_path / "report", progress=False).read_text()
    assert ("**1 split(s) of 1 configuration(s) have energy that is not the cell's alone and could "
            "not be attributed to it** — another user's process on gpu 0") in text
    assert "left out of every energy figure" in text
    cells = pd.read_csv(tmp_path / "report" / "cells.csv")
    assert list(cells["splits"]) == [2] and list(cells["overlapping_left_out"]) == [1]
    assert "Energy 95% CI (Wh)" in (tmp_path / "report" / "tables" / "table_b1_demo.md").read_text()
    marked = build_report([str(out)], tmp_path / "marked", progress=False,
                          overlapping_splits="mark").read_text()
    assert "kept in the figures, marked here" in marked
    assert list(pd.read_csv(tmp_path / "marked" / "cells.csv")["splits"]) == [3]


def test_a_window_whose_meter_fails_leaves_nothing_open(tmp_path, monkeypatch):
    from energy_hpc.energy.window import measure_idle, measure_window

    class Broken(_Meter):
        def stop(self):
            raise RuntimeError("meter died")

    monkeypatch.setenv("ENERGY_HPC_LEDGER_DIR", str(tmp_path))
    for measure in (lambda: measure_window([Broken()], lambda: None, ledger_label="x"),
                    lambda: measure_idle([Broken()], 0.01, ledger_label="x")):
        with pytest.raises(RuntimeError, match="meter died"):
            measure()
        assert list(tmp_path.glob("*.json")) == []  # a later window in this process is not flagged


# --- neighbours that are not energy_hpc (issue 25, first part): seen from the OS ---------------


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_a_window_beside_a_cpu_burner_records_the_foreign_share():
    import psutil

    from energy_hpc.energy.window import measure_window

    # what else this host runs now (nothing, on a quiet machine) is the tolerance's other side
    alone = measure_window([_Meter()], lambda: _busy(1.5)).readings[0].info["cpu_share"]
    assert alone["own_cpu_s"] == pytest.approx(1.5, abs=0.4)
    assert 0.0 <= alone["foreign_cpu_share"] <= 1.0
    # a stranger: not a descendant of this process (a child of ours would be our own work), so
    # a shell starts it in the background and exits, leaving it to init
    started = subprocess.run(["sh", "-c", f"'{sys.executable}' -c 'while True: pass' "
                              ">/dev/null 2>&1 & echo $!"], capture_output=True, text=True)
    proc = psutil.Process(int(started.stdout.strip()))
    try:
        assert proc.pid not in {c.pid for c in psutil.Process().children(recursive=True)}
        time.sleep(0.3)
        before = sum(proc.cpu_times()[:2])
        beside = measure_window([_Meter()], lambda: _busy(2.0)).readings[0].info["cpu_share"]
        burned = sum(proc.cpu_times()[:2]) - before
    finally:
        proc.kill()
    truth = burned / beside["host_busy_cpu_s"]  # the burner's share of the host's busy time
    seen = beside["foreign_cpu_share"]
    assert 0.25 < truth and truth - 0.1 <= seen <= truth + alone["foreign_cpu_share"] + 0.1, (
        beside, truth, alone)
    assert beside["own_cpu_source"] == "process tree"


def test_records_carry_the_foreign_share_of_fit_inference_and_idle(settings_for):
    from energy_hpc.runner import run_cell

    cell = settings_for("model=linear_bow", "repetitions=1", "energy.idle_baseline_s=0.3")
    [record] = run_cell(cell)
    for prefix in ("", "fit_", "idle_"):
        assert 0.0 <= record[f"{prefix}foreign_cpu_share"] <= 1.0
        assert record[f"{prefix}host_busy_cpu_s"] >= 0 and record[f"{prefix}own_cpu_s"] >= 0
        assert record[f"{prefix}own_cpu_source"] == "process tree"


def test_a_slurm_jobs_cgroup_is_its_own_cpu_time(tmp_path, monkeypatch):
    from energy_hpc.energy.host_share import _job_cgroup_s

    v1 = tmp_path / "cg"
    (v1 / "cpuacct" / "slurm" / "uid_0" / "job_42").mkdir(parents=True)
    (v1 / "cpuacct" / "slurm" / "uid_0" / "job_42" / "cpuacct.usage").write_text("2500000000\n")
    proc = tmp_path / "proc_cgroup"
    proc.write_text("3:cpu,cpuacct:/slurm/uid_0/job_42/step_batch/task_0\n")  # the whole job is read
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert _job_cgroup_s(proc, v1) is None  # not in a job: the root cgroup is the host
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert _job_cgroup_s(proc, v1) == (2.5, "cgroup v1")
    # a second slurmd on the same host (the dev Slurm's n2): the job's work there is its own too
    (v1 / "cpuacct" / "slurm_n2" / "uid_0" / "job_42").mkdir(parents=True)
    (v1 / "cpuacct" / "slurm_n2" / "uid_0" / "job_42" / "cpuacct.usage").write_text("1000000000\n")
    (v1 / "cpuacct" / "slurm_n2" / "uid_0" / "job_43").mkdir(parents=True)  # another job: not
    (v1 / "cpuacct" / "slurm_n2" / "uid_0" / "job_43" / "cpuacct.usage").write_text("9000000000\n")
    assert _job_cgroup_s(proc, v1) == (3.5, "cgroup v1")
    v2 = tmp_path / "cg2"
    (v2 / "system.slice" / "slurmstepd.scope" / "job_42").mkdir(parents=True)
    (v2 / "system.slice" / "slurmstepd.scope" / "job_42" / "cpu.stat").write_text(
        "usage_usec 1500000\nuser_usec 1000000\n")
    proc.write_text("0::/system.slice/slurmstepd.scope/job_42/step_0/user/task_0\n")
    assert _job_cgroup_s(proc, v2) == (1.5, "cgroup v2")


def test_waiting_on_its_own_threads_is_not_a_neighbours_doing():
    """Two busy children of ours on one CPU wait for each other half the time: that wait is the
    cell's own (runnable beyond the CPUs it may use), not contention; a stranger put on the same
    CPU makes them wait more, and that part is."""
    import psutil

    from energy_hpc.energy.window import measure_window

    loop = [sys.executable, "-c", "while True: pass"]

    def window(stranger: bool) -> dict:
        kids = [subprocess.Popen(loop) for _ in range(2)]
        other = None
        if stranger:
            started = subprocess.run(["sh", "-c", f"'{sys.executable}' -c 'while True: pass' "
                                      ">/dev/null 2>&1 & echo $!"], capture_output=True, text=True)
            other = psutil.Process(int(started.stdout.strip()))
            os.sched_setaffinity(other.pid, {0})
        mask = os.sched_getaffinity(0)
        try:
            os.sched_setaffinity(0, {0})
            for k in kids:
                os.sched_setaffinity(k.pid, {0})
            time.sleep(0.3)
            return measure_window([_Meter()], lambda: time.sleep(2.0)).readings[0].info["cpu_share"]
        finally:
            os.sched_setaffinity(0, mask)
            for k in kids:
                k.kill()
                k.wait()
            if other is not None:
                other.kill()

    alone = window(stranger=False)
    assert alone["own_cpus"] == 1
    assert alone["cpu_wait_s"] > 0.6  # two runnable on one CPU: each waits about half of 2 s
    assert alone["cpu_self_wait_s"] == pytest.approx(alone["cpu_wait_s"], rel=0.15)
    assert alone["cpu_contention"] < 0.05
    shared = window(stranger=True)
    assert shared["foreign_cpu_share"] > 0.2
    assert shared["cpu_contention"] > 0.10  # a third of the CPU went to the stranger


def test_a_process_of_the_same_slurm_job_is_own_and_another_jobs_is_not(monkeypatch):
    """Where a job has no cgroup of its own, a Ray worker or vLLM engine started by another step
    is found by the job id in its environment (not our descendant, so not in the process tree):
    it is the job's own on a GPU, not a stranger; a process of another job is a stranger."""
    import psutil

    from energy_hpc.energy.host_share import own_pids

    def started(job: str) -> psutil.Process:
        out = subprocess.run(["sh", "-c", f"SLURM_JOB_ID={job} '{sys.executable}' -c "
                              "'import time; time.sleep(60)' >/dev/null 2>&1 & echo $!"],
                             capture_output=True, text=True)
        return psutil.Process(int(out.stdout.strip()))

    ours, theirs = started("424242"), started("515151")
    try:
        time.sleep(0.3)
        monkeypatch.delenv("SLURM_JOB_ID", raising=False)
        assert ours.pid not in own_pids()  # outside a job: only the process tree
        monkeypatch.setenv("SLURM_JOB_ID", "424242")
        pids = own_pids()
        assert ours.pid in pids and theirs.pid not in pids
        assert os.getpid() in pids
    finally:
        for p in (ours, theirs):
            p.kill()
