"""A columnar cache beside the records: ``<out_dir>/.records_cache/`` (Parquet + a manifest).

The JSONL records stay the crash-safe truth; the cache only saves parsing them again. It holds,
per records file, the rows :func:`energy_hpc.results.load` made of it, keyed by the file's size
and modification time **and** its cell's meta.json's (the site accounting lands there after the
job): any change to either, an appended line, a corrupted one, and that file is read from JSONL
again. Files with a skipped line are never cached (their warning is given on every load). A cache
that cannot be read or written is ignored (logged at debug level): loading never fails for it.
It needs pyarrow (the ``analysis`` extra); without it every load reads the JSONL.

Lists and mappings (flags, node readings, the classifier's description) are stored as JSON text
in Parquet and decoded on reading, so they come back exactly as the JSONL gave them.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from energy_hpc.safe_paths import umask

log = logging.getLogger(__name__)

try:  # parses and writes the cached JSON columns 3-5x faster; the standard library's otherwise
    import orjson

    _loads = orjson.loads

    def _dumps(value: Any) -> str:
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
except ImportError:  # pragma: no cover - orjson comes with the analysis extra
    _loads = json.loads
    _dumps = json.dumps

CACHE_DIR = ".records_cache"
DATA_FILE = "records.parquet"
MANIFEST = "manifest.json"
CACHE_VERSION = 1
FILE_COLUMN = "_cache_file"
DECODE_ROWS = 10_000  # JSON text decoded this many rows at a time: one string per block, not all


def available() -> bool:
    """The cache needs pyarrow (the ``analysis`` extra); without it every load reads the JSONL."""
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def file_key(records_file: Path, meta_file: Path) -> list[int] | None:
    try:
        st = records_file.stat()
    except OSError:
        return None
    try:
        mt = meta_file.stat()
        meta = [mt.st_size, mt.st_mtime_ns]
    except OSError:
        meta = [-1, -1]
    return [st.st_size, st.st_mtime_ns, *meta]


class FolderCache:
    """One out_dir's cache: what it holds, and the rows of files still as they were."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / CACHE_DIR
        self.manifest: dict[str, Any] = {}
        self.raw: pd.DataFrame | None = None  # as stored: JSON columns still text
        self.dirty = False
        self.seen: set[str] = set()  # files this load looked at
        self._served: dict[str, str] = {}  # name -> the path it was asked for
        self._read()

    def _linked(self) -> bool:
        """A link where the cache or its files should be: never followed; the cache is unused."""
        linked = [p for p in (self.dir, self.dir / MANIFEST, self.dir / DATA_FILE) if p.is_symlink()]
        if linked:
            log.warning("%s is a symbolic link; the records cache is not used (remove it)", linked[0])
        return bool(linked)

    def _read(self) -> None:
        if self._linked():
            return
        try:
            manifest = json.loads((self.dir / MANIFEST).read_text())
            if manifest.get("version") != CACHE_VERSION:
                return
            raw = pd.read_parquet(self.dir / DATA_FILE)
            import pyarrow as pa

            pa.default_memory_pool().release_unused()  # the Arrow table is pandas' now
            if FILE_COLUMN not in raw:
                return
        except Exception as exc:  # noqa: BLE001 - a cache is never needed: read the JSONL instead
            if (self.dir / MANIFEST).exists():
                log.debug("records cache in %s unreadable (%s); reading the records", self.dir, exc)
            return
        self.manifest, self.raw = manifest, raw

    def holds(self, name: str, key: list[int] | None) -> bool:
        """Whether the cache holds this records file (relative name) as it is now."""
        entry = self.manifest.get("files", {}).get(name)
        return self.raw is not None and key is not None and entry is not None and entry == key

    def serve(self, name: str, path: str) -> None:
        self._served[name] = path

    def served_paths(self) -> list[str]:
        return list(self._served.values())

    def forget_served(self) -> None:
        """The served files were read from JSONL after all: not to be kept as stored."""
        self._served.clear()
        self.raw = None

    def served_rows(self) -> pd.DataFrame | None:
        """The rows of every file served from the cache, decoded, with their ``record_file``."""
        if self.raw is None or not self._served:
            return None
        # every stored row, and nothing to write back (no file read afresh): decoded in place,
        # no copy; otherwise the stored text stays for the cache that is written again
        whole = len(self._served) == len(self.manifest.get("files", {})) and not self.dirty
        if whole:
            rows = self.raw
        else:
            rows = self.raw[self.raw[FILE_COLUMN].isin(self._served)].copy()
        try:
            for column in self.manifest.get("json_columns", []):
                if column in rows:  # one parse per block of rows: "[v1,v2,...]"
                    texts = rows[column].astype(object).where(rows[column].notna(),
                                                               "null").tolist()
                    values: list[Any] = []
                    for start in range(0, len(texts), DECODE_ROWS):
                        values += _loads("[" + ",".join(texts[start:start + DECODE_ROWS]) + "]")
                    del texts
                    rows[column] = pd.Series(values, index=rows.index, dtype=object)
        except ValueError as exc:  # a damaged cache: these files are read from JSONL instead
            log.debug("records cache in %s undecodable (%s)", self.dir, exc)
            return None
        finally:
            if whole:  # decoded in place: the stored text is gone, and nothing is written back
                self.raw = None
        for column in self.manifest.get("null_columns", []):
            rows[column] = pd.Series([None] * len(rows), index=rows.index, dtype=object)
        rows = rows.assign(record_file=rows[FILE_COLUMN].map(self._served))
        return rows.drop(columns=[FILE_COLUMN]).reset_index(drop=True)

    def store(self, fresh: dict[str, list[int]], rows: pd.DataFrame | None = None) -> None:
        """Write the cache again: the files just read (name -> key; their rows in ``rows``, with
        the file's name in ``FILE_COLUMN``: the load's own frame, not a copy of its dicts) and the
        cached files this load did not read again (served, or not asked for), whose stored rows
        are reused as stored; files that were read but could not be cached (a skipped line) drop
        out."""
        try:
            keys: dict[str, Any] = {}
            frames = []
            old_json = set(self.manifest.get("json_columns", [])) if self.raw is not None else set()
            if self.raw is not None:
                files = self.manifest.get("files", {})
                keep = [n for n in files if n not in fresh and (n in self._served or n not in self.seen)]
                if keep:
                    frames.append(self.raw[self.raw[FILE_COLUMN].isin(keep)].copy())
                    keys.update({n: files[n] for n in keep})
            new_json: set[str] = set()
            if rows is not None and len(rows) and fresh:
                # a shallow copy: _encoded replaces columns, never the caller's values
                hit = rows[FILE_COLUMN].isin(fresh)
                mine = (rows if hit.all() else rows[hit]).copy(deep=False)
                new, new_json = _encoded(mine, force=old_json)
                keys.update(fresh)
                if frames:  # a column the new rows need as JSON: the stored rows' too
                    for column in new_json - old_json:
                        if column in frames[0]:
                            frames[0][column] = frames[0][column].map(
                                lambda v: None if _missing(v) else _dumps(v))
                frames.append(new)
            if not frames:
                return
            frame = pd.concat(frames, ignore_index=True, sort=False) if len(frames) > 1 else frames[0]
            json_columns = sorted((old_json | new_json) & set(frame.columns))
            null_columns = [c for c in frame.columns if c not in json_columns
                            and frame[c].dtype == object and frame[c].isna().all()]
            self.dir.mkdir(exist_ok=True)
            if self._linked():
                return
            tmp = _fresh_file(self.dir, DATA_FILE)
            _write_parquet(frame, tmp)
            os.replace(tmp, self.dir / DATA_FILE)
            manifest = {"version": CACHE_VERSION, "json_columns": json_columns,
                        "null_columns": null_columns, "files": keys}
            tmp_m = _fresh_file(self.dir, MANIFEST)
            tmp_m.write_text(json.dumps(manifest))
            os.replace(tmp_m, self.dir / MANIFEST)
        except Exception as exc:  # noqa: BLE001 - a read-only out_dir, a full disk: no cache
            log.debug("records cache in %s not written: %s", self.dir, exc)


WRITE_ROWS = 20_000  # rows turned into Arrow at a time when the cache is written


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """The frame as Parquet, WRITE_ROWS rows at a time under one schema (inferred from the whole
    frame): Arrow never holds a second copy of 10^5 rows at once."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # text columns (JSON included: :func:`_encoded` left no other objects) are strings; the rest
    # inferred from their dtypes, which costs no conversion (inferring an object column would
    # convert all of it at once)
    objects = [c for c in frame.columns if frame[c].dtype == object]
    typed = pa.Schema.from_pandas(frame.drop(columns=objects), preserve_index=False)
    fields = {f.name: f for f in typed} | {c: pa.field(c, pa.string()) for c in objects}
    schema = pa.schema([fields[c] for c in frame.columns])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, len(frame), WRITE_ROWS):
            part = frame.iloc[start:start + WRITE_ROWS]
            writer.write_table(pa.Table.from_pandas(part, schema=schema, preserve_index=False))
    pa.default_memory_pool().release_unused()


def _fresh_file(folder: Path, name: str) -> Path:
    """A new file of ours (``O_EXCL``, so nobody's link) to write and rename over ``name``."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    os.fchmod(fd, 0o666 & ~umask())  # as a plain open would: a group's out_dir stays readable
    os.close(fd)
    return Path(tmp)


def _encoded(frame: pd.DataFrame, force: set[str] = frozenset()) -> tuple[pd.DataFrame, set[str]]:  # type: ignore[assignment]
    """Object columns that are not all strings (lists, mappings, mixed) — and those in ``force``
    — become JSON text; columns with nothing in them stay null."""
    json_columns = set()
    for column in frame.columns:
        if column == FILE_COLUMN or (frame[column].dtype != object and column not in force):
            continue
        values = frame[column].dropna()
        if not len(values):
            continue
        if column not in force and all(isinstance(v, str) for v in values):
            continue
        frame[column] = pd.Series([None if _missing(v) else _dumps(v)
                                   for v in frame[column].tolist()], index=frame.index,
                                  dtype=object)
        json_columns.add(column)
    return frame, json_columns


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
