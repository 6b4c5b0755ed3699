"""Ctrl-C and SIGTERM, locally and inside a Slurm job: one line naming the cell and its recorded
splits, how to resume, 130/143, the sweep's cells not run listed; recorded splits intact."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from energy_hpc.results import CellStore, read_sweep_manifest
from tests.conftest import NEEDS_SLURM, REPO

SLOW_SPLITS = ["repetitions=12", "energy.min_window_s=0.4", "progress=false"]
LINE = re.compile(r"energy_hpc: interrupted \((SIGINT|SIGTERM)\) during cell (\S+) \(.*\): "
                  r"(\d+) of (\d+) split\(s\) recorded, the split in progress was not; rerun the "
                  r"same command to resume")


def _start(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen([sys.executable, "-m", "energy_hpc", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_records(out: Path, n: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        counts = [len(p.read_text().splitlines()) for p in out.glob("cells/*/records.jsonl")]
        if counts and max(counts) >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"no cell under {out} reached {n} records")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_says_how_to_resume_and_keeps_its_splits(tmp_path, sig):
    out = tmp_path / "out"
    proc = _start(f"out_dir={out}", *SLOW_SPLITS)
    _wait_for_records(out, 2)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, stderr[-2000:]
    assert "Traceback" not in stderr
    match = LINE.search(stderr)
    assert match and match.group(1) == sig.name, stderr[-2000:]
    cell_id, recorded = match.group(2), int(match.group(3))
    store = CellStore(out, cell_id)
    assert len(store.done_splits()) == recorded >= 2 and match.group(4) == "12"
    assert store.done_splits() == set(range(recorded))  # the cut split is not recorded
    # rerunning the same command resumes: only the missing splits are measured
    again = subprocess.run([sys.executable, "-m", "energy_hpc", f"out_dir={out}", *SLOW_SPLITS],
                           cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    said = again.stdout + again.stderr
    assert f"{recorded} split(s) already recorded, measuring {12 - recorded} more" in said
    assert len(store.done_splits()) == 12


def test_an_interrupted_sweep_lists_the_cells_not_run(tmp_path):
    out = tmp_path / "out"
    proc = _start("-m", "model=linear_bow,linear_tfidf,xgboost_bow", f"out_dir={out}", *SLOW_SPLITS)
    _wait_for_records(out, 1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    assert LINE.search(stderr) and "Traceback" not in stderr
    assert "2 cell(s) of this command not run:" in stderr
    assert "(linear_tfidf on demo @ local)" in stderr and "(xgboost_bow on demo @ local)" in stderr


@pytest.mark.slurm
@NEEDS_SLURM
@pytest.mark.parametrize("sig", ["INT", "TERM"])
def test_scancel_signal_inside_a_slurm_job_names_the_cell_and_its_splits(dev_slurm, tmp_path, sig):
    out = tmp_path / "out"
    proc = _start("cluster=dev_slurm", f"out_dir={out}", "energy.interval_s=1", *SLOW_SPLITS)
    _wait_for_records(out, 2)
    [entry] = read_sweep_manifest(out, "default")
    subprocess.run(["scancel", f"--signal={sig}", str(entry["job_id"])], check=True)
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 2, stderr[-3000:]
    found = re.search(r"interrupted \(SIG" + sig + r"\) during cell (\S+) \(.*?\): (\d+) of 12 "
                      r"split\(s\) recorded, the split in progress was not; rerun the same "
                      "command to resume", stderr)
    assert found, stderr[-3000:]
    assert len(CellStore(out, found.group(1)).done_splits()) == int(found.group(2)) >= 2
