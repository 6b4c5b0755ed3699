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

from pathlib import Path
from typing import TYPE_CHECKING, Any

from energy_hpc.estimate.calibrated import from_records, records_for
from energy_hpc.estimate.values import Estimate, FitGuess, Span, _span
from energy_hpc.estimate.whole_cell import pass_energy, whole_cell

if TYPE_CHECKING:
    from energy_hpc.cell import Cell

CSV_COLUMNS = ["cell_id", "model", "dataset", "cluster", "nodes", "gpus", "runs", "job_time_min",
               "basis", "wall_s_low", "wall_s_high", "node_h_low", "node_h_high", "gpu_h_low",
               "gpu_h_high", "energy_kwh_low", "energy_kwh_high", "pue", "energy_kwh_pue_low",
               "energy_kwh_pue_high", "co2_kg_low", "co2_kg_high", "pass_s_low", "pass_s_high",
               "pass_wh_low", "pass_wh_high", "fit_s_low", "fit_s_high", "fit_wh_low",
               "fit_wh_high", "billed_gpus", "billed_gpu_h_low", "billed_gpu_h_high"]


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
    return whole_cell(cell, guess.pass_s, pass_energy(cell, guess.pass_s), guess.load_s, basis,
                       fit_s=fit_s)


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
    billed = add([e.hours(e.billed_gpus or e.gpus) for e in known])
    parts = [f"{_span(wall, 3600, 'h')} of cell time", _span(node_h, 1, "node-h"),
             _span(gpu_h, 1, "GPU-h") + (f" ({_span(billed, 1, 'GPU-h')} billed: --exclusive jobs "
                                         "hold whole nodes)" if billed[1] > gpu_h[1] else "")]
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
             "fit_s": est.fit_s, "fit_wh": est.fit_wh,
             "billed_gpu_h": est.hours(est.billed_gpus) if est.billed_gpus else
             (0.0, 0.0) if est.available else None}
    row["billed_gpus"] = est.billed_gpus
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
