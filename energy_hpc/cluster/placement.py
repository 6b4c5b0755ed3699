"""Where a cell runs: GPUs per node, tensor parallel = GPUs per node, pipeline parallel = nodes.

The memory check is deliberately simple and stated: what the model's kind says it needs
(``ModelConfig.gpu_memory``: an LLM's weights plus headroom for KV cache and activations, shared
by its GPUs; a trained encoder's weights, gradients, optimizer state and activations, on one
GPU) must fit in the GPU memory that holds it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

from energy_hpc.config import ClusterConfig, ModelConfig, Settings
from energy_hpc.config.quantization import compute_capability
from energy_hpc.errors import ConfigError

log = logging.getLogger(__name__)

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
    # GPUs asked for explicitly by a cell whose classifier runs on the CPU: allocated, measured
    # (a machine-wide GPU meter counts their idle draw) and flagged in the records
    gpus_idle: bool = False
    memory_check: str = "not needed"  # "passed", or why it was skipped
    serving: str | None = None  # how the GPUs run the weights (an LLM's quantization path)
    concurrency: str | None = None  # what the KV cache room holds at once (an LLM's)

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    def describe(self) -> str:
        mem = ""
        if self.needed_gb is not None:
            mem = f", needs ~{self.needed_gb:.0f} GB of {self.available_gb:.0f} GB GPU memory"
        idle = "; GPUs held idle (gpus asked for explicitly; the classifier runs on the CPU)" \
            if self.gpus_idle else ""
        if self.memory_check.startswith("skipped"):
            idle += f"; GPU memory check {self.memory_check}"
        if self.serving:
            idle += f"; {self.serving}"
        if self.concurrency:
            idle += f"; {self.concurrency}"
        return (f"{self.nodes} node(s) x {self.gpus_per_node} GPU(s): TP={self.tensor_parallel}, "
                f"PP={self.pipeline_parallel}{mem}{idle}")

    def to_dict(self) -> dict:
        return asdict(self)


def weights_gb(model: ModelConfig) -> float | None:
    """The model's weights in GB, when its kind can say."""
    need = model.gpu_memory()
    return need.weights_gb if need is not None else None


def minimum_fit(model: ModelConfig, cluster: ClusterConfig) -> tuple[int, int] | None:
    """The smallest (nodes, GPUs per node) on this cluster that holds the model, or None."""
    need = model.gpu_memory()
    if need is None or not cluster.gpu_memory_gb or not cluster.gpus_per_node:
        return None
    per_gpu = cluster.gpu_memory_gb * GPU_MEMORY_USABLE
    if not need.divisible:
        return (1, 1) if need.needed_gb <= per_gpu else None
    gpus = math.ceil(need.needed_gb / per_gpu)
    # tensor parallel sizes must divide the attention heads: powers of two in practice
    gpus = 1 << (gpus - 1).bit_length()
    if gpus <= cluster.gpus_per_node:
        return 1, gpus
    nodes = math.ceil(gpus / cluster.gpus_per_node)
    if nodes > cluster.nodes_available:
        return None
    return nodes, cluster.gpus_per_node


def _auto(settings: Settings) -> tuple[int, int]:
    """``gpus=auto``: no GPU for a classifier that runs on the CPU (BoW, TF-IDF); one GPU per node
    for one that runs on one GPU (0 without GPUs); the smallest fit for a model whose memory
    GPUs share (an LLM). An explicit ``nodes`` is a requirement: more nodes spread the fit (the
    paper's 1 GPU x 2 nodes), fewer than the fit needs are refused with the minimum."""
    cluster, model = settings.cluster, settings.model
    asked_nodes = settings.nodes if settings.nodes != "auto" else None
    if not model.uses_gpu():
        return asked_nodes or 1, 0
    need = model.gpu_memory()
    if need is None or not need.divisible or not cluster.gpus_per_node:
        return asked_nodes or 1, min(1, cluster.gpus_per_node)
    if not cluster.gpu_memory_gb:
        raise ConfigError(
            f"gpus=auto cannot size {model.name} on cluster {cluster.name!r}: the cluster states no "
            "gpu_memory_gb. Add gpu_memory_gb to the cluster file, or give gpus=N (the memory "
            "check is then skipped, and the plan and records say so)")
    fit = minimum_fit(model, cluster)
    if fit is None:
        raise ConfigError(
            f"gpus=auto: {model.name} (needs ~{need.needed_gb:.0f} GB: {need.how}) does not fit "
            f"on cluster {cluster.name!r} ({cluster.nodes_available} node(s) x "
            f"{cluster.gpus_per_node} x {cluster.gpu_memory_gb:g} GB)"
        )
    nodes, per_node = fit
    if asked_nodes is not None and asked_nodes < nodes:
        raise ConfigError(
            f"nodes={asked_nodes}: {model.name} needs {nodes} node(s) x {per_node} "
            f"{cluster.gpu_model or 'GPU'}(s) on cluster {cluster.name!r} "
            f"(~{need.needed_gb:.0f} GB of GPU memory); give nodes={nodes} or nodes=auto")
    if asked_nodes is not None and asked_nodes > nodes:
        total = nodes * per_node
        per_node = max(1, math.ceil(total / asked_nodes))
        nodes = asked_nodes
    return nodes, per_node


def plan_placement(settings: Settings) -> Placement:
    """Check the cell's GPUs and nodes against the cluster and the model; fail before submission.

    ``auto`` chooses; an explicit ``gpus`` or ``nodes`` is a requirement, refused (with the
    minimum that fits) when the model does not fit in it.
    """
    cluster, model = settings.cluster, settings.model
    if settings.nodes != "auto" and int(settings.nodes) > cluster.nodes_available:
        raise ConfigError(
            f"nodes={settings.nodes} but cluster {cluster.name!r} has {cluster.nodes_available} node(s)"
        )
    if settings.gpus == "auto":
        nodes, per_node = _auto(settings)
    else:
        total = int(settings.gpus)
        if settings.nodes == "auto":
            nodes = max(1, math.ceil(total / cluster.gpus_per_node)) if cluster.gpus_per_node else 1
        else:
            nodes = int(settings.nodes)
        if total % nodes:
            raise ConfigError(
                f"gpus={total} cannot be spread evenly over nodes={nodes}; give a multiple of {nodes}"
            )
        per_node = total // nodes
        if nodes > cluster.nodes_available:
            raise ConfigError(
                f"gpus={total} needs {nodes} node(s) of {cluster.gpus_per_node} GPU(s) but cluster "
                f"{cluster.name!r} has {cluster.nodes_available} node(s)")
    if nodes > 1 and (why := model.single_node_reason()):
        raise ConfigError(f"nodes={nodes} is not valid for {model.name}: {why}; give nodes=1 "
                          "(or nodes=auto)")
    if per_node > cluster.gpus_per_node:
        raise ConfigError(
            f"{per_node} GPU(s) per node asked (gpus={settings.gpus}, nodes={nodes}) but cluster "
            f"{cluster.name!r} has {cluster.gpus_per_node} GPU(s) per node"
        )
    if per_node == 0 and (why := model.requires_gpu()):
        raise ConfigError(f"{why}; set gpus=auto or gpus=N")
    serving = model.serving_path(cluster.gpu_model,
                                 compute_capability(cluster.gpu_model, cluster.gpu_compute_capability),
                                 per_node)
    need = model.gpu_memory()
    w = need.weights_gb if need is not None else None
    needed = available = None
    memory_check = "not needed" if need is None or not per_node else "passed"
    if need is not None and per_node and not cluster.gpu_memory_gb:
        memory_check = (f"skipped: cluster {cluster.name!r} states no gpu_memory_gb")
        log.warning("%s on %s: GPU memory check %s", model.name, cluster.name, memory_check)
    elif need is not None and per_node:
        assert cluster.gpu_memory_gb
        needed = need.needed_gb
        holders = per_node * nodes if need.divisible else 1
        available = cluster.gpu_memory_gb * GPU_MEMORY_USABLE * holders
        if needed > available:
            fit = minimum_fit(model, cluster)
            hint = (f"the minimum that fits on {cluster.name!r} is nodes={fit[0]} "
                    f"gpus={fit[0] * fit[1]} ({fit[1]} per node), which gpus=auto nodes=auto "
                    "picks") if fit and need.divisible else \
                f"it does not fit on {cluster.name!r} at all" if need.divisible else \
                "more GPUs do not help (it runs on one); reduce batch_size or max_length, or use " \
                "a cluster with larger GPUs"
            where = (f"{nodes} node(s) x {per_node}" if need.divisible else "1") + \
                f" x {cluster.gpu_memory_gb:g} GB {cluster.gpu_model}"
            raise ConfigError(
                f"{model.name} needs ~{needed:.0f} GB of GPU memory ({need.how}) but {where} "
                f"give ~{available:.0f} GB usable; {hint}"
            )
    concurrency = model.concurrency(available, nodes * per_node) if available is not None else None
    return Placement(nodes=nodes, gpus_per_node=per_node, tensor_parallel=max(per_node, 1),
                     pipeline_parallel=nodes, weights_gb=w, needed_gb=needed, available_gb=available,
                     gpus_idle=bool(per_node) and not model.uses_gpu(), memory_check=memory_check,
                     serving=serving, concurrency=concurrency)
