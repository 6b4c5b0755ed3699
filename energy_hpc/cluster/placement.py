"""Where a cell runs: GPUs per node, tensor parallel = GPUs per node, pipeline parallel = nodes.

The memory check is deliberately simple and stated: weights (parameters × bytes per parameter)
plus headroom for KV cache and activations must fit in the allocation's total GPU memory.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from energy_hpc.config import ClusterConfig, ModelConfig, Settings
from energy_hpc.errors import ConfigError

BYTES_PER_PARAM = {"float32": 4, "fp32": 4, "bfloat16": 2, "float16": 2, "fp16": 2, "half": 2,
                   "auto": 2, "fp8": 1, "int8": 1, "int4": 0.5, "awq": 0.5, "gptq": 0.5}
HEADROOM = 1.15  # weights x 1.15: KV cache and activations for short classification prompts
GPU_MEMORY_USABLE = 0.9  # vLLM's default gpu_memory_utilization


@dataclass(frozen=True)
class Placement:
    nodes: int
    gpus_per_node: int
    tensor_parallel: int
    pipeline_parallel: int
    weights_gb: float | None
    needed_gb: float | None
    available_gb: float | None

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    def describe(self) -> str:
        mem = ""
        if self.needed_gb is not None:
            mem = f", needs ~{self.needed_gb:.0f} GB of {self.available_gb:.0f} GB GPU memory"
        return (f"{self.nodes} node(s) x {self.gpus_per_node} GPU(s): TP={self.tensor_parallel}, "
                f"PP={self.pipeline_parallel}{mem}")

    def to_dict(self) -> dict:
        return asdict(self)


def weights_gb(model: ModelConfig) -> float | None:
    if model.kind != "llm" or not model.params_billion:
        return None
    per_param = BYTES_PER_PARAM.get(model.dtype.lower())
    if per_param is None:
        raise ConfigError(f"model.dtype={model.dtype!r} is unknown; use one of {', '.join(BYTES_PER_PARAM)}")
    return model.params_billion * per_param


def minimum_fit(model: ModelConfig, cluster: ClusterConfig) -> tuple[int, int] | None:
    """The smallest (nodes, GPUs per node) on this cluster that holds the model, or None."""
    w = weights_gb(model)
    if w is None or not cluster.gpu_memory_gb or not cluster.gpus_per_node:
        return None
    per_gpu = cluster.gpu_memory_gb * GPU_MEMORY_USABLE
    gpus = math.ceil(w * HEADROOM / per_gpu)
    # tensor parallel sizes must divide the attention heads: powers of two in practice
    gpus = 1 << (gpus - 1).bit_length()
    if gpus <= cluster.gpus_per_node:
        return 1, gpus
    nodes = math.ceil(gpus / cluster.gpus_per_node)
    if nodes > cluster.nodes_available:
        return None
    return nodes, cluster.gpus_per_node


def _auto(settings: Settings) -> tuple[int, int]:
    """``gpus=auto``: one GPU per node for traditional models (0 without GPUs); the smallest fit for
    an LLM, spread over ``nodes`` when more nodes are asked for (the paper's 1 GPU x 2 nodes)."""
    cluster, model = settings.cluster, settings.model
    if model.kind != "llm" or not model.params_billion or not cluster.gpus_per_node:
        return settings.nodes, min(1, cluster.gpus_per_node)
    fit = minimum_fit(model, cluster)
    if fit is None:
        raise ConfigError(
            f"gpus=auto: {model.name} ({model.params_billion} B params, {model.dtype}) does not fit "
            f"on cluster {cluster.name!r} ({cluster.nodes_available} node(s) x "
            f"{cluster.gpus_per_node} x {cluster.gpu_memory_gb} GB)"
        )
    nodes, per_node = fit
    if settings.nodes > nodes:
        total = nodes * per_node
        per_node = max(1, math.ceil(total / settings.nodes))
        nodes = settings.nodes
    return nodes, per_node


def plan_placement(settings: Settings) -> Placement:
    """Check the cell's GPUs and nodes against the cluster and the model; fail before submission."""
    cluster, model = settings.cluster, settings.model
    nodes = settings.nodes
    if nodes > cluster.nodes_available:
        raise ConfigError(
            f"nodes={nodes} but cluster {cluster.name!r} has {cluster.nodes_available} node(s)"
        )
    if settings.gpus == "auto":
        nodes, per_node = _auto(settings)
    else:
        total = int(settings.gpus)
        if total % nodes:
            raise ConfigError(
                f"gpus={total} cannot be spread evenly over nodes={nodes}; give a multiple of {nodes}"
            )
        per_node = total // nodes
    if per_node > cluster.gpus_per_node:
        raise ConfigError(
            f"{per_node} GPU(s) per node asked (gpus={settings.gpus}, nodes={nodes}) but cluster "
            f"{cluster.name!r} has {cluster.gpus_per_node} GPU(s) per node"
        )
    if model.kind == "llm" and model.engine == "vllm" and per_node == 0:
        raise ConfigError(f"{model.name} on vLLM needs GPUs; set gpus=auto or gpus=N")
    w = weights_gb(model)
    needed = available = None
    if w is not None and cluster.gpu_memory_gb and per_node:
        needed = w * HEADROOM
        available = cluster.gpu_memory_gb * GPU_MEMORY_USABLE * per_node * nodes
        if needed > available:
            fit = minimum_fit(model, cluster)
            hint = (f"the minimum that fits on {cluster.name!r} is nodes={fit[0]} "
                    f"gpus={fit[0] * fit[1]} ({fit[1]} per node)") if fit else (
                f"it does not fit on {cluster.name!r} at all")
            raise ConfigError(
                f"{model.name} needs ~{needed:.0f} GB of GPU memory ({model.params_billion} B params x "
                f"{BYTES_PER_PARAM[model.dtype.lower()]} bytes x {HEADROOM} headroom) but "
                f"{nodes} node(s) x {per_node} x {cluster.gpu_memory_gb:g} GB {cluster.gpu_model} "
                f"give ~{available:.0f} GB usable; {hint}"
            )
    return Placement(nodes=nodes, gpus_per_node=per_node, tensor_parallel=max(per_node, 1),
                     pipeline_parallel=nodes, weights_gb=w, needed_gb=needed, available_gb=available)
