"""Records on disk: one JSON line per measured split, written atomically; loading many runs for notebooks.

Layout under ``out_dir``::

    cells/<cell_id>/records.jsonl   one row per measured split (the record schema)
    cells/<cell_id>/meta.json       run metadata: versions, hosts, resolved config, completion
    cells/<cell_id>/raw/            side files (e.g. raw LLM outputs), not part of the record
    sweeps/<sweep>.jsonl            which cells a sweep ran (for summaries and status)
"""

from __future__ import annotations

from energy_hpc.results.frame import (
    SLURM_COLUMNS,
    load,
    node_rows,
)
from energy_hpc.results.store import (
    CELLS_DIR,
    META_FILE,
    RECORDS_FILE,
    SUPPORTED_SCHEMA_VERSIONS,
    CellStore,
    RecordError,
    SkippedLine,
    append_sweep_manifest,
    atomic_write_text,
    check_writable,
    dumps,
    find_record_files,
    out_dir_of,
    read_records_file,
    read_sweep_manifest,
    slurm_folder,
    sweep_manifest_path,
)

__all__ = ["CELLS_DIR", "CellStore", "META_FILE", "RECORDS_FILE", "RecordError", "SLURM_COLUMNS", "SUPPORTED_SCHEMA_VERSIONS", "SkippedLine", "append_sweep_manifest", "atomic_write_text", "check_writable", "dumps", "find_record_files", "load", "node_rows", "out_dir_of", "read_records_file", "read_sweep_manifest", "slurm_folder", "sweep_manifest_path"]
