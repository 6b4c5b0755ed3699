"""No secret value in any file energy_hpc writes: records, meta, Hydra's files, Slurm's scripts."""

from __future__ import annotations

from pathlib import Path

import pytest

from energy_hpc.config import is_secret, redact_text
from tests.conftest import NEEDS_SLURM, run_cli

PLANTED = ("hf_PLANTEDfromTheClusterFile", "hf_PLANTEDfromAnOverride", "hf_PLANTEDfromSetup")
FAST = ["repetitions=2", "energy.min_window_s=0.05", "progress=false"]


def _site(tmp_path: Path, kind: str = "local", extra: str = "") -> Path:
    folder = tmp_path / "hydra_conf" / "cluster"
    folder.mkdir(parents=True)
    (folder / "sec.yaml").write_text(
        f"name: sec\nkind: {kind}\n{extra}env: {{HF_TOKEN: {PLANTED[0]}, EHPC_PLAIN: visible}}\n"
        f"setup: ['export MY_API_KEY={PLANTED[2]}', 'export EHPC_OTHER=1']\n")
    return tmp_path


def _files_holding_a_secret(root: Path) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path}: {token}" for token in PLANTED if token.encode() in data]
    return hits


def test_secret_names_and_assignments():
    assert is_secret("HF_TOKEN") and is_secret("token") and is_secret("AWS_SECRET_ACCESS_KEY")
    assert not is_secret("max_tokens") and not is_secret("tokenizer")
    assert redact_text("+cluster.env.HF_TOKEN=abc model.max_tokens=8") == \
        "+cluster.env.HF_TOKEN=<redacted> model.max_tokens=8"
    assert redact_text("a=1,cluster.env.API_KEY=zz,b=2") == "a=1,cluster.env.API_KEY=<redacted>,b=2"
    assert redact_text('export HF_TOKEN="x y"') == "export HF_TOKEN=<redacted>"


@pytest.mark.parametrize("sweep", [False, True], ids=["run", "sweep"])
def test_no_secret_in_any_file_of_a_local_run(tmp_path, sweep):
    cwd = _site(tmp_path)
    out = tmp_path / "out"
    args = [*(["-m", "model=linear_bow,linear_tfidf"] if sweep else []), "cluster=sec",
            f"out_dir={out}", f"+cluster.env.OTHER_TOKEN={PLANTED[1]}", *FAST]
    proc = run_cli(*args, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not _files_holding_a_secret(out)
    assert not any(t in proc.stdout + proc.stderr for t in PLANTED)
    # Hydra's files are still written, with the secrets redacted and everything else kept
    configs = list(out.glob("hydra/*/.hydra/config.yaml")) + list(out.glob("hydra/*/*/.hydra/config.yaml"))
    assert configs
    text = configs[0].read_text()
    assert "HF_TOKEN: <redacted>" in text and "EHPC_PLAIN: visible" in text and "max_tokens: 32" in text
    overrides = configs[0].with_name("overrides.yaml").read_text()
    assert "+cluster.env.OTHER_TOKEN=<redacted>" in overrides and "cluster=sec" in overrides
    if sweep:
        [multirun] = out.glob("hydra/*/multirun.yaml")
        assert "OTHER_TOKEN=<redacted>" in multirun.read_text()


@pytest.mark.slurm
@NEEDS_SLURM
def test_no_secret_in_any_file_of_a_slurm_job_which_still_gets_it(dev_slurm, tmp_path):
    # the job's setup fails the job unless the secrets arrived in its environment (compared by
    # hash: the check itself must not write them into the script)
    import hashlib

    tests = [f'test "$(printf %s "${name}" | sha256sum | cut -c1-16)" = '
             f'{hashlib.sha256(value.encode()).hexdigest()[:16]}'
             for name, value in zip(("HF_TOKEN", "OTHER_TOKEN", "MY_API_KEY"), PLANTED, strict=True)]
    check = "'" + " && ".join(tests) + " || exit 3'"
    cwd = _site(tmp_path, "slurm", "nodes_available: 2\ntime_limit_min: 10\nmem_gb: 1\n")
    path = cwd / "hydra_conf" / "cluster" / "sec.yaml"
    path.write_text(path.read_text().replace("setup: [", f"setup: [{check}, "))
    out = tmp_path / "out"
    proc = run_cli("cluster=sec", f"out_dir={out}", f"+cluster.env.OTHER_TOKEN={PLANTED[1]}",
                   *FAST, cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert len(list(out.glob("cells/*/records.jsonl"))) == 1
    assert list(out.glob("slurm/*/*/*.sh")) or list(out.glob("slurm/*/*/*.pkl"))
    assert not _files_holding_a_secret(out)


SHAPED = {"HFTOKEN": "hf_PLANTEDwithoutSeparator", "GITHUB_PAT": "ghp_PLANTEDgithubClassic01",
          "DEPLOY": "glpat-PLANTEDgitlabToken99", "AWS_ID": "AKIAPLANTED0AWS0KEY1",
          "RANDOMISH": "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zPLANTED", "MY_PASSWORD": "PLANTEDhunter2"}


def _shaped_site(tmp_path: Path) -> Path:
    folder = tmp_path / "hydra_conf" / "cluster"
    folder.mkdir(parents=True)
    env = ", ".join(f"{k}: {v}" for k, v in SHAPED.items())
    (folder / "sec.yaml").write_text(
        f"name: sec\nkind: local\nenv: {{{env}, HFTOKENISH: kept-PLANTED-not, EHPC_PLAIN: visible}}\n"
        "setup: ['export RAY_AUTH_TOKEN=PLANTEDrayAuth', "
        "'huggingface-cli login --token hf_PLANTEDinsideALine0001', 'export EHPC_OTHER=1']\n")
    return tmp_path


SECRET_VALUES = (*SHAPED.values(), "PLANTEDrayAuth", "hf_PLANTEDinsideALine0001")


@pytest.mark.parametrize("how", [["--cfg", "job"], ["--info", "config"], ["--cfg", "all"],
                                 ["hydra.verbose=true", "repetitions=1", "progress=false"]],
                         ids=["cfg-job", "info-config", "cfg-all", "verbose-run"])
def test_printed_config_and_logs_show_no_secret(tmp_path, how):
    cwd = _shaped_site(tmp_path)
    proc = run_cli("cluster=sec", f"out_dir={tmp_path / 'out'}", *how, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = proc.stdout + proc.stderr
    assert [v for v in SECRET_VALUES if v in printed] == []
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert [f"{p}: {v}" for p in files for v in SECRET_VALUES if v.encode() in p.read_bytes()] == []
    if how[0].startswith("--"):
        assert "HF" + "TOKEN: <redacted>" in printed and "EHPC_PLAIN: visible" in printed
        assert "huggingface-cli login --token <redacted>" in printed
        assert "max_tokens: 32" in printed


def test_token_shaped_values_are_withheld_whatever_their_name_and_secretish_names_warned(
        tmp_path, caplog):
    import logging

    from energy_hpc.config import compose_settings, looks_like_token, secret_env

    for value in SHAPED.values():
        if value != "PLANTEDhunter2":
            assert looks_like_token(value), value
    for plain in ("visible", "linear_tfidf-demo-local-g0n1-378a9757c340", "/data/Reviews2024.csv",
                  "0123456789abcdef" * 4, "paraphrase-multilingual-mpnet-base-v2"):
        assert not looks_like_token(plain), plain
    import os

    cwd = os.getcwd()
    os.chdir(_shaped_site(tmp_path))
    try:
        with caplog.at_level(logging.WARNING, logger="energy_hpc.config"):
            settings = compose_settings(["cluster=sec", f"out_dir={tmp_path / 'out'}"])
    finally:
        os.chdir(cwd)
    env = settings.cluster.env
    assert all(env[k] == "<redacted>" for k in SHAPED), env
    assert env["HFTOKENISH"] == "kept-PLANTED-not" and env["EHPC_PLAIN"] == "visible"
    assert any("cluster.env.HFTOKENISH is kept" in r.getMessage() for r in caplog.records)
    [line] = [ln for ln in settings.cluster.setup if "login" in ln]
    var = line.split("${", 1)[1].rstrip("}")
    assert secret_env()[var] == "hf_PLANTEDinsideALine0001" and env[var] == "<redacted>"
    assert secret_env()["RAY_AUTH_TOKEN"] == "PLANTEDrayAuth"
