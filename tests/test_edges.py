"""Names and links that cannot misplace or destroy files, a ledger that trusts nothing in it,
and inputs refused before anything runs (issue 24)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from energy_hpc.energy.ledger import WindowLedger
from energy_hpc.errors import UserError
from energy_hpc.results import (
    CellStore,
    append_sweep_manifest,
    read_sweep_manifest,
    slurm_folder,
    sweep_manifest_path,
)
from energy_hpc.safe_paths import UnsafePathError, check_name, file_name, inside, open_file
from tests.conftest import run_cli

HOSTILE = ["../../escape", "/abs/path", "a/b", "..", ".", "", ".hidden", "a\0b", "x" * 101,
           "a b", "a\nb", "~user", "$HOME", "ä"]


@pytest.mark.parametrize("name", HOSTILE)
def test_every_path_the_layout_builds_refuses_a_hostile_name(tmp_path, name):
    out = tmp_path / "out"
    with pytest.raises(UserError) as exc:
        check_name("sweep", name)
    assert "sweep=" in str(exc.value) and "letters, digits" in str(exc.value)
    for build in (lambda: CellStore(out, name), lambda: sweep_manifest_path(out, name),
                  lambda: slurm_folder(out, name), lambda: append_sweep_manifest(out, name, {}),
                  lambda: read_sweep_manifest(out, name),
                  lambda: CellStore(out, "ok").ray_dir(name)):
        with pytest.raises(UserError):
            build()
    if name in ("..", ".", "", "a/b", "../../escape", "/abs/path", "a\0b"):
        with pytest.raises(UnsafePathError):
            inside(out, "cells", name)
    assert not any(p for p in tmp_path.rglob("*") if out not in p.parents and p != out)
    # a label read back from records becomes a safe, distinct file name
    safe = file_name(name)
    assert safe and "/" not in safe and safe not in (".", "..") and check_name("f", safe) == safe
    assert file_name(name) != file_name(name + "x")


def test_every_layout_path_stays_under_the_out_dir(tmp_path):
    out = tmp_path / "out"
    store = CellStore(out, "m-d-c-g0n1-abc")
    for path in (store.dir, store.records_path, store.meta_path, store.lock_path,
                 store.raw_answers_path(3), store.ray_dir("123"), sweep_manifest_path(out, "s"),
                 slurm_folder(out, "s")):
        assert out in path.parents, path


@pytest.mark.parametrize("override", ["sweep=../../../escape", "sweep=/tmp/abs", "sweep=a/b",
                                      "dataset.name=../../../../X", "dataset.name=a/b",
                                      "model.name=../m", "cluster.name=c/d"])
def test_a_name_that_is_a_path_is_refused_in_one_line_before_anything_is_written(tmp_path,
                                                                                override):
    result = run_cli(f"out_dir={tmp_path / 'out'}", "repetitions=1", override, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    field = override.split("=", 1)[0]
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and f"{field}=" in lines[0] and "not a valid name" in lines[0], lines
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "hydra" not in p.parts]
    assert written == [], written
    assert not (tmp_path.parent / "escape.jsonl").exists()


def test_status_refuses_a_sweep_that_is_a_path_and_a_missing_folder(tmp_path):
    from energy_hpc.status import main

    (tmp_path / "out").mkdir()
    (tmp_path / "x.jsonl").write_text('{"cell_id": "secret"}\n')
    assert main([str(tmp_path / "out"), "--sweep", "../x"]) == 2
    assert main([str(tmp_path / "nowhere")]) == 2


def _planted(tmp_path: Path) -> Path:
    target = tmp_path / "precious.txt"
    target.write_text("do not touch\n")
    return target


def _unchanged(target: Path) -> None:
    assert target.read_text() == "do not touch\n"
    assert not target.with_name(target.name + ".corrupt").exists()


def test_a_link_where_a_layout_file_should_be_is_refused_and_its_target_untouched(tmp_path):
    out = tmp_path / "out"
    target = _planted(tmp_path)
    store = CellStore(out, "cell-a")
    store.add_record({"schema_version": 1, "split": 0})
    store.write_meta({"complete": False})
    # the lock
    store.lock_path.parent.mkdir(parents=True, exist_ok=True)
    store.lock_path.symlink_to(target)
    with pytest.raises(UnsafePathError, match=r"\.lock is a symbolic link"):
        CellStore(out, "cell-a")
    with pytest.raises(UnsafePathError), store.lock():
        pass
    store.lock_path.unlink()
    # records and meta, for every read, append and replace
    for path, actions in ((store.records_path, (store.records, store.done_splits,
                                                lambda: store.add_record({"schema_version": 1,
                                                                          "split": 1}))),
                          (store.meta_path, (store.meta, lambda: store.update_meta(x=1),
                                             lambda: store.write_meta({})))):
        saved = path.read_text()
        path.unlink()
        path.symlink_to(target)
        for action in actions:
            with pytest.raises(UnsafePathError, match=f"{path.name} is a symbolic link"):
                action()
        _unchanged(target)
        path.unlink()
        path.write_text(saved)
    # a cell folder, the cells folder and the sweeps folder that are links
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "sweeps").symlink_to(elsewhere)
    with pytest.raises(UnsafePathError, match="sweeps is a symbolic link"):
        append_sweep_manifest(out, "s", {"cell_id": "x"})
    assert list(elsewhere.iterdir()) == []
    (out / "cells" / "cell-b").symlink_to(elsewhere)
    with pytest.raises(UnsafePathError, match="cell-b is a symbolic link"):
        CellStore(out, "cell-b")
    # a FIFO never hangs a read
    os.mkfifo(store.dir / "fifo")
    with pytest.raises(UnsafePathError, match="not a regular file"):
        open_file(store.dir / "fifo")


def test_a_linked_records_file_in_a_cell_is_refused_by_the_run_naming_it(tmp_path):
    out = tmp_path / "out"
    first = run_cli(f"out_dir={out}", "repetitions=1", "progress=false", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    [cell] = (out / "cells").iterdir()
    target = _planted(tmp_path)
    (cell / "records.jsonl").unlink()
    (cell / "records.jsonl").symlink_to(target)
    second = run_cli(f"out_dir={out}", "repetitions=1", "progress=false", "force=true",
                     cwd=tmp_path)
    assert second.returncode == 2
    assert "records.jsonl is a symbolic link" in second.stderr.strip().splitlines()[-1]
    _unchanged(target)
    # the report and results.load skip it with a warning, reading nothing through it
    from energy_hpc.results import load

    frame = load(out, cache=False)
    assert frame.empty and frame.attrs["unreadable_files"] == 1


# ---------------------------------------------------------------------------------- the ledger

def _entry(ledger: WindowLedger, name: str, **data) -> Path:
    path = ledger.dir / f"{name}.json"
    path.write_text(json.dumps(data) if not isinstance(data.get("raw"), str) else data["raw"])
    return path


def test_a_malformed_ledger_entry_is_ignored_with_one_warning_naming_it(tmp_path, caplog):
    ledger = WindowLedger(tmp_path)
    ledger._prepare()
    bad = [_entry(ledger, "a", label="x", pid=os.getpid(), host=ledger.host, start="abc",
                  end=None),
           _entry(ledger, "b", raw="{not json"), _entry(ledger, "c", raw="[1, 2]"),
           _entry(ledger, "d", label="x", pid=-4, host=ledger.host, start=1.0, end=None),
           _entry(ledger, "e", label="x", pid=os.getpid(), host=ledger.host, start=float("nan"),
                  end=None)]
    (tmp_path / "f.json").symlink_to(bad[0])
    with caplog.at_level(logging.WARNING, logger="energy_hpc.ledger"):
        for _ in range(3):
            entry = ledger.open("mine")
            assert ledger.close(entry) == []
    warned = [r.getMessage() for r in caplog.records]
    for path in [*bad, tmp_path / "f.json"]:
        assert sum(str(path) in w for w in warned) == 1, (path, warned)


def test_a_planted_entry_naming_a_live_process_it_is_not_flags_nothing(tmp_path):
    ledger = WindowLedger(tmp_path)
    ledger._prepare()
    # pid 1 lives for ever, but started long after "start": 0 — a lie, retired
    planted = _entry(ledger, "planted", label="evil", pid=1, host=ledger.host, start=0,
                     end=None)
    entry = ledger.open("mine")
    assert ledger.close(entry) == []
    assert not planted.exists()
    # an entry closed by its own stated end before this window began
    ended = _entry(ledger, "ended", label="old", pid=os.getpid(), host=ledger.host,
                   start=time.time() - 20, end=time.time() - 10)
    entry = ledger.open("mine")
    assert ledger.close(entry) == []
    assert not ended.exists()
    # a reused pid: a live process that started after the window it supposedly holds
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.5)
        reused = _entry(ledger, "reused", label="gone", pid=child.pid, host=ledger.host,
                        start=time.time() - 3600, end=None)
        entry = ledger.open("mine")
        assert ledger.close(entry) == []
        assert not reused.exists()
    finally:
        child.kill()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a file to another user")
def test_another_users_entry_is_named_with_its_owner_in_the_overlap(tmp_path):
    ledger = WindowLedger(tmp_path)
    entry = ledger.open("mine")
    # another user's live window: a process of theirs, and the entry file theirs
    child = subprocess.Popen(["sleep", "30"], user=4321)
    try:
        time.sleep(0.5)
        theirs = _entry(ledger, "theirs", label="their-cell", pid=child.pid, host=ledger.host,
                        start=time.time() - 0.2, end=None)
        os.chown(theirs, 4321, 4321)
        # the same entry claimed by a file of a third user: not that process's, retired unflagged
        liar = _entry(ledger, "liar", label="liar-cell", pid=child.pid, host=ledger.host,
                      start=time.time() - 0.2, end=None)
        os.chown(liar, 5555, 5555)
        assert ledger.close(entry) == ["liar-cell (uid 5555)", "their-cell (uid 4321)"]
    finally:
        child.kill()


# ------------------------------------------------------------------------------ data integrity

def test_a_resume_whose_dataset_changed_is_refused_and_the_report_flags_mixed_cells(tmp_path):
    import pandas as pd

    from energy_hpc.report import mixed_input_cells
    from energy_hpc.results import load

    data = tmp_path / "x.csv"
    rows = [(f"text {i} about {'good' if i % 2 else 'bad'} things", "good" if i % 2 else "bad")
            for i in range(120)]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(data, index=False)
    out = tmp_path / "out"
    args = ["dataset=file", "dataset.name=x", f"dataset.path={data}", "dataset.n_train=40",
            "dataset.n_test=40", "repetitions=3", f"out_dir={out}", "progress=false",
            "energy.min_window_s=0.05"]
    assert run_cli(*args).returncode == 0
    [cell] = (out / "cells").iterdir()
    records = (cell / "records.jsonl").read_text().splitlines()
    (cell / "records.jsonl").write_text(records[0] + "\n")  # stopped after split 0
    meta = json.loads((cell / "meta.json").read_text())
    (cell / "meta.json").write_text(json.dumps({**meta, "complete": False}))
    data.write_text(data.read_text().replace("things", "stuff"))
    proc = run_cli(*args)
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert "inputs changed" in line and "dataset_fingerprint" in line and "force=true" in line
    assert len((cell / "records.jsonl").read_text().splitlines()) == 1  # nothing added
    forced = run_cli(*args, "force=true")
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert load(out, cache=False)["dataset_fingerprint"].nunique() == 1
    # records mixed by an older version (or by hand) are named by the report
    (cell / "records.jsonl").write_text(records[0] + "\n" + "\n".join(
        (cell / "records.jsonl").read_text().splitlines()[1:]) + "\n")
    assert mixed_input_cells(load(out, cache=False)) == [cell.name]


# --------------------------------------------------------------------- what a new user met

def test_accuracy_is_shown_when_every_split_is_left_out_of_the_energy_figures(capsys):
    import pandas as pd

    from energy_hpc.analysis.summary import format_summary, summarize
    from energy_hpc.launch.executors import print_summary

    rows = [{"model": "linear_bow", "dataset": "demo", "cluster": "local", "gpus": 0, "nodes": 1,
             "split": i, "accuracy": acc, "energy_wh": 1e-4, "duration_s": 0.01,
             "avg_power_w": 20.0, "energy_per_sample_wh": 1e-7, "flags": ["overlapping_window"]}
            for i, acc in enumerate((0.8, 0.9))]
    summary = summarize(pd.DataFrame(rows)).iloc[0]
    assert summary["accuracy_mean"] == pytest.approx(0.85) and summary["accuracy_splits"] == 2
    assert pd.isna(summary["energy_wh_mean"]) and summary["splits"] == 0
    text = format_summary(summarize(pd.DataFrame(rows)))
    assert "2 (0 for energy)" in text and "0.85" in text
    print_summary(rows, "title")
    closing = capsys.readouterr().out.strip().splitlines()[-1]
    assert closing.startswith("2 of 2 split(s) left out of the energy figures")
    assert "--overlapping mark" in closing and "force=true" in closing


@pytest.mark.parametrize("overrides,said", [
    (["seed=-1"], "seed=-1 is not valid with repetitions=10"),
    (["seed=99999999999999999999"], "give a seed from 0 to 4294967286"),
    (["seed=4294967295", "repetitions=2"], "give a seed from 0 to 4294967294"),
    (["repetitions=1e9"], "write it as a whole number without a decimal point or exponent "
                          "(repetitions=1000000000)"),
    (["seed=1e3"], "(seed=1000)"),
])
def test_seeds_and_counts_are_checked_before_anything_runs(tmp_path, overrides, said):
    proc = run_cli(f"out_dir={tmp_path / 'out'}", *overrides)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and said in lines[0], proc.stderr
    assert not (tmp_path / "out" / "cells").exists()


def test_floor_and_within_follow_one_rule(capsys):
    from energy_hpc.analysis.recommend import recommend_all
    from energy_hpc.report import main

    for flag in ("--within", "--floor"):
        for bad in ("-1", "1.5"):
            with pytest.raises(SystemExit) as exc:
                main(["x", "--out", "y", flag, bad])
            assert exc.value.code == 2 and f"{flag}={float(bad)}" in capsys.readouterr().err
    import pandas as pd

    with pytest.raises(ValueError, match="within=-0.1 must lie between 0 and 1"):
        recommend_all(pd.DataFrame(), within=-0.1)


def test_a_saving_and_its_interval_are_printed_at_one_precision():
    from energy_hpc.analysis.recommend import percents

    point, low, high = percents(0.9994, 0.9991, 0.9997)
    assert (low, high) != ("100%", "100%") and low != high
    as_number = [float(t.rstrip("%")) for t in (point, low, high)]
    assert as_number[1] <= as_number[0] <= as_number[2]
    assert percents(0.5, 0.3, 0.7) == ("50%", "30%", "70%")
