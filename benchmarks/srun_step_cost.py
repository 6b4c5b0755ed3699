"""What running each packed cell as its own ``srun`` step would cost per cell (issue 18).

Slurm's accounting attributes energy per job *step*; today a packed job runs its cells one after
another in one process (one step: the batch script). Making each cell a step means, per cell:
creating the step (``srun`` asks slurmctld, slurmstepd starts on the node) **and** a fresh Python
process that imports energy_hpc and the cell's libraries and loads its data and model again —
nothing the previous cell loaded survives (for LLM cells that share an engine, the engine).

Inside one dev Slurm allocation (``launchers/dev_slurm/up.sh``), alternating N times:

- ``srun true`` (the step alone) against ``true`` run directly,
- ``srun python -c IMPORTS`` (a step that imports what a traditional cell needs) against the same
  imports in the packed job's process after the first cell (nothing: they are loaded already).

It prints the medians and the ratio against a small packed cell's own time, measured in the same
job (``linear_tfidf`` on the embedded demo data, one split).

    SLURM_CONF=/tmp/ehpc-slurm/slurm.conf python benchmarks/srun_step_cost.py [--n 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMPORTS = ("import energy_hpc.runner, energy_hpc.energy.codecarbon_meter, sklearn.linear_model, "
           "codecarbon")


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def inside(n: int, out: Path) -> None:
    """Runs in the allocation: the step costs, and one small cell for scale."""
    step = ["srun", "--ntasks=1", "--exact", "--quiet"]
    direct_true, step_true, step_import = [], [], []
    for _ in range(n):
        direct_true.append(timed(["true"]))
        step_true.append(timed([*step, "true"]))
        step_import.append(timed([*step, sys.executable, "-c", IMPORTS]))
    t0 = time.perf_counter()
    cell = subprocess.run([sys.executable, "-m", "energy_hpc", "model=linear_tfidf", "repetitions=1",
                           f"out_dir={out / 'cell'}", "progress=false", "energy.interval_s=1"],
                          capture_output=True, text=True)
    cell_s = time.perf_counter() - t0
    if cell.returncode != 0:
        raise SystemExit(cell.stderr[-2000:])
    (out / "timings.json").write_text(json.dumps({
        "direct_true": direct_true, "step_true": step_true, "step_import": step_import,
        "cell_process_s": cell_s}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--inside", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inside:
        inside(args.n, Path(args.inside))
        return
    if not os.environ.get("SLURM_CONF"):
        raise SystemExit("set SLURM_CONF (bash launchers/dev_slurm/up.sh prints it)")
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        out = Path(folder)
        job = subprocess.run(
            ["sbatch", "--parsable", "--wait", "-p", "debug", "-N", "1", "-n", "1", "--exclusive",
             "-t", "10", "-o", str(out / "job.log"), "--wrap",
             f"{sys.executable} {Path(__file__).resolve()} --inside {out} --n {args.n}"],
            capture_output=True, text=True)
        if job.returncode != 0:
            raise SystemExit(f"sbatch failed: {job.stderr}{(out / 'job.log').read_text()[-2000:]}")
        t = json.loads((out / "timings.json").read_text())
        job_id = job.stdout.strip().split(";")[0]
        steps = subprocess.run(["sacct", "-j", job_id, "-P", "-n", "--format=JobID,ElapsedRaw,"
                                "ConsumedEnergyRaw"], capture_output=True, text=True).stdout
    med = {k: statistics.median(v) for k, v in t.items() if isinstance(v, list)}
    per_cell = med["step_import"]
    print(f"dev Slurm job {job_id}, {args.n} of each, medians:")
    print(f"  true directly                : {med['direct_true'] * 1000:8.1f} ms")
    print(f"  srun step running true       : {med['step_true'] * 1000:8.1f} ms "
          f"(step alone: {(med['step_true'] - med['direct_true']) * 1000:.1f} ms)")
    print(f"  srun step importing a cell's : {per_cell * 1000:8.1f} ms (in the packed process "
          "after the first cell: 0)")
    print(f"  one linear_tfidf cell, whole process (imports, data, 1 split): "
          f"{t['cell_process_s']:.2f} s")
    print(f"  ratio step+imports / small cell: {per_cell / t['cell_process_s']:.2f}")
    print(f"  sacct sees {len([s for s in steps.splitlines() if s.strip()])} lines (job, batch, "
          f"{args.n * 2} steps); ConsumedEnergyRaw here: "
          f"{sorted({s.split('|')[2] or 'empty' for s in steps.splitlines() if s.count('|') == 2})}")


if __name__ == "__main__":
    main()
