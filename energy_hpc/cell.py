"""One measurement, built once: the typed :class:`Cell` every path hands on unchanged.

The CLI's single run, the sweep launcher, submitit's pickle, the job on the allocation, the
runner and the records all take the same ``Cell``: its settings, the placement they resolve to,
the job shape sbatch is told, and the id. Nothing after :func:`make_cell` plans again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from energy_hpc.cluster.local_gpus import with_detected_gpus
from energy_hpc.cluster.placement import Placement, plan_placement
from energy_hpc.cluster.shape import JobShape, job_shape
from energy_hpc.config import Settings, settings_from_cfg, without_hydra

if TYPE_CHECKING:
    from energy_hpc.estimate.values import Estimate

# Version of the rule below. Cells recorded under rule 1 (before scheduling knobs were left out
# and the placement replaced the gpus/nodes requests) have other ids and are measured again.
CELL_ID_RULE = 2


def identity(settings: Settings, placement: Placement) -> dict[str, Any]:
    """Everything that defines the measurement: the basis of the cell id.

    Model, dataset and its sampling, the cluster's hardware facts, the energy settings,
    repetitions, seed, and the placement (GPUs per node, nodes) the requests resolve to, so
    ``gpus=auto`` and the explicit count it resolves to are one cell. Scheduling knobs and labels
    (time limit, account, qos, setup, env, descriptions, display names) are not in it.
    """
    return {**settings.measurement_dict(),
            "placement": {"nodes": placement.nodes, "gpus_per_node": placement.gpus_per_node}}


def cell_id_of(settings: Settings, placement: Placement) -> str:
    payload = json.dumps(identity(settings, placement), sort_keys=True, default=str)
    digest = hashlib.sha256(payload.encode()).hexdigest()[:12]
    return (f"{settings.model.name}-{settings.dataset.name}-{settings.cluster.name}"
            f"-g{placement.gpus}n{placement.nodes}-{digest}")


@dataclass(frozen=True)
class Cell:
    """One model x dataset x cluster x GPUs x nodes measurement, ready to plan, pickle and run."""

    settings: Settings
    placement: Placement
    shape: JobShape
    cell_id: str
    # Where the config came from when it was not the shipped tree (site config files), for the plan.
    notes: tuple[str, ...] = field(default=())
    # What it was expected to cost when planned (energy_hpc.estimate); its records keep it.
    estimate: Estimate | None = None

    @property
    def out_dir(self) -> str:
        return self.settings.out_dir

    @property
    def on_slurm(self) -> bool:
        return self.settings.cluster.kind == "slurm"

    def label(self) -> str:
        s = self.settings
        return f"{s.model.name} on {s.dataset.name} @ {s.cluster.name}"

    def with_notes(self, notes: tuple[str, ...]) -> Cell:
        return replace(self, notes=notes)

    def with_estimate(self, estimate: Estimate) -> Cell:
        return replace(self, estimate=estimate)


def make_cell(settings: Settings) -> Cell:
    """Detect a local cluster's GPUs, place the cell, derive its job shape and id (every check
    that can fail before submission happens here)."""
    settings = with_detected_gpus(settings)
    placement = plan_placement(settings)
    return Cell(settings=settings, placement=placement, shape=job_shape(settings, placement),
                cell_id=cell_id_of(settings, placement))


def cell_from_cfg(cfg: DictConfig | dict, choices: dict[str, str] | None = None) -> Cell:
    """The one route from a composed config (Hydra's ``hydra`` node dropped) to a :class:`Cell`."""
    plain = without_hydra(cfg) if isinstance(cfg, DictConfig) else {
        k: v for k, v in cfg.items() if k != "hydra"}
    return make_cell(settings_from_cfg(plain, choices))


def compose_cell(overrides: list[str] | tuple[str, ...] = ()) -> Cell:
    """Compose one cell from Hydra overrides without the CLI (notebooks, tests, benchmarks)."""
    from energy_hpc.config import compose_settings

    return make_cell(compose_settings(overrides))


__all__ = ["CELL_ID_RULE", "Cell", "cell_from_cfg", "cell_id_of", "compose_cell", "identity",
           "make_cell"]
