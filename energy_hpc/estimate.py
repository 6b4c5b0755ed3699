"""What a cell will cost before it runs: wall time, node- and GPU-hours, energy and CO2, as ranges.

Two sources; the better one wins and is named (``basis``):

- **calibrated**: earlier records of the same model on the same cluster and placement (any
  dataset): their per-text duration and energy per pass, lowest to highest, scaled by this cell's
  test size, passes and repetitions;
- **first principles** (LLMs on a cluster with datasheet facts): reading the prompt is
  compute-bound, 2 x parameters x prompt tokens at the GPUs' peak bf16 FLOP/s x ``U_PREFILL``;
  each generated token reads the weights once, at the GPUs' memory bandwidth x ``U_DECODE``
  (sequential: once per text and token; batched: once per token for the whole test set). TP
  divides both over a node's GPUs; PP adds no speed to one request (stages take turns). Output
  length is a range per family (``OUTPUT_TOKENS``; reasoning models up to ``max_tokens``). Power:
  the allocation's GPUs at ``GPU_LOAD`` x rated power, plus the CPUs' rated power and RAM at
  0.375 W/GB, as the paper's CodeCarbon counted them.

One utilisation factor per phase, none per model. An estimate never blocks a run: a cell without
either source gets ``basis`` saying why. (Issue 12 also asks for ``--time`` from the estimate,
the estimate in records, an estimated-vs-measured table and figure, a CSV from
``python -m energy_hpc.estimate`` and a benchmark against the paper and EcoLogits: not built yet.)
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from energy_hpc.cell import Cell

U_PREFILL = 0.35  # share of peak tensor FLOP/s reached while reading prompts
U_DECODE = 0.55  # share of peak memory bandwidth reached while generating
GPU_LOAD = (0.4, 0.9)  # share of rated GPU power drawn while serving (low, high)
RAM_W_PER_GB = 0.375  # the paper's CodeCarbon RAM model
CHARS_PER_TOKEN = 4.0  # no tokenizer offline: a common English/German average
# a dspy-style answer is a category name; reasoning models think first (None: up to max_tokens)
OUTPUT_TOKENS = {"llm": (5, 40), "reasoning": (200, None)}
LOAD_BYTES_PER_S = 2e9  # weights read at load time (shared file systems: ~GB/s)
DEFAULT_TEXT_CHARS = 1000.0  # when the dataset cannot be read at planning time


@dataclass(frozen=True)
class Estimate:
    """Ranges (low, high) for one cell; ``basis`` names the source or why there is none."""

    basis: str
    pass_s: tuple[float, float] | None = None  # one pass over the test set
    pass_wh: tuple[float, float] | None = None
    wall_s: tuple[float, float] | None = None  # the whole cell inside its job
    energy_wh: tuple[float, float] | None = None  # every measured window of the cell
    nodes: int = 1
    gpus: int = 0
    pue: float | None = None
    carbon_g_per_kwh: float | None = None

    @property
    def available(self) -> bool:
        return self.wall_s is not None

    def hours(self, per: int) -> tuple[float, float] | None:
        return None if self.wall_s is None else (self.wall_s[0] * per / 3600, self.wall_s[1] * per / 3600)

    def co2_kg(self) -> tuple[float, float] | None:
        if self.energy_wh is None or self.carbon_g_per_kwh is None:
            return None
        factor = (self.pue or 1.0) * self.carbon_g_per_kwh / 1e6
        return (self.energy_wh[0] * factor, self.energy_wh[1] * factor)

    def describe(self) -> str:
        if not self.available:
            return f"estimate: none ({self.basis})"
        assert self.wall_s is not None and self.energy_wh is not None
        parts = [f"{_span(self.wall_s, 60, 'min')} wall",
                 f"{_span(self.hours(self.nodes), 1, 'node-h')}"]
        if self.gpus:
            parts.append(f"{_span(self.hours(self.gpus), 1, 'GPU-h')}")
        kwh = (self.energy_wh[0] / 1000, self.energy_wh[1] / 1000)
        parts.append(f"{_span(kwh, 1, 'kWh')}" + (
            f" ({_span((kwh[0] * self.pue, kwh[1] * self.pue), 1, 'kWh')} with PUE {self.pue:g})"
            if self.pue else " (PUE not stated)"))
        co2 = self.co2_kg()
        if co2 is not None:
            parts.append(f"{_span((co2[0] * 1000, co2[1] * 1000), 1, 'g CO2')}")
        return f"estimate: {', '.join(parts)} [{self.basis}]"


def _span(pair: tuple[float, float] | None, unit: float, name: str) -> str:
    if pair is None:
        return "?"
    lo, hi = pair[0] / unit, pair[1] / unit
    return f"{lo:.3g}–{hi:.3g} {name}" if not math.isclose(lo, hi, rel_tol=0.005) else f"{lo:.3g} {name}"


def first_principles_pass(params_b: float, bytes_per_param: float, gpus_per_node: int, nodes: int,
                          tflops: float, bandwidth_gbs: float, n_texts: int, prompt_tokens: float,
                          output_tokens: float, batched: bool) -> float:
    """Seconds for one pass over ``n_texts`` (the formula in the module docstring)."""
    prefill = 2 * params_b * 1e9 * prompt_tokens / (gpus_per_node * tflops * 1e12 * U_PREFILL)
    per_token = params_b * 1e9 * bytes_per_param / (gpus_per_node * bandwidth_gbs * 1e9 * U_DECODE)
    if batched:
        return n_texts * prefill + output_tokens * per_token
    return n_texts * (prefill + output_tokens * per_token)


def power_w(cell: Cell, load: float) -> float:
    c = cell.settings.cluster
    per_node = (cell.placement.gpus_per_node * (c.gpu_power_w or 0.0) * load + (c.cpu_power_w or 0.0)
                + RAM_W_PER_GB * (c.ram_gb or 0.0))
    return per_node * cell.placement.nodes


_TEXTS: dict[str, tuple[float, tuple[str, ...]] | None] = {}


def _texts(cell: Cell) -> tuple[float, tuple[str, ...]] | None:
    """Mean characters per text and the categories of the cell's dataset (None: not readable here)."""
    if cell.settings.dataset.source == "hf":
        return None  # planning never reaches for the hub
    key = json.dumps(dataclasses.asdict(cell.settings.dataset), sort_keys=True, default=str)
    if key not in _TEXTS:
        from energy_hpc.data import load_corpus
        from energy_hpc.errors import UserError

        try:
            corpus = load_corpus(cell.settings.dataset)
            _TEXTS[key] = (float(corpus.pool["text"].str.len().mean()), tuple(corpus.labels))
        except (UserError, OSError, ImportError):
            _TEXTS[key] = None
    return _TEXTS[key]


def prompt_tokens(cell: Cell) -> tuple[float, str]:
    """Tokens per request: the paper's prompt around a mean text, and what they were counted from."""
    from energy_hpc.classifiers.llm.prompt import build_messages

    read = _texts(cell)
    chars, categories, note = (*read, "") if read else (DEFAULT_TEXT_CHARS, tuple(f"c{i}" for i in range(10)),
                                                       f"; texts not readable here: {DEFAULT_TEXT_CHARS:.0f} chars assumed")
    model = cell.settings.model
    frame = build_messages("", list(categories), getattr(model, "instruction_language", "en"), [])
    frame_chars = sum(len(m["content"]) for m in frame)
    few_shot = getattr(model, "few_shot", 0) * chars
    return (frame_chars + chars + few_shot) / CHARS_PER_TOKEN, note


def from_first_principles(cell: Cell) -> Estimate | str:
    from energy_hpc.cluster.placement import BYTES_PER_PARAM

    s, c, model = cell.settings, cell.settings.cluster, cell.settings.model
    if model.kind != "llm" or not getattr(model, "params_billion", None):
        return f"no first-principles model for {model.kind} models; calibrate with records"
    if not (c.gpu_tflops_bf16 and c.gpu_mem_bandwidth_gbs and c.gpu_power_w) or not cell.placement.gpus:
        return (f"no GPU datasheet facts for cluster {c.name} (gpu_tflops_bf16, "
                "gpu_mem_bandwidth_gbs, gpu_power_w); first-principles estimate unavailable")
    tokens, note = prompt_tokens(cell)
    lo_out, hi_out = OUTPUT_TOKENS.get(model.family, OUTPUT_TOKENS["llm"])
    max_tokens = getattr(model, "max_tokens", 64)
    outs = (min(lo_out, max_tokens), min(hi_out or max_tokens, max_tokens))
    n_test = s.dataset.n_test or 200
    args = (model.params_billion, BYTES_PER_PARAM.get(model.dtype.lower(), 2),
            cell.placement.gpus_per_node, cell.placement.nodes, c.gpu_tflops_bf16,
            c.gpu_mem_bandwidth_gbs, n_test, tokens)
    batched = getattr(model, "batching", "batched") == "batched"
    pass_s = tuple(first_principles_pass(*args, out, batched) for out in outs)
    pass_wh = (pass_s[0] * power_w(cell, GPU_LOAD[0]) / 3600, pass_s[1] * power_w(cell, GPU_LOAD[1]) / 3600)
    load_s = model.params_billion * 1e9 * BYTES_PER_PARAM.get(model.dtype.lower(), 2) / LOAD_BYTES_PER_S
    return _whole_cell(cell, pass_s, pass_wh, load_s,  # type: ignore[arg-type]
                       f"first principles: {tokens:.0f} prompt tokens, {outs[0]}–{outs[1]} output "
                       f"tokens per text{note}")


def from_records(cell: Cell, records: Any) -> Estimate | str:
    """Per-text cost of the same model on the same cluster and placement, scaled to this cell."""
    if records is None or len(records) == 0:
        return "nothing measured yet"
    s = cell.settings
    same = records[(records["model"] == s.model.name) & (records["cluster"] == s.cluster.name)
                   & (records["gpus"] == cell.placement.gpus) & (records["nodes"] == cell.placement.nodes)]
    same = same.dropna(subset=["duration_s", "energy_wh", "n_test"])
    if same.empty:
        return f"nothing measured yet for {s.model.name} on {s.cluster.name} with this placement"
    per_s = same["duration_s"] / same["n_test"]
    per_wh = same["energy_wh"] / same["n_test"]
    n_test = s.dataset.n_test or int(same["n_test"].median())
    pass_s = (float(per_s.min()) * n_test, float(per_s.max()) * n_test)
    pass_wh = (float(per_wh.min()) * n_test, float(per_wh.max()) * n_test)
    return _whole_cell(cell, pass_s, pass_wh, 0.0,
                       f"calibrated from {same['cell_id'].nunique()} cell(s)")


def _whole_cell(cell: Cell, pass_s: tuple[float, float], pass_wh: tuple[float, float],
                load_s: float, basis: str) -> Estimate:
    """A pass scaled to the cell: passes to fill the window (LLMs: one), a warm-up, repetitions."""
    s = cell.settings
    llm = s.model.kind == "llm"
    window = max(s.energy.min_window_s, 0.0)

    def passes(one: float) -> int:
        return 1 if llm or one <= 0 else max(s.energy.min_passes, math.ceil(window / one))

    windows = [passes(p) * p for p in pass_s]
    wall = tuple(load_s + s.repetitions * (w + (0.0 if llm else p) + s.energy.idle_baseline_s)
                 for w, p in zip(windows, pass_s, strict=True))
    energy = tuple(s.repetitions * passes(p) * e for p, e in zip(pass_s, pass_wh, strict=True))
    return Estimate(basis=basis, pass_s=pass_s, pass_wh=pass_wh, wall_s=wall,  # type: ignore[arg-type]
                    energy_wh=energy, nodes=cell.placement.nodes, gpus=cell.placement.gpus,  # type: ignore[arg-type]
                    pue=s.cluster.pue, carbon_g_per_kwh=_carbon(s.energy.country))


def _carbon(country: str) -> float | None:
    from energy_hpc.energy.carbon import carbon_intensity_g_per_kwh

    try:
        return carbon_intensity_g_per_kwh(country)
    except Exception:  # noqa: BLE001 - an unknown mix leaves CO2 out, never the estimate
        return None


def estimate(cell: Cell, records: Any = None) -> Estimate:
    """The better of calibrated (records) and first principles; never raises."""
    try:
        calibrated = from_records(cell, records)
        if isinstance(calibrated, Estimate):
            return calibrated
        principled = from_first_principles(cell)
        if isinstance(principled, Estimate):
            return principled
        return Estimate(basis=f"{calibrated}; {principled}")
    except Exception as exc:  # noqa: BLE001 - an estimate must never block a run
        return Estimate(basis=f"estimate failed: {type(exc).__name__}: {exc}")


def records_for(out_dir: str | Path) -> Any:
    """The records an estimate calibrates from (an out_dir's), or None."""
    from energy_hpc.results import find_record_files, load

    files = find_record_files(str(out_dir)) if Path(out_dir).exists() else []
    return load(files) if files else None


def total(estimates: list[Estimate]) -> str:
    """The sweep's total over the cells that have an estimate (and how many have none)."""
    known = [e for e in estimates if e.available]
    if not known:
        return f"estimated total: none of {len(estimates)} cell(s) has an estimate yet"

    def add(pairs: list[tuple[float, float] | None]) -> tuple[float, float]:
        got = [p for p in pairs if p is not None]
        return (sum(p[0] for p in got), sum(p[1] for p in got))

    wall = add([e.wall_s for e in known])
    node_h, gpu_h = add([e.hours(e.nodes) for e in known]), add([e.hours(e.gpus) for e in known])
    kwh = add([(e.energy_wh[0] / 1000, e.energy_wh[1] / 1000) if e.energy_wh else None for e in known])
    co2 = add([e.co2_kg() for e in known])
    missing = len(estimates) - len(known)
    return (f"estimated total for {len(known)} cell(s): {_span(wall, 3600, 'h')} of cell time, "
            f"{_span(node_h, 1, 'node-h')}, {_span(gpu_h, 1, 'GPU-h')}, {_span(kwh, 1, 'kWh')} "
            f"(without PUE), {_span(co2, 1, 'kg CO2')}"
            + (f"; {missing} cell(s) without an estimate" if missing else ""))
