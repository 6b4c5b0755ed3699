"""Slurm through submitit: a plan's job arrays submitted (``energy_hpc.launch`` builds the plan and
runs it with :class:`~energy_hpc.launch.executors.SlurmExecutor`), waited for, their accounting kept."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from energy_hpc.cluster.shape import JobShape, job_shape
from energy_hpc.errors import ConfigError, UserError
from energy_hpc.results import append_sweep_manifest, read_sweep_manifest, slurm_folder

if TYPE_CHECKING:
    from energy_hpc.cell import Cell

log = logging.getLogger(__name__)

__all__ = ["JobShape", "job_shape", "submit", "wait", "sweep_status"]


def require_slurm(cluster: str) -> None:
    """Before anything is submitted: sbatch, submitit and a controller that answers."""
    import importlib.util

    if shutil.which("sbatch") is None:
        raise ConfigError(
            f"cluster={cluster} is a Slurm cluster but this machine has no 'sbatch'. Run here with "
            "cluster=local, submit from a login node of that cluster, or try the loopback dev cluster: "
            "source <(bash launchers/dev_slurm/up.sh) and cluster=dev_slurm"
        )
    if importlib.util.find_spec("submitit") is None:
        raise UserError(f"cluster={cluster} submits through submitit, which is not installed: "
                        "pip install -e '.[slurm]'")
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    if ping.returncode != 0 or " UP" not in ping.stdout:
        said = (ping.stderr or ping.stdout).strip().splitlines()
        if cluster == "dev_slurm":
            how = "start it with: source <(bash launchers/dev_slurm/up.sh) (it sets SLURM_CONF)"
        else:
            how = (f"the cluster file {cluster}.yaml names a site's cluster: submit from one of its "
                   "login nodes, run here with cluster=local, or try the loopback dev cluster: "
                   "source <(bash launchers/dev_slurm/up.sh) and cluster=dev_slurm")
        raise UserError(
            f"cluster={cluster}: no Slurm controller answers here (SLURM_CONF="
            f"{os.environ.get('SLURM_CONF', 'unset')}; scontrol ping: "
            f"{said[-1] if said else 'no answer'}); {how}")


@contextlib.contextmanager
def _stderr_into(sink: list[str]) -> Iterator[None]:
    """sbatch writes its errors straight to our stderr; catch them so each is printed once."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            sink.append(tmp.read().decode(errors="replace"))


@contextlib.contextmanager
def _secrets_in_environment(names: tuple[str, ...]) -> Iterator[None]:
    """The shape's secret variables in this process's environment while sbatch runs, so the job
    inherits them (Slurm's default ``--export=ALL``) and no file of ours holds them."""
    from energy_hpc.config import secret_env

    values = secret_env()
    missing = [n for n in names if n not in values and n not in os.environ]
    if missing:
        raise UserError(f"cluster env {', '.join(missing)}: the secret value is not known to this "
                        "process; set it in the cluster file's env, as an override "
                        "(+cluster.env.NAME=...) or in the environment you submit from")
    saved = {n: os.environ.get(n) for n in names}
    os.environ.update({n: values[n] for n in names if n in values})
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def _executor(folder: Path, shape: JobShape, name: str, parallelism: int) -> Any:
    import submitit

    from energy_hpc.launch.packing import MAX_REQUEUES

    ex = submitit.SlurmExecutor(folder=str(folder), max_num_timeout=MAX_REQUEUES)
    ex.update_parameters(job_name=name, array_parallelism=parallelism, **shape.executor_parameters())
    return ex


def submit(groups: dict[JobShape, Sequence[Sequence[Cell]]], out_dir: str,
           sweep: str) -> list[tuple[Sequence[Cell], Any]]:
    """One job array per shape; each job gets exactly its cells' allocation and runs them one
    after another."""
    from energy_hpc.launch.job import CellJob

    # once per cluster, before anything is submitted (the check asks the controller)
    for cluster in dict.fromkeys(packed[0][0].settings.cluster.name for packed in groups.values()):
        require_slurm(cluster)
    submitted: list[tuple[Sequence[Cell], Any]] = []
    for shape, packed in groups.items():
        folder = slurm_folder(out_dir, sweep)
        ex = _executor(folder, shape, f"ehpc-{sweep}", max(1, len(packed)))
        said: list[str] = []
        try:
            with _secrets_in_environment(shape.secret_env), _stderr_into(said), ex.batch():
                jobs = [ex.submit(CellJob(), list(cells)) for cells in packed]
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - submitit wraps sbatch failures in several types
            detail = "".join(said).strip() or str(exc).strip()
            if isinstance(exc, subprocess.CalledProcessError) and not said[0].strip():
                detail = (exc.stderr or exc.output or b"").decode(errors="replace").strip()
            raise UserError(f"sbatch refused the job ({' '.join(shape.sbatch_args())}): "
                            f"{detail}") from None
        if said and said[0].strip():
            log.info("sbatch said: %s", said[0].strip())
        for cells, job in zip(packed, jobs, strict=True):
            for cell in cells:
                log.info("submitted %s as Slurm job %s", cell.cell_id, job.job_id)
                append_sweep_manifest(out_dir, sweep, {
                    "cell_id": cell.cell_id, "job_id": job.job_id, "choices": cell.settings.choices,
                    "label": cell.label(), "placement": cell.placement.describe(),
                    "shape": shape.sbatch_args(), "packed_with": len(cells) - 1,
                    "repetitions": cell.settings.repetitions})
            submitted.append((cells, job))
    return submitted


def failure_reason(exc: BaseException) -> str:
    """The remote exception's own line (``XError: message``) out of submitit's failure text."""
    import re

    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception|Interrupt)\b.*:", ln)]
    if errors:
        return errors[-1]
    return lines[-1] if lines else type(exc).__name__


QUEUED_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD",
                 "REQUEUE_FED", "SUSPENDED", "PREEMPTED", "RESIZING", "STAGE_OUT", "SIGNALING"}


def still_queued(job_id: str) -> bool:
    """Whether Slurm still holds the job (waiting, running or on its way back after a requeue)."""
    out = subprocess.run(["squeue", "-h", "-j", str(job_id), "-o", "%T"], capture_output=True,
                         text=True).stdout.split()
    return any(state in QUEUED_STATES for state in out)


def results_through_requeues(job: Any, poll_s: float = 3.0) -> Any:
    """``job.results()`` that outlasts requeues (preemption, time limit).

    Slurm, carrying out the requeue, can kill the job's own ``scontrol requeue`` before it
    returns; submitit then writes a failure result ("scontrol requeue died with SIGTERM") that the
    next run overwrites (seen on the dev cluster). A result or state read in that gap is not the
    job's end: while Slurm still queues the job, wait again.
    """
    import time

    from submitit.core.utils import FailedJobError, UncompletedJobError

    told = False
    while True:
        try:
            return job.results()
        except (UncompletedJobError, FailedJobError):
            if not still_queued(job.job_id):
                raise
            if not told:
                log.info("Slurm job %s was requeued; waiting for its next run", job.job_id)
                told = True
            job.watcher.clear()  # submitit caches "finished" for good; ask sacct again
            time.sleep(poll_s)


def wait(submitted: list[tuple[Sequence[Cell], Any]]) -> list[str]:
    """Wait for every job; return one line per failed cell (the others, in its job too, are
    unaffected: a packed job reports which of its cells failed)."""
    failures = []
    for cells, job in submitted:
        try:
            results = results_through_requeues(job)  # every task (one per node) must have succeeded
        except Exception as exc:  # noqa: BLE001 - report and carry on with the other cells
            failures.extend(f"{cell.cell_id} (Slurm job {job.job_id}): {failure_reason(exc)}; "
                            f"logs: {job.paths.stderr}" for cell in cells)
            continue
        keep_accounting(cells, str(job.job_id))
        for result in results or []:
            for cell_id, reason in (result or {}).get("failed", {}).items():
                failures.append(f"{cell_id} (Slurm job {job.job_id}, packed with "
                                f"{len(cells) - 1} other cell(s)): {reason}; logs: {job.paths.stderr}")
    return failures


def keep_accounting(cells: Sequence[Cell], job_id: str) -> None:
    """The site's energy accounting of a finished job (``energy_hpc.cluster.accounting``), kept
    in the meta.json of each of its cells; records gain it as ``slurm_*`` columns on loading."""
    from energy_hpc.cluster.accounting import read_job_accounting
    from energy_hpc.results import CellStore

    accounting = read_job_accounting(job_id).to_dict()
    accounting["cells_in_job"] = len(cells)
    for cell in cells:
        store = CellStore(cell.out_dir, cell.cell_id)
        try:
            if store.meta_path.exists():
                store.update_meta(slurm_accounting=accounting)
        except (OSError, ValueError) as exc:  # the records are what matter; say it and go on
            log.warning("cell %s: could not keep Slurm's accounting of job %s: %s", cell.cell_id,
                        job_id, exc)
    if accounting["consumed_energy_wh"] is None:
        log.info("Slurm job %s: no site energy accounting (%s)", job_id, accounting["reason"])


def job_states(job_ids: list[str]) -> dict[str, str]:
    """Slurm's state per job id, from sacct (accounting); a job sacct does not know is left out."""
    if not job_ids:
        return {}
    states: dict[str, str] = {}
    try:
        out = subprocess.run(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(job_ids)],
                             capture_output=True, text=True, timeout=30).stdout
        for line in out.splitlines():
            jid, _, state = line.partition("|")
            states[jid.strip()] = state.split()[0] if state else "UNKNOWN"
    except (OSError, subprocess.SubprocessError):
        pass
    return states


# Slurm states of a job that is over; those it was stopped in from outside (a rerun measures what
# it did not reach)
ENDED_STATES = ("FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED",
                "BOOT_FAIL", "DEADLINE", "COMPLETED")
STOPPED_STATES = ("CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL")


def sweep_status(out_dir: str, sweep: str) -> list[dict[str, Any]]:
    """pending / running / done / failed per cell, from Slurm and the records."""
    from energy_hpc.results import CellStore

    latest = {e["cell_id"]: e for e in read_sweep_manifest(out_dir, sweep)}
    states = job_states([str(e["job_id"]) for e in latest.values() if e.get("job_id")])
    rows = []
    for cell_id, e in latest.items():
        store = CellStore(out_dir, cell_id)
        meta = store.meta()
        reps = meta.get("repetitions") or e.get("repetitions")
        done = len(store.done_splits())
        slurm = states.get(str(e.get("job_id")), "-") if e.get("job_id") else "local"
        started = bool(meta)  # a cell writes meta.json when it starts measuring
        state = (slurm.split() or ["-"])[0]  # "CANCELLED by 0" is CANCELLED
        if meta.get("complete"):
            status = "done"
        elif slurm in ("PENDING", "REQUEUED", "CONFIGURING"):
            status = "pending"
        elif slurm in ("RUNNING", "COMPLETING"):
            # a packed job runs its cells one after another: the later ones wait in it
            status = "running" if started else f"waiting in job {e.get('job_id')}"
        elif state in ENDED_STATES and not started:
            status = (f"{state.lower() if state in STOPPED_STATES else 'failed'} before it "
                      "started — a rerun measures it")
        elif state in ENDED_STATES:
            status = "failed"
        else:
            status = "pending" if not started else "running"
        rows.append({"cell_id": cell_id, "cell": e.get("label", ""), "job_id": e.get("job_id"),
                     "slurm_state": slurm,
                     "splits_done": done, "repetitions": reps, "status": status})
    return rows
