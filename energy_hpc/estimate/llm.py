"""First-principles estimates for zero-shot LLMs (the ``llm`` kind's).

Reading the prompt is compute-bound, 2 x parameters x prompt tokens at the GPUs' peak bf16
FLOP/s x ``U_PREFILL``; each generated token reads the weights once, at the GPUs' memory
bandwidth x ``U_DECODE`` (sequential: once per text and token; batched: once per token for the
whole test set; a mixture of experts reads between its active and its total parameters); each
request pays ``REQUEST_S`` of serving overhead. TP divides prefill and decode over a node's GPUs;
PP adds no speed to one request (stages take turns). Output length is a range per family
(``OUTPUT_TOKENS``; reasoning models up to ``max_tokens``). Power: the allocation's GPUs at
``GPU_LOAD`` x rated power, plus the CPUs' rated power and RAM as the energy config counts it.

One factor per phase, none per model; fitted to the paper's Table B1 and checked by
``benchmarks/estimate_vs_paper.py`` (docs/estimate.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from energy_hpc.estimate.values import Estimate, FitGuess, PassGuess
from energy_hpc.estimate.whole_cell import (
    CHARS_PER_TOKEN,
    DEFAULT_TEXT_CHARS,
    pass_energy,
    text_facts,
    whole_cell,
)

if TYPE_CHECKING:
    from energy_hpc.cell import Cell

# Fitted to the paper's Table B1 (seven instruction LLMs on H100) by benchmarks/estimate_vs_paper.py;
# held out there: the same models on A30 and V100 (Table B3). docs/estimate.md has the errors.
U_PREFILL = 0.35  # share of peak tensor FLOP/s reached while reading prompts (a datasheet-typical value)
U_DECODE = 0.7  # share of peak memory bandwidth reached while generating one token
REQUEST_S = 0.06  # serving overhead per request (scheduling, tokenising, the client's round trip)
# a dspy-style answer is a category name between its two field markers (~15 tokens without the
# name); reasoning models think first (None: up to max_tokens)
OUTPUT_TOKENS = {"llm": (15, 40), "reasoning": (200, None)}
LOAD_BYTES_PER_S = 2e9  # weights read at load time (shared file systems: ~GB/s)
ENGINE_START_S = 120.0  # an engine's start beside the weights (vLLM: memory profiling, CUDA graphs)


def first_principles_pass(params_b: float, bytes_per_param: float, gpus_per_node: int, nodes: int,
                          tflops: float, bandwidth_gbs: float, n_texts: int, prompt_tokens: float,
                          output_tokens: float, batched: bool, decode_params_b: float | None = None,
                          request_s: float | None = None) -> float:
    """Seconds for one pass over ``n_texts`` (the formula in the module docstring).

    ``decode_params_b``: the parameters one generated token reads (a mixture of experts' active
    ones), by default all of them.
    """
    request_s = REQUEST_S if request_s is None else request_s
    decode_b = params_b if decode_params_b is None else decode_params_b
    prefill = 2 * params_b * 1e9 * prompt_tokens / (gpus_per_node * tflops * 1e12 * U_PREFILL)
    if decode_params_b is not None:  # a mixture of experts computes only its active experts
        prefill *= decode_params_b / params_b
    per_token = decode_b * 1e9 * bytes_per_param / (gpus_per_node * bandwidth_gbs * 1e9 * U_DECODE)
    if batched:
        return n_texts * prefill + output_tokens * per_token + request_s
    return n_texts * (prefill + output_tokens * per_token + request_s)


def prompt_tokens(cell: Cell, text_chars: float | None = None,
                  categories: tuple[str, ...] | None = None) -> tuple[float, str]:
    """Tokens per request: the paper's prompt around a mean text, and what they were counted from
    (``text_chars``/``categories`` stand in for a dataset that is not at hand)."""
    from energy_hpc.classifiers.llm.prompt import build_messages

    note = ""
    if text_chars is None or categories is None:
        read = text_facts(cell)
        if read is None:
            note = f"; texts not readable here: {DEFAULT_TEXT_CHARS:.0f} chars assumed"
            read = (DEFAULT_TEXT_CHARS, tuple(f"c{i}" for i in range(10)))
        text_chars = read[0] if text_chars is None else text_chars
        categories = read[1] if categories is None else categories
    model = cell.settings.model
    frame = build_messages("", list(categories), getattr(model, "instruction_language", "en"), [])
    frame_chars = sum(len(m["content"]) for m in frame)
    few_shot = getattr(model, "few_shot", 0) * text_chars
    return (frame_chars + text_chars + few_shot) / CHARS_PER_TOKEN, note


def output_tokens(model: Any) -> tuple[int, int]:
    if getattr(model, "decoding", None) == "score":  # no generation: the one token vLLM emits
        return (1, 1)
    lo, hi = OUTPUT_TOKENS.get(model.family, OUTPUT_TOKENS["llm"])
    max_tokens = getattr(model, "max_tokens", 64)
    thinking = getattr(model, "thinking_tokens", None)
    if thinking is not None:  # thinking capped, then an instruction model's short answer
        answer_lo, answer_hi = OUTPUT_TOKENS["llm"]
        return (min(lo, thinking) + answer_lo, thinking + min(answer_hi, max_tokens))
    return (min(lo, max_tokens), min(hi or max_tokens, max_tokens))


def inference(cell: Cell, text_chars: float | None = None,
              categories: tuple[str, ...] | None = None) -> PassGuess | str:
    """One pass over the test set from first principles (the module docstring), or why not."""

    s, c, model = cell.settings, cell.settings.cluster, cell.settings.model
    try:
        params, active, per_param, source = model.sizes()
    except Exception as exc:  # noqa: BLE001 - a model without facts has no estimate, said why
        return f"no first-principles model for {model.name}: {exc}"
    if not params:
        return f"no first-principles model for {model.name}: model.params_billion is not stated"
    missing = [name for name in ("gpu_tflops_bf16", "gpu_mem_bandwidth_gbs", "gpu_power_w")
               if not getattr(c, name)]
    if missing or not cell.placement.gpus:
        what = (f"no GPU datasheet facts for cluster {c.name} (the cluster file lacks "
                f"{', '.join(missing)})" if missing else f"no GPUs placed on cluster {c.name}")
        return f"{what}; first-principles estimate unavailable"
    tokens, note = prompt_tokens(cell, text_chars, categories)
    outs = output_tokens(model)
    n_test = s.dataset.n_test or 200
    batched = getattr(model, "batching", "batched") == "batched"

    def one_pass(out: int, decode_b: float | None) -> float:
        return first_principles_pass(
            params, per_param, cell.placement.gpus_per_node, cell.placement.nodes,
            c.gpu_tflops_bf16, c.gpu_mem_bandwidth_gbs, n_test, tokens, out, batched, decode_b)

    # a mixture of experts: from its active parameters (low) to all of them (high) per token
    pass_s = (one_pass(outs[0], active), one_pass(outs[1], None))
    load_s = ENGINE_START_S + params * 1e9 * per_param / LOAD_BYTES_PER_S
    moe = f"; {active:.3g} of {params:.3g} B parameters active" if active else ""
    facts = "" if source == "model file" else f"; {params:.3g} B parameters from {source}"
    quant = model.quantization_plan() if hasattr(model, "quantization_plan") else None
    if quant is not None and quant.method != "none":  # fewer bytes read per token; bf16 peak kept
        facts += f"; {quant.label} weights: {per_param:.2g} bytes per parameter read"
    return PassGuess(pass_s=pass_s, load_s=load_s,
                     basis=f"first principles: {tokens:.0f} prompt tokens, {outs[0]}–{outs[1]} "
                           f"output tokens per text{moe}{facts}{note}")


def fit(cell: Cell) -> FitGuess:
    """A zero-shot LLM trains nothing; few-shot demonstrations cost nothing to fit (their cost
    is in the longer prompts, which the pass counts)."""
    return FitGuess(seconds=(0.0, 0.0), basis="")


def from_first_principles(cell: Cell, text_chars: float | None = None,
                          categories: tuple[str, ...] | None = None) -> Estimate | str:
    """The whole cell from :func:`inference` (``text_chars``/``categories`` stand in for a
    dataset that is not at hand: the paper's, in benchmarks/estimate_vs_paper.py)."""
    guess = inference(cell, text_chars, categories)
    if isinstance(guess, str):
        return guess
    return whole_cell(cell, guess.pass_s, pass_energy(cell, guess.pass_s), guess.load_s,
                       guess.basis, fit_s=(0.0, 0.0))
