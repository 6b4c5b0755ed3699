"""What a multi-node cell pays for its private Ray cluster, before any inference.

Per round, on this machine: start the head (n1) and a worker (n2) as a two-node job would, connect,
wait until both nodes have joined, then tear down. Teardown runs with the 3 s grace the code uses
and, as the baseline, with the 20 s grace it used before (``ray start --block``, the GCS and the
raylet outlive SIGTERM), alternating, so the printed ratio compares the two in one command.

    python benchmarks/ray_bringup.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_round(job: str, grace_s: float) -> dict[str, float]:
    """One bring-up and teardown, in a process of its own as in a job (Ray reads the token at import)."""
    from energy_hpc.launch import ray_cluster as rc

    os.environ["SLURM_JOB_ID"] = job
    job_dir = Path(tempfile.mkdtemp(prefix="rb", dir="/tmp"))
    t0 = time.perf_counter()
    head, address = rc.start_head(job_dir, "n1", 1, 0)
    worker = rc.start_worker(job_dir, "n2", 1, 0)
    try:
        import ray

        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        rc.wait_for_nodes(["n1", "n2"], 120, job_dir)
        t_up = time.perf_counter()
        ray.shutdown()
    finally:
        t_stop = time.perf_counter()
        worker.stop(grace_s=grace_s)
        head.stop(grace_s=grace_s)
    t_down = time.perf_counter()
    shutil.rmtree(job_dir, ignore_errors=True)
    shutil.rmtree(f"/tmp/ehr-{job}", ignore_errors=True)
    shutil.rmtree(f"/tmp/ehr-{job}-n2", ignore_errors=True)
    return {"up": t_up - t0, "down": t_down - t_stop}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", nargs=2, metavar=("JOB", "GRACE_S"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_round(args.one[0], float(args.one[1]))))
        return
    runs: dict[float, list[dict[str, float]]] = {3.0: [], 20.0: []}
    for i in range(args.rounds):
        for grace in (3.0, 20.0):
            job = str(90000 + i * 2 + int(grace == 20.0))
            out = subprocess.run([sys.executable, __file__, "--one", job, str(grace)], check=True,
                                 capture_output=True, text=True).stdout
            runs[grace].append(json.loads(out.strip().splitlines()[-1]))
    med = {g: {k: statistics.median(r[k] for r in rs) for k in ("up", "down")} for g, rs in runs.items()}
    print(f"two-node private Ray on this machine, {args.rounds} round(s) each, medians:")
    print(f"  bring-up (head + worker + join):  {med[3.0]['up']:.1f} s")
    print(f"  teardown, 3 s grace (current):    {med[3.0]['down']:.1f} s")
    print(f"  teardown, 20 s grace (baseline):  {med[20.0]['down']:.1f} s")
    total_new = med[3.0]["up"] + med[3.0]["down"]
    total_old = med[20.0]["up"] + med[20.0]["down"]
    print(f"  Ray overhead per multi-node cell, current / baseline: {total_new / total_old:.2f}")


if __name__ == "__main__":
    main()
