"""A pass and a fit made into the whole cell: the passes that fill the window, the kind's warm-up,
the fit, repetitions, a load and the idle baseline once; their energy at the allocation's power
(:func:`power_w`), and the text facts (length, tokens) every source scales by. The sources
(``calibrated.py``, the kinds' ``llm.py``, ``adapted.py``, ``traditional.py``) all end here."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import TYPE_CHECKING

from energy_hpc.estimate.values import Estimate, Span

if TYPE_CHECKING:
    from energy_hpc.cell import Cell

GPU_LOAD = (0.3, 0.6)  # share of rated GPU power drawn while serving or training (low, high)
RAM_W_PER_GB = 0.375  # the paper's CodeCarbon RAM model
CHARS_PER_TOKEN = 4.0  # no tokenizer offline: a common English/German average
DEFAULT_TEXT_CHARS = 1000.0  # when the dataset cannot be read at planning time


def ram_w(cell: Cell) -> tuple[float, float, str]:
    """A node's RAM power (low, high) as the cell's energy config counts it (``energy.ram_model``):
    the installed CodeCarbon's model of the node's RAM, or the paper's 0.375 W/GB of the job's
    memory (``mem_gb``, else the node's) or of the process's resident set (0 up to the job's)."""
    c, model = cell.settings.cluster, cell.settings.energy.ram_model
    job_gb = c.mem_gb or c.ram_gb or 0.0
    if model == "paper_job":
        return (RAM_W_PER_GB * job_gb,) * 2 + ("0.375 W/GB of the job's memory",)  # type: ignore[return-value]
    if model == "paper_rss":
        return 0.0, RAM_W_PER_GB * job_gb, "0.375 W/GB of the process's memory"
    if not c.ram_gb:
        return 0.0, 0.0, "no ram_gb"
    try:
        from codecarbon.external.ram import RAM

        watts = float(RAM(tracking_mode="machine")._calculate_ram_power(c.ram_gb))
        return watts, watts, "CodeCarbon's RAM model"
    except Exception:  # noqa: BLE001 - another CodeCarbon: its RAM share is left out, and said
        return 0.0, 0.0, "CodeCarbon's RAM model unavailable"


def power_w(cell: Cell, load: float, high: bool = False) -> float:
    """The allocation's power at GPU ``load``: GPUs at that share of rated power, the CPUs' rated
    power, RAM as :func:`ram_w` (its high end when ``high``)."""
    c = cell.settings.cluster
    ram = ram_w(cell)[1 if high else 0]
    per_node = cell.placement.gpus_per_node * (c.gpu_power_w or 0.0) * load + (c.cpu_power_w or 0.0) + ram
    return per_node * cell.placement.nodes


def pass_energy(cell: Cell, pass_s: Span) -> Span | None:
    """Wh of a pass lasting ``pass_s`` (low at the low load, high at the high); None when the
    cluster file states no power at all."""
    if power_w(cell, 1.0, high=True) <= 0:
        return None
    return (pass_s[0] * power_w(cell, GPU_LOAD[0]) / 3600,
            pass_s[1] * power_w(cell, GPU_LOAD[1], high=True) / 3600)


_TEXTS: dict[str, tuple[float, tuple[str, ...]] | None] = {}  # dataset config -> its facts


def text_facts(cell: Cell) -> tuple[float, tuple[str, ...]] | None:
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


def text_tokens(cell: Cell, limit: int | None = None) -> tuple[Span, str]:
    """Tokens per text (low: the mean text; high: twice it, as a batch pads to its longest),
    capped at ``limit``, and a note when the texts could not be read here."""
    read = text_facts(cell)
    note = "" if read is not None else f"; texts not readable here: {DEFAULT_TEXT_CHARS:.0f} chars assumed"
    mean = (read[0] if read is not None else DEFAULT_TEXT_CHARS) / CHARS_PER_TOKEN + 2  # [CLS] [SEP]
    low, high = mean, 2 * mean
    if limit:
        low, high = min(low, limit), min(high, limit)
    return (low, high), note


def whole_cell(cell: Cell, pass_s: Span, pass_wh: Span | None, load_s: float, basis: str,
                split_s: Span = (0.0, 0.0), warmup_included: bool = False,
                fit_s: Span | None = None, fit_wh: Span | None = None,
                fit_in_split: bool = False) -> Estimate:
    """A pass scaled to the cell: per split the passes that fill the window (one, when the
    kind's measurement policy does not repeat passes), the kind's warm-up, the fit and
    ``split_s`` (calibrated: the time recorded outside the window, fit included); repetitions;
    a load and the idle baseline once. Energy: every pass and every fit measured."""
    from energy_hpc.kinds import kind_of

    s = cell.settings
    policy = kind_of(s.model).measurement
    window = max(s.energy.min_window_s, 0.0)
    n_test = s.dataset.n_test or 200

    def passes(one: float) -> int:
        if not policy.repeat_passes or one <= 0:
            return 1
        return max(s.energy.min_passes, math.ceil(window / one))

    def warmup(one: float) -> float:
        if warmup_included or not s.energy.warmup:
            return 0.0
        return one / n_test if policy.warmup == "one_text" else one

    fit_time = (0.0, 0.0) if fit_s is None or fit_in_split else fit_s
    windows = [passes(p) * p for p in pass_s]
    wall = tuple(load_s + s.energy.idle_baseline_s + s.repetitions * (w + warmup(p) + f + x)
                 for w, p, f, x in zip(windows, pass_s, fit_time, split_s, strict=True))
    if fit_s is not None and fit_wh is None and pass_wh is not None:
        fit_wh = pass_energy(cell, fit_s)
    fits = fit_wh if fit_wh is not None else (0.0, 0.0)
    energy = None if pass_wh is None else tuple(
        s.repetitions * (passes(p) * e + f) for p, e, f in zip(pass_s, pass_wh, fits, strict=True))
    return Estimate(basis=basis, pass_s=pass_s, pass_wh=pass_wh, wall_s=wall,  # type: ignore[arg-type]
                    energy_wh=energy, nodes=cell.placement.nodes, gpus=cell.placement.gpus,  # type: ignore[arg-type]
                    billed_gpus=billed_gpus(cell),
                    pue=s.cluster.pue, carbon_g_per_kwh=_carbon(s.energy.country),
                    fit_s=fit_s, fit_wh=fit_wh if fit_s is not None else None)


def billed_gpus(cell: Cell) -> int:
    """GPUs the allocation holds: every GPU of its nodes when the Slurm job is ``--exclusive``
    (what the site bills, e.g. 4 on a Capella node for a 1-GPU cell), else the cell's own."""
    c = cell.settings.cluster
    if cell.on_slurm and cell.shape.exclusive and c.gpus_per_node:
        return max(cell.placement.gpus, c.gpus_per_node * cell.placement.nodes)
    return cell.placement.gpus


def _carbon(country: str) -> float | None:
    from energy_hpc.energy.carbon import carbon_intensity_g_per_kwh

    try:
        return carbon_intensity_g_per_kwh(country)
    except Exception:  # noqa: BLE001 - an unknown mix leaves CO2 out, never the estimate
        return None
