"""Which quantization a cell's LLM runs in, what it weighs, and whether the cluster's GPUs run it.

``model.quantization``: ``auto`` (what the checkpoint's ``quantization_config`` says, else none),
``none`` (the checkpoint's own 16-bit weights), ``fp8``, ``awq``, ``gptq``, ``bitsandbytes``.
``awq`` and ``gptq`` need a checkpoint quantized that way (calibrated offline); ``fp8`` and
``bitsandbytes`` also quantize a 16-bit checkpoint as it loads (vLLM's dynamic FP8, bitsandbytes'
4-bit NF4). A pre-quantized checkpoint is served as vLLM detects it: naming the method to vLLM
(``quantization="awq"``) would pick its plain AWQ kernel over the Marlin one it chooses itself,
reported ~10x slower.

What a GPU runs follows vLLM's own table (docs.vllm.ai, features/quantization/supported_hardware):
FP8 weights and activations (W8A8) from compute capability 8.9 (Ada, Hopper); on 8.0–8.6 (A100,
A30, A40) FP8 weight-only through the FP8 Marlin kernel (half the weight bytes, 16-bit arithmetic,
no mixture-of-experts kernel); AWQ from 7.5, through Marlin from 8.0; GPTQ from 6.0, through Marlin
from 8.0; bitsandbytes from 7.0. A V100 (7.0) runs GPTQ and bitsandbytes, not FP8 or AWQ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from energy_hpc.errors import ConfigError

QUANTIZATIONS = ("auto", "none", "fp8", "awq", "gptq", "bitsandbytes")
# quantizing as the weights load: no calibrated checkpoint needed
DYNAMIC = ("fp8", "bitsandbytes")
BITS = {"fp8": 8, "awq": 4, "gptq": 4, "bitsandbytes": 4}

# compute capability by the GPU names cluster files use (NVIDIA's CUDA GPUs table); a cluster may
# state gpu_compute_capability itself for a GPU not listed
COMPUTE_CAPABILITY = {
    "B200": 10.0, "B100": 10.0, "GH200": 9.0, "H200": 9.0, "H100": 9.0, "H800": 9.0,
    "L40S": 8.9, "L40": 8.9, "L4": 8.9, "RTX 4090": 8.9, "RTX 6000 ADA": 8.9,
    "A100": 8.0, "A800": 8.0, "A30": 8.0, "A40": 8.6, "A10": 8.6, "A16": 8.6, "RTX 3090": 8.6,
    "RTX A6000": 8.6, "T4": 7.5, "RTX 2080": 7.5, "V100": 7.0, "P100": 6.0,
}
# the lowest capability each way of running a method needs (vLLM's table)
NEEDS = {"fp8": 8.0, "awq": 7.5, "gptq": 6.0, "bitsandbytes": 7.0}


def method_of(model: Any) -> str | None:
    """The method a model's weights are served in (``none``, ``fp8``, ``awq``…): an LLM's plan;
    None for a kind that has none."""
    planner = getattr(model, "quantization_plan", None)
    return planner().method if planner is not None else None


def compute_capability(gpu_model: str | None, stated: float | None = None) -> float | None:
    """The GPU's compute capability: the cluster file's, else by its name (longest match)."""
    if stated:
        return float(stated)
    if not gpu_model:
        return None
    name = gpu_model.upper()
    for known in sorted(COMPUTE_CAPABILITY, key=len, reverse=True):
        if known in name:
            return COMPUTE_CAPABILITY[known]
    return None


def checkpoint_method(quant_config: dict[str, Any] | None) -> tuple[str | None, int | None]:
    """(method, bits) a checkpoint's ``quantization_config`` names; llm-compressor's
    ``compressed-tensors`` says FP8 or int4/int8 in its config groups."""
    if not isinstance(quant_config, dict):
        return None, None
    method = str(quant_config.get("quant_method") or "unknown").lower()
    bits = quant_config.get("bits") or quant_config.get("w_bit")
    if method == "bitsandbytes":
        bits = 8 if quant_config.get("load_in_8bit") else 4
    if method == "compressed-tensors":
        for group in (quant_config.get("config_groups") or {}).values():
            weights = group.get("weights") if isinstance(group, dict) else None
            if isinstance(weights, dict):
                bits = weights.get("num_bits")
                if weights.get("type") == "float" and bits == 8:
                    method = "fp8"
                break
    if method == "fp8":
        bits = 8
    return method, bits if isinstance(bits, int) and bits > 0 else BITS.get(method)


@dataclass(frozen=True)
class QuantizationPlan:
    """What ``model.quantization`` comes to for one checkpoint (and, once known, one GPU)."""

    method: str  # none, fp8, awq, gptq, bitsandbytes (or a checkpoint's other method)
    prequantized: bool  # the checkpoint's files are quantized: their bytes are the weights
    bits: int | None  # per quantized weight; None: the 16-bit dtype
    vllm_quantization: str | None  # what to hand vLLM (None: it detects the checkpoint's)
    assumed: bool = False  # the checkpoint's files are not here: the method is the user's word

    @property
    def label(self) -> str:
        return self.method if self.method == "none" else f"{self.method} ({self.bits or '?'}-bit)"


def plan(asked: str, checkpoint: str | None, bits: int | None, hf_id: str) -> QuantizationPlan:
    """The method for ``model.quantization=asked`` on a checkpoint quantized as ``checkpoint``."""
    if checkpoint:
        if asked in ("auto", checkpoint):
            return QuantizationPlan(checkpoint, True, bits, None)
        what = f"{hf_id} is a {checkpoint} checkpoint (its config.json's quantization_config)"
        if asked == "none":
            raise ConfigError(f"model.quantization=none but {what}: its weights are quantized; "
                              f"use model.quantization=auto (or {checkpoint}), or the unquantized "
                              "checkpoint's hf_id")
        raise ConfigError(f"model.quantization={asked} but {what}; one checkpoint is quantized one "
                          f"way: use model.quantization=auto, or a {asked} checkpoint")
    if asked in ("auto", "none"):
        return QuantizationPlan("none", False, None, None)
    if asked not in DYNAMIC:
        raise ConfigError(f"model.quantization={asked} needs a checkpoint quantized with {asked.upper()} "
                          f"(calibrated offline); {hf_id} is not one (no quantization_config in its "
                          f"config.json). Use a {asked} checkpoint's hf_id, or model.quantization="
                          f"{' or '.join(DYNAMIC)} (quantized as the weights load)")
    return QuantizationPlan(asked, False, BITS[asked], asked)


def gpu_path(q: QuantizationPlan, capability: float | None, gpu: str, moe: bool,
             engine: str) -> str:
    """How ``gpu`` runs the plan, or a ConfigError naming the GPU and what it runs."""
    if q.method == "none":
        return "16-bit weights and arithmetic"
    if engine == "transformers" and q.method == "fp8" and not q.prequantized:
        raise ConfigError("model.quantization=fp8 on a 16-bit checkpoint is vLLM's dynamic FP8; "
                          "use model.engine=vllm, or model.quantization=bitsandbytes with "
                          "transformers")
    if capability is None:
        return (f"{q.label}: {gpu or 'the GPU'}'s compute capability is not known here (state "
                "gpu_compute_capability in the cluster file to have it checked)")
    supported = [m for m in NEEDS if capability >= NEEDS[m]]
    if q.method == "fp8" and moe and capability < 8.9:
        supported.remove("fp8")
    need = NEEDS.get(q.method)
    if need is None:
        return f"{q.label}: as the checkpoint's method runs (not checked against the GPU)"
    if q.method not in supported:
        why = (" (FP8 Marlin, the weight-only kernel below 8.9, has no mixture-of-experts kernel)"
               if q.method == "fp8" and moe and capability >= 8.0 else "")
        raise ConfigError(
            f"model.quantization={q.method}: a {gpu} (compute capability {capability:g}) cannot run "
            f"it in vLLM{why}; it runs {', '.join(supported) or 'no quantization'} "
            f"(or model.quantization=none)")
    if q.method == "fp8":
        return ("FP8 weights and activations (W8A8)" if capability >= 8.9 else
                "FP8 weight-only (FP8 Marlin: half the weight bytes, 16-bit arithmetic)")
    if q.method in ("awq", "gptq"):
        kernel = f"{q.method}_marlin" if capability >= 8.0 else q.method
        if q.assumed:
            return (f"{q.method.upper()} {q.bits or 4}-bit weights, 16-bit arithmetic (the checkpoint "
                    f"is not here: assumed {q.method}, checked when it loads)")
        return f"{q.method.upper()} {q.bits or 4}-bit weights, 16-bit arithmetic ({kernel} kernel, as vLLM picks)"
    return f"bitsandbytes {q.bits or 4}-bit weights, 16-bit arithmetic"


__all__ = ["BITS", "COMPUTE_CAPABILITY", "QUANTIZATIONS", "QuantizationPlan", "checkpoint_method",
           "compute_capability", "gpu_path", "method_of", "plan"]
