"""What runs inside the Slurm allocation: one cell, with Ray across the nodes when it spans several."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from energy_hpc.cell import Cell

log = logging.getLogger(__name__)

RAY_JOIN_TIMEOUT_S = float(os.environ.get("ENERGY_HPC_RAY_TIMEOUT", "120"))


def _job_nodes() -> list[str]:
    import subprocess

    nodelist = os.environ.get("SLURM_JOB_NODELIST", "")
    if not nodelist:
        return [os.environ.get("SLURMD_NODENAME", "localhost")]
    out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True)
    return out.stdout.split() or [nodelist]


def run_in_allocation(cell: Cell) -> dict[str, Any]:
    """Entry point on every node: rank 0 measures, other ranks host a Ray worker until rank 0 is done."""
    from energy_hpc.runner import run_cell

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    node = os.environ.get("SLURMD_NODENAME", "localhost")
    if cell.placement.nodes == 1:
        records = run_cell(cell)
        return {"cell_id": cell.cell_id, "splits": len(records), "nodes": [node]}

    import submitit

    from energy_hpc.cluster import ray_cluster as rc

    env = submitit.JobEnvironment()
    job_dir = Path(cell.out_dir) / "cells" / cell.cell_id / "ray" / str(env.job_id)
    cpus = int(os.environ.get("SLURM_CPUS_PER_TASK", "1"))
    gpus = int(os.environ.get("SLURM_GPUS_ON_NODE", "0") or 0)
    if env.global_rank != 0:
        worker = rc.start_worker(job_dir, node, cpus, gpus, timeout=RAY_JOIN_TIMEOUT_S)
        try:
            rc.wait_done(job_dir, worker)
        finally:
            worker.stop()
        return {"cell_id": cell.cell_id, "rank": env.global_rank, "node": node}

    head = None
    try:
        head, address = rc.start_head(job_dir, node, cpus, gpus)
        import ray

        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        nodes = _job_nodes()
        rc.wait_for_nodes(nodes, RAY_JOIN_TIMEOUT_S, job_dir)
        log.info("Ray up across %s at %s", ", ".join(nodes), address)
        from energy_hpc.cluster.node_meters import multi_node_meters

        meters = multi_node_meters(nodes, cell.settings.energy)
        records = run_cell(cell, meters=meters, ray_address=address)
        return {"cell_id": cell.cell_id, "splits": len(records), "nodes": nodes}
    finally:
        rc.signal_done(job_dir)
        try:
            import ray

            if ray.is_initialized():
                ray.shutdown()
        finally:
            if head is not None:
                head.stop()


class CellJob:
    """A submitit-checkpointable cell: on preemption or timeout the job is requeued and the
    runner resumes after the last finished split (a split cut short is measured again)."""

    def __call__(self, cell: Cell) -> dict[str, Any]:
        return run_in_allocation(cell)

    def checkpoint(self, cell: Cell) -> Any:
        import submitit

        log.warning("cell %s: preempted or out of time; requeueing", cell.cell_id)
        return submitit.helpers.DelayedSubmission(self, cell)
