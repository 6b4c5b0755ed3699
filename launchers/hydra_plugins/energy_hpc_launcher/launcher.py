"""The energy_hpc Hydra launcher and sweeper.

hydra-submitit-launcher builds one executor for the whole sweep, so every job gets the same
allocation. Here every cell of the sweep is planned first (composed fast, built into a typed
``Cell`` once, duplicates dropped), then Slurm cells are grouped by resource shape and each group
is submitted as one job array; cells on a ``local`` cluster run in this process, as Hydra's basic
launcher would. The sweeper is Hydra's basic one without its up-front composition of every cell
(the launcher's planning checks each cell, at a fraction of the cost).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra.errors import HydraException
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)


# Plain mappings, not dataclasses: Hydra's plugin scan imports this module outside sys.modules.
ConfigStore.instance().store(
    group="hydra/launcher", name="energy_hpc", provider="energy_hpc",
    node={"_target_": "hydra_plugins.energy_hpc_launcher.launcher.EnergyHpcLauncher"},
)
ConfigStore.instance().store(
    group="hydra/sweeper", name="energy_hpc", provider="energy_hpc",
    node={"_target_": "hydra_plugins.energy_hpc_launcher.launcher.EnergyHpcSweeper",
          "max_batch_size": None, "params": None},
)


class EnergyHpcSweeper(BasicSweeper):
    """Hydra's basic sweeper, minus composing every cell to validate the batch: the launcher plans
    (and so validates) every cell before anything runs or is submitted; and its ``multirun.yaml``
    is written with secret values redacted."""

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        return None

    def sweep(self, arguments: list[str]) -> Any:
        """BasicSweeper.sweep (Hydra 1.3), saving ``multirun.yaml`` through
        :func:`energy_hpc.cli.save_redacted`."""
        from hydra.core.override_parser.overrides_parser import OverridesParser

        from energy_hpc.cli import save_redacted

        assert self.config is not None and self.launcher is not None and self.hydra_context
        params_conf = self._parse_config()
        params_conf.extend(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        self.overrides = self.split_arguments(parser.parse_overrides(params_conf),
                                              self.max_batch_size)
        save_redacted(self.config, Path(self.config.hydra.sweep.dir) / "multirun.yaml")
        returns: list[Sequence[JobReturn]] = []
        initial_job_idx = 0
        while not self.is_done():
            batch = self.get_job_batch()
            results = self.launcher.launch(batch, initial_job_idx=initial_job_idx)
            for r in results:
                _ = r.return_value  # raises where a job failed
            initial_job_idx += len(batch)
            returns.append(results)
        from energy_hpc.cli import print_sweep_summary

        print_sweep_summary(self.launcher.outcome, str(self.config.out_dir),
                            str(self.config.sweep), bool(self.config.get("dry_run")))
        return returns


class EnergyHpcLauncher(Launcher):
    """Plans every cell of a batch (:func:`plan_sweep`), builds one
    :class:`~energy_hpc.launch.plan.Plan` of them, and shows it (``dry_run``) or runs it with each
    cluster kind's executor; what ran accumulates in ``outcome`` for the sweep's summary."""

    def __init__(self, **params: Any) -> None:
        from energy_hpc.launch.executors import SweepRun

        self.params = params
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None
        self.outcome = SweepRun()

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from energy_hpc.config import redact_text
        from energy_hpc.errors import UserError
        from energy_hpc.launch.executors import run_plan
        from energy_hpc.launch.plan import build_plan

        setup_globals()
        assert self.config is not None and self.hydra_context is not None and self.task_function
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)

        planned = plan_sweep(self.hydra_context.config_loader, self.config, job_overrides,
                             initial_job_idx)
        for failure in planned.failures:
            self.outcome.fail(failure)
        self.outcome.skipped += planned.duplicates
        if planned.duplicates:
            print(f"{len(planned.duplicates)} duplicate cell(s) planned and run once:")
            for line in planned.duplicates:
                print(f"  {line}")
        jobs = {cell.cell_id: (idx, ov) for idx, ov, cell in planned.cells}
        origins = {cell.cell_id: f"job {idx} ({redact_text(' '.join(filter_overrides(ov)))})"
                   for idx, ov, cell in planned.cells}
        plan = build_plan([cell for _, _, cell in planned.cells], origins)
        runs: list[JobReturn] = []
        if self.config.get("dry_run"):
            try:
                if plan.cells:
                    plan.print_dry_run()
            except UserError as exc:
                self.outcome.fail(str(exc))
        else:
            def run_here(cell: Any, body: Any) -> None:
                """A cell run here inside Hydra's job: its folder, its logging, the callbacks."""
                idx, overrides = jobs[cell.cell_id]
                log.info("\t#%d (here): %s", idx, redact_text(" ".join(filter_overrides(overrides))))
                sweep_config = self.hydra_context.config_loader.load_sweep_config(
                    self.config, list(overrides))
                with open_dict(sweep_config):
                    sweep_config.hydra.job.id = idx
                    sweep_config.hydra.job.num = idx
                runs.append(run_job(hydra_context=self.hydra_context,
                                    task_function=lambda _cfg: body(), config=sweep_config,
                                    job_dir_key="hydra.sweep.dir",
                                    job_subdir_key="hydra.sweep.subdir"))
                configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)

            run_plan(plan, self.outcome, run_here)
        if not runs:  # Hydra's sweeper expects a return per batch; the cells' own state is on disk
            runs.append(JobReturn(overrides=[], cfg=self.config, hydra_cfg=self.config,
                                  status=JobStatus.COMPLETED, working_dir=str(self.config.hydra.sweep.dir)))
        return runs


class SweepPlan:
    def __init__(self) -> None:
        self.cells: list[tuple[int, Sequence[str], Any]] = []  # (job index, overrides, Cell)
        self.failures: list[str] = []
        self.duplicates: list[str] = []


def plan_sweep(config_loader: Any, master: DictConfig, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int = 0) -> SweepPlan:
    """Every cell of the sweep as a :class:`~energy_hpc.cell.Cell`, built once; a cell whose id
    an earlier one has is planned once; a cell that does not validate is a failure line."""
    from hydra_plugins.energy_hpc_launcher.planning import SweepComposer

    from energy_hpc.cell import cell_from_cfg
    from energy_hpc.config import redact_text
    from energy_hpc.errors import UserError
    from energy_hpc.site_configs import site_folders, site_notes

    composer = SweepComposer(config_loader, master)
    folders = site_folders().folders
    plan = SweepPlan()
    seen: dict[str, tuple[int, str]] = {}
    for offset, overrides in enumerate(job_overrides):
        idx = initial_job_idx + offset
        label = redact_text(" ".join(filter_overrides(overrides))) or "(no overrides)"
        try:
            cfg, choices = composer.compose(overrides)
            cell = cell_from_cfg(cfg, choices)
        except UserError as exc:
            plan.failures.append(f"job {idx} ({label}): {exc}")
            continue
        except HydraException as exc:  # e.g. an unknown group option: keep Hydra's list of options
            said = str(exc).strip().split("\nConfig search path")[0]
            first, *rest = [ln.strip() for ln in said.splitlines() if ln.strip()]
            if rest and rest[0].endswith(":"):  # "Available options in 'model':" and the options
                first += f"; {rest[0]} {', '.join(rest[1:])}"
            plan.failures.append(f"job {idx} ({label}): {first}")
            continue
        if cell.cell_id in seen:
            first_idx, first_label = seen[cell.cell_id]
            plan.duplicates.append(f"#{idx} ({label}) is the same cell as #{first_idx} "
                                   f"({first_label}): {cell.cell_id}")
            continue
        seen[cell.cell_id] = (idx, label)
        plan.cells.append((idx, overrides, cell.with_notes(site_notes(choices, folders))))
    log.debug("planned %d cell(s) with %d composition(s)", len(plan.cells), composer.compositions)
    if not plan.cells and plan.failures:
        print(f"energy_hpc: no cell of the sweep validates ({len(plan.failures)} failed)",
              file=sys.stderr)
    return plan
