from __future__ import annotations

import json
import os
import re
import subprocess

import pandas as pd
import pytest

from energy_hpc import results
from energy_hpc.energy import Reading
from energy_hpc.runner import CellRunner, quality, run_cell


class CountingMeter:
    """A meter for hardware this machine lacks: returns a fixed power so records can be checked exactly."""

    name = "fixed"
    resolution_s = 0.0
    scope = "job"

    def __init__(self, watts=100.0):
        self.watts = watts
        self.starts = 0

    def start(self):
        import time

        self.starts += 1
        self._t0 = time.perf_counter()

    def stop(self):
        import time

        d = time.perf_counter() - self._t0
        return Reading(meter=self.name, duration_s=d, gpu_wh=self.watts * d / 3600, cpu_wh=None,
                       ram_wh=None, methods={"cpu": None, "gpu": "fixed", "ram": None}, node="n1")


def test_measured_loop_writes_one_record_per_split(settings_for):
    s = settings_for("repetitions=3", "energy.min_window_s=0.2")
    meter = CountingMeter(watts=100.0)
    recs = run_cell(s, meters=[meter])
    assert [r["split"] for r in recs] == [0, 1, 2] and meter.starts == 6  # a fit + an inference window
    for r in recs:
        # the fit in a window of its own, per fit (a fit shorter than the window is repeated)
        assert r["fit_method"] == "fixed" and r["fit_passes"] >= 1 and r["fit_energy_wh"] > 0
        assert r["fit_energy_wh"] == pytest.approx(100.0 * r["fit_duration_s"] / 3600)
        assert r["fit_duration_s"] == pytest.approx(r["fit_window_s"] / r["fit_passes"])
        assert r["fit_gpu_wh"] == r["fit_energy_wh"] and r["fit_cpu_wh"] is None
        assert r["passes"] > 1 and r["window_s"] >= 0.2
        assert r["duration_s"] == pytest.approx(r["window_s"] / r["passes"])
        assert r["energy_wh"] == pytest.approx(r["window_energy_wh"] / r["passes"])
        assert r["avg_power_w"] == pytest.approx(100.0)
        assert r["energy_per_sample_wh"] == pytest.approx(r["energy_wh"] / r["n_test"])
        assert r["cpu_wh"] is None and r["cpu_method"] is None  # missing sensor: null, not 0
        assert r["gpu_method"] == "fixed" and r["energy_method"] == "fixed"
        assert 0.5 < r["accuracy"] <= 1.0 and r["invalid_rate"] == 0.0
        assert r["n_train"] == 200 and r["n_test"] == 200 and r["n_classes"] == 4
        assert r["emissions_kg"] == pytest.approx(r["energy_wh"] * 380.95e-6, rel=1e-3)
        assert r["hosts"] == ["n1"] and len(r["test_fingerprint"]) == 16
    store = results.CellStore(s.out_dir, s.cell_id)
    meta = store.meta()
    assert meta["complete"] and meta["config"]["model"]["name"] == "linear_tfidf"
    assert "scikit-learn" in meta["environment"]["packages"]


def test_real_codecarbon_record(settings_for):
    recs = run_cell(settings_for("repetitions=1", "energy.interval_s=1"))
    r = recs[0]
    assert r["energy_method"] == "codecarbon" and r["cpu_method"].startswith("codecarbon-")
    assert r["gpu_wh"] is None and r["energy_wh"] > 0 and r["codecarbon_energy_wh"] == r["energy_wh"]
    # the fit measured by the same real meter, in a window at least its resolution long
    assert r["fit_method"] == "codecarbon" and r["fit_energy_wh"] > 0 and r["fit_window_s"] >= 0.5
    import codecarbon

    assert r["codecarbon_version"] == codecarbon.__version__ and r["energy_hpc_version"]


def test_resume_skips_complete_cells_and_force_reruns(settings_for):
    s = settings_for()
    meter = CountingMeter()
    first = run_cell(s, meters=[meter])
    again = run_cell(s, meters=[meter])
    assert meter.starts == 4 and again == first  # 2 splits x (fit + inference), then nothing
    forced = settings_for("force=true")
    run_cell(forced, meters=[meter])
    assert meter.starts == 8


def test_crash_mid_cell_keeps_finished_splits_and_resumes(settings_for):
    s = settings_for("repetitions=4")

    class Dying(CountingMeter):
        def stop(self):
            if self.starts == 6:  # split 2's inference window (each split: a fit, an inference)
                raise KeyboardInterrupt("preempted")
            return super().stop()

    with pytest.raises(KeyboardInterrupt):
        run_cell(s, meters=[Dying()])
    store = results.CellStore(s.out_dir, s.cell_id)
    assert store.done_splits() == {0, 1} and not store.is_complete(4)
    first_two = store.records()
    meter = CountingMeter()
    recs = run_cell(s, meters=[meter])
    assert meter.starts == 4 and [r["split"] for r in recs] == [0, 1, 2, 3]
    assert recs[:2] == first_two


def test_results_load_across_runs_and_skips_corrupt_files(settings_for, tmp_path, caplog):
    run_cell(settings_for(), meters=[CountingMeter()])
    run_cell(settings_for("model=linear_bow"), meters=[CountingMeter()])
    bad = tmp_path / "out" / "cells" / "broken" / "records.jsonl"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"schema_version": 1, "split": 0}\n{"truncat')
    old = tmp_path / "out" / "cells" / "old" / "records.jsonl"
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"schema_version": 0, "split": 0}) + "\n")
    frame = results.load(str(tmp_path / "out"))
    # only the bad lines are skipped: the intact first line of the broken file is kept
    assert len(frame) == 5 and set(frame["model"].dropna()) == {"linear_tfidf", "linear_bow"}
    assert frame.attrs["skipped_lines"] == 2
    assert "skipping line 2 of" in caplog.text and "broken/records.jsonl: not a JSON record" in caplog.text
    assert "schema version 0 is not supported" in caplog.text
    globbed = results.load(str(tmp_path / "out" / "cells" / "linear_bow*"))
    assert set(globbed["model"]) == {"linear_bow"}
    with pytest.raises(results.RecordError):
        results.load(bad, on_error="raise")
    # the whole reason, with where in the line it broke
    control = tmp_path / "out" / "cells" / "control" / "records.jsonl"
    control.parent.mkdir(parents=True)
    control.write_text('{"schema_version": 1, "split": 0, "model": "a\x01b"}\n')
    with pytest.raises(results.RecordError, match=r"control/records.jsonl:1: not a JSON record "
                                                  r"\(Invalid control character at column 46\)"):
        results.load(control, on_error="raise")
    for missing in (tmp_path / "no" / "such", str(tmp_path / "nothing*")):
        with pytest.raises(FileNotFoundError, match=re.escape(f"results: {missing}: ")):
            results.load(missing)
    nodes = results.node_rows(frame.dropna(subset=["model"]))
    assert set(nodes["node"]) == {"n1"} and len(nodes) == 4


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "r.jsonl"
    results.atomic_write_text(path, "old\n")

    def boom(*a, **k):
        raise OSError("disk full")

    import os

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        results.atomic_write_text(path, "new\n")
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["r.jsonl"]


def test_quality_counts_invalid_answers_as_wrong():
    q = quality(["a", "b", "a", "b"], ["a", None, "a", "a"], ["a", "b"])
    assert q["accuracy"] == 0.5 and q["invalid_rate"] == 0.25
    assert 0 < q["macro_f1"] < 1


def test_records_are_flat_for_pandas(settings_for):
    recs = run_cell(settings_for(), meters=[CountingMeter()])
    frame = pd.DataFrame(recs)
    for col in ("sweep_id", "cell_id", "split", "seed", "model", "model_family", "dataset", "n_train",
                "n_test", "cluster", "gpu_type", "gpus", "nodes", "hosts", "accuracy", "macro_f1",
                "invalid_rate", "duration_s", "energy_wh", "cpu_wh", "gpu_wh", "ram_wh",
                "avg_power_w", "cpu_method", "gpu_method", "ram_method", "passes", "emissions_kg",
                "dataset_fingerprint", "started_at", "ended_at"):
        assert col in frame.columns, col
    assert CellRunner  # the class is the public entry for custom meters


def test_idle_baseline_gives_net_beside_gross(settings_for):
    s = settings_for("repetitions=1", "energy.idle_baseline_s=0.2", "energy.min_window_s=0.2")
    [r] = run_cell(s, meters=[CountingMeter(watts=100.0)])
    assert r["idle_power_w"] == pytest.approx(100.0)
    assert r["energy_net_wh"] == pytest.approx(0.0, abs=1e-9)  # constant power: nothing above idle
    assert r["energy_wh"] > 0  # gross stays the paper's metric
    meta = results.CellStore(s.out_dir, s.cell_id).meta()
    assert meta["idle_readings"][0]["duration_s"] >= 0.2


# --- issue 11: unwritable results, corrupt lines, umask, idle GPUs --------------------------


def test_unwritable_out_dir_is_named_before_any_work(tmp_path):
    from tests.conftest import run_cli

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    proc = run_cli(f"out_dir={blocker}/out", "progress=false")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"out_dir={blocker}/out lies under {blocker}, which is a file, not a directory" in proc.stderr
    proc = run_cli(f"out_dir={blocker}", "progress=false")
    assert proc.returncode == 2 and f"out_dir={blocker} is a file, not a directory" in proc.stderr
    immutable = tmp_path / "frozen"
    immutable.mkdir()
    if subprocess.run(["chattr", "+i", str(immutable)], capture_output=True).returncode != 0:
        return  # not root, or a filesystem without attributes: the first case stands
    try:
        proc = run_cli("-m", "model=linear_bow", f"out_dir={immutable}", "progress=false")
        assert proc.returncode == 2 and "cannot be written (Operation not permitted)" in proc.stderr
    finally:
        subprocess.run(["chattr", "-i", str(immutable)])


def test_a_corrupt_line_costs_only_its_split_which_a_rerun_measures_again(settings_for, caplog):
    s = settings_for("repetitions=3")
    first = run_cell(s, meters=[CountingMeter()])
    store = results.CellStore(s.out_dir, s.cell_id)
    lines = store.records_path.read_text().splitlines()
    lines[1] = lines[1][: len(lines[1]) // 2]  # a crash mid-write on a filesystem without rename
    store.records_path.write_text("\n".join(lines) + "\n")
    assert [r["split"] for r in store.records()] == [0, 2]
    assert not store.is_complete(3)
    meter = CountingMeter()
    again = run_cell(s, meters=[meter])
    assert [r["split"] for r in again] == [0, 1, 2] and meter.starts == 2
    assert again[0]["started_at"] == first[0]["started_at"]
    assert again[2]["started_at"] == first[2]["started_at"]
    corrupt = store.records_path.with_name("records.jsonl.corrupt").read_text()
    assert corrupt == lines[1] + "\n"


def test_records_and_meta_follow_the_umask(settings_for):
    import os
    import stat

    old = os.umask(0o002)
    try:
        s = settings_for("repetitions=1")
        run_cell(s, meters=[CountingMeter()])
    finally:
        os.umask(old)
    store = results.CellStore(s.out_dir, s.cell_id)
    for path in (store.records_path, store.meta_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o664, path


def test_gpus_held_idle_are_in_the_record(settings_for):
    s = settings_for("repetitions=1", "model=linear_bow", "cluster.detect_gpus=false",
                     "cluster.gpus_per_node=1", "gpus=1")
    [rec] = run_cell(s, meters=[CountingMeter()])
    assert rec["gpus"] == 1 and rec["gpus_idle"] and "gpus_held_idle" in rec["flags"]
    [plain] = run_cell(settings_for("repetitions=1", "model=linear_bow"), meters=[CountingMeter()])
    assert plain["gpus"] == 0 and not plain["gpus_idle"] and "gpus_held_idle" not in plain["flags"]


def test_a_model_that_did_not_converge_is_flagged_in_its_record(settings_for, monkeypatch, caplog):
    from sklearn.linear_model import LogisticRegression

    from energy_hpc.classifiers import traditional

    # sklearn's own ConvergenceWarning, made certain by one iteration (the paper's default is 100)
    monkeypatch.setattr(traditional, "make_estimator", lambda model: LogisticRegression(max_iter=1))
    [rec] = run_cell(settings_for("repetitions=1", "model=linear_bow"), meters=[CountingMeter()])
    assert "not_converged" in rec["flags"] and "max_iter" in " ".join(rec["fit_warnings"])
    assert "did not converge" in caplog.text
    monkeypatch.undo()
    [ok] = run_cell(settings_for("repetitions=1", "model=linear_tfidf"), meters=[CountingMeter()])
    assert "not_converged" not in ok["flags"] and ok["fit_warnings"] == []


def test_a_new_meter_is_one_registration(settings_for, monkeypatch):
    from energy_hpc.energy import registry

    class Coarse(CountingMeter):
        resolution_s = 0.3
        scope = "node"

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register_meter("fixed", lambda cfg: Coarse(), Coarse)
    s = settings_for("repetitions=1", "energy.meters=[fixed]", "energy.min_window_s=0")
    [rec] = run_cell(s)
    assert rec["energy_method"] == "fixed" and rec["window_s"] >= 0.3  # its resolution rules
    assert registry.meter_resolution("fixed") == 0.3  # what a multi-node cell's proxy meter uses
    assert registry.reads_whole_node(["fixed"]) and not registry.reads_whole_node(["nvml"])
    assert registry.meter_resolution("codecarbon") == 0.5  # read off the class, not started

    class NoScope:
        name, resolution_s = "bare", 0.0

        def start(self): ...

        def stop(self): ...

    with pytest.raises(TypeError, match="NoScope lacks scope .the Meter protocol"):
        registry.register_meter("bare", lambda cfg: NoScope(), NoScope)
    Coarse.scope = "rack"
    with pytest.raises(ValueError, match="scope='rack'; use one of node, job"):
        registry.register_meter("rack", lambda cfg: Coarse(), Coarse)


def hold_cell_lock(out_dir, cell_id: str) -> subprocess.Popen:
    """Another process holding a cell's lock (as a second sweep on the same out_dir would)."""
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import time\nfrom energy_hpc.results import CellStore\n"
         f"with CellStore({str(out_dir)!r}, {cell_id!r}).lock() as mine:\n"
         "    print(mine, flush=True)\n    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "True"
    return holder


def test_a_cell_another_run_is_measuring_is_not_measured_twice(settings_for, caplog):
    import time

    s = settings_for("repetitions=1")
    holder = hold_cell_lock(s.out_dir, s.cell_id)
    try:
        meter = CountingMeter()
        assert run_cell(s, meters=[meter]) == [] and meter.starts == 0
        assert "being measured by another run" in caplog.text and "pid" in caplog.text
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert len(run_cell(s, meters=[CountingMeter()])) == 1  # the lock died with its holder


@pytest.fixture
def small_filesystem(tmp_path):
    """A real 120 kB filesystem (tmpfs; needs root), so the disk fills up mid-run."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=120k", "tmpfs",
                                            str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_disk_that_fills_mid_run_gives_one_line_and_keeps_the_splits(small_filesystem):
    from energy_hpc.results import CellStore
    from tests.conftest import run_cli

    out = small_filesystem / "out"
    proc = run_cli(f"out_dir={out}", "repetitions=60", "energy.min_window_s=0", "progress=false")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    found = re.fullmatch(rf"energy_hpc: error: out_dir={re.escape(str(out))}: cannot write cell "
                         r"(\S+) \(linear_tfidf on demo @ local\): No space left on device; "
                         r"(\d+) of 60 split\(s\) are kept in its records\. Free space there .*"
                         r"rerun the same command to resume", line)
    assert found, line
    kept = CellStore(out, found.group(1)).done_splits()
    assert len(kept) == int(found.group(2)) > 0 and kept == set(range(len(kept)))


def test_a_sweep_names_the_cell_another_run_holds_and_counts_only_what_it_ran(tmp_path):
    from energy_hpc.cell import compose_cell
    from tests.conftest import run_cli

    out = tmp_path / "out"
    fast = ["repetitions=2", "energy.min_window_s=0.05", "progress=false"]
    held = compose_cell([f"out_dir={out}", "model=linear_bow", *fast])
    holder = hold_cell_lock(out, held.cell_id)
    try:
        proc = run_cli("-m", "model=linear_bow,linear_tfidf,xgboost_bow", f"out_dir={out}", *fast)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 cell(s) run by this command" in proc.stdout
    assert "1 cell(s) not measured by this command: another run holds them" in proc.stdout
    assert re.search(rf"{held.cell_id} \(linear_bow on demo @ local: held by \S+ pid {holder.pid}\)",
                     proc.stdout)
    table = proc.stdout.split("run by this command", 1)[1]
    assert "Linear BoW" not in table.split("not measured by this command")[0]


def test_every_named_column_is_what_the_runner_writes(settings_for):
    """energy_hpc/columns.py names the record's columns once; a real record has each of them
    (those a run writes only in some cells named with the cells that do)."""
    from energy_hpc import columns

    only_some = {columns.ENGINE_LOAD_S: "LLM cells", columns.IDLE_POWER_W: "energy.idle_baseline_s > 0",
                 columns.INVALID_RATE: "LLM cells", columns.OUTPUT_TOKENS: "LLM cells",
                 columns.PROMPT_TOKENS: "LLM cells", columns.SCORE_MARGIN: "decoding=score"}
    [rec] = run_cell(settings_for("repetitions=1"), meters=[CountingMeter()])
    named = {v for k, v in vars(columns).items() if k.isupper() and isinstance(v, str)}
    missing = sorted(named - set(rec) - set(only_some))
    assert not missing, f"named in columns.py but not written by the runner: {missing}"
    assert set(columns.CELL_KEYS + columns.METRICS) <= set(rec)


def test_a_disk_full_before_the_first_split_is_one_line_not_a_traceback(small_filesystem):
    """Full after the start-up check: the lock's own write is where it fails."""
    from energy_hpc.cell import compose_cell
    from energy_hpc.errors import UserError

    out = small_filesystem / "out"
    cell = compose_cell([f"out_dir={out}", "repetitions=2", "progress=false"])
    (out / ".locks").mkdir(parents=True)
    fd = os.open(small_filesystem / "filler", os.O_WRONLY | os.O_CREAT)
    try:  # every free block taken
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    with pytest.raises(UserError, match=r"cannot write cell .*No space left on device; 0 of 2 "
                                        r"split\(s\) are kept.*rerun the same command"):
        from energy_hpc.runner import CellRunner

        CellRunner(cell).run()
