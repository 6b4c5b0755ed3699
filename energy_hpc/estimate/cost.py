"""What a cell will cost before it runs: wall time, node- and GPU-hours, energy and CO2, as ranges.

Two sources; the better one wins and is named (``basis``):

- **calibrated**: earlier records of the same model on the same cluster and placement (any
  dataset): their per-text duration and energy per pass and their fit per training text, lowest
  to highest, scaled by this cell's test and training sizes, passes and repetitions, widened by
  ``CALIBRATED_SPREAD`` each way (run-to-run variation) and by the ratio of text lengths when the
  records' texts were shorter or longer (between "length does not matter" and "proportional");
- **the model kind's own estimate** before anything is measured (:mod:`energy_hpc.kinds`): one
  pass of inference and one split's fit. The built-in kinds': first principles for LLMs
  (``estimate/llm.py``) and adapted encoders (``estimate/adapted.py``), a rule of thumb for the
  traditional pipelines (``estimate/traditional.py``).

Here a pass and a fit become the whole cell: the passes that fill the window, the kind's warm-up,
the fit, repetitions, a load and the idle baseline once; their energy at the allocation's power
(:func:`power_w`). An estimate never blocks a run: a cell without either source gets ``basis``
saying why.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from energy_hpc.estimate.values import (  # noqa: F401 - what an estimate is, re-exported
    Estimate,
    FitGuess,
    PassGuess,
    Span,
    _span,
    midpoint,
)

if TYPE_CHECKING:
    from energy_hpc.cell import Cell

GPU_LOAD = (0.3, 0.6)  # share of rated GPU power drawn while serving or training (low, high)
RAM_W_PER_GB = 0.375  # the paper's CodeCarbon RAM model
CHARS_PER_TOKEN = 4.0  # no tokenizer offline: a common English/German average
DEFAULT_TEXT_CHARS = 1000.0  # when the dataset cannot be read at planning time
CALIBRATED_SPREAD = 1.25  # calibrated ranges widened by this factor each way: run-to-run variation

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


_TEXTS: dict[str, tuple[float, tuple[str, ...]] | None] = {}


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


def from_records(cell: Cell, records: Any) -> Estimate | str:
    """Per-text cost of the same model on the same cluster and placement, scaled to this cell."""
    if records is None or len(records) == 0:
        return "nothing measured yet"
    needed = {"cell_id", "model", "cluster", "gpus", "nodes", "duration_s", "energy_wh", "n_test"}
    if not needed <= set(records.columns):
        return "nothing measured yet (the records lack " + ", ".join(sorted(needed - set(records.columns))) + ")"
    s = cell.settings
    same = records[(records["model"] == s.model.name) & (records["cluster"] == s.cluster.name)
                   & (records["gpus"] == cell.placement.gpus) & (records["nodes"] == cell.placement.nodes)]
    same = same.dropna(subset=["duration_s", "energy_wh", "n_test"])
    same = same[same["n_test"] > 0]
    if same.empty:
        return f"nothing measured yet for {s.model.name} on {s.cluster.name} with this placement"
    # texts of another length: between "no effect" and "proportional" (per record, when known)
    low_f = high_f = 1.0
    mine = text_facts(cell)
    if mine is not None and "text_chars_mean" in same:
        ratio = (mine[0] / same["text_chars_mean"]).dropna()
        ratio = ratio[ratio > 0]
        if not ratio.empty:
            low_f, high_f = min(1.0, float(ratio.min())), max(1.0, float(ratio.max()))
    per_s = same["duration_s"] / same["n_test"]
    per_wh = same["energy_wh"] / same["n_test"]
    n_test = s.dataset.n_test or int(same["n_test"].median())
    low_f, high_f = low_f / CALIBRATED_SPREAD, high_f * CALIBRATED_SPREAD
    pass_s = (float(per_s.min()) * n_test * low_f, float(per_s.max()) * n_test * high_f)
    pass_wh = (float(per_wh.min()) * n_test * low_f, float(per_wh.max()) * n_test * high_f)
    load_s = 0.0
    if "engine_load_s" in same:  # an LLM's load, as measured (not in the measured window)
        loads = same["engine_load_s"].dropna()
        load_s = float(loads.max()) if not loads.empty else 0.0
    split_s = (0.0, 0.0)  # a split's time outside its window (fit, warm-up), as recorded
    if {"started_at", "ended_at", "window_s"} <= set(same.columns):
        wall = (pd_seconds(same["ended_at"]) - pd_seconds(same["started_at"]) - same["window_s"])
        wall = wall.dropna().clip(lower=0)
        if not wall.empty:
            split_s = (float(wall.min()), float(wall.max()))
    fit_s = fit_wh = None  # per training text, as recorded (a fit scales with its texts)
    if {"fit_duration_s", "fit_energy_wh", "n_train"} <= set(same.columns):
        fits = same.dropna(subset=["fit_duration_s", "fit_energy_wh", "n_train"])
        fits = fits[fits["n_train"] > 0]
        if not fits.empty:
            n_train = s.dataset.n_train or int(fits["n_train"].median())
            per_fit_s = fits["fit_duration_s"] / fits["n_train"] * n_train
            per_fit_wh = fits["fit_energy_wh"] / fits["n_train"] * n_train
            fit_s = (float(per_fit_s.min()) / CALIBRATED_SPREAD,
                     float(per_fit_s.max()) * CALIBRATED_SPREAD)
            fit_wh = (float(per_fit_wh.min()) / CALIBRATED_SPREAD,
                      float(per_fit_wh.max()) * CALIBRATED_SPREAD)
    return _whole_cell(cell, pass_s, pass_wh, load_s,
                       f"calibrated from {same['cell_id'].nunique()} cell(s)", split_s=split_s,
                       warmup_included=True, fit_s=fit_s, fit_wh=fit_wh, fit_in_split=True)


def pd_seconds(stamps: Any) -> Any:
    import pandas as pd

    return pd.to_datetime(stamps, errors="coerce", utc=True).astype("int64") / 1e9


def _whole_cell(cell: Cell, pass_s: Span, pass_wh: Span | None, load_s: float, basis: str,
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
                    pue=s.cluster.pue, carbon_g_per_kwh=_carbon(s.energy.country),
                    fit_s=fit_s, fit_wh=fit_wh if fit_s is not None else None)


def from_kind(cell: Cell) -> Estimate | str:
    """The model kind's own estimates (one pass, one split's fit), made into the whole cell."""
    from energy_hpc.kinds import kind_of

    kind = kind_of(cell.settings.model)
    guess = kind.estimate_inference(cell)
    if isinstance(guess, str):
        return guess
    fit = kind.estimate_fit(cell)
    basis = guess.basis
    fit_s = None
    if isinstance(fit, FitGuess):
        fit_s = fit.seconds
        if fit.basis and fit.seconds[1] > 0:
            basis += f"; fit: {fit.basis}"
    else:
        basis += f"; fit not estimated ({fit}): wall time and energy leave it out"
    return _whole_cell(cell, guess.pass_s, pass_energy(cell, guess.pass_s), guess.load_s, basis,
                       fit_s=fit_s)


def _carbon(country: str) -> float | None:
    from energy_hpc.energy.carbon import carbon_intensity_g_per_kwh

    try:
        return carbon_intensity_g_per_kwh(country)
    except Exception:  # noqa: BLE001 - an unknown mix leaves CO2 out, never the estimate
        return None


def estimate(cell: Cell, records: Any = None) -> Estimate:
    """Calibrated from records when there are any, else the model kind's own; never raises."""
    try:
        calibrated = from_records(cell, records)
        if isinstance(calibrated, Estimate):
            return calibrated
        own = from_kind(cell)
        if isinstance(own, Estimate):
            return own
        return Estimate(basis=f"{calibrated}; {own}")
    except Exception as exc:  # noqa: BLE001 - an estimate must never block a run
        return Estimate(basis=f"estimate failed: {type(exc).__name__}: {exc}")


def records_for(out_dir: str | Path) -> Any:
    """The records an estimate calibrates from (an out_dir's), or None."""
    from energy_hpc.results import find_record_files, load

    try:
        files = find_record_files(str(out_dir)) if Path(out_dir).exists() else []
        return load(files, progress=False) if files else None
    except Exception:  # noqa: BLE001 - unreadable history: estimate without it
        return None


def with_estimates(cells: list[Cell]) -> list[Cell]:
    """The cells, each carrying its estimate (made once, from its out_dir's records), for the plan,
    ``pack=auto``, ``--time`` and the records (which keep the estimate they were planned with)."""
    history: dict[str, Any] = {}
    out = []
    for cell in cells:
        if cell.estimate is None:
            if cell.out_dir not in history:
                history[cell.out_dir] = records_for(cell.out_dir)
            cell = cell.with_estimate(estimate(cell, history[cell.out_dir]))
        out.append(cell)
    return out


def record_columns(est: Estimate | None) -> dict[str, Any]:
    """What a record keeps of its cell's estimate: per pass over the test set, as ``duration_s``
    and ``energy_wh`` are, so measured ÷ estimated is a plain ratio."""
    if est is None:
        return {"est_basis": None}
    return {"est_basis": est.basis,
            "est_duration_s_low": est.pass_s[0] if est.pass_s else None,
            "est_duration_s_high": est.pass_s[1] if est.pass_s else None,
            "est_energy_wh_low": est.pass_wh[0] if est.pass_wh else None,
            "est_energy_wh_high": est.pass_wh[1] if est.pass_wh else None,
            "est_fit_duration_s_low": est.fit_s[0] if est.fit_s else None,
            "est_fit_duration_s_high": est.fit_s[1] if est.fit_s else None,
            "est_fit_energy_wh_low": est.fit_wh[0] if est.fit_wh else None,
            "est_fit_energy_wh_high": est.fit_wh[1] if est.fit_wh else None}


def total(estimates: list[Estimate]) -> str:
    """The sweep's total over the cells that have an estimate (and how many have none)."""
    known = [e for e in estimates if e.available]
    if not known:
        return f"estimated total: none of {len(estimates)} cell(s) has an estimate yet"

    def add(pairs: list[Span | None]) -> Span:
        got = [p for p in pairs if p is not None]
        return (sum(p[0] for p in got), sum(p[1] for p in got))

    wall = add([e.wall_s for e in known])
    node_h, gpu_h = add([e.hours(e.nodes) for e in known]), add([e.hours(e.gpus) for e in known])
    parts = [f"{_span(wall, 3600, 'h')} of cell time", _span(node_h, 1, "node-h"),
             _span(gpu_h, 1, "GPU-h")]
    powered = [e for e in known if e.energy_wh is not None]
    if powered:
        with_pue = [e.kwh(with_pue=True) for e in powered]
        pue_text = (f", {_span(add(with_pue), 1, 'kWh')} with PUE" if all(with_pue)
                    else f"; {sum(p is not None for p in with_pue)} cell(s) state a PUE"
                    if any(with_pue) else "")
        of = f" for {len(powered)} of them" if len(powered) < len(known) else ""
        parts.append(f"{_span(add([e.kwh() for e in powered]), 1, 'kWh')}{of} (without PUE{pue_text})")
        co2 = [e.co2_kg() for e in powered]
        if any(co2):
            parts.append(_span(add(co2), 1, "kg CO2"))
    else:
        parts.append("energy unknown (no power facts in the cluster files)")
    missing = len(estimates) - len(known)
    return (f"estimated total for {len(known)} cell(s): {', '.join(parts)}"
            + (f"; {missing} cell(s) without an estimate" if missing else ""))


CSV_COLUMNS = ["cell_id", "model", "dataset", "cluster", "nodes", "gpus", "runs", "job_time_min",
               "basis", "wall_s_low", "wall_s_high", "node_h_low", "node_h_high", "gpu_h_low",
               "gpu_h_high", "energy_kwh_low", "energy_kwh_high", "pue", "energy_kwh_pue_low",
               "energy_kwh_pue_high", "co2_kg_low", "co2_kg_high", "pass_s_low", "pass_s_high",
               "pass_wh_low", "pass_wh_high", "fit_s_low", "fit_s_high", "fit_wh_low",
               "fit_wh_high"]


def csv_row(cell: Cell, job_time_min: int | None = None) -> dict[str, Any]:
    """One cell's estimate as a flat row (``python -m energy_hpc.estimate``'s CSV)."""
    est = cell.estimate or Estimate(basis="not estimated")
    row: dict[str, Any] = {
        "cell_id": cell.cell_id, "model": cell.settings.model.name,
        "dataset": cell.settings.dataset.name, "cluster": cell.settings.cluster.name,
        "nodes": cell.placement.nodes, "gpus": cell.placement.gpus,
        "runs": "slurm" if cell.on_slurm else "here", "job_time_min": job_time_min,
        "basis": est.basis, "pue": est.pue}
    pairs = {"wall_s": est.wall_s, "node_h": est.hours(est.nodes),
             "gpu_h": est.hours(est.gpus) if est.gpus else (0.0, 0.0) if est.available else None,
             "energy_kwh": est.kwh(), "energy_kwh_pue": est.kwh(with_pue=True),
             "co2_kg": est.co2_kg(), "pass_s": est.pass_s, "pass_wh": est.pass_wh,
             "fit_s": est.fit_s, "fit_wh": est.fit_wh}
    for name, pair in pairs.items():
        row[f"{name}_low"], row[f"{name}_high"] = pair if pair is not None else (None, None)
    return row


def write_csv(path: str | Path, cells: list[Cell], job_times: dict[str, int] | None = None) -> Path:
    """Every cell's estimate, one row each (:data:`CSV_COLUMNS`), written whole or not at all."""
    import csv
    import io

    from energy_hpc.results import atomic_write_text

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for cell in cells:
        writer.writerow(csv_row(cell, (job_times or {}).get(cell.cell_id)))
    path = Path(path)
    atomic_write_text(path, buf.getvalue())
    return path
