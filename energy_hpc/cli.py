"""The Hydra entry point: compose → validate → run the cell here (local) or hand it to Slurm."""

from __future__ import annotations

import logging
import sys
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from energy_hpc.cluster.local_gpus import with_detected_gpus
from energy_hpc.config import Settings, register_configs, settings_from_cfg
from energy_hpc.errors import UserError

log = logging.getLogger("energy_hpc")

register_configs()

_failures: list[str] = []


def record_failure(line: str) -> None:
    """A cell that failed inside a sweep; the sweep goes on and exits non-zero at the end."""
    print(f"energy_hpc: error: {line}", file=sys.stderr)
    _failures.append(line)


def print_summary(records: list[dict[str, Any]] | Any, title: str) -> None:
    import pandas as pd

    from energy_hpc.analysis.summary import format_summary, summarize

    frame = records if isinstance(records, pd.DataFrame) else pd.DataFrame(records)
    if frame.empty:
        return
    print(f"\n{title}")
    print(format_summary(summarize(frame)))


def run_settings(settings: Settings) -> None:
    if settings.cluster.kind == "slurm":
        from energy_hpc.cluster.slurm import submit_one
        from energy_hpc.results import CellStore

        submit_one(settings)
        if settings.wait and not settings.dry_run:
            print_summary(CellStore(settings.out_dir, settings.cell_id).records(),
                          f"{settings.model.display_name} on {settings.dataset.name} @ "
                          f"{settings.cluster.name} (Slurm)")
        return
    from energy_hpc.runner import run_cell

    records = run_cell(settings)
    print_summary(records, f"{settings.model.display_name} on {settings.dataset.name} "
                           f"({len(records)} splits; per pass over the test set; out: "
                           f"{settings.out_dir}/cells/{settings.cell_id})")


@hydra.main(version_base="1.3", config_path="hydra_conf", config_name="config")
def hydra_task(cfg: DictConfig) -> None:
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    try:
        settings = with_detected_gpus(settings_from_cfg(cfg, dict(hc.runtime.choices)))
        run_settings(settings)
    except UserError as exc:
        if not multirun:
            print(f"energy_hpc: error: {exc}", file=sys.stderr)
            sys.exit(2)
        record_failure(f"job {hc.job.num} ({' '.join(hc.overrides.task)}): {exc}")


class SweepSummaryCallback(Callback):
    """After a multirun: one table over every cell of the sweep, and a non-zero exit if any failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from energy_hpc.results import load, read_sweep_manifest

        out_dir, sweep = config.out_dir, config.sweep
        cells = {e["cell_id"] for e in read_sweep_manifest(out_dir, sweep)}
        if cells:
            frame = load(out_dir)
            if not frame.empty:
                frame = frame[frame["cell_id"].isin(cells)]
                print_summary(frame, f"sweep {sweep!r}: {frame['cell_id'].nunique()} cell(s), "
                                     f"records under {out_dir}/cells/")
        if _failures:
            print(f"\n{len(_failures)} cell(s) failed:", file=sys.stderr)
            for failure in _failures:
                print(f"  {failure}", file=sys.stderr)
            sys.exit(2)


def main() -> None:
    hydra_task()
