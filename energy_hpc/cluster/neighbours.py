"""Who else Slurm runs on this job's nodes: other users' (or our own) jobs a whole-node meter counts.

Asked at the start and at the end of every split (``squeue -h -t RUNNING -w NODES -o %A``, about
10–30 ms each); a job seen at either moment is named in the split's ``node_shared_with_jobs``.
Jobs that came and went between the two moments are not seen: an exclusive allocation, or the
ledger for energy_hpc's own runs, is what rules sharing out.
"""

from __future__ import annotations

import os
import subprocess

SHARED_FLAG = "node_shared_with_jobs"


def other_jobs_on_my_nodes() -> list[str] | None:
    """Running jobs on this job's nodes besides this one; None outside a Slurm job, or when
    squeue cannot be asked (the record then says unknown, not "none")."""
    job, nodes = os.environ.get("SLURM_JOB_ID"), os.environ.get("SLURM_JOB_NODELIST")
    if not job or not nodes:
        return None
    try:
        out = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-w", nodes, "-o", "%A"],
                             capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return sorted({j.strip() for j in out.stdout.split() if j.strip() and j.strip() != job})


def union(*seen: list[str] | None) -> list[str] | None:
    known = [s for s in seen if s is not None]
    return sorted(set().union(*known)) if known else None
