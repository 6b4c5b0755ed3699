"""The Hydra entry point: compose → validate → run the cell here (local) or hand it to Slurm."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from energy_hpc.cell import Cell, cell_from_cfg
from energy_hpc.config import register_configs
from energy_hpc.errors import UserError

log = logging.getLogger("energy_hpc")

register_configs()


def run(cell: Cell) -> None:
    """One cell, as every sweep runs its cells: build the plan; show it (``dry_run``) or run it
    with the cluster kind's executor. A failure is one line and exit 2."""
    from energy_hpc.launch.executors import print_summary, run_plan
    from energy_hpc.launch.plan import build_plan

    settings = cell.settings
    plan = build_plan([cell])
    if settings.dry_run or cell.on_slurm:  # a cell measured here logs its notes as it runs
        for note in cell.notes:
            log.info("%s", note)
    if settings.dry_run:
        plan.print_dry_run()
        return
    outcome = run_plan(plan)
    if outcome.failed:
        raise UserError("; ".join(outcome.failed))
    if cell.on_slurm and (cell.cell_id in outcome.ran or cell.cell_id in outcome.complete):
        from energy_hpc.results import CellStore

        how = ("complete from an earlier run: skipped, not submitted; force=true measures again"
               if cell.cell_id in outcome.complete else "Slurm")
        print_summary(CellStore(cell.out_dir, cell.cell_id).records(),
                      f"{settings.model.display_name} on {settings.dataset.name} @ "
                      f"{settings.cluster.name} ({how})")


@hydra.main(version_base="1.3", config_path="pkg://energy_hpc.hydra_conf", config_name="config")
def hydra_task(cfg: DictConfig) -> None:
    """A single run (a sweep's cells are run by energy_hpc's launcher from its plan)."""
    from energy_hpc.site_configs import site_folders, site_notes

    try:
        choices = dict(HydraConfig.get().runtime.choices)
        run(cell_from_cfg(cfg, choices).with_notes(site_notes(choices, site_folders().folders)))
    except UserError as exc:
        print(f"energy_hpc: error: {exc}", file=sys.stderr)
        sys.exit(2)


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


def print_sweep_summary(outcome: Any, out_dir: str, sweep: str, dry_run: bool) -> None:
    """After a sweep: one table over the cells this command ran (a dry run, or a sweep whose
    submission failed, shows none), the cells another run held, and a non-zero exit if any cell
    failed."""
    from energy_hpc.launch.executors import print_summary

    records = outcome.records()
    complete = len(getattr(outcome, "complete", {}))
    earlier = (f", {complete} complete from an earlier run (skipped, not submitted; force=true "
               "measures again)") if complete else ""
    if records:
        print_summary(records, f"sweep {sweep!r}: {len(outcome.ran)} cell(s) run by this "
                               f"command{earlier}; per pass over the test set; records under "
                               f"{out_dir}/cells/")
    elif dry_run:
        print("\ndry run: nothing was measured or submitted")
    if outcome.held:
        print(f"\n{len(outcome.held)} cell(s) not measured by this command: another run holds them "
              "(their records appear when it finishes):")
        for cell_id, what in outcome.held.items():
            print(f"  {cell_id} ({what})")
    if outcome.failed:
        print(f"\n{len(outcome.failed)} cell(s) failed:", file=sys.stderr)
        for failure in outcome.failed:
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


def check_group_options(args: list[str]) -> str | None:
    """A group option that no config file provides (``model=lamma8b``): one line naming the
    closest ones, as for a misspelled key, instead of Hydra's multi-line error."""
    import difflib

    from energy_hpc.site_configs import GROUPS

    if any(a.startswith(("--config-dir", "-cd", "--config-path", "-cp", "hydra.searchpath",
                         "+hydra.searchpath")) for a in args):
        return None  # folders of the user's own: Hydra knows what they hold
    for arg in args:
        key, sep, value = arg.lstrip("+").partition("=")
        if not sep or key not in GROUPS or "(" in value or "$" in value:
            continue
        known = group_options(key)
        for option in (v.strip() for v in value.split(",")):
            if option and option not in known:
                close = difflib.get_close_matches(option, known, n=3, cutoff=0.5)
                hint = f"did you mean {' or '.join(close)}? " if close else ""
                return (f"{arg}: no {key} named {option!r}; {hint}the {key}s are "
                        f"{', '.join(known)} (a site adds one as hydra_conf/{key}/NAME.yaml; "
                        f"python -m energy_hpc --info searchpath lists where)")
    return None


def group_options(group: str) -> list[str]:
    """The options of a config group: the shipped files' and the site folders'."""
    from energy_hpc.site_configs import shipped_folder, site_folders

    folders = (shipped_folder(), *site_folders().folders)
    return sorted({p.stem for folder in folders for p in (folder / group).glob("*.yaml")})


def print_help(args: list[str]) -> None:
    """``--help``: the usage, the groups' options and the config these arguments compose, with
    the chosen model kind's fields only (the schema holds every kind's: a SetFit option under a
    TF-IDF model would only mislead). ``--hydra-help`` is Hydra's own."""
    import yaml

    from energy_hpc.config import RUN_OPTIONS, compose_settings
    from energy_hpc.site_configs import GROUPS, shipped_folder

    tree = yaml.safe_load((shipped_folder() / "config.yaml").read_text())
    helps = tree.get("hydra", {}).get("help", {})
    settings = compose_settings([a for a in args if not a.startswith("-")])
    config = {name: getattr(settings, name) for name in RUN_OPTIONS}
    config.update(settings.resolved_dict())
    print(str(helps.get("header", "")).replace("$$", "$"))
    print("== Configuration groups ==\nCompose your configuration from those groups "
          "(group=option)\n")
    for group in sorted(GROUPS):
        print(f"{group}: {', '.join(group_options(group))}")
    print(f"\n== Config ==\nThe config these arguments compose (model kind "
          f"{settings.model.kind!r}: its fields only); override anything (foo.bar=value)\n")
    print(yaml.safe_dump(config, sort_keys=False, allow_unicode=True).rstrip())
    print("\n" + str(helps.get("footer", "")))


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
    from energy_hpc.config import redact_output
    from energy_hpc.interrupts import signals_interrupt
    from energy_hpc.kinds import load_plugins

    redact_output()  # --cfg job, --info config, verbose logs: no secret value printed

    try:
        if load_plugins():  # their kinds' fields join the schema
            register_configs()
    except UserError as exc:
        print(f"energy_hpc: error: {exc}", file=sys.stderr)
        sys.exit(2)

    for check in (check_override_keys, check_group_options, check_site_yaml):
        if problem := check(sys.argv[1:]):
            print(f"energy_hpc: error: {problem}", file=sys.stderr)
            sys.exit(2)
    if any(a in ("--help", "-h") for a in sys.argv[1:]):
        try:
            print_help(sys.argv[1:])
        except UserError as exc:
            print(f"energy_hpc: error: {exc}", file=sys.stderr)
            sys.exit(2)
        return
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
