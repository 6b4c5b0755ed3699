"""results.load's columnar cache never serves a stale row and never stands in the way."""

from __future__ import annotations

import json
import os
import time

import pandas as pd
import pytest

from energy_hpc.records_cache import CACHE_DIR, DATA_FILE, MANIFEST
from energy_hpc.results import load
from tests.conftest import run_cli

pytest.importorskip("pyarrow")


def _norm(frame: pd.DataFrame) -> pd.DataFrame:
    """Missing is missing (JSONL gives None where Parquet gives NaN in a string column)."""
    frame = frame.astype(object)
    return frame.where(frame.notna(), None).reset_index(drop=True)


def _same(out) -> pd.DataFrame:
    truth = load(out, cache=False)
    cached = load(out)
    pd.testing.assert_frame_equal(_norm(cached), _norm(truth))
    return cached


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cache") / "out"
    proc = run_cli("-m", "model=linear_bow,linear_tfidf", "repetitions=3", "progress=false",
                   "energy.min_window_s=0.05", f"out_dir={folder}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return folder


def _touch_later(path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def test_a_warm_load_equals_the_jsonl_and_keeps_lists_as_lists(out):
    first = _same(out)  # writes the cache
    assert (out / CACHE_DIR / DATA_FILE).exists()
    manifest = json.loads((out / CACHE_DIR / MANIFEST).read_text())
    assert len(manifest["files"]) == 2
    warm = _same(out)  # served from it
    assert isinstance(warm["flags"].iloc[0], list) and isinstance(warm["node_readings"].iloc[0], list)
    assert list(warm["record_file"]) == list(first["record_file"])


def test_changed_appended_or_corrupted_records_are_read_again(out):
    load(out)
    path = sorted(out.glob("cells/*/records.jsonl"))[0]
    lines = path.read_text().splitlines()
    changed = json.loads(lines[0])
    changed["accuracy"] = 0.123
    path.write_text("\n".join([json.dumps(changed), *lines[1:]]) + "\n")
    _touch_later(path)
    assert 0.123 in set(_same(out)["accuracy"])
    with open(path, "a") as fh:  # an appended split
        fh.write(json.dumps(dict(changed, split=99, accuracy=0.456)) + "\n")
    frame = _same(out)
    assert 0.456 in set(frame["accuracy"]) and len(frame) == 7
    with open(path, "a") as fh:  # a torn line: skipped and warned, on every load
        fh.write('{"schema_version": 1, "spl')
    frame = load(out)
    assert frame.attrs["skipped_lines"] == 1 and len(frame) == 7
    assert load(out).attrs["skipped_lines"] == 1  # not hidden behind the cache
    path.write_text("\n".join(lines) + "\n")  # as it was
    _touch_later(path)
    assert len(_same(out)) == 6


def test_a_changed_meta_reaches_the_records(out):
    load(out)
    meta = sorted(out.glob("cells/*/meta.json"))[0]
    data = json.loads(meta.read_text())
    data["slurm_accounting"] = {"job_id": "7", "consumed_energy_wh": 1.5, "scope": "node",
                                "plugin": "acct_gather_energy/ipmi", "reason": None,
                                "elapsed_s": 10, "cells_in_job": 1}
    meta.write_text(json.dumps(data))
    time.sleep(0.01)
    frame = _same(out)
    assert set(frame["slurm_consumed_energy_wh"].dropna()) == {1.5}


def test_an_unreadable_cache_is_ignored_and_rebuilt(out, caplog):
    load(out)
    (out / CACHE_DIR / DATA_FILE).write_bytes(b"not parquet at all")
    _same(out)
    (out / CACHE_DIR / MANIFEST).write_text("{broken")
    _same(out)
    raw = pd.read_parquet(out / CACHE_DIR / DATA_FILE)  # readable, but a JSON column damaged
    raw["node_readings"] = "[{broken"
    raw.to_parquet(out / CACHE_DIR / DATA_FILE, index=False)
    _same(out)
    assert json.loads((out / CACHE_DIR / MANIFEST).read_text())["version"] == 1  # rewritten


def test_a_cache_that_cannot_be_written_leaves_loading_alone(out, tmp_path):
    import shutil

    copy = tmp_path / "blocked"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / CACHE_DIR, ignore_errors=True)
    (copy / CACHE_DIR).write_text("a file where the cache folder would go")  # as a full or
    frame = load(copy)  # read-only out_dir would: nothing can be written there
    assert len(frame) == 6 and (copy / CACHE_DIR).is_file()
    pd.testing.assert_frame_equal(_norm(frame), _norm(load(copy, cache=False)))


def test_rows_made_in_blocks_and_a_new_cell_keep_the_cache_whole(out, monkeypatch, tmp_path):
    """Records become frames CHUNK_ROWS at a time and cached text is decoded DECODE_ROWS at a
    time (the memory bound at 10^5 records): the same frame; a cell added after a warm load
    joins the cache beside the files served from it."""
    import shutil

    from energy_hpc import records_cache
    from energy_hpc.results import frame as results_frame

    monkeypatch.setattr(results_frame, "CHUNK_ROWS", 2)
    monkeypatch.setattr(records_cache, "DECODE_ROWS", 2)
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / CACHE_DIR, ignore_errors=True)
    _same(copy)  # first load, in blocks of two rows
    _same(copy)  # warm, decoded two rows at a time
    src = sorted((copy / "cells").iterdir())[0]
    shutil.copytree(src, copy / "cells" / "zz-added-cell")
    frame = _same(copy)
    assert len(frame) == 9
    manifest = json.loads((copy / CACHE_DIR / MANIFEST).read_text())
    assert len(manifest["files"]) == 3  # the two served ones stayed cached
    assert len(_same(copy)) == 9
