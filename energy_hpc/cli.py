"""The Hydra entry point: compose → validate → run the cell here (local) or hand it to Slurm."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from energy_hpc.cell import Cell, cell_from_cfg
from energy_hpc.config import register_configs
from energy_hpc.errors import UserError

log = logging.getLogger("energy_hpc")

register_configs()

_failures: list[str] = []

# Cells the sweep launcher planned, by job number: the local job runs the very Cell it planned.
PLANNED: dict[int, Cell] = {}
# Cells this invocation ran (or waited for on Slurm): the sweep summary shows these and no others.
RAN: dict[str, str] = {}  # cell id -> out_dir
# Cells another run held (its lock): not measured by this invocation; the summary names them.
HELD: dict[str, str] = {}  # cell id -> "label: holder"


def record_ran(cells: list[Cell]) -> None:
    for cell in cells:
        RAN[cell.cell_id] = cell.out_dir


def record_failure(line: str) -> None:
    """A cell that failed inside a sweep; the sweep goes on, lists every failure once at the end
    and exits non-zero."""
    log.debug("cell failed: %s", line)
    _failures.append(line)


def print_summary(records: list[dict[str, Any]] | Any, title: str) -> None:
    import pandas as pd

    from energy_hpc.analysis.summary import format_summary, summarize

    frame = records if isinstance(records, pd.DataFrame) else pd.DataFrame(records)
    if frame.empty:
        return
    summary = summarize(frame)
    print(f"\n{title}")
    print(format_summary(summary))
    left_out = int(summary.get("overlapping_left_out", pd.Series(dtype=int)).sum())
    if left_out:
        print(f"{left_out} split(s) left out of these figures: measured while another measurement "
              "(or another Slurm job on the node) ran on the same host, so their energy includes "
              "its work (records: flags overlapping_window / node_shared_with_jobs, "
              "overlapped_with; docs/measurement.md#isolation)")


def show_plan(cells: list[Cell]) -> None:
    """``dry_run=true``: where each cell would run and what it would cost, the Slurm jobs with
    their ``--time``, the total; the CSV when ``estimate_csv`` is set. Nothing runs or is submitted."""
    from energy_hpc.errors import UserError
    from energy_hpc.estimate import total, with_estimates, write_csv

    if not cells:
        return
    cells = with_estimates(cells)
    for cell in (c for c in cells if not c.on_slurm):
        print(f"runs here (cluster={cell.settings.cluster.name}): {cell.cell_id}: {cell.label()}; "
              f"{cell.placement.describe()}")
        from energy_hpc.cluster.packing import time_warning

        for line in (*cell.notes, cell.estimate.describe() if cell.estimate else None,
                     time_warning(cell)):
            if line:
                print(f"      {line}")
    job_times: dict[str, int] = {}
    slurm = [c for c in cells if c.on_slurm]
    if slurm:
        from energy_hpc.cluster.slurm import format_plan, plan

        groups = plan(slurm)
        print(format_plan(groups))
        job_times = {c.cell_id: shape.time_min for shape, jobs in groups.items() for job in jobs
                     for c in job}
    print(total([c.estimate for c in cells if c.estimate is not None]))
    path = cells[0].settings.estimate_csv
    if path:
        try:
            print(f"estimates of {len(cells)} cell(s): {write_csv(path, cells, job_times)}")
        except OSError as exc:
            raise UserError(f"estimate_csv={path}: cannot write it ({exc.strerror or exc})") from None


def run(cell: Cell) -> None:
    """Run one cell: in this process on a local cluster, as a Slurm job (the sweep's route) on Slurm."""
    settings = cell.settings
    for note in cell.notes:
        log.info("%s", note)
    if settings.dry_run:
        show_plan([cell])
        return
    if cell.on_slurm:
        from energy_hpc.cluster.slurm import submit_one
        from energy_hpc.results import CellStore

        submit_one(cell)
        if settings.wait:
            record_ran([cell])
            print_summary(CellStore(cell.out_dir, cell.cell_id).records(),
                          f"{settings.model.display_name} on {settings.dataset.name} @ "
                          f"{settings.cluster.name} (Slurm)")
        return
    from energy_hpc.runner import CellRunner

    runner = CellRunner(cell)
    records = runner.run()
    if runner.held_by is not None:
        HELD[cell.cell_id] = f"{cell.label()}: held by {runner.held_by}"
        print(f"cell {cell.cell_id} ({cell.label()}) is being measured by another run "
              f"({runner.held_by}); not measured by this command")
        return
    record_ran([cell])
    print_summary(records, f"{settings.model.display_name} on {settings.dataset.name} "
                           f"({len(records)} splits; per pass over the test set; out: "
                           f"{cell.out_dir}/cells/{cell.cell_id})")


@hydra.main(version_base="1.3", config_path="pkg://energy_hpc.hydra_conf", config_name="config")
def hydra_task(cfg: DictConfig) -> None:
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    try:
        cell = PLANNED.pop(hc.job.num, None) if multirun else None
        if cell is None:
            from energy_hpc.site_configs import site_folders, site_notes

            choices = dict(hc.runtime.choices)
            cell = cell_from_cfg(cfg, choices).with_notes(
                site_notes(choices, site_folders().folders))
        run(cell)
    except UserError as exc:
        if not multirun:
            print(f"energy_hpc: error: {exc}", file=sys.stderr)
            sys.exit(2)
        from energy_hpc.config import redact_text

        record_failure(redact_text(f"job {hc.job.num} ({' '.join(hc.overrides.task)}): {exc}"))


def save_redacted(node: Any, path: Path) -> None:
    """A config node (or override list) saved as YAML with every secret value redacted."""
    from omegaconf import OmegaConf

    from energy_hpc.config import redact_tree

    plain = OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else node
    path.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(redact_tree(plain)), path)


class RedactedHydraFiles(Callback):
    """Hydra's ``.hydra/config.yaml``, ``hydra.yaml`` and ``overrides.yaml`` (Hydra's own writing
    is off: ``hydra.output_subdir: null``), with secret values redacted: a cluster file's
    ``env: {HF_TOKEN: …}`` or a ``+cluster.env.HF_TOKEN=…`` override reaches no file."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        from omegaconf import OmegaConf, open_dict

        folder = Path(str(config.hydra.runtime.output_dir)) / ".hydra"
        task = OmegaConf.create(OmegaConf.to_container(config, resolve=False))
        with open_dict(task):
            del task["hydra"]
        save_redacted(task, folder / "config.yaml")
        save_redacted(OmegaConf.create({"hydra": config.hydra}), folder / "hydra.yaml")
        save_redacted(config.hydra.overrides.task, folder / "overrides.yaml")


class OutDirCheck(Callback):
    """Before Hydra makes its run folder under ``out_dir``: one line and exit 2 when results could
    not be written there (read-only, immutable, full), instead of tracebacks after the work."""

    def _check(self, config: DictConfig) -> None:
        from energy_hpc.results import check_writable

        try:
            check_writable(str(config.out_dir))
        except UserError as exc:
            print(f"energy_hpc: error: {exc}", file=sys.stderr)
            sys.exit(2)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)


class SweepSummaryCallback(Callback):
    """After a multirun: one table over the cells this invocation ran (a dry run, or a sweep whose
    submission failed, shows none), and a non-zero exit if any cell failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from energy_hpc.results import CellStore

        out_dir, sweep = config.out_dir, config.sweep
        records = [r for cell_id, cell_out in RAN.items()
                   for r in CellStore(cell_out, cell_id).records()]
        if records:
            print_summary(records, f"sweep {sweep!r}: {len(RAN)} cell(s) run by this command; "
                                   f"per pass over the test set; records under {out_dir}/cells/")
        elif config.get("dry_run"):
            print("\ndry run: nothing was measured or submitted")
        if HELD:
            print(f"\n{len(HELD)} cell(s) not measured by this command: another run holds them "
                  "(their records appear when it finishes):")
            for cell_id, what in HELD.items():
                print(f"  {cell_id} ({what})")
        if _failures:
            print(f"\n{len(_failures)} cell(s) failed:", file=sys.stderr)
            for failure in _failures:
                print(f"  {failure}", file=sys.stderr)
            sys.exit(2)


def unquoted_non_ascii(arg: str) -> bool:
    """Whether an override has a non-ASCII character outside quotes (Hydra's lexer refuses it)."""
    if "=" not in arg or arg.startswith("-"):
        return False
    quote = None
    for ch in arg.split("=", 1)[1]:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ord(ch) > 127:
            return True
    return False


def _report_interrupt(exc: BaseException) -> None:
    """One line (and the cells not run) for Ctrl-C / SIGTERM, then exit 130 / 143."""
    from energy_hpc.interrupts import CellInterrupted, as_interrupted

    sys.stdout.flush()
    if isinstance(exc, CellInterrupted):
        lines = exc.lines()
    else:
        lines = [f"interrupted ({as_interrupted(exc).name}) while no split was being measured; "
                 "recorded splits are kept; rerun the same command to resume"]
    print("\n" + "\n".join(f"energy_hpc: {line}" if not line.startswith(" ") else line
                            for line in lines), file=sys.stderr)
    sys.exit(as_interrupted(exc).exit_code)


def check_override_keys(args: list[str]) -> str | None:
    """An override of an unknown top-level option (``repetition=1``, ``+repetition=1``,
    ``modle.name=x``), refused before Hydra: with ``+`` Hydra would add it and run unchanged."""
    from energy_hpc.config import unknown_top_level_key

    for arg in args:
        if arg.startswith("-") or ("=" not in arg and not arg.startswith("~")):
            continue
        key = arg.split("=", 1)[0].lstrip("+~")
        if "/" in key or "@" in key or not key:
            continue
        if problem := unknown_top_level_key(key.split(".", 1)[0]):
            return f"{arg}: {problem}"
    return None


def check_site_yaml(args: list[str]) -> str | None:
    """A site file that is not valid YAML: one line with its file, line, column and what the
    parser expected, when the command uses it (a warning when it does not)."""
    from energy_hpc.site_configs import broken_site_files, site_folders

    chosen = {group: {option} for group, option in shipped_defaults().items()}
    for arg in args:
        key, sep, value = arg.lstrip("+").partition("=")
        if sep and key in chosen:
            chosen[key] = {v.strip() for v in value.split(",")}
    for group, option, message in broken_site_files(site_folders().folders):
        if option in chosen.get(group, ()):
            return message
        log.warning("%s (not used by this command)", message)
    return None


def shipped_defaults() -> dict[str, str]:
    """The group options the shipped config.yaml chooses when a command names none."""
    import yaml

    from energy_hpc.site_configs import GROUPS, shipped_folder

    tree = yaml.safe_load((shipped_folder() / "config.yaml").read_text())
    return {k: str(v) for entry in tree.get("defaults", []) if isinstance(entry, dict)
            for k, v in entry.items() if k in GROUPS}


def main() -> None:
    from energy_hpc.interrupts import signals_interrupt
    from energy_hpc.kinds import load_plugins

    try:
        if load_plugins():  # their kinds' fields join the schema
            register_configs()
    except UserError as exc:
        print(f"energy_hpc: error: {exc}", file=sys.stderr)
        sys.exit(2)

    for check in (check_override_keys, check_site_yaml):
        if problem := check(sys.argv[1:]):
            print(f"energy_hpc: error: {problem}", file=sys.stderr)
            sys.exit(2)
    for arg in sys.argv[1:]:
        if unquoted_non_ascii(arg):
            key, value = arg.split("=", 1)
            print(f"energy_hpc: error: {arg}: Hydra's override parser reads non-ASCII characters "
                  f"only inside quotes; write {key}=\"'{value}'\" (the outer quotes are for "
                  "the shell)", file=sys.stderr)
            sys.exit(2)
    try:
        with signals_interrupt():
            hydra_task()
    except KeyboardInterrupt as exc:
        _report_interrupt(exc)
