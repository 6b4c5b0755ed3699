"""The energy_hpc Hydra launcher.

hydra-submitit-launcher builds one executor for the whole sweep, so every job gets the same
allocation. Here each cell's config is composed first, its own resources are derived from it,
cells are grouped by resource shape and each group is submitted as one job array. Cells on a
``local`` cluster run in this process, as Hydra's basic launcher would.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)


# A plain mapping, not a dataclass: Hydra's plugin scan imports this module outside sys.modules.
ConfigStore.instance().store(
    group="hydra/launcher", name="energy_hpc", provider="energy_hpc",
    node={"_target_": "hydra_plugins.energy_hpc_launcher.launcher.EnergyHpcLauncher"},
)


class EnergyHpcLauncher(Launcher):
    def __init__(self, **params: Any) -> None:
        self.params = params
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def _settings(self, sweep_config: DictConfig) -> Any:
        from energy_hpc.cluster.local_gpus import with_detected_gpus
        from energy_hpc.config import settings_from_cfg

        choices = {k: v for k, v in sweep_config.hydra.runtime.choices.items()
                   if not k.startswith("hydra")}
        plain = OmegaConf.to_container(sweep_config, resolve=False)
        assert isinstance(plain, dict)
        plain.pop("hydra", None)
        return with_detected_gpus(settings_from_cfg(
            OmegaConf.to_container(OmegaConf.create(plain), resolve=True), choices))

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from energy_hpc.cli import record_failure
        from energy_hpc.cluster.slurm import submit_cells
        from energy_hpc.errors import UserError

        setup_globals()
        assert self.config is not None and self.hydra_context is not None and self.task_function
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        runs: list[JobReturn] = []
        slurm_cells = []
        for offset, overrides in enumerate(job_overrides):
            idx = initial_job_idx + offset
            sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = idx
                sweep_config.hydra.job.num = idx
            label = " ".join(filter_overrides(overrides))
            if sweep_config.cluster.get("kind") != "slurm":
                log.info("\t#%d (here): %s", idx, label)
                runs.append(run_job(hydra_context=self.hydra_context, task_function=self.task_function,
                                    config=sweep_config, job_dir_key="hydra.sweep.dir",
                                    job_subdir_key="hydra.sweep.subdir"))
                configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
                continue
            ret = JobReturn(overrides=list(overrides), cfg=sweep_config, hydra_cfg=self.config,
                            status=JobStatus.COMPLETED, working_dir=str(self.config.hydra.sweep.dir))
            try:
                slurm_cells.append(self._settings(sweep_config))
                log.info("\t#%d (Slurm): %s", idx, label)
                ret.return_value = slurm_cells[-1].cell_id
            except UserError as exc:
                record_failure(f"job {idx} ({label}): {exc}")
                ret.return_value = None
            runs.append(ret)
        if slurm_cells:
            try:
                for failure in submit_cells(slurm_cells):
                    record_failure(failure)
            except UserError as exc:
                record_failure(str(exc))
        return runs
