"""Records on disk: one JSON line per measured split, written atomically; loading many runs for notebooks.

Layout under ``out_dir``::

    cells/<cell_id>/records.jsonl   one row per measured split (the record schema)
    cells/<cell_id>/meta.json       run metadata: versions, hosts, resolved config, completion
    cells/<cell_id>/raw/            side files (e.g. raw LLM outputs), not part of the record
    sweeps/<sweep>.jsonl            which cells a sweep ran (for summaries and status)
"""

from __future__ import annotations

import glob
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

RECORDS_FILE = "records.jsonl"
META_FILE = "meta.json"
SUPPORTED_SCHEMA_VERSIONS = (1,)


class RecordError(Exception):
    """A records file that cannot be read as records."""


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _clean_floats(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_floats(v) for v in value]
    return value


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temp file in the same folder and rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(_clean_floats(record), default=_json_default, ensure_ascii=False)


class CellStore:
    """The records and metadata of one cell."""

    def __init__(self, out_dir: str | Path, cell_id: str) -> None:
        self.cell_id = cell_id
        self.dir = Path(out_dir) / "cells" / cell_id
        self.records_path = self.dir / RECORDS_FILE
        self.meta_path = self.dir / META_FILE

    def records(self) -> list[dict[str, Any]]:
        if not self.records_path.exists():
            return []
        return read_records_file(self.records_path)

    def done_splits(self) -> set[int]:
        return {int(r["split"]) for r in self.records()}

    def meta(self) -> dict[str, Any]:
        if not self.meta_path.exists():
            return {}
        return json.loads(self.meta_path.read_text())

    def is_complete(self, repetitions: int) -> bool:
        return self.meta().get("complete", False) and len(self.done_splits()) >= repetitions

    def add_record(self, record: dict[str, Any]) -> None:
        """Append one split's record; a record for the same split replaces the old one."""
        kept = [r for r in self.records() if int(r["split"]) != int(record["split"])]
        kept.append(record)
        kept.sort(key=lambda r: int(r["split"]))
        atomic_write_text(self.records_path, "".join(dumps(r) + "\n" for r in kept))

    def write_meta(self, meta: dict[str, Any]) -> None:
        atomic_write_text(self.meta_path, json.dumps(_clean_floats(meta), indent=2,
                                                     default=_json_default, ensure_ascii=False))

    def update_meta(self, **fields: Any) -> None:
        meta = self.meta()
        meta.update(fields)
        self.write_meta(meta)

    def clear(self) -> None:
        self.records_path.unlink(missing_ok=True)
        if self.meta_path.exists():
            self.update_meta(complete=False)


def read_records_file(path: Path) -> list[dict[str, Any]]:
    """Parse one records file; raise :class:`RecordError` naming the file and line on corruption."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RecordError(f"{path}:{lineno}: not a JSON record ({exc.msg})") from None
            if not isinstance(row, dict):
                raise RecordError(f"{path}:{lineno}: not a JSON object")
            version = row.get("schema_version")
            if version not in SUPPORTED_SCHEMA_VERSIONS:
                raise RecordError(
                    f"{path}:{lineno}: record schema version {version!r} is not supported by this "
                    f"energy_hpc (reads {', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))})"
                )
            rows.append(row)
    return rows


def find_record_files(paths_or_globs: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(paths_or_globs, (str, Path)):
        paths_or_globs = [paths_or_globs]
    found: list[Path] = []
    for item in paths_or_globs:
        matches = [Path(p) for p in glob.glob(str(item), recursive=True)] or [Path(item)]
        for match in matches:
            if match.is_dir():
                found.extend(sorted(match.rglob(RECORDS_FILE)))
            elif match.is_file():
                found.append(match)
    return sorted(dict.fromkeys(found))


def load(paths_or_globs: str | Path | Iterable[str | Path], *, on_error: str = "warn",
         progress: bool = False) -> pd.DataFrame:
    """One DataFrame of every record under the given folders, files or globs.

    Corrupt files are skipped with a warning naming them (``on_error="raise"`` to stop instead).
    """
    files = find_record_files(paths_or_globs)
    rows: list[dict[str, Any]] = []
    iterator: Iterable[Path] = files
    if progress and len(files) > 1:
        from tqdm.auto import tqdm

        iterator = tqdm(files, desc="loading records", unit="file")
    for path in iterator:
        try:
            file_rows = read_records_file(path)
        except (RecordError, OSError, UnicodeDecodeError) as exc:
            if on_error == "raise":
                raise
            log.warning("skipping %s", exc)
            continue
        for row in file_rows:
            row["record_file"] = str(path)
        rows.extend(file_rows)
    return pd.DataFrame(rows)


def node_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (split, node): the per-node readings kept inside each record."""
    rows = []
    for _, rec in frame.iterrows():
        for reading in rec.get("node_readings") or []:
            rows.append({"cell_id": rec["cell_id"], "split": rec["split"], **{
                k: v for k, v in reading.items() if k not in ("devices", "info")}})
    return pd.DataFrame(rows)


def append_sweep_manifest(out_dir: str | Path, sweep: str, entry: dict[str, Any]) -> None:
    path = Path(out_dir) / "sweeps" / f"{sweep}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(dumps(entry) + "\n")


def read_sweep_manifest(out_dir: str | Path, sweep: str) -> list[dict[str, Any]]:
    """One entry per cell of the sweep (later lines add to earlier ones, e.g. the Slurm job id)."""
    path = Path(out_dir) / "sweeps" / f"{sweep}.jsonl"
    if not path.exists():
        return []
    cells: dict[str, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            log.warning("%s: skipping a corrupt line", path)
            continue
        cells.setdefault(entry["cell_id"], {}).update(entry)
    return list(cells.values())
