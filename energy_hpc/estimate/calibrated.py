"""The calibrated source: earlier records of the same model on the same cluster and placement (any
dataset): their per-text duration and energy per pass and their fit per training text, lowest to
highest, scaled by this cell's test and training sizes, passes and repetitions, widened by
``CALIBRATED_SPREAD`` each way (run-to-run variation) and by the ratio of text lengths when the
records' texts were shorter or longer (between "length does not matter" and "proportional")."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from energy_hpc import columns as col
from energy_hpc.estimate.values import Estimate
from energy_hpc.estimate.whole_cell import text_facts, whole_cell

if TYPE_CHECKING:
    from energy_hpc.cell import Cell

CALIBRATED_SPREAD = 1.25  # calibrated ranges widened by this factor each way: run-to-run variation


def time_key(settings: Any) -> str:
    """What sets a cell's time besides its sizes: every field of the model that defines the
    measurement (steps, epochs, body, decoding, batching, max tokens, …), the embedding model, and
    for models trained per split (adapted) the training size, which does not scale a fixed number
    of steps. Records carry it (``time_key``); calibration uses only records with the same key."""
    import hashlib
    import json

    from energy_hpc.config import identity_dict

    model = identity_dict(settings.model)
    basis: dict[str, Any] = {"model": model}
    if settings.model.family == "adapted":
        basis["n_train"] = settings.dataset.n_train
        basis["test_fraction"] = settings.dataset.test_fraction
    payload = json.dumps(basis, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def from_records(cell: Cell, records: Any) -> Estimate | str:
    """Per-text cost of the same model on the same cluster and placement, scaled to this cell,
    from records whose time-defining settings (:func:`time_key`) are this cell's."""
    if records is None or len(records) == 0:
        return "nothing measured yet"
    needed = {col.CELL_ID, col.MODEL, col.CLUSTER, col.GPUS, col.NODES, col.DURATION_S, col.ENERGY_WH, col.N_TEST}
    if not needed <= set(records.columns):
        return "nothing measured yet (the records lack " + ", ".join(sorted(needed - set(records.columns))) + ")"
    s = cell.settings
    same = records[(records[col.MODEL] == s.model.name) & (records[col.CLUSTER] == s.cluster.name)
                   & (records[col.GPUS] == cell.placement.gpus) & (records[col.NODES] == cell.placement.nodes)]
    from energy_hpc.analysis.summary import attributed_energy, overlapping

    # the cell's own energy, as the summary counts it: attributed beside a neighbour, and
    # nothing learned from a split whose energy could not be attributed (nor its duration)
    same = attributed_energy(same)
    same = same[~overlapping(same)]
    same = same.dropna(subset=[col.DURATION_S, col.ENERGY_WH, col.N_TEST])
    same = same[same[col.N_TEST] > 0]
    if same.empty:
        return f"nothing measured yet for {s.model.name} on {s.cluster.name} with this placement"
    key = time_key(s)
    if col.TIME_KEY in same:
        matching = same[same[col.TIME_KEY] == key]
    else:
        matching = same.iloc[0:0]
    if matching.empty:  # records from before the key was kept say nothing about the settings
        return (f"nothing measured yet for {s.model.name} on {s.cluster.name} with these "
                "settings (earlier cells of it ran other steps, epochs, sizes or decoding)")
    same = matching
    # texts of another length: between "no effect" and "proportional" (per record, when known)
    low_f = high_f = 1.0
    mine = text_facts(cell)
    if mine is not None and col.TEXT_CHARS_MEAN in same:
        ratio = (mine[0] / same[col.TEXT_CHARS_MEAN]).dropna()
        ratio = ratio[ratio > 0]
        if not ratio.empty:
            low_f, high_f = min(1.0, float(ratio.min())), max(1.0, float(ratio.max()))
    per_s = same[col.DURATION_S] / same[col.N_TEST]
    per_wh = same[col.ENERGY_WH] / same[col.N_TEST]
    n_test = s.dataset.n_test or int(same[col.N_TEST].median())
    low_f, high_f = low_f / CALIBRATED_SPREAD, high_f * CALIBRATED_SPREAD
    pass_s = (float(per_s.min()) * n_test * low_f, float(per_s.max()) * n_test * high_f)
    pass_wh = (float(per_wh.min()) * n_test * low_f, float(per_wh.max()) * n_test * high_f)
    load_s = 0.0
    if col.ENGINE_LOAD_S in same:  # an LLM's load, as measured (not in the measured window)
        loads = same[col.ENGINE_LOAD_S].dropna()
        load_s = float(loads.max()) if not loads.empty else 0.0
    split_s = (0.0, 0.0)  # a split's time outside its window (fit, warm-up), as recorded
    if {col.STARTED_AT, col.ENDED_AT, col.WINDOW_S} <= set(same.columns):
        wall = (pd_seconds(same[col.ENDED_AT]) - pd_seconds(same[col.STARTED_AT]) - same[col.WINDOW_S])
        wall = wall.dropna().clip(lower=0)
        if not wall.empty:
            split_s = (float(wall.min()), float(wall.max()))
    fit_s = fit_wh = None  # per training text, as recorded (a fit scales with its texts)
    if {col.FIT_DURATION_S, col.FIT_ENERGY_WH, col.N_TRAIN} <= set(same.columns):
        fits = same.dropna(subset=[col.FIT_DURATION_S, col.FIT_ENERGY_WH, col.N_TRAIN])
        fits = fits[fits[col.N_TRAIN] > 0]
        if not fits.empty:
            n_train = s.dataset.n_train or int(fits[col.N_TRAIN].median())
            per_fit_s = fits[col.FIT_DURATION_S] / fits[col.N_TRAIN] * n_train
            per_fit_wh = fits[col.FIT_ENERGY_WH] / fits[col.N_TRAIN] * n_train
            fit_s = (float(per_fit_s.min()) / CALIBRATED_SPREAD,
                     float(per_fit_s.max()) * CALIBRATED_SPREAD)
            fit_wh = (float(per_fit_wh.min()) / CALIBRATED_SPREAD,
                      float(per_fit_wh.max()) * CALIBRATED_SPREAD)
    return whole_cell(cell, pass_s, pass_wh, load_s,
                       f"calibrated from {same[col.CELL_ID].nunique()} cell(s)", split_s=split_s,
                       warmup_included=True, fit_s=fit_s, fit_wh=fit_wh, fit_in_split=True)


def pd_seconds(stamps: Any) -> Any:
    import pandas as pd

    times = pd.to_datetime(stamps, errors="coerce", utc=True)
    return (times - pd.Timestamp(0, tz="UTC")).dt.total_seconds()  # whatever unit pandas chose


def records_for(out_dir: str | Path) -> Any:
    """The records an estimate calibrates from (an out_dir's), or None."""
    from energy_hpc.results import find_record_files, load

    try:
        files = find_record_files(str(out_dir)) if Path(out_dir).exists() else []
        return load(files, progress=False) if files else None
    except Exception:  # noqa: BLE001 - unreadable history: estimate without it
        return None
