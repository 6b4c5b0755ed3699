"""Executors, submitit-style: one per cluster kind, each registered once, running a plan's jobs.

``executor_for(kind).run(jobs, outcome, run_here)`` runs the jobs of that kind and writes what
ran, what failed and what another run holds into the :class:`SweepRun`. ``local`` runs each cell
in this process (``run_here`` lets Hydra's launcher wrap a cell in its job folder and logging);
``slurm`` submits one job array per shape through submitit and waits. A new kind is one
:func:`register_executor` call (a cluster file then says ``kind: NAME``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from energy_hpc.errors import UserError

if TYPE_CHECKING:
    from energy_hpc.cell import Cell
    from energy_hpc.launch.plan import Job, Plan

log = logging.getLogger("energy_hpc")

RunHere = Callable[["Cell", Callable[[], None]], None]  # (cell, body): run body for that cell


@dataclass
class SweepRun:
    """What one command ran: cells measured (or waited for on Slurm), held by another run,
    failed (one line each), skipped and why (a duplicate of another cell of the sweep), in the
    order they happened."""

    ran: dict[str, str] = field(default_factory=dict)  # cell id -> out_dir
    held: dict[str, str] = field(default_factory=dict)  # cell id -> "label: held by …"
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    complete: dict[str, str] = field(default_factory=dict)  # cell id -> out_dir: not submitted

    def mark_ran(self, cells: list[Cell]) -> None:
        for cell in cells:
            self.ran[cell.cell_id] = cell.out_dir

    def fail(self, line: str) -> None:
        from energy_hpc.config import redact_text

        log.debug("cell failed: %s", line)
        self.failed.append(redact_text(line))

    def records(self) -> list[dict[str, Any]]:
        from energy_hpc.results import CellStore

        return [r for cell_id, out in {**self.ran, **self.complete}.items()
                for r in CellStore(out, cell_id).records()]


class Executor(Protocol):
    """Runs a plan's jobs of one cluster kind. ``in_process``: its cells run in this process
    (they go first, as a sweep's local cells always have)."""

    in_process: bool

    def run(self, jobs: list[Job], plan: Plan, outcome: SweepRun,
            run_here: RunHere | None = None) -> None: ...


_EXECUTORS: dict[str, Callable[[], Executor]] = {}


def register_executor(kind: str, factory: Callable[[], Executor]) -> None:
    """One registration makes a cluster kind runnable (and valid in a cluster file's ``kind``)."""
    from energy_hpc.kinds import register_cluster_kind

    _EXECUTORS[kind] = factory
    register_cluster_kind(kind)


def executor_for(kind: str) -> Executor:
    if kind not in _EXECUTORS:
        raise UserError(f"cluster kind {kind!r} has no executor; known: {', '.join(sorted(_EXECUTORS))}")
    return _EXECUTORS[kind]()


def print_summary(records: list[dict[str, Any]] | Any, title: str) -> None:
    import pandas as pd

    from energy_hpc.analysis.summary import format_summary, left_out_reasons, summarize

    frame = records if isinstance(records, pd.DataFrame) else pd.DataFrame(records)
    if frame.empty:
        return
    summary = summarize(frame)
    print(f"\n{title}")
    print(format_summary(summary))
    left_out = int(summary.get("overlapping_left_out", pd.Series(dtype=int)).sum())
    if left_out:
        total = int(summary.get("accuracy_splits", summary["splits"]).sum())
        why = "; ".join(left_out_reasons(summary))
        why = why or "records: flags overlapping_window / node_shared_with_jobs"
        print(f"{left_out} of {total} split(s) left out of the energy figures (accuracy uses every "
              "split): their energy includes another's work on the host and could not be "
              f"attributed to the cell ({why}). To see them: python -m energy_hpc.report OUT_DIR "
              "--overlapping mark keeps them, marked; to measure them alone: rerun with "
              "force=true when the host is quiet (docs/measurement.md#isolation)")
    attributed = int(summary.get("attributed_splits", pd.Series(dtype=int)).sum())
    if attributed:
        print(f"{attributed} split(s) ran beside other work on the host: their energy is the part "
              "attributed to the cell (records: energy_wh_attributed, cpu_attribution; "
              "docs/measurement.md#isolation)")


def run_plan(plan: Plan, outcome: SweepRun | None = None,
             run_here: RunHere | None = None) -> SweepRun:
    """Run every job of the plan with its kind's executor (in-process kinds first); a Ctrl-C
    names the cells of this command that did not run."""
    from energy_hpc.interrupts import CellInterrupted

    outcome = outcome if outcome is not None else SweepRun()
    for cell in plan.complete:
        outcome.complete[cell.cell_id] = cell.out_dir
    executors = {kind: executor_for(kind) for kind in plan.kinds()}
    order = sorted(executors, key=lambda kind: not executors[kind].in_process)
    for n, kind in enumerate(order):
        try:
            executors[kind].run(plan.jobs_of(kind), plan, outcome, run_here)
        except CellInterrupted as exc:
            exc.not_run += _named([c for later in order[n + 1:] for job in plan.jobs_of(later)
                                   for c in job])
            raise
    return outcome


def _named(cells: list[Cell]) -> list[str]:
    return [f"{c.cell_id} ({c.label()})" for c in cells]


def _failure(plan: Plan, cell: Cell, exc: BaseException) -> str:
    origin = plan.origins.get(cell.cell_id)
    return f"{origin}: {exc}" if origin else str(exc)


class LocalExecutor:
    """Each cell in this process, one after another (``run_here`` may wrap each one)."""

    in_process = True

    def run(self, jobs: list[Job], plan: Plan, outcome: SweepRun,
            run_here: RunHere | None = None) -> None:
        from energy_hpc.interrupts import CellInterrupted

        cells = [cell for job in jobs for cell in job]
        for n, cell in enumerate(cells):
            def body(cell: Cell = cell) -> None:
                try:
                    run_cell_here(cell, outcome)
                except UserError as exc:
                    outcome.fail(_failure(plan, cell, exc))
            try:
                (run_here or (lambda _cell, fn: fn()))(cell, body)
            except CellInterrupted as exc:
                exc.not_run = _named(cells[n + 1:])
                raise


def run_cell_here(cell: Cell, outcome: SweepRun) -> None:
    """Measure one cell in this process; a cell another run holds is named, not measured twice."""
    from energy_hpc.runner import CellRunner

    settings = cell.settings
    for note in cell.notes:
        log.info("%s", note)
    runner = CellRunner(cell)
    records = runner.run()
    if runner.held_by is not None:
        outcome.held[cell.cell_id] = f"{cell.label()}: held by {runner.held_by}"
        print(f"cell {cell.cell_id} ({cell.label()}) is being measured by another run "
              f"({runner.held_by}); not measured by this command")
        return
    outcome.mark_ran([cell])
    print_summary(records, f"{settings.model.display_name} on {settings.dataset.name} "
                           f"({len(records)} splits; per pass over the test set; out: "
                           f"{cell.out_dir}/cells/{cell.cell_id})")


class SlurmExecutor:
    """One job array per shape through submitit; waits for the jobs unless ``wait=false``."""

    in_process = False

    def run(self, jobs: list[Job], plan: Plan, outcome: SweepRun,
            run_here: RunHere | None = None) -> None:
        from energy_hpc.launch.plan import by_shape
        from energy_hpc.launch.slurm import submit, wait

        cells = [cell for job in jobs for cell in job]
        if not cells:
            return
        first = cells[0].settings
        arrays = by_shape(jobs)
        try:
            submitted = submit(arrays, first.out_dir, first.sweep)
        except UserError as exc:
            outcome.fail(str(exc))
            return
        print(f"submitted {len(cells)} cell(s) as {len(submitted)} job(s) in {len(arrays)} "
              "array(s): " + ", ".join(str(job.job_id) for _, job in submitted))
        watch = f"python -m energy_hpc.status {first.out_dir} --sweep {first.sweep}"
        if not first.wait:
            print(f"not waiting; watch with: {watch}")
            return
        outcome.mark_ran(cells)
        try:
            failures = wait(submitted)
        except KeyboardInterrupt:
            ids = " ".join(str(job.job_id) for _, job in submitted)
            print(f"\nstopped waiting; the Slurm job(s) {ids} keep running. Watch with: {watch}; "
                  f"cancel with: scancel {ids}", file=sys.stderr)
            raise
        for line in failures:
            outcome.fail(line)


register_executor("local", LocalExecutor)
register_executor("slurm", SlurmExecutor)
