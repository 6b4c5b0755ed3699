"""Site config folders: an admin's cluster or model file, picked with ``cluster=alpha`` alone.

Hydra searches, ahead of the shipped tree, a ``hydra_conf/`` folder in the working directory and
the folders in ``ENERGY_HPC_CONFIG_PATH`` (colon-separated, e.g. set by a site's environment
module), first folder first. The search path plugin in ``launchers/`` adds them; this module
decides which folders they are and says, for a cell's group choices, which site file was used.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

log = logging.getLogger("energy_hpc.config")

ENV_VAR = "ENERGY_HPC_CONFIG_PATH"
CWD_FOLDER = "hydra_conf"
PROVIDER = "energy_hpc-site"
SHIPPED_PACKAGE = "energy_hpc.hydra_conf"
GROUPS = ("model", "dataset", "cluster", "energy")


def shipped_folder() -> Path:
    return Path(str(resources.files(SHIPPED_PACKAGE)))


@dataclass(frozen=True)
class SiteFolders:
    folders: tuple[Path, ...]
    missing: tuple[str, ...]  # named in ENERGY_HPC_CONFIG_PATH but not there


def site_folders(cwd: Path | None = None, env: str | None = None) -> SiteFolders:
    """The site folders in search order: ``./hydra_conf`` first, then ``ENERGY_HPC_CONFIG_PATH``.

    The shipped tree itself (an editable install run from the repository) is not a site folder;
    a folder named twice counts once.
    """
    cwd = cwd or Path.cwd()
    env = os.environ.get(ENV_VAR, "") if env is None else env
    shipped = shipped_folder().resolve()
    found: list[Path] = []
    missing: list[str] = []
    local = cwd / CWD_FOLDER
    candidates = ([local] if local.is_dir() else []) + [Path(p) for p in env.split(":") if p.strip()]
    for path in candidates:
        if not path.is_dir():
            missing.append(str(path))
            continue
        resolved = path.resolve()
        if resolved != shipped and resolved not in found:
            found.append(resolved)
    return SiteFolders(tuple(found), tuple(missing))


def warn_missing(folders: SiteFolders) -> None:
    for path in folders.missing:
        log.warning("%s names %s, which is not a folder; it is left out of the config search path",
                    ENV_VAR, path)


def site_notes(choices: dict[str, str], folders: tuple[Path, ...]) -> tuple[str, ...]:
    """One line per group choice that a site file decided: which file, what it shadows."""
    notes = []
    shipped = shipped_folder()
    for group in GROUPS:
        option = choices.get(group)
        if not option:
            continue
        rel = Path(group) / f"{option}.yaml"
        hits = [folder / rel for folder in folders if (folder / rel).is_file()]
        if not hits:
            continue
        used = hits[0]
        line = f"{group}={option} from site file {used}"
        ship = shipped / rel
        if ship.is_file() and ship.read_bytes() != used.read_bytes():
            line += f" (shadows the shipped {rel.as_posix()})"
        if len(hits) > 1:
            line += "; also in " + ", ".join(str(h) for h in hits[1:]) + " (the first wins)"
        notes.append(line)
    return tuple(notes)


def yaml_problem(path: Path) -> str | None:
    """``FILE:LINE:COLUMN: not valid YAML: what the parser expected`` for a broken file."""
    import yaml

    try:
        yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        context = f" ({exc.context})" if exc.context else ""
        return f"{where}: not valid YAML: {exc.problem}{context}"
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
        return f"{path}: not valid YAML: {str(exc).splitlines()[0]}"
    return None


def broken_site_files(folders: tuple[Path, ...]) -> list[tuple[str, str, str]]:
    """(group, option, one-line problem) for each site group file that is not valid YAML."""
    broken = []
    for folder in folders:
        for group in GROUPS:
            for path in sorted((folder / group).glob("*.yaml")):
                if problem := yaml_problem(path):
                    broken.append((group, path.stem, problem))
    return broken
