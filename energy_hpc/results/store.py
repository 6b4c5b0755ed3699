"""Records on disk: one JSON line per measured split, written atomically; loading many runs for notebooks.

Layout under ``out_dir``::

    cells/<cell_id>/records.jsonl   one row per measured split (the record schema)
    cells/<cell_id>/meta.json       run metadata: versions, hosts, resolved config, completion
    cells/<cell_id>/raw/            side files (e.g. raw LLM outputs), not part of the record
    sweeps/<sweep>.jsonl            which cells a sweep ran (for summaries and status)
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energy_hpc.errors import UserError
from energy_hpc.safe_paths import check_name, inside, open_file, read_text, refuse_link, umask

log = logging.getLogger(__name__)

# The layout on disk, named here only (no other module builds these paths):
#   <out_dir>/cells/<cell_id>/records.jsonl, meta.json, raw/splitNNN.jsonl, ray/<job id>/
#   <out_dir>/.locks/<cell_id>.lock, sweeps/<sweep>.jsonl, slurm/<sweep>/<job id>/,
#   .records_cache/ (energy_hpc.records_cache), hydra/ (Hydra's run folders, config.yaml)
CELLS_DIR = "cells"
RECORDS_FILE = "records.jsonl"
META_FILE = "meta.json"
SUPPORTED_SCHEMA_VERSIONS = (1,)


try:  # orjson (the analysis extra) parses a first load of many records 4x faster
    import orjson
except ImportError:  # pragma: no cover
    orjson = None


def _loads(line: str) -> Any:
    """orjson when installed, the standard library for what orjson refuses but JSON in Python
    reads (NaN written by hand), and for its errors; resolved once, not per line."""
    if orjson is None:  # pragma: no cover
        return json.loads(line)
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)  # the same result, or the standard library's own message


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
    """Write to a temp file in the same folder and rename: readers never see half a file.

    The file gets the mode a plain ``open`` would (0666 less the umask), not mkstemp's 0600, so
    results in a group project directory stay readable by the group.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    refuse_link(path.parent)
    refuse_link(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~umask())
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(out_dir: str | Path) -> None:
    """Fail before any work when results could not be written (read-only, immutable, full)."""
    path = Path(out_dir).expanduser()
    blocking = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        what = "is a file" if blocking == path else f"lies under {blocking}, which is a file"
        raise UserError(f"out_dir={out_dir} {what}, not a directory; records go into a "
                        "directory: choose another with out_dir=PATH")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".energy_hpc-write-check.", dir=path)
        try:
            os.write(fd, b"\0" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(tmp)
    except OSError as exc:
        raise UserError(f"out_dir={out_dir} cannot be written ({exc.strerror or exc}); records "
                        "would be lost. Free space or permissions there, or choose another "
                        "directory with out_dir=PATH") from None


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(_clean_floats(record), default=_json_default, ensure_ascii=False)


class CellStore:
    """The records and metadata of one cell."""

    def __init__(self, out_dir: str | Path, cell_id: str) -> None:
        self.cell_id = check_name("cell_id", cell_id)
        self.dir = inside(out_dir, CELLS_DIR, cell_id)
        self.records_path = inside(self.dir, RECORDS_FILE)
        self.meta_path = inside(self.dir, META_FILE)
        # beside the cells, not in one: a cell that fails before its first record leaves no folder
        self.lock_path = inside(out_dir, ".locks", f"{cell_id}.lock")

    def raw_answers_path(self, split: int) -> Path:
        """An LLM cell's raw answers of one split (one JSON line per test text)."""
        return inside(self.dir, "raw", f"split{split:03d}.jsonl")

    def ray_dir(self, job_id: str) -> Path:
        """The Ray cluster folder of one Slurm job of this cell (head address, logs)."""
        return inside(self.dir, "ray", check_name("job id", str(job_id)))

    def took_s(self) -> float | None:
        """How long a complete earlier run of this cell took (meta.json's start and end); None
        when it is not complete, or meta.json cannot be read."""
        from datetime import datetime

        try:
            meta = self.meta()
            start, end = meta.get("started_at"), meta.get("ended_at")
            if not (meta.get("complete") and start and end):
                return None
            return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
        except (OSError, ValueError, TypeError):
            return None

    def split_wall_s(self) -> float | None:
        """The longest wall time of one recorded split (start to end: its fit, warm-up and
        window), or None when none is recorded."""
        from datetime import datetime

        walls = []
        try:
            for rec in self.records():
                start, end = rec.get("started_at"), rec.get("ended_at")
                if start and end:
                    walls.append((datetime.fromisoformat(end)
                                  - datetime.fromisoformat(start)).total_seconds())
        except (OSError, ValueError, TypeError, UserError):
            return None
        return max(walls) if walls else None

    def records(self) -> list[dict[str, Any]]:
        """The readable records; a corrupt line is skipped (with a warning), so its split counts
        as missing and is measured again."""
        refuse_link(self.records_path)
        if not self.records_path.exists():
            return []
        return read_records_file(self.records_path, on_error="warn")

    def done_splits(self) -> set[int]:
        return {int(r["split"]) for r in self.records()}

    def meta(self) -> dict[str, Any]:
        refuse_link(self.meta_path)
        if not self.meta_path.exists():
            return {}
        return json.loads(read_text(self.meta_path))

    def is_complete(self, repetitions: int) -> bool:
        return self.meta().get("complete", False) and len(self.done_splits()) >= repetitions

    def add_record(self, record: dict[str, Any]) -> None:
        """Append one split's record; a record for the same split replaces the old one.

        Corrupt lines are moved to ``records.jsonl.corrupt`` beside the file, not dropped unseen.
        """
        skipped: list[SkippedLine] = []
        refuse_link(self.records_path)
        existing = (read_records_file(self.records_path, on_error="warn", skipped=skipped)
                    if self.records_path.exists() else [])
        if skipped:
            with open_file(inside(self.dir, RECORDS_FILE + ".corrupt"), "a") as fh:
                fh.writelines(line.text + "\n" for line in skipped)
        kept = [r for r in existing if int(r["split"]) != int(record["split"])]
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

    @contextlib.contextmanager
    def lock(self) -> Iterator[bool]:
        """Hold this cell's lock while measuring it: ``True`` if acquired, ``False`` when another
        run (another sweep on the same out_dir, on any node of a shared filesystem) holds it.
        POSIX record locks (``lockf``) also work over NFS; the kernel drops them when the holder
        dies, so a killed run leaves no stale lock."""
        import fcntl

        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        refuse_link(self.lock_path.parent)
        with open_file(self.lock_path, "a+") as fh:
            try:
                fcntl.lockf(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                yield False
                return
            try:
                fh.seek(0)
                fh.truncate()
                fh.write(f"{os.uname().nodename} pid {os.getpid()}\n")
                fh.flush()
                yield True
            finally:
                fcntl.lockf(fh, fcntl.LOCK_UN)

    def lock_holder(self) -> str:
        try:
            return read_text(self.lock_path).strip() or "unknown"
        except (OSError, UserError):
            return "unknown"

    def clear(self) -> None:
        self.records_path.unlink(missing_ok=True)  # a link is removed, never followed
        if self.meta_path.exists():
            self.update_meta(complete=False)


@dataclass(frozen=True)
class SkippedLine:
    path: str
    lineno: int
    reason: str
    text: str


def read_records_file(path: Path, *, on_error: str = "raise",
                      skipped: list[SkippedLine] | None = None) -> list[dict[str, Any]]:
    """Parse one records file. A bad line raises :class:`RecordError` naming the file and line,
    or, with ``on_error="warn"``, is skipped alone (warned, and added to ``skipped``)."""
    rows = []
    with open_file(path, errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            reason = None
            try:
                row = _loads(line)
            except json.JSONDecodeError as exc:
                reason = f"not a JSON record ({exc.msg.removesuffix(' at')} at column {exc.colno})"
            else:
                if not isinstance(row, dict):
                    reason = "not a JSON object"
                elif row.get("schema_version") not in SUPPORTED_SCHEMA_VERSIONS:
                    reason = (f"record schema version {row.get('schema_version')!r} is not "
                              f"supported by this energy_hpc (reads "
                              f"{', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))})")
                elif not isinstance(row.get("split"), int):
                    reason = "no split number"
            if reason is None:
                rows.append(row)
                continue
            if on_error == "raise":
                raise RecordError(f"{path}:{lineno}: {reason}")
            log.warning("skipping line %d of %s: %s; its split counts as not measured", lineno,
                        path, reason)
            if skipped is not None:
                skipped.append(SkippedLine(str(path), lineno, reason, line.rstrip("\n")))
    return rows


def find_record_files(paths_or_globs: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(paths_or_globs, (str, Path)):
        paths_or_globs = [paths_or_globs]
    found: list[Path] = []
    for item in paths_or_globs:
        matches = [Path(p) for p in glob.glob(str(item), recursive=True)] or [Path(item)]
        if len(matches) == 1 and not matches[0].exists():
            kind = "glob matches nothing" if glob.has_magic(str(item)) else "no such file or folder"
            raise FileNotFoundError(f"results: {item}: {kind}; give a folder of records (an "
                                    "out_dir), a records.jsonl file, or a glob")
        for match in matches:
            if match.is_dir():
                found.extend(sorted(match.rglob(RECORDS_FILE)))
            elif match.is_file():
                found.append(match)
    return sorted(dict.fromkeys(found))


def out_dir_of(records_file: Path) -> Path | None:
    """The out_dir a records file lies in (``<out_dir>/cells/<id>/records.jsonl``), or None."""
    cell = Path(records_file).parent
    return cell.parent.parent if cell.parent.name == CELLS_DIR else None


def slurm_folder(out_dir: str | Path, sweep: str) -> Path:
    """Where submitit keeps a sweep's job scripts and logs (``%j``: the job id)."""
    return inside(out_dir, "slurm", check_name("sweep", sweep)) / "%j"


def sweep_manifest_path(out_dir: str | Path, sweep: str) -> Path:
    return inside(out_dir, "sweeps", f"{check_name('sweep', sweep)}.jsonl")


def append_sweep_manifest(out_dir: str | Path, sweep: str, entry: dict[str, Any]) -> None:
    path = sweep_manifest_path(out_dir, sweep)
    path.parent.mkdir(parents=True, exist_ok=True)
    refuse_link(path.parent)
    with open_file(path, "a") as fh:
        fh.write(dumps(entry) + "\n")


def read_sweep_manifest(out_dir: str | Path, sweep: str) -> list[dict[str, Any]]:
    """One entry per cell of the sweep (later lines add to earlier ones, e.g. the Slurm job id)."""
    path = sweep_manifest_path(out_dir, sweep)
    if not path.exists():
        return []
    cells: dict[str, dict[str, Any]] = {}
    for lineno, line in enumerate(read_text(path, errors="replace").splitlines(), 1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            log.warning("%s: skipping corrupt line %d", path, lineno)
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("cell_id"), str):
            log.warning("%s: skipping line %d: not an entry with a cell_id", path, lineno)
            continue
        cells.setdefault(entry["cell_id"], {}).update(entry)
    return list(cells.values())
