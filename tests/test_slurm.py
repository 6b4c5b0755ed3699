"""Against the real loopback Slurm cluster (launchers/dev_slurm/up.sh): two slurmd, fake GPUs, Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from energy_hpc.cell import compose_cell
from energy_hpc.launch.plan import build_plan
from energy_hpc.launch.slurm import results_through_requeues, submit
from energy_hpc.results import CellStore, load, read_sweep_manifest
from tests.conftest import NEEDS_SLURM, REPO, run_cli, sacct

pytestmark = [pytest.mark.slurm, NEEDS_SLURM]  # every test here submits through submitit

def plan(cells):
    """The plan's job arrays, as the Slurm executor submits them."""
    return build_plan(cells).arrays()


FAST = ["repetitions=2", "energy.min_window_s=0.05", "progress=false", "energy.interval_s=1"]


def _second_cluster(tmp_path):
    """An admin's extra cluster file: the other partition, 2 CPUs per task."""
    conf = tmp_path / "conf" / "cluster"
    conf.mkdir(parents=True)
    (conf / "dev_other.yaml").write_text(
        "name: dev_other\nkind: slurm\nnodes_available: 2\ngpus_per_node: 4\ngpu_model: fake-gpu\n"
        "gpu_memory_gb: 16\npartition: other\ntime_limit_min: 10\ncpus_per_task: 2\nmem_gb: 1\n"
        "setup: ['export EHPC_MARK=other']\n")
    return tmp_path / "conf"


def test_single_node_job_through_the_launcher(dev_slurm, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("cluster=dev_slurm", "gpus=1", f"out_dir={out}", *FAST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "submitted 1 cell(s) as 1 job(s)" in proc.stdout and "dev_slurm" in proc.stdout
    [entry] = read_sweep_manifest(out, "default")
    row = sacct(entry["job_id"])
    # CodeCarbon reads the whole node, so the job got all of it (--exclusive): 4 of 4 fake GPUs
    assert row["State"] == "COMPLETED" and row["NNodes"] == "1" and "gres/gpu=4" in row["AllocTRES"]
    assert "--exclusive" in entry["shape"] and "--gpus-per-node=1" in entry["shape"]
    frame = load(out)
    assert len(frame) == 2 and set(frame["cluster"]) == {"dev_slurm"}
    assert frame["node_shared_with_jobs"].map(lambda jobs: jobs == []).all()  # squeue: nobody else
    # the site's accounting, read after the job: the dev Slurm gathers no energy, and says so
    acct = CellStore(out, entry["cell_id"]).meta()["slurm_accounting"]
    assert acct["plugin"] == "acct_gather_energy/none" and acct["consumed_energy_wh"] is None
    assert acct["job_id"] == str(entry["job_id"]) and acct["elapsed_s"] > 0
    assert frame["slurm_consumed_energy_wh"].isna().all()
    assert set(frame["slurm_energy_reason"]) == {
        "the site gathers no energy (AcctGatherEnergyType=acct_gather_energy/none)"}
    meta = CellStore(out, entry["cell_id"]).meta()
    assert meta["environment"]["slurm"]["SLURM_JOB_ID"] == str(entry["job_id"])
    # the job asked for its estimate x time_safety_factor, not the cluster's limit, and its
    # records kept the estimate it was planned with (carried through submitit's pickle)
    minutes = int(entry["shape"][[a.startswith("--time=") for a in entry["shape"]].index(True)][7:])
    assert row["Timelimit"] == f"00:{minutes:02d}:00" and minutes < 15  # dev_slurm: 15 min
    assert set(frame["est_basis"]) == {meta["estimate"]["basis"]}
    assert meta["estimate"]["basis"].startswith("rule of thumb for tfidf + logreg")


@pytest.mark.slow
def test_sweep_gets_each_job_its_own_allocation_and_two_node_cells_use_ray(dev_slurm, tmp_path):
    out = tmp_path / "out"
    # isolation=attribute: each job gets exactly what it asks for (no --exclusive), as checked below
    proc = run_cli("-m", "cluster=dev_slurm,dev_other", "nodes=1,2", "gpus=2", "cluster.isolation=attribute",
                   f"hydra.searchpath=[file://{_second_cluster(tmp_path)}]", f"out_dir={out}",
                   "sweep=shapes", *FAST, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    entries = read_sweep_manifest(out, "shapes")
    assert len(entries) == 4
    frame = load(out)
    for e in entries:
        row = sacct(e["job_id"])
        cell = frame[frame["cell_id"] == e["cell_id"]]
        nodes = int(cell["nodes"].iloc[0])
        cluster = cell["cluster"].iloc[0]
        assert row["State"] == "COMPLETED"
        assert int(row["NNodes"]) == nodes
        assert f"gres/gpu={2}" in row["AllocTRES"]  # 2 per node on one node, 1 per node on two
        assert row["Partition"] == ("debug" if cluster == "dev_slurm" else "other")
        assert int(row["ReqCPUS"]) == nodes * (1 if cluster == "dev_slurm" else 2)
        for _, rec in cell.iterrows():
            readings = rec["node_readings"]
            assert len(readings) == nodes and sorted(rec["hosts"]) == sorted(r["node"] for r in readings)
            if nodes == 2:
                assert {r["node"] for r in readings} == {"n1", "n2"}
                window = sum(r["energy_wh"] for r in readings)
                assert rec["window_energy_wh"] == pytest.approx(window)
                assert rec["window_s"] == pytest.approx(max(r["duration_s"] for r in readings))
                # each node saw its own neighbours (its meter actor's snapshots), and the cell
                # was attributed node by node
                for r in readings:
                    share = r["info"]["cpu_share"]
                    assert 0 <= share["foreign_cpu_share"] <= 1 and share["host_cpus"] >= 1, r
                assert isinstance(rec["attribution"], str)
    status = run_cli_status(out, "shapes")
    assert "4 done" in status


def run_cli_status(out, sweep):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "energy_hpc.status", str(out), "--sweep", sweep],
                          capture_output=True, text=True).stdout


@pytest.mark.slow
def test_requeued_job_resumes_without_losing_finished_splits(dev_slurm, tmp_path):
    out = tmp_path / "out"
    s = compose_cell(["cluster=dev_slurm", "gpus=0", f"out_dir={out}", "repetitions=4",
                      "energy.min_window_s=2.5", "progress=false", "energy.interval_s=1"])
    [(_, job)] = submit(plan([s]), str(out), "requeue")
    store = CellStore(out, s.cell_id)
    deadline = time.time() + 120
    while len(store.done_splits()) < 1:
        assert time.time() < deadline, "no split finished in time"
        time.sleep(0.3)
    before = {r["split"]: r["started_at"] for r in store.records()}
    job._interrupt()  # the signal Slurm sends before preemption: submitit checkpoints and requeues
    _start_requeued_now(job.job_id)
    try:
        results_through_requeues(job)
        records = store.records()
        assert [r["split"] for r in records] == [0, 1, 2, 3]
        for split, started in before.items():
            assert records[split]["started_at"] == started  # finished splits kept, not re-measured
        assert int(store.meta()["environment"]["slurm"].get("SLURM_RESTART_COUNT", "0")) >= 1
    except Exception as exc:  # say what Slurm and the job saw, so a failure in CI explains itself
        raise AssertionError(f"{exc}\n{_job_story(job, store)}") from exc


@pytest.mark.slow
def test_a_requeued_packed_job_resumes_each_cell_where_it_stopped(dev_slurm, tmp_path):
    out = tmp_path / "out"
    cells = [compose_cell(["cluster=dev_slurm", "gpus=0", f"out_dir={out}", "repetitions=3",
                           f"seed={seed}", "pack=2", "energy.min_window_s=2.5", "progress=false",
                           "energy.interval_s=1"]) for seed in (1, 2)]
    [(packed, job)] = submit(plan(cells), str(out), "requeue-packed")
    assert [c.cell_id for c in packed] == [c.cell_id for c in cells]  # one job, both cells
    first, second = (CellStore(out, c.cell_id) for c in cells)
    deadline = time.time() + 120
    while len(first.done_splits()) < 1:
        assert time.time() < deadline, "no split finished in time"
        time.sleep(0.3)
    before = {r["split"]: r["started_at"] for r in first.records()}
    job._interrupt()  # checkpoint: the whole list is requeued
    _start_requeued_now(job.job_id)
    try:
        results_through_requeues(job)
        for store in (first, second):
            assert [r["split"] for r in store.records()] == [0, 1, 2] and store.meta()["complete"]
        for split, started in before.items():
            assert first.records()[split]["started_at"] == started  # kept, not re-measured
        assert int(second.meta()["environment"]["slurm"].get("SLURM_RESTART_COUNT", "0")) >= 1
    except Exception as exc:
        raise AssertionError(f"{exc}\n{_job_story(job, first)}") from exc


def _job_story(job, store) -> str:
    import subprocess

    acct = subprocess.run(["sacct", "-a", "-D", "-X", "-n", "-P", "-j", str(job.job_id),
                           "-o", "JobID,State,ExitCode,Submit,Start,End"],
                          capture_output=True, text=True).stdout
    logs = []
    for path in (job.paths.stdout, job.paths.stderr):
        try:
            logs.append(f"--- {path.name}\n" + "\n".join(path.read_text().splitlines()[-25:]))
        except OSError as exc:
            logs.append(f"--- {path}: {exc}")
    splits = [(r["split"], r["started_at"]) for r in store.records()]
    return f"sacct (all requeues):\n{acct}\nrecords: {splits}\n" + "\n".join(logs)


def _start_requeued_now(job_id: str) -> None:
    """Slurm delays a requeued job's start (BeginTime); the test need not wait that long.

    Not at once, though: slurmd refuses a launch within the second its credential was revoked
    ("Killing non-startable batch JobId=N: Job credential revoked"), which is what the delay is for.
    """
    import subprocess

    for _ in range(100):
        state = subprocess.run(["squeue", "-h", "-j", str(job_id), "-o", "%T"], capture_output=True,
                               text=True).stdout.strip()
        if state == "PENDING":
            time.sleep(2.5)
            subprocess.run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"],
                           capture_output=True)
            return
        time.sleep(0.3)


def test_dry_run_prints_plan_and_submits_nothing(dev_slurm, tmp_path):
    proc = run_cli("-m", "cluster=dev_slurm", "nodes=1,2", "gpus=2", "dry_run=true",
                   f"out_dir={tmp_path}", *FAST)
    assert proc.returncode == 0, proc.stderr
    assert "sbatch --nodes=1" in proc.stdout and "--gpus-per-node=2" in proc.stdout
    assert "sbatch --nodes=2" in proc.stdout and "--gpus-per-node=1" in proc.stdout
    assert "TP=2, PP=1" in proc.stdout and "TP=1, PP=2" in proc.stdout
    assert not (tmp_path / "slurm").exists()


def test_partition_slurm_rejects_passes_slurms_message(dev_slurm, tmp_path):
    proc = run_cli("cluster=dev_slurm", "cluster.partition=nosuchpart", f"out_dir={tmp_path}", *FAST)
    assert proc.returncode == 2
    assert "sbatch refused" in proc.stderr and "invalid partition" in proc.stderr.lower()
    assert "Traceback" not in proc.stderr


def test_ray_failing_on_a_node_names_node_and_log(dev_slurm, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("-m", "cluster=dev_slurm", "nodes=2,1", "gpus=0", f"out_dir={out}", *FAST,
                   env={"ENERGY_HPC_RAY_TIMEOUT": "0.01"}, timeout=300)
    assert proc.returncode == 2
    assert "Ray node(s) n2 did not join" in proc.stderr and "ray-n2.log" in proc.stderr
    assert "1 cell(s) failed" in proc.stderr
    frame = load(out)  # the one-node cell of the same sweep is unaffected
    assert set(frame["nodes"]) == {1} and len(frame) == 2


def test_no_slurm_on_the_machine_says_what_to_do(tmp_path, monkeypatch):
    import shutil

    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "sbatch" else real_which(name))
    from energy_hpc.errors import ConfigError

    s = compose_cell(["cluster=clara", f"out_dir={tmp_path}"])
    with pytest.raises(ConfigError, match=r"no 'sbatch'.*cluster=local.*dev_slurm"):
        submit(plan([s]), str(tmp_path), "x")


def test_sweep_manifest_records_shape(dev_slurm, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("cluster=dev_slurm", "gpus=1", "wait=false", f"out_dir={out}", *FAST)
    assert proc.returncode == 0 and "not waiting" in proc.stdout
    [entry] = read_sweep_manifest(out, "default")
    assert "--gpus-per-node=1" in entry["shape"]
    assert json.dumps(entry)


def test_dev_slurm_restarts_dead_accounting_and_detaches_it(dev_slurm):
    """A cluster whose MariaDB died still answers sinfo; up.sh must notice (sacct) and restart it,
    in a session of its own so it outlives the shell that started it."""
    import os

    subprocess.run(["pkill", "-f", "mariadbd.*ehpc-slurm/db"], check=False)
    for _ in range(40):
        if subprocess.run(["pgrep", "-f", "mariadbd.*ehpc-slurm/db"], capture_output=True).returncode:
            break
        time.sleep(0.25)
    up = subprocess.run(["bash", str(REPO / "launchers" / "dev_slurm" / "up.sh")],
                        capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stderr[-2000:]
    assert "MariaDB (accounting store) is not answering" in up.stderr
    assert subprocess.run(["sacct", "-n", "-X", "-S", "now-1minutes"], capture_output=True).returncode == 0
    pid = int(subprocess.run(["pgrep", "-f", "mariadbd.*ehpc-slurm/db"], capture_output=True,
                             text=True).stdout.split()[0])
    assert os.getsid(pid) == pid and os.getsid(pid) != os.getsid(0)
    again = subprocess.run(["bash", str(REPO / "launchers" / "dev_slurm" / "up.sh")],
                           capture_output=True, text=True, timeout=120)
    assert "already running" in again.stderr and "sacct" in again.stderr


def test_an_sbatch_error_is_printed_once(dev_slurm, tmp_path):
    proc = run_cli("-m", "cluster=dev_slurm", "cluster.partition=nosuch", f"out_dir={tmp_path}", *FAST)
    assert proc.returncode == 2
    assert (proc.stdout + proc.stderr).count("invalid partition specified: nosuch") == 1
    assert "1 cell(s) failed" in proc.stderr


def test_no_controller_says_the_file_names_a_site_cluster_and_how_to_try_the_dev_one(tmp_path):
    import os
    import shutil

    if shutil.which("sbatch") is None:
        pytest.skip("no sbatch here (test_no_slurm_on_the_machine_says_what_to_do covers it)")
    env = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}
    proc = subprocess.run([sys.executable, "-m", "energy_hpc", "cluster=capella", f"out_dir={tmp_path}",
                           *FAST], capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no Slurm controller answers here (SLURM_CONF=unset" in proc.stderr
    assert "capella.yaml names a site's cluster" in proc.stderr and "dev_slurm/up.sh" in proc.stderr
    assert proc.stderr.count("Could not establish a configuration source") == 1  # scontrol's, quoted once


def test_slurm_extra_reaches_sbatch_and_bad_keys_are_refused(dev_slurm, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("cluster=dev_slurm", "+cluster.slurm_extra={comment: ehpc_test, "
                   "additional_parameters: {nice: 10}}", "wait=false", f"out_dir={out}", *FAST)
    assert proc.returncode == 0, proc.stderr
    [script] = list((out / "slurm").rglob("*_submission.sh"))
    text = script.read_text()
    assert "#SBATCH --comment=ehpc_test" in text and "#SBATCH --nice=10" in text
    bad = run_cli("cluster=dev_slurm", "+cluster.slurm_extra={mail_typ: END}", "dry_run=true",
                  f"out_dir={out}", *FAST)
    assert bad.returncode == 2 and "did you mean 'mail_type'?" in bad.stderr and "Valid:" in bad.stderr
    own = run_cli("cluster=dev_slurm", "+cluster.slurm_extra={time: 5}", "dry_run=true",
                  f"out_dir={out}", *FAST)
    assert own.returncode == 2 and "time_limit_min" in own.stderr


# --- packing (issue 10) ---------------------------------------------------------------------


def test_packed_cells_measure_what_they_measure_alone(dev_slurm, tmp_path):
    sweep = ["-m", "model=linear_bow,linear_tfidf", "seed=1,2", "cluster=dev_slurm", "sweep=p"]
    packed = run_cli(*sweep, "pack=4", f"out_dir={tmp_path / 'packed'}", *FAST, timeout=600)
    assert packed.returncode == 0, packed.stderr[-3000:]
    assert "submitted 4 cell(s) as 1 job(s)" in packed.stdout
    # a ledger of this sweep's own (the Slurm jobs inherit it): only its windows are its neighbours
    alone = run_cli(*sweep, "pack=1", f"out_dir={tmp_path / 'alone'}", *FAST, timeout=600,
                    env={"ENERGY_HPC_LEDGER_DIR": str(tmp_path / "ledger")})
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert "submitted 4 cell(s) as 4 job(s)" in alone.stdout
    entries = read_sweep_manifest(tmp_path / "packed", "p")
    assert len({e["job_id"] for e in entries}) == 1 and len(entries) == 4
    p, a = load(tmp_path / "packed"), load(tmp_path / "alone")
    assert sorted(p["cell_id"].unique()) == sorted(a["cell_id"].unique())  # the same cells
    for cell_id, mine in p.groupby("cell_id"):
        theirs = a[a["cell_id"] == cell_id].sort_values("split")
        mine = mine.sort_values("split")
        for column in ("split", "test_fingerprint", "train_fingerprint", "accuracy", "n_test",
                       "energy_method", "cpu_method", "ram_method"):
            assert list(mine[column]) == list(theirs[column]), column
        assert (mine["window_s"] >= 0.05).all() and (mine["passes"] >= 1).all()
        meta = CellStore(tmp_path / "packed", cell_id).meta()
        assert meta["complete"] and meta["cell_id"] == cell_id  # its own meta, not the job's
    status = run_cli_status(tmp_path / "packed", "p")
    assert "4 done" in status
    # 4 jobs, 2 nodes: whole-node meters make each job --exclusive, so no two jobs shared a
    # Slurm node at any time; the dev cluster's two nodes are one machine, so windows of jobs on
    # n1 and n2 at the same time are flagged, naming each other
    assert_no_shared_node(a)


def assert_no_shared_node(records) -> None:
    import pandas as pd

    rows = records.assign(start=pd.to_datetime(records["started_at"]),
                          end=pd.to_datetime(records["ended_at"]))
    cells = set(rows["cell_id"])
    for _, x in rows.iterrows():
        assert set(x["overlapped_with"]) <= cells - {x["cell_id"]}
        for _, y in rows[rows["cell_id"] > x["cell_id"]].iterrows():
            if set(x["hosts"]) & set(y["hosts"]):
                assert x["end"] <= y["start"] or y["end"] <= x["start"], (x["cell_id"], y["cell_id"])


def test_a_failing_cell_does_not_stop_the_others_in_its_job(dev_slurm, tmp_path, csv_file):
    good = csv_file([(f"text {i}", "ab"[i % 2]) for i in range(40)], name="good.csv")
    proc = run_cli("-m", "dataset=file", f"dataset.path=/nonexistent/bad.csv,{good}",
                   "dataset.n_train=10", "dataset.n_test=10", "cluster=dev_slurm", "pack=2",
                   f"out_dir={tmp_path}", *FAST, timeout=600)
    assert proc.returncode == 2
    assert "as 1 job(s)" in proc.stdout
    assert "packed with 1 other cell(s)" in proc.stderr and "bad.csv" in proc.stderr
    frame = load(tmp_path)
    assert len(frame) == 2 and frame["dataset_fingerprint"].nunique() == 1  # the good one ran


def _one_packed_job(out, name: str, seeds: int, window_s: float = 1.5) -> tuple[list[str], str]:
    """A sweep of ``seeds`` cells (as many splits each) packed into one job, submitted without
    waiting: the sweep's arguments and the job's id."""
    sweep = ["-m", f"seed={','.join(str(s) for s in range(1, seeds + 1))}", "cluster=dev_slurm",
             f"pack={seeds}", f"repetitions={seeds}", f"energy.min_window_s={window_s}",
             "energy.interval_s=1", "progress=false", f"out_dir={out}", f"sweep={name}"]
    proc = run_cli(*sweep, "wait=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    [job_id] = {str(e["job_id"]) for e in read_sweep_manifest(out, name)}
    return sweep, job_id


def _cancel(job_id: str, *flags: str) -> None:
    """scancel the whole job and wait until Slurm no longer lists it."""
    subprocess.run(["scancel", *flags, "--full", job_id], check=True)
    while subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True,
                         text=True).stdout.strip():
        time.sleep(0.3)


@pytest.mark.slow
def test_a_packed_job_killed_mid_cell_loses_no_split_and_a_rerun_finishes_the_rest(dev_slurm, tmp_path):
    out = tmp_path / "out"
    sweep, job_id = _one_packed_job(out, "k", seeds=3)
    deadline = time.time() + 180
    while sum(len(CellStore(out, e["cell_id"]).done_splits()) for e in read_sweep_manifest(out, "k")) < 2:
        assert time.time() < deadline, "the packed job finished no split in time"
        time.sleep(0.2)
    _cancel(job_id, "--signal=KILL")
    before = {e["cell_id"]: {r["split"]: r["started_at"] for r in CellStore(out, e["cell_id"]).records()}
              for e in read_sweep_manifest(out, "k")}
    assert sum(len(v) for v in before.values()) < 9  # killed mid-way
    again = run_cli(*sweep, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    for cell_id, kept in before.items():
        records = CellStore(out, cell_id).records()
        assert [r["split"] for r in records] == [0, 1, 2]  # exactly the missing splits measured
        for r in records:
            if r["split"] in kept:
                assert r["started_at"] == kept[r["split"]]  # finished splits were not re-measured


# --- other jobs on the node (issue 18) -------------------------------------------------------


def test_two_shared_jobs_on_one_node_are_both_measured_and_attributed(dev_slurm, tmp_path):
    """Two energy_hpc jobs, not --exclusive (isolation=attribute), on n1 at once: each sees the
    other's CPU work from the OS (its own from the job's cgroup, else by SLURM_JOB_ID), attributes
    its whole-host reading, and names the other job and the other cell; the report and the CLI's
    summary use the attributed energy."""
    # the job's cgroup where the dev Slurm has task/cgroup (up.sh: where cgroup v1 is writable)
    with_cgroup = (Path(dev_slurm).parent / "cgroup.conf").exists()
    own_source = "cgroup v1" if with_cgroup else "job processes (SLURM_JOB_ID)"
    procs, outs = [], []
    for seed in (1, 2):
        out = tmp_path / f"out{seed}"
        outs.append(out)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "energy_hpc", "cluster=dev_slurm", "cluster.isolation=attribute",
             "gpus=0", "model=linear_tfidf", "+cluster.slurm_extra={nodelist: n1}", f"seed={seed}",
             f"out_dir={out}", "repetitions=2", "energy.min_window_s=3", "progress=false",
             "energy.interval_s=1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"}))
    results = [p.communicate(timeout=600) for p in procs]
    for p, (stdout, stderr) in zip(procs, results, strict=True):
        assert p.returncode == 0, stderr[-3000:]
        assert "split(s) ran beside other work on the host" in stdout
    frames = [load(out) for out in outs]
    jobs = [str(read_sweep_manifest(out, "default")[0]["job_id"]) for out in outs]
    cells = [frame["cell_id"].iloc[0] for frame in frames]
    for i, frame in enumerate(frames):
        other = 1 - i
        assert "--exclusive" not in read_sweep_manifest(outs[i], "default")[0]["shape"]
        assert set(frame["hosts"].map(tuple)) == {("n1",)}
        assert (frame["own_cpu_source"] == own_source).all()
        beside = frame[frame["node_shared_with_jobs"].map(lambda j, o=other: jobs[o] in (j or []))]
        assert len(beside), frame["node_shared_with_jobs"].tolist()
        assert beside["overlapped_with"].map(lambda c, o=other: cells[o] in c).any()
        assert (beside["attribution"] == "attributed").any(), beside["attribution"].tolist()
        shared = beside[beside["attribution"] == "attributed"]
        assert shared["foreign_cpu_share"].between(0.3, 0.7).all()
        assert (shared["energy_wh_attributed"] < shared["energy_wh"]).all()
    from energy_hpc.report import build_report

    text = build_report([str(outs[0])], tmp_path / "report", progress=False).read_text()
    assert "split(s) ran beside other work on their host** and use the energy attributed" in text


# --- what a new user met (issue 24) ----------------------------------------------------------


def test_status_names_waiting_and_cancelled_cells_and_a_complete_sweep_submits_nothing(
        dev_slurm, tmp_path):
    out = tmp_path / "out"
    # long windows: the first cell must still run while status is asked and the job cancelled
    sweep, job_id = _one_packed_job(out, "w", seeds=2, window_s=4)
    entries = read_sweep_manifest(out, "w")
    deadline = time.time() + 180
    while not any(CellStore(out, e["cell_id"]).meta() for e in entries):
        assert time.time() < deadline, "the packed job started no cell in time"
        time.sleep(0.2)
    status = run_cli_status(out, "w")
    while "waiting in job" not in status:  # Slurm's view of the job may lag its first cell
        assert time.time() < deadline, status
        time.sleep(0.5)
        status = run_cli_status(out, "w")
    assert f"waiting in job {job_id}" in status and "1 waiting" in status, status
    assert "RUNNING 0/?" not in status
    _cancel(job_id)
    status = run_cli_status(out, "w")
    assert "cancelled before it started — a rerun measures it" in status, status
    again = run_cli(*sweep, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 done" in run_cli_status(out, "w")
    jobs_before = {e["cell_id"]: e["job_id"] for e in read_sweep_manifest(out, "w")}
    # complete: the plan says so, nothing is submitted, the summary counts them as skipped
    dry = run_cli(*sweep, "dry_run=true")
    assert dry.stdout.count("complete, will skip") == 2 and "job array" not in dry.stdout
    rerun = run_cli(*sweep, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "submitted 0" not in rerun.stdout and " as 1 job(s)" not in rerun.stdout
    assert ("0 cell(s) run by this command, 2 complete from an earlier run (skipped, not "
            "submitted") in rerun.stdout
    assert {e["cell_id"]: e["job_id"] for e in read_sweep_manifest(out, "w")} == jobs_before
