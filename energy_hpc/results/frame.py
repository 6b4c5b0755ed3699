"""Many records files into one DataFrame: the site's accounting of each cell's job joined on,
unchanged files served from the columnar cache (:mod:`energy_hpc.records_cache`), one row per
node on request."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from energy_hpc.results.store import (
    META_FILE,
    SkippedLine,
    find_record_files,
    out_dir_of,
    read_records_file,
)
from energy_hpc.safe_paths import UnsafePathError, read_text

log = logging.getLogger("energy_hpc.results")

# rows parsed before they become a frame: a record as a dict costs ~10 KB, as a frame's row far
# less, so 10^5 records never sit in memory as dicts at once
CHUNK_ROWS = 10_000


def load(paths_or_globs: str | Path | Iterable[str | Path], *, on_error: str = "warn",
         progress: bool = False, cache: bool = True) -> pd.DataFrame:
    """One DataFrame of every record under the given folders, files or globs (see
    :func:`_load`). The cyclic garbage collector pauses meanwhile: decoding 10^5 records makes
    millions of lists and dicts, none in a cycle, and each collection it would trigger walks every
    object the caller already holds (a notebook's earlier frames) — up to half the load's time."""
    import gc

    paused = gc.isenabled()
    gc.disable()
    try:
        return _load(paths_or_globs, on_error=on_error, progress=progress, cache=cache)
    finally:
        if paused:
            gc.enable()


def _load(paths_or_globs: str | Path | Iterable[str | Path], *, on_error: str = "warn",
          progress: bool = False, cache: bool = True) -> pd.DataFrame:
    """One DataFrame of every record under the given folders, files or globs.

    A corrupt line is skipped alone, with a warning naming the file and line
    (``on_error="raise"`` to stop instead); ``frame.attrs["skipped_lines"]`` counts them and
    ``frame.attrs["unreadable_files"]`` counts files that could not be read at all. Files
    unchanged since the last load come from the out_dir's columnar cache
    (:mod:`energy_hpc.records_cache`; ``cache=False`` reads every JSONL line).
    """
    from energy_hpc.records_cache import FILE_COLUMN, FolderCache, file_key

    files = find_record_files(paths_or_globs)
    frames: list[pd.DataFrame] = []
    skipped: list[SkippedLine] = []
    unreadable = 0
    caches: dict[Path, FolderCache] = {}
    kept: dict[Path, dict[str, list[int]]] = {}  # per out_dir: files to cache -> their key
    iterator: Iterable[Path] = files
    if progress and len(files) > 1:
        from tqdm.auto import tqdm

        iterator = tqdm(files, desc="loading records", unit="file")
    order = {str(path): i for i, path in enumerate(files)}
    fresh: list[dict[str, Any]] = []  # rows read from JSONL now, with their record_file
    chunks: list[pd.DataFrame] = []  # ... made into frames every CHUNK_ROWS rows
    for path in iterator:
        root = out_dir_of(path) if cache else None
        folder = None
        if root is not None:
            if root not in caches:
                caches[root], kept[root] = FolderCache(root), {}
            folder = caches[root]
        name = str(path.relative_to(root)) if root is not None else ""
        key = file_key(path, path.with_name(META_FILE)) if folder is not None else None
        if folder is not None:
            folder.seen.add(name)
            if folder.holds(name, key):
                folder.serve(name, str(path))
                continue
        before = len(skipped)
        try:
            file_rows = read_records_file(path, on_error=on_error, skipped=skipped)
        except (OSError, UnsafePathError) as exc:
            if on_error == "raise":
                raise
            log.warning("skipping unreadable %s: %s", path, exc)
            unreadable += 1
            continue
        accounting = _slurm_columns(path)
        for row in file_rows:
            row.update(accounting)
        cached_as = None
        if folder is not None:
            folder.dirty = True  # a file with a skipped line is dropped from the cache
            if key is not None and len(skipped) == before and file_rows:
                kept[root][name] = key  # type: ignore[index]
                cached_as = f"{root}\0{name}"
        for row in file_rows:
            row["record_file"] = str(path)
            row[FILE_COLUMN] = cached_as
        fresh.extend(file_rows)
        if len(fresh) >= CHUNK_ROWS:  # columns hold the values now: the dicts need not live on
            chunks.append(pd.DataFrame(fresh))
            fresh = []
    if fresh:
        chunks.append(pd.DataFrame(fresh))
    del fresh
    fresh_frame = None
    if chunks:  # concatenating copies pointers, not the lists and mappings they point at
        fresh_frame = chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True,
                                                                   sort=False)
        chunks.clear()
        frames.append(fresh_frame)
    for root, folder in caches.items():
        served = folder.served_rows()
        if served is not None:
            frames.append(served)
        elif folder.served_paths():  # a damaged cache: those files from their JSONL after all
            folder.dirty = True
            for path_text in folder.served_paths():
                file_rows = read_records_file(Path(path_text), on_error=on_error, skipped=skipped)
                accounting = _slurm_columns(Path(path_text))
                for row in file_rows:
                    row.update(accounting)
                    row["record_file"] = path_text
                frames.append(pd.DataFrame(file_rows))
            folder.forget_served()
        if folder.dirty:
            rows = None
            if fresh_frame is not None and kept[root]:
                prefix = f"{root}\0"
                hit = fresh_frame[FILE_COLUMN].str.startswith(prefix, na=False)
                mine = fresh_frame if hit.all() else fresh_frame[hit]  # a mask copies every column
                rows = mine.assign(**{FILE_COLUMN: mine[FILE_COLUMN].str.slice(len(prefix))}).drop(
                    columns=["record_file"])
            folder.store(kept[root], rows)
    frames = [f.drop(columns=[FILE_COLUMN], errors="ignore") for f in frames if len(f)]
    if not frames:
        frame = pd.DataFrame()
    elif len(frames) == 1:
        frame = frames[0]
    else:  # back in the files' order, as reading them one by one gives
        frame = pd.concat(frames, ignore_index=True, sort=False)
        position = frame["record_file"].map(order)
        frame = frame.iloc[position.argsort(kind="stable")].reset_index(drop=True)
    frame.attrs["skipped_lines"] = len(skipped)
    frame.attrs["unreadable_files"] = unreadable
    return frame


SLURM_COLUMNS = ("slurm_job_id", "slurm_consumed_energy_wh", "slurm_energy_scope",
                 "slurm_energy_plugin", "slurm_energy_reason", "slurm_job_elapsed_s",
                 "slurm_cells_in_job")


def _slurm_columns(records_file: Path) -> dict[str, Any]:
    """From the cell's meta.json, for each record: the splits planned (``cell_repetitions``: a
    cell with fewer records is incomplete) and the site's accounting of the job that measured it
    (job-level, so the same for every split and every cell of a packed job)."""
    meta_path = Path(records_file).with_name(META_FILE)
    try:
        meta = json.loads(read_text(meta_path)) if meta_path.exists() else {}
        meta = meta if isinstance(meta, dict) else {}
    except (OSError, ValueError, UnsafePathError):
        meta = {}
    planned = meta.get("repetitions")
    cell = {"cell_repetitions": planned} if isinstance(planned, int) else {}
    acct = meta.get("slurm_accounting")
    if not isinstance(acct, dict) or not acct:
        return cell
    return {**cell, "slurm_job_id": acct.get("job_id"),
            "slurm_consumed_energy_wh": acct.get("consumed_energy_wh"),
            "slurm_energy_scope": acct.get("scope"), "slurm_energy_plugin": acct.get("plugin"),
            "slurm_energy_reason": acct.get("reason"), "slurm_job_elapsed_s": acct.get("elapsed_s"),
            "slurm_cells_in_job": acct.get("cells_in_job")}


def node_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (split, node): the per-node readings kept inside each record."""
    rows = []
    for _, rec in frame.iterrows():
        for reading in rec.get("node_readings") or []:
            rows.append({"cell_id": rec["cell_id"], "split": rec["split"], **{
                k: v for k, v in reading.items() if k not in ("devices", "info")}})
    return pd.DataFrame(rows)
