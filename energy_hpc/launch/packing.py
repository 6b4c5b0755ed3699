"""Packing: which cells of one resource shape share a Slurm job.

A job pays Python start, imports, CodeCarbon's first start, the dataset's loading and splitting,
a multi-node shape's Ray cluster and an LLM's load once for all its cells; each cell still gets
its own records, meta, measured windows and idle baseline. ``pack=N`` puts N cells in a job;
``pack=auto`` fills each job up to a share of the cluster's time limit by each cell's estimated
run time: the time the same cell took before (its meta.json), else the estimate of
``energy_hpc/estimate`` (records, first principles, or its rule of thumb for traditional models),
else (nothing estimates it: an LLM on a cluster without datasheet facts) the generous fallback
:func:`energy_hpc.estimate.rough.rule_of_thumb_s`.

Each job then asks Slurm for ``--time`` = its cells' estimated time x ``time_safety_factor``,
rounded up to whole ``TIME_STEP_MIN`` minutes and never above the cluster's ``time_limit_min``
(:func:`job_time`); a job with a cell nobody can estimate asks for the time limit.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from energy_hpc.cell import Cell

log = logging.getLogger(__name__)

TIME_SHARE = 0.8  # of time_limit_min a packed job may fill: room for start-up and a slow node
STARTUP_S = 20.0  # Python start, imports, CodeCarbon's first start, per cell a little bookkeeping
RAY_STARTUP_S = 60.0  # a multi-node job brings a Ray cluster up first
TIME_STEP_MIN = 5  # --time is rounded up to this (and is at least this): backfill needs no finer


def known_s(cell: Cell) -> float | None:
    """Estimated run time of one cell inside a job: the time it took before, else the high end
    of its estimate (the one it carries, else one made here without records) but never less than
    its recorded splits' wall time scaled to every split; None when nothing can estimate it."""
    from energy_hpc.results import CellStore

    store = CellStore(cell.out_dir, cell.cell_id)
    own = store.took_s()
    if own is not None:
        return own
    guess = cell.estimate
    if guess is None:
        from energy_hpc.estimate import estimate

        guess = estimate(cell)
    high = guess.wall_s[1] if guess.wall_s is not None else None
    # an earlier run that stopped (killed at its --time, say): its splits' own wall time for
    # every split, so a --time is never below what this cell was seen to need
    partial = store.split_wall_s()
    if partial is not None:
        seen = partial * cell.settings.repetitions
        return max(seen, high) if high is not None else seen
    return high


def estimate_s(cell: Cell) -> float:
    """What ``pack=auto`` fills jobs by: :func:`known_s`, else the rule of thumb."""
    known = known_s(cell)
    from energy_hpc.estimate.rough import rule_of_thumb_s

    return known if known is not None else rule_of_thumb_s(cell)


def job_time(cells: list[Cell], limit_min: int, factor: float | None) -> tuple[int, str]:
    """A job's ``--time`` in minutes and why: its cells' estimated time (plus start-up, and Ray
    for a multi-node job) x ``factor``, rounded up to ``TIME_STEP_MIN``, capped at ``limit_min``."""
    if factor is None:
        return limit_min, "the cluster's time_limit_min (time_safety_factor=null)"
    times = [known_s(cell) for cell in cells]
    unknown = sum(t is None for t in times)
    if unknown:
        return limit_min, f"the cluster's time_limit_min ({unknown} cell(s) without an estimate)"
    overhead = STARTUP_S + (RAY_STARTUP_S if cells[0].placement.nodes > 1 else 0.0)
    need = overhead + sum(t for t in times if t is not None)
    wanted = need * factor / 60
    minutes = max(TIME_STEP_MIN, math.ceil(wanted / TIME_STEP_MIN) * TIME_STEP_MIN)
    said = (f"estimate {need / 60:.3g} min (the cells' {(need - overhead) / 60:.3g} min + the "
            f"job's {overhead:.0f} s start-up{' and Ray' if overhead > STARTUP_S else ''}) "
            f"x {factor:g} = {wanted:.3g} min")
    if wanted >= limit_min:
        return limit_min, f"the cluster's time_limit_min ({said} would exceed it)"
    if minutes >= limit_min:
        return limit_min, (f"the cluster's time_limit_min ({said}; rounded up to whole "
                           f"{TIME_STEP_MIN} min it would be {minutes} min, past the limit)")
    return minutes, f"{said}, rounded up to a multiple of {TIME_STEP_MIN} min"


MAX_REQUEUES = 3  # submitit's max_num_timeout in slurm._executor: a job runs at most 4 times
LONG_LOCAL_S = 24 * 3600  # a local cell estimated to run longer than a day is said so


def _duration(seconds: float) -> str:
    for unit, size in (("years", 365 * 86400), ("days", 86400), ("h", 3600)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds / 60:.3g} min"


def time_warning(cell: Cell) -> str | None:
    """A plan's warning when even the low end of a cell's estimate does not fit the time it can
    get: a Slurm job's time limit with its requeues, or a day on this machine."""
    guess = cell.estimate
    if guess is None or guess.wall_s is None:
        return None
    low = guess.wall_s[0]
    if not cell.on_slurm:
        if low > LONG_LOCAL_S:
            return (f"WARNING: estimated to run here for at least {_duration(low)}; lower "
                    "repetitions (or dataset.n_test) or run it on a cluster")
        return None
    limit_s = cell.settings.cluster.time_limit_min * 60
    if low > limit_s * (1 + MAX_REQUEUES):
        return (f"WARNING: cannot finish: even the low estimate ({_duration(low)}) exceeds the "
                f"cluster's time_limit_min={cell.settings.cluster.time_limit_min} with "
                f"{MAX_REQUEUES} requeues; lower repetitions or split the sweep")
    if low > limit_s * TIME_SHARE:
        return (f"note: the low estimate ({_duration(low)}) exceeds one job's time limit "
                f"({cell.settings.cluster.time_limit_min} min); the job is requeued (at most "
                f"{MAX_REQUEUES} times) and resumes at the first unrecorded split")
    return None


class PackedJob(list):
    """The cells of one Slurm job, in order, and why the plan made this job (a dry run says it)."""

    def __init__(self, cells: Iterable[Cell] = (), why: str = "") -> None:
        super().__init__(cells)
        self.why = why


def engine_of(cell: Cell) -> tuple | None:
    """What a loaded LLM engine is (cells of one shape with equal ones share one load in a job);
    None for models without an engine to share."""
    return cell.settings.model.engine_identity()


def pack_jobs(cells: list[Cell], pack: int | str, time_limit_min: int) -> list[PackedJob]:
    """Split one shape's cells into jobs, keeping their order; ``pack=auto`` first gives each
    cell its estimate (from the out_dir's records, once; a cell carrying one keeps it).

    ``pack=auto`` fills a job up to ``TIME_SHARE`` of the time limit by estimate; an LLM cell
    that nothing estimates joins the job of the cell before it when both can share one loaded
    engine (the one-load design; its rule of thumb is no estimate that it does not fit)."""
    if pack != "auto":
        size = int(pack)
        return [PackedJob(cells[i:i + size], f"pack={size}: up to {size} cell(s) per job")
                for i in range(0, len(cells), size)]
    from energy_hpc.estimate import with_estimates

    budget = time_limit_min * 60 * TIME_SHARE - STARTUP_S
    jobs: list[PackedJob] = []
    used = 0.0
    for cell in with_estimates(cells):
        need = estimate_s(cell)
        engine = engine_of(cell)
        if jobs and engine is not None and engine == engine_of(jobs[-1][-1]) \
                and known_s(cell) is None:
            jobs[-1].append(cell)
            jobs[-1].why = (f"{len(jobs[-1])} cells that share one loaded engine "
                            f"({cell.settings.model.display_name}); nothing estimates them, so they are "
                            "not split by time")
            used += max(need - cell.settings.model.rough_seconds().load_s, 0.0)
            continue
        if not jobs or used + need > budget:
            if not jobs:
                why = (f"cells packed by estimate up to {TIME_SHARE:.0%} of the "
                       f"{time_limit_min} min time limit")
            else:
                why = (f"a new job: {cell.cell_id} ({need / 60:.3g} min by estimate) would take "
                       f"the previous job past {TIME_SHARE:.0%} of the {time_limit_min} min "
                       f"time limit ({used / 60:.3g} min used)")
            jobs.append(PackedJob(why=why))
            used = 0.0
        jobs[-1].append(cell)
        used += need
    return jobs


def describe(jobs: Iterable[list[Cell]]) -> str:
    sizes = [len(job) for job in jobs]
    return f"{sum(sizes)} cell(s) in {len(sizes)} job(s)" + (
        f" (up to {max(sizes)} per job)" if sizes and max(sizes) > 1 else "")
