"""The measured loop of one cell: data → splits → fit → warm-up → measured predict → records."""

from __future__ import annotations

import dataclasses
import errno
import logging
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from sklearn.metrics import accuracy_score, f1_score

from energy_hpc import RECORD_SCHEMA_VERSION, __version__
from energy_hpc import columns as col
from energy_hpc.cell import CELL_ID_RULE, Cell
from energy_hpc.classifiers import Classifier, ClassifierContext, build_classifier
from energy_hpc.cluster.neighbours import SHARED_FLAG, other_jobs_on_my_nodes, union
from energy_hpc.cluster.placement import Placement
from energy_hpc.config import Settings
from energy_hpc.config.quantization import method_of
from energy_hpc.data import Corpus, Split, load_corpus, make_splits
from energy_hpc.energy import Meter, Reading, create_meters, measure_window
from energy_hpc.energy.attribution import attribution_columns
from energy_hpc.energy.base import PARTS, flag_implausible
from energy_hpc.energy.carbon import carbon_intensity_g_per_kwh, emissions_kg
from energy_hpc.energy.ledger import OVERLAP_FLAG, overlaps_of
from energy_hpc.energy.window import measure_idle, net_of_idle
from energy_hpc.errors import UserError
from energy_hpc.estimate import estimate, record_columns, records_for
from energy_hpc.estimate.calibrated import time_key
from energy_hpc.estimate.whole_cell import billed_gpus
from energy_hpc.interrupts import CellInterrupted, as_interrupted, signals_interrupt
from energy_hpc.kinds import kind_of
from energy_hpc.paper_setup import display_name, weights_of
from energy_hpc.provenance import environment
from energy_hpc.results import CellStore, append_sweep_manifest, atomic_write_text, dumps

log = logging.getLogger(__name__)

INVALID = "\x00invalid"
# a write into the out_dir that fails with one of these is the out_dir's fault
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def quality(truth: list[str], predicted: list[str | None], categories: list[str]) -> dict[str, float]:
    """Accuracy and macro-F1; an answer outside the categories counts as wrong."""
    pred = [p if p is not None else INVALID for p in predicted]
    return {
        "accuracy": float(accuracy_score(truth, pred)),
        "macro_f1": float(f1_score(truth, pred, labels=categories, average="macro", zero_division=0)),
        "invalid_rate": sum(p is None for p in predicted) / len(predicted) if predicted else 0.0,
    }


def rated_power(settings: Settings, placement: Placement) -> dict[str, float | None]:
    """Devices' rated power for this cell's allocation, for flagging implausible readings."""
    c = settings.cluster
    return {
        "cpu": c.cpu_power_w * placement.nodes if c.cpu_power_w else None,
        "gpu": c.gpu_power_w * placement.gpus if c.gpu_power_w and placement.gpus else None,
        "ram": None,
    }


def reading_columns(reading: Reading, passes: int, prefix: str = "") -> dict[str, Any]:
    per = {f"{prefix}{p}_wh": (v / passes if (v := reading.part(p)) is not None else None)
           for p in PARTS}
    energy = reading.energy_wh
    per[f"{prefix}energy_wh"] = energy / passes if energy is not None else None
    return per


def cpu_share_columns(reading: Reading, prefix: str = "") -> dict[str, Any]:
    """Whose CPU work the host did during a window (energy/host_share.py): ``own_cpu_s``,
    ``host_busy_cpu_s``, ``foreign_cpu_share`` and where the own time came from."""
    share = reading.info.get("cpu_share") or {}
    return {f"{prefix}{key}": share.get(key) for key in
            ("own_cpu_s", "host_busy_cpu_s", "foreign_cpu_share", "own_cpu_source",
             "cpu_wait_s", "cpu_self_wait_s", "cpu_contention", "own_cpus",
             "allocated_cpu_share", "own_mem_gb",
             "host_used_mem_gb", "foreign_mem_share")}


def model_facts_of(model: Any) -> dict[str, Any] | None:
    """What an LLM's own files say of it, with where each fact came from (None: not here)."""
    reader = getattr(model, "model_facts", None)
    if reader is None:
        return None
    try:
        facts = reader()
    except UserError:
        return None
    return facts.to_dict() if facts is not None else None


def foreign_gpu_processes(readings: list[Reading]) -> list[dict[str, Any]]:
    """Processes not the job's seen on its GPUs during the window, per node (nvml.py)."""
    seen = {(node or r.node, p.get("gpu"), p.get("pid")): p for r in readings
            for node, info in r.infos() for p in info.get("foreign_gpu_processes") or []}
    return [{**p, "node": key[0]} for key, p in sorted(seen.items(), key=lambda kv: str(kv[0]))]


def counter_checks(readings: list[Reading]) -> list[dict[str, Any]]:
    """The NVML counter-vs-power checks these readings made (per node of a multi-node cell)."""
    return [{**check, "node": node} if node else check for reading in readings
            for node, info in reading.infos() for check in info.get("counter_check") or []]


def build_record(cell: Cell, split: Split, corpus: Corpus, readings: list[Reading], passes: int,
                 scores: dict[str, float], started: str, extra: dict[str, Any]) -> dict[str, Any]:
    settings, placement = cell.settings, cell.placement
    primary = readings[0]
    n_test = len(split.test)
    duration = primary.duration_s / passes
    rec: dict[str, Any] = {
        "schema_version": RECORD_SCHEMA_VERSION,
        "sweep_id": settings.sweep,
        col.CELL_ID: cell.cell_id,
        col.SPLIT: split.index,
        col.SEED: split.seed,
        col.MODEL: settings.model.name,
        col.MODEL_DISPLAY: display_name(settings.model),
        col.MODEL_WEIGHTS: weights_of(settings.model),
        col.MODEL_FAMILY: settings.model.family,
        "model_kind": settings.model.kind,
        col.DATASET: settings.dataset.name,
        col.N_TRAIN: len(split.train),
        col.N_TEST: n_test,
        col.N_CLASSES: len(corpus.labels),
        col.DECODING: getattr(settings.model, "decoding", None),
        col.BATCHING: getattr(settings.model, "batching", None),
        col.FEW_SHOT: getattr(settings.model, "few_shot", None),
        col.THINKING_TOKENS: getattr(settings.model, "thinking_tokens", None),
        col.CLUSTER: settings.cluster.name,
        col.GPU_TYPE: settings.cluster.gpu_model,
        col.GPUS: placement.gpus,
        col.NODES: placement.nodes,
        "tensor_parallel": placement.tensor_parallel,
        "pipeline_parallel": placement.pipeline_parallel,
        **scores,
        col.DURATION_S: duration,
        **reading_columns(primary, passes),
        "cpu_method": primary.methods.get("cpu"),
        "gpu_method": primary.methods.get("gpu"),
        "ram_method": primary.methods.get("ram"),
        "energy_method": primary.meter,
        col.AVG_POWER_W: primary.avg_power_w,
        col.PASSES: passes,
        col.WINDOW_S: primary.duration_s,
        col.WINDOW_ENERGY_WH: primary.energy_wh,
        col.SAMPLES: primary.samples,
        "country": settings.energy.country,
        col.CARBON_INTENSITY: carbon_intensity_g_per_kwh(settings.energy.country),
        "flags": list(primary.flags) + (["gpus_held_idle"] if placement.gpus_idle else []),
        col.GPUS_IDLE: placement.gpus_idle,
        # what the job held and the site bills: every GPU of its nodes when --exclusive
        "billed_gpus": billed_gpus(cell),
        "job_exclusive": bool(cell.on_slurm and cell.shape.exclusive),
        "gpu_memory_check": placement.memory_check,
        col.QUANTIZATION: method_of(settings.model),
        "serving": placement.serving,
        "kv_concurrency": placement.concurrency,
        "dropped_rows": sum(corpus.dropped.values()),
        "dataset_fingerprint": corpus.fingerprint,
        "train_fingerprint": split.train_fingerprint,
        "test_fingerprint": split.test_fingerprint,
        col.TEXT_CHARS_MEAN: float(split.test["text"].str.len().mean()) if n_test else None,
        col.TIME_KEY: time_key(settings),
        **record_columns(cell.estimate),
        col.STARTED_AT: started,
        col.ENDED_AT: _now(),
    }
    energy = rec[col.ENERGY_WH]
    rec[col.ENERGY_PER_SAMPLE_WH] = energy / n_test if energy is not None and n_test else None
    rec[col.EMISSIONS_KG] = emissions_kg(energy, settings.energy.country)
    for reading in readings:
        rec.update(reading_columns(reading, passes, prefix=f"{reading.meter}_"))
        rec[f"{reading.meter}_flags"] = list(reading.flags)
    versions = {info.get("codecarbon_version") for r in readings for _, info in r.infos()}
    versions.discard(None)
    rec["codecarbon_version"] = ",".join(sorted(versions)) or None
    rec["energy_hpc_version"] = __version__
    rec["node_readings"] = primary.info.get("node_readings") or [
        {**primary.to_dict(), "energy_wh": primary.energy_wh}]
    rec["hosts"] = sorted({r.get("node") for r in rec["node_readings"] if r.get("node")})
    rec["nvml_counter_check"] = counter_checks(readings) or None
    rec.update(extra)
    return rec


class CellRunner:
    """Runs one cell: the meters and the classifier are made once, each split measured in turn."""

    def __init__(self, cell: Cell, meters: list[Meter] | None = None,
                 ray_address: str | None = None) -> None:
        self.cell = cell
        self.settings = cell.settings
        self.placement = cell.placement
        self.store = CellStore(cell.out_dir, cell.cell_id)
        self._meters = meters
        self.ray_address = ray_address
        self.held_by: str | None = None  # set when another run holds the cell's lock
        self.model_facts: dict[str, Any] | None = None  # read once per cell, kept in each record

    def run(self) -> list[dict[str, Any]]:
        try:
            return self._run_locked()
        except OSError as exc:  # the lock, a record, meta.json: the out_dir filled or turned read-only
            if not self._out_dir_fault(exc):
                raise
            try:
                kept = len(self.store.done_splits())
            except (OSError, UserError):
                kept = 0
            raise UserError(
                f"out_dir={self.settings.out_dir}: cannot write cell {self.cell.cell_id} "
                f"({self.cell.label()}): {exc.strerror or exc}"
                f"{f' ({exc.filename})' if exc.filename else ''}; "
                f"{kept} of {self.settings.repetitions} split(s) "
                "are kept in its records. Free space there (or use out_dir=PATH) and rerun "
                "the same command to resume") from None

    def _run_locked(self) -> list[dict[str, Any]]:
        with self.store.lock() as mine:
            if not mine:
                self.held_by = self.store.lock_holder()
                log.warning("cell %s is being measured by another run (%s); not measuring it twice",
                            self.cell.cell_id, self.held_by)
                return self.store.records()
            try:
                with signals_interrupt():
                    return self._run()
            except CellInterrupted:
                raise
            except KeyboardInterrupt as exc:
                raise CellInterrupted(as_interrupted(exc).signum, self.cell.cell_id,
                                      self.cell.label(), len(self.store.done_splits()),
                                      self.settings.repetitions) from None

    def _check_resume(self, recorded: list[dict[str, Any]], now: dict[str, Any]) -> None:
        """Refuse to add splits measured on other inputs than the recorded ones: what defines the
        measurement but is not in the cell id (the dataset file's rows, the weights resolved)."""
        changed = []
        for key, value in now.items():
            before = {r.get(key) for r in recorded if r.get(key) is not None}
            if before and before != {value}:
                was = ", ".join(sorted(map(str, before)))
                changed.append(f"{key} was {was} in the {len(recorded)} recorded split(s), now "
                               f"{value}")
        if changed:
            raise UserError(
                f"cell {self.cell.cell_id} ({self.cell.label()}): its inputs changed since its "
                f"splits were recorded ({'; '.join(changed)}); resuming would mix two inputs in one "
                "cell. Rerun with force=true to measure it again from split 0 (or restore the "
                "inputs to resume)")

    def _out_dir_fault(self, exc: OSError) -> bool:
        """Whether an OSError is the out_dir's (full, quota, read-only; denied there), not,
        say, a dataset or weights file that could not be read."""
        from pathlib import Path

        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            return True
        if exc.errno in WRITE_ERRNOS and exc.filename:
            out = Path(self.settings.out_dir).resolve()
            return out == Path(str(exc.filename)).resolve() or out in Path(str(exc.filename)).resolve().parents
        return False

    def _run(self) -> list[dict[str, Any]]:
        s, cell_id = self.settings, self.cell.cell_id
        if s.force:
            self.store.clear()
        elif self.store.is_complete(s.repetitions):
            log.info("cell %s already complete in %s; skipping (force=true reruns it)",
                     cell_id, self.store.dir)
            return self.store.records()
        if self.cell.estimate is None:  # planned without one (a notebook's compose_cell)
            self.cell = self.cell.with_estimate(estimate(self.cell, records_for(s.out_dir)))
        corpus, splits = _data(s)
        recorded = self.store.records()
        done = {int(r["split"]) for r in recorded}
        if recorded:
            self._check_resume(recorded, {"dataset_fingerprint": corpus.fingerprint,
                                          col.MODEL_WEIGHTS: weights_of(s.model)})
        n_todo = len(splits) - sum(0 <= i < len(splits) for i in done)
        # drawn one at a time: memory does not grow with the repetition count
        todo = (splits[i] for i in range(len(splits)) if i not in done)
        if done:
            log.info("cell %s: %d split(s) already recorded, measuring %d more", cell_id,
                     len(done), n_todo)
        meters = self._meters if self._meters is not None else create_meters(s.energy)
        self.model_facts = model_facts_of(s.model)
        # loaded before anything is written: weights that cannot be had, or labels a classifier
        # cannot map, leave no cell folder behind
        t0 = time.perf_counter()
        context = ClassifierContext(categories=tuple(corpus.labels), placement=self.placement,
                                    ray_address=self.ray_address)
        classifier = build_classifier(s.model, context)
        log.info("cell %s: %s loaded in %.1f s (not measured)", cell_id, s.model.display_name,
                 time.perf_counter() - t0)
        self.store.write_meta({
            "cell_id": cell_id, "cell_id_rule": CELL_ID_RULE, "sweep": s.sweep, "complete": False,
            "started_at": _now(), "repetitions": s.repetitions, "choices": s.choices,
            "environment": environment(), "config": s.resolved_dict(),
            "placement": self.placement.to_dict(), "dropped_rows": corpus.dropped,
            "dataset_source": corpus.source, "dataset_fingerprint": corpus.fingerprint,
            "meters": [m.name for m in meters],
            "estimate": dataclasses.asdict(self.cell.estimate),
            "model_facts": self.model_facts,
        })
        append_sweep_manifest(s.out_dir, s.sweep, {"cell_id": cell_id, "choices": s.choices,
                                                   "label": self.cell.label(), "at": _now()})
        idle = measure_idle(meters, s.energy.idle_baseline_s, ledger_label=cell_id) \
            if s.energy.idle_baseline_s else None
        if idle:
            self.store.update_meta(idle_readings=[r.to_dict() for r in idle])
        from tqdm.contrib.logging import logging_redirect_tqdm

        with logging_redirect_tqdm():
            bar = _progress(todo, n_todo, s)
            for split in bar:
                record = self._measure_split(classifier, meters, corpus, split, idle)
                self.store.add_record(record)
                if hasattr(bar, "set_postfix"):
                    wh = record["energy_wh"]
                    bar.set_postfix(acc=f"{record['accuracy']:.3f}",
                                    wh=f"{wh:.3g}" if wh is not None else "n/a")
        self.store.update_meta(complete=True, ended_at=_now())
        return self.store.records()

    def _measure_split(self, classifier: Classifier, meters: list[Meter], corpus: Corpus,
                       split: Split, idle: list[Reading] | None) -> dict[str, Any]:
        s = self.settings
        started = _now()
        neighbours_before = other_jobs_on_my_nodes()
        train_texts, test_texts = split.train["text"].tolist(), split.test["text"].tolist()
        fit = self._measure_fit(classifier, meters, train_texts, split.train["label"].tolist(),
                                split.seed, idle)
        policy = kind_of(s.model).measurement
        if s.energy.warmup:  # the kind's: one request (an LLM, as the paper) or a whole pass
            classifier.predict(test_texts[:1] if policy.warmup == "one_text" else test_texts)
        window = measure_window(meters, lambda: classifier.predict(test_texts),
                                min_window_s=s.energy.min_window_s, min_passes=s.energy.min_passes,
                                max_passes=None if policy.repeat_passes else 1,
                                ledger_label=self.cell.cell_id)
        readings = [flag_implausible(r, rated_power(s, self.placement)) for r in window.readings]
        prediction = window.output
        scores = quality(split.test["label"].tolist(), prediction.labels, corpus.labels)
        extra: dict[str, Any] = {"classifier": classifier.describe(), **prediction.info,
                                 **getattr(classifier, "load_info", {})}
        if self.model_facts is not None:
            extra["model_facts"] = self.model_facts
        fit_warnings = list(getattr(classifier, "fit_warnings", []))
        extra["fit_warnings"] = fit_warnings
        if idle:
            net = net_of_idle(readings[0], idle[0])
            extra["idle_power_w"] = idle[0].avg_power_w
            extra["energy_net_wh"] = net["total"] / window.passes if net["total"] is not None else None
        if prediction.raw is not None:
            self._write_raw(split, prediction)
        extra["overlapped_with"] = overlaps_of(readings[0])
        extra["node_shared_with_jobs"] = union(neighbours_before, other_jobs_on_my_nodes())
        extra.update(cpu_share_columns(readings[0]))
        extra["foreign_gpu_processes"] = foreign_gpu_processes(readings)
        for i, reading in enumerate(readings):  # the primary's unprefixed, each meter's too
            extra.update(attribution_columns(
                reading, idle[i] if idle else None, window.passes, s.energy.max_foreign_share,
                _scope(meters[i]), prefix="" if i == 0 else f"{reading.meter}_"))
        if idle:
            extra["idle_overlapped_with"] = overlaps_of(idle[0])
            extra.update(cpu_share_columns(idle[0], "idle_"))
        rec = build_record(self.cell, split, corpus, readings, window.passes, scores, started,
                           {**extra, **fit})
        if rec["overlapped_with"] and OVERLAP_FLAG not in rec["flags"]:
            rec["flags"] = [*rec["flags"], OVERLAP_FLAG]
        if rec["node_shared_with_jobs"]:
            rec["flags"] = [*rec["flags"], SHARED_FLAG]
        if idle and rec["idle_overlapped_with"]:
            rec["flags"] = [*rec["flags"], "idle_baseline_overlapping_window"]
        if fit_warnings:
            rec["flags"] = [*rec["flags"], "not_converged"]
        log.info(
            "split %d: accuracy %.3f, %s Wh per pass (%s) over %d pass(es) in a %.2f s window; "
            "methods cpu=%s gpu=%s ram=%s%s", split.index, rec["accuracy"],
            f"{rec['energy_wh']:.4g}" if rec["energy_wh"] is not None else "n/a", rec["energy_method"],
            rec["passes"], rec["window_s"], rec["cpu_method"], rec["gpu_method"], rec["ram_method"],
            f"; FLAGS: {rec['flags']}" if rec["flags"] else "")
        return rec

    def _measure_fit(self, classifier: Classifier, meters: list[Meter], texts: list[str],
                     labels: list[str], seed: int, idle: list[Reading] | None = None) -> dict[str, Any]:
        """The split's fit in a window of its own, with the inference's meters: the ``fit_*``
        columns, per fit. A fit shorter than the meters' resolution is repeated inside the
        window (a refit from scratch) unless the classifier says it cannot be; a classifier that
        trains nothing (``fit_note``) is fitted unmeasured and recorded as 0 Wh with the reason."""
        prepare = getattr(classifier, "prepare_fit", None)
        if prepare is not None:
            prepare(seed)
        note = getattr(classifier, "fit_note", None)
        if note:
            classifier.fit(texts, labels)
            return {"fit_energy_wh": 0.0, "fit_duration_s": 0.0, "fit_cpu_wh": 0.0,
                    "fit_gpu_wh": 0.0, "fit_ram_wh": 0.0, "fit_method": note, "fit_passes": 0,
                    "fit_window_s": 0.0, "fit_flags": [], "fit_overlapped_with": [],
                    "fit_energy_wh_attributed": 0.0, "fit_attribution": "alone"}
        repeat = getattr(classifier, "fit_repeatable", True)
        window = measure_window(meters, lambda: classifier.fit(texts, labels),
                                max_passes=None if repeat else 1, ledger_label=self.cell.cell_id)
        reading = flag_implausible(window.readings[0], rated_power(self.settings, self.placement))
        overlapped = overlaps_of(reading)
        flags = list(reading.flags)
        if overlapped and OVERLAP_FLAG not in flags:
            flags.append(OVERLAP_FLAG)
        return {**reading_columns(reading, window.passes, prefix="fit_"),
                **cpu_share_columns(reading, "fit_"),
                **attribution_columns(reading, idle[0] if idle else None, window.passes,
                                      self.settings.energy.max_foreign_share, _scope(meters[0]),
                                      prefix="fit_"),
                "fit_duration_s": reading.duration_s / window.passes,
                "fit_method": reading.meter, "fit_passes": window.passes,
                "fit_window_s": reading.duration_s, "fit_flags": flags,
                "fit_overlapped_with": overlapped}

    def _write_raw(self, split: Split, prediction: Any) -> None:
        path = self.store.raw_answers_path(split.index)
        lines = [dumps({"split": split.index, "row": int(i), "label": lab, "parsed": p, "raw": r})
                 for i, lab, p, r in zip(split.test.index, split.test["label"], prediction.labels,
                                         prediction.raw, strict=True)]
        atomic_write_text(path, "\n".join(lines) + "\n")


def _scope(meter: Meter) -> str:
    """What a meter reads: ``node`` (the whole host: attributed) or ``job``."""
    return getattr(meter, "scope", "node")


_DATA: dict[str, tuple[Corpus, list[Split]]] = {}


def _data(s: Settings) -> tuple[Corpus, list[Split]]:
    """The loaded dataset and its splits, made once per process for every cell (of a packed job,
    or of a local sweep) that uses the same data, sampling, repetitions and seed."""
    import json

    key = json.dumps([dataclasses.asdict(s.dataset), s.repetitions, s.seed], sort_keys=True,
                     default=str)
    if key not in _DATA:
        corpus = load_corpus(s.dataset)
        _DATA.clear()  # one dataset held at a time: a large HF pool is not kept twice
        _DATA[key] = (corpus, make_splits(corpus, s.dataset, s.repetitions, s.seed))
    return _DATA[key]


def _progress(todo: Iterator[Split], total: int, s: Settings) -> Any:
    if not s.progress or not total:
        return todo
    from tqdm.auto import tqdm

    return tqdm(todo, total=total, desc=f"{s.model.name} on {s.dataset.name}", unit="split",
                leave=True)


def run_cell(cell: Cell, **kwargs: Any) -> list[dict[str, Any]]:
    return CellRunner(cell, **kwargs).run()


__all__ = ["CellRunner", "build_record", "quality", "run_cell"]
