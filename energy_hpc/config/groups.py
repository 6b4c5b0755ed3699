"""The dataset, cluster and energy sections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from energy_hpc.config.fields import (
    DATA_SOURCES,
    RAM_MODELS,
    _one_of,
    _positive,
    in_cell_id_when_set,
    not_in_cell_id,
)
from energy_hpc.errors import ConfigError
from energy_hpc.kinds import (
    cluster_kinds,
)
from energy_hpc.safe_paths import check_name


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
    sheet: str | None = in_cell_id_when_set()  # XLSX: the sheet to read (the first, named, unless given)
    # text files' encoding (UTF-8 also reads a BOM); the dataset fingerprint records what was read
    encoding: str = not_in_cell_id("utf-8")
    label_map: dict[str, str] | None = None
    min_class_size: int = 0
    n_train: int | None = 200
    n_test: int | None = 200
    test_fraction: float | None = None
    description: str = not_in_cell_id("")

    def __post_init__(self) -> None:
        check_name("dataset.name", self.name)
        _one_of("dataset", "source", self.source, DATA_SOURCES)
        if self.source == "file" and not self.path:
            raise ConfigError(
                "dataset.path is empty; set dataset.path=/path/to/data.csv "
                "(CSV, TSV, XLSX, JSON, JSONL or Parquet)"
            )
        if self.text_column == self.label_column:
            raise ConfigError(f"dataset.text_column and dataset.label_column are both "
                              f"{self.text_column!r}; the label cannot be the text (accuracy "
                              "would be 1 by construction): name two different columns")
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
    # which quantizations the GPUs run (config/quantization.py); null: known by gpu_model's name
    gpu_compute_capability: float | None = not_in_cell_id(None)
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
    # true: the site hands out whole nodes only (the job is --exclusive, whatever isolation says)
    exclusive: bool = False
    # attribute: a job holds only what its cell needs (its GPUs, their share of cores and memory)
    # and shares the node; what a neighbour adds to a whole-node meter is measured and attributed.
    # exclusive: the job holds whole nodes (--exclusive), billed for every GPU of them.
    # docs/measurement.md#isolation says why attribute is the default.
    isolation: str = in_cell_id_when_set("attribute")
    # superseded by isolation (older cluster files load): true sets isolation=attribute
    share_nodes: bool = not_in_cell_id(False)
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    setup: list[str] = not_in_cell_id(factory=list)
    env: dict[str, str] = not_in_cell_id(factory=dict)
    slurm_extra: dict[str, Any] = not_in_cell_id(factory=dict)

    def __post_init__(self) -> None:
        check_name("cluster.name", self.name)
        _one_of("cluster", "kind", self.kind, cluster_kinds())
        _positive("cluster", "nodes_available", self.nodes_available)
        _positive("cluster", "gpus_per_node", self.gpus_per_node, allow_zero=True)
        _positive("cluster", "time_limit_min", self.time_limit_min)
        _one_of("cluster", "isolation", self.isolation, ISOLATIONS)
        if self.share_nodes:  # the older spelling of isolation=attribute
            self.isolation = "attribute"
        if self.detect_gpus and self.kind != "local":
            raise ConfigError(
                f"cluster {self.name!r}: detect_gpus is only for kind=local (a Slurm login node is not "
                "its compute node); state gpus_per_node, gpu_model and gpu_memory_gb in the file"
            )
        for name in ("gpu_memory_gb", "gpu_power_w", "cpus_per_node", "ram_gb", "mem_gb",
                     "gpu_tflops_bf16", "gpu_mem_bandwidth_gbs", "gpu_compute_capability"):
            _positive("cluster", name, getattr(self, name))
        if self.pue is not None and self.pue < 1:
            raise ConfigError(f"cluster.pue={self.pue!r} is not valid; a power usage effectiveness "
                              "is >= 1 (total facility power / IT power), or null when unknown")
        if self.kind == "slurm" and self.gpus_per_node and not self.gpu_memory_gb:
            raise ConfigError(
                f"cluster {self.name!r} has gpus_per_node={self.gpus_per_node} but no "
                "gpu_memory_gb: placement needs each GPU's memory (GB) to check that a model fits. "
                "Add e.g. gpu_memory_gb: 80 to the cluster file")


ISOLATIONS = ("attribute", "exclusive")


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
    # above this share of the host's busy CPU time being another's, a whole-host meter's reading is
    # not attributed to the cell (docs/measurement.md#isolation: why 0.8); it decides no measurement
    max_foreign_share: float = not_in_cell_id(0.8)

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
        if not isinstance(self.max_foreign_share, int | float) or not 0 <= self.max_foreign_share <= 1:
            raise ConfigError(f"energy.max_foreign_share={self.max_foreign_share!r} is not valid; use a "
                              "share between 0 and 1 (0.8: attribute while the cell did at least a "
                              "fifth of the host's busy CPU time)")
        from energy_hpc.energy.carbon import check_country

        check_country(self.country)


