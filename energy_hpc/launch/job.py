"""What runs inside the Slurm allocation: one cell, with Ray across the nodes when it spans several."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
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


class JobInterruptedError(RuntimeError):
    """Ctrl-C / ``scancel --signal=INT|TERM`` inside the job: the cell cut short, its recorded
    splits, the job's cells not run; an ordinary exception, so submitit reports it as the job's
    failure (and a requeue in progress is still waited for by the submitter)."""


def run_cells(cells: list[Cell], nodes: list[str], meters_for: Any = None,
              ray_address: str | None = None) -> dict[str, Any]:
    """The job's cells one after another in this process; a cell that fails is reported and the
    next one runs (a requeued job skips complete cells and finished splits)."""
    from energy_hpc.interrupts import CellInterrupted
    from energy_hpc.runner import run_cell

    done: dict[str, int] = {}
    failed: dict[str, str] = {}
    for i, cell in enumerate(cells):
        if len(cells) > 1:
            log.info("packed job: cell %d of %d: %s", i + 1, len(cells), cell.cell_id)
        try:
            meters = meters_for(cell) if meters_for is not None else None
            records = run_cell(cell, meters=meters, ray_address=ray_address)
            done[cell.cell_id] = len(records)
        except CellInterrupted as exc:
            exc.not_run = [f"{c.cell_id} ({c.label()})" for c in cells[i + 1:]]
            log.error("%s", "\n".join(exc.lines()))
            raise JobInterruptedError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - one cell's failure must not stop its job's others
            log.exception("cell %s failed; going on with the job's other cells", cell.cell_id)
            failed[cell.cell_id] = f"{type(exc).__name__}: {exc}"
    return {"cells": done, "failed": failed, "nodes": nodes}


def run_in_allocation(cells: list[Cell]) -> dict[str, Any]:
    """Entry point on every node: rank 0 measures the job's cells, other ranks host a Ray worker
    until rank 0 is done. A multi-node job brings Ray up once for all its cells."""
    from energy_hpc.config import redact_output

    redact_output()  # the job's log: a secret handed through the environment is never printed
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    node = os.environ.get("SLURMD_NODENAME", "localhost")
    first = cells[0]
    if first.placement.nodes == 1:
        return run_cells(cells, [node])

    import submitit

    from energy_hpc.launch import ray_cluster as rc
    from energy_hpc.results import CellStore

    env = submitit.JobEnvironment()
    job_dir = CellStore(first.out_dir, first.cell_id).ray_dir(str(env.job_id))
    cpus = int(os.environ.get("SLURM_CPUS_PER_TASK", "1"))
    gpus = int(os.environ.get("SLURM_GPUS_ON_NODE", "0") or 0)
    if env.global_rank != 0:
        worker = rc.start_worker(job_dir, node, cpus, gpus, timeout=RAY_JOIN_TIMEOUT_S)
        try:
            worker = rc.wait_done(job_dir, worker, join_timeout=RAY_JOIN_TIMEOUT_S)
        finally:
            worker.stop()
        return {"rank": env.global_rank, "node": node}

    head = None
    try:
        head, address = rc.start_head(job_dir, node, cpus, gpus)
        import ray

        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        nodes = _job_nodes()
        rc.wait_for_nodes(nodes, RAY_JOIN_TIMEOUT_S, job_dir)
        log.info("Ray up across %s at %s", ", ".join(nodes), address)
        from energy_hpc.launch.node_meters import label_node_meters, multi_node_meters

        shared: dict[str, Any] = {}  # per-node meter actors, one set per energy config in the job

        def meters_for(cell: Cell) -> Any:
            key = json.dumps(dataclasses.asdict(cell.settings.energy), sort_keys=True)
            if key not in shared:
                shared[key] = multi_node_meters(nodes, cell.settings.energy)
            return label_node_meters(shared[key], cell.cell_id)

        return run_cells(cells, nodes, meters_for, ray_address=address)
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
    """A submitit-checkpointable job of one or more cells of one shape: on preemption or timeout
    it is requeued and resumes at the first incomplete split of the first incomplete cell (a
    split cut short is measured again)."""

    def __call__(self, cells: list[Cell]) -> dict[str, Any]:
        return run_in_allocation(cells)

    def checkpoint(self, cells: list[Cell]) -> Any:
        import submitit

        log.warning("job of %d cell(s) (%s…): preempted or out of time; requeueing", len(cells),
                    cells[0].cell_id)
        return submitit.helpers.DelayedSubmission(self, cells)
