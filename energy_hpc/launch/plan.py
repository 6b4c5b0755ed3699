"""The Plan: a sweep's cells, each with its estimate, grouped into jobs, built once.

Dry runs print it (:meth:`Plan.show`), the estimate CSV writes it (:meth:`Plan.write_csv`),
executors run it (:mod:`energy_hpc.launch.executors`); nothing recomputes a part of it. A cell on
a cluster that runs here is a job of its own; Slurm cells are grouped by resource shape and packed
(``pack``) into jobs, each with its ``--time`` and why (``energy_hpc/launch/packing.py``).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from energy_hpc.errors import UserError

if TYPE_CHECKING:
    from energy_hpc.cell import Cell
    from energy_hpc.cluster.shape import JobShape


@dataclass(frozen=True)
class Job:
    """Cells that run one after another in one allocation (or, here, one cell), with the shape
    it asks for (None: this machine), its ``--time`` and why, and why these cells share it."""

    cells: tuple[Cell, ...]
    shape: JobShape | None = None
    time_min: int | None = None
    time_why: str = ""
    why: str = ""

    @property
    def kind(self) -> str:
        return self.cells[0].settings.cluster.kind

    def __iter__(self) -> Iterator[Cell]:
        return iter(self.cells)

    def __len__(self) -> int:
        return len(self.cells)

    def __getitem__(self, index: int) -> Cell:
        return self.cells[index]


@dataclass
class Plan:
    """Every cell (with its estimate) and every job, in the order they run; ``origins`` names a
    sweep's cells by their Hydra job (``job 3 (model=…)``) for failure lines."""

    cells: list[Cell]
    jobs: list[Job]
    origins: dict[str, str] = field(default_factory=dict)
    # Slurm cells whose records are complete (and force=false): never submitted, only counted
    complete: list[Cell] = field(default_factory=list)

    def kinds(self) -> list[str]:
        return list(dict.fromkeys(job.kind for job in self.jobs))

    def jobs_of(self, kind: str) -> list[Job]:
        return [job for job in self.jobs if job.kind == kind]

    def arrays(self) -> dict[JobShape, list[Job]]:
        """Slurm jobs by shape (its ``--time`` included): one job array each."""
        return by_shape(self.jobs)

    def job_times(self) -> dict[str, int]:
        return {cell.cell_id: job.time_min for job in self.jobs if job.time_min is not None
                for cell in job}

    def show(self) -> str:
        """What a dry run prints: where each cell would run and what it would cost, the Slurm
        job arrays with their flags, each job's ``--time`` and why, the sweep's total."""
        from energy_hpc.estimate import total
        from energy_hpc.launch.packing import time_warning

        lines: list[str] = []
        for job in self.jobs:
            if job.shape is not None:
                continue
            for cell in job:
                lines.append(f"runs here (cluster={cell.settings.cluster.name}): {cell.cell_id}: "
                             f"{cell.label()}; {cell.placement.describe()}")
                for line in (*cell.notes, cell.estimate.describe() if cell.estimate else None,
                             time_warning(cell)):
                    if line:
                        lines.append(f"      {line}")
        arrays = self.arrays()
        if arrays:
            lines.append(format_arrays(arrays))
        for cell in self.complete:
            lines.append(f"complete, will skip (force=true measures it again): {cell.cell_id}: "
                         f"{cell.label()}")
        done = {c.cell_id for c in self.complete}
        lines.append(total([c.estimate for c in self.cells
                            if c.estimate is not None and c.cell_id not in done]))
        return "\n".join(lines)

    def print_dry_run(self) -> None:
        """A dry run's output: the plan, and where the estimate CSV went when one was asked for."""
        print(self.show())
        if path := self.write_csv():
            print(f"estimates of {len(self.cells)} cell(s): {path}")

    def write_csv(self) -> str | None:
        """The estimate CSV (``estimate_csv``), when the cells ask for one; its path."""
        from energy_hpc.estimate import write_csv

        path = self.cells[0].settings.estimate_csv if self.cells else None
        if not path:
            return None
        try:
            return str(write_csv(path, self.cells, self.job_times()))
        except OSError as exc:
            raise UserError(f"estimate_csv={path}: cannot write it ({exc.strerror or exc})") from None


def by_shape(jobs: list[Job]) -> dict[JobShape, list[Job]]:
    """Jobs that ask for an allocation, grouped by their shape (``--time`` included), in order."""
    out: dict[JobShape, list[Job]] = defaultdict(list)
    for job in jobs:
        if job.shape is not None:
            out[job.shape].append(job)
    return dict(out)


def format_arrays(arrays: dict[JobShape, list[Job]]) -> str:
    """Per job array its sbatch flags, per job its ``--time`` and why, per cell its placement and
    (when it carries one) its estimate."""
    from energy_hpc.launch.packing import describe, time_warning

    lines = []
    for i, (shape, jobs) in enumerate(arrays.items()):
        lines.append(f"job array {i}: {describe([list(j) for j in jobs])}  "
                     f"sbatch {' '.join(shape.sbatch_args())}")
        if shape.exclusive_why:
            lines.append(f"    {'--exclusive' if shape.exclusive else 'shared node'}: "
                         f"{shape.exclusive_why}")
        for setup in shape.setup:
            lines.append(f"    setup: {setup}")
        if shape.secret_env:
            lines.append(f"    secret env (through sbatch's environment, in no file): "
                         f"{', '.join(shape.secret_env)}")
        for j, job in enumerate(jobs):
            lines.append(f"  job {j}: {len(job)} cell(s){', one after another' if len(job) > 1 else ''}"
                         f"; --time={shape.time_min} min: {job.time_why}")
            if job.why:
                lines.append(f"    packing: {job.why}")
            for cell in job:
                lines.append(f"  - {cell.cell_id}: {cell.label()}; {cell.placement.describe()}")
                lines.extend(f"      {note}" for note in cell.notes)
                if cell.estimate is not None:
                    lines.append(f"      {cell.estimate.describe()}")
                if warning := time_warning(cell):
                    lines.append(f"      {warning}")
    return "\n".join(lines)


def build_plan(cells: list[Cell], origins: dict[str, str] | None = None) -> Plan:
    """The plan of these (already placed) cells: each given its estimate once (from its
    out_dir's records), cells that run here one job each, Slurm cells grouped by shape, packed
    (a cell only ever with cells of its own shape) and timed; one job array per shape and time."""
    from energy_hpc.estimate import with_estimates
    from energy_hpc.launch.packing import job_time, pack_jobs

    cells = with_estimates(cells)
    jobs: list[Job] = [Job((cell,)) for cell in cells if not cell.on_slurm]
    complete = [cell for cell in cells if cell.on_slurm and _complete(cell)]
    done = {cell.cell_id for cell in complete}
    groups: dict[JobShape, list[Cell]] = defaultdict(list)
    for cell in cells:
        if cell.on_slurm and cell.cell_id not in done:
            groups[cell.shape].append(cell)
    for shape, group in groups.items():
        for packed in pack_jobs(group, group[0].settings.pack, shape.time_min):
            minutes, why = job_time(packed, shape.time_min, packed[0].settings.time_safety_factor)
            jobs.append(Job(tuple(packed), dataclasses.replace(shape, time_min=minutes), minutes,
                            why, packed.why))
    return Plan(cells, jobs, dict(origins or {}), complete)


def _complete(cell: Cell) -> bool:
    """A cell whose records are complete and that is not forced: submitting it would only start
    a job to skip it (a local cell is skipped by its runner, at no cost)."""
    from energy_hpc.results import CellStore

    if cell.settings.force:
        return False
    try:
        return CellStore(cell.out_dir, cell.cell_id).is_complete(cell.settings.repetitions)
    except (OSError, ValueError):
        return False
