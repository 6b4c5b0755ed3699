"""A model kind is one registration: a kind defined and registered in this module alone (config
dataclass with its placement needs, classifier, measurement policy, estimates) is planned,
placed, estimated, run and recorded like a shipped one, with no other file of the project touched.

The CLI runs import this module as a plug-in (``ENERGY_HPC_PLUGINS=tests.test_kinds``); its model
file lives in a site folder (``./hydra_conf/model/``) of the test's own directory.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from energy_hpc.classifiers import Prediction
from energy_hpc.config import ConfigError, ModelConfig, register_configs
from energy_hpc.estimate import FitGuess, PassGuess
from energy_hpc.kinds import GpuMemory, MeasurementPolicy, ModelKind, kind_names, register_kind
from tests.conftest import REPO, run_cli


@dataclass
class KeywordConfig(ModelConfig):
    """Multinomial naive Bayes over words, with a stated (made-up) GPU memory need."""

    kind: str = "keyword"
    smoothing: float = 1.0
    memory_gb: float = 50.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.smoothing > 0:
            raise ConfigError(f"model.smoothing={self.smoothing!r} is not valid; it must be > 0")

    def uses_gpu(self) -> bool:
        return True

    def single_node_reason(self) -> str | None:
        return "the keyword model counts words in one process"

    def gpu_memory(self) -> GpuMemory:
        return GpuMemory(weights_gb=1.0, needed_gb=self.memory_gb,
                         how=f"{self.memory_gb:g} GB stated by the test, on one GPU")


class KeywordClassifier:
    def __init__(self, model: KeywordConfig, context: Any) -> None:
        self.model = model
        self.counts: dict[str, Counter] = {}
        self.fits = 0

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        self.fits += 1
        self.counts = {}
        for text, label in zip(texts, labels, strict=True):
            self.counts.setdefault(label, Counter()).update(text.lower().split())

    def predict(self, texts: Sequence[str]) -> Prediction:
        vocab = len(set().union(*self.counts.values()))
        totals = {label: sum(c.values()) for label, c in self.counts.items()}
        a = self.model.smoothing

        def score(label: str, words: list[str]) -> float:
            c = self.counts[label]
            return sum(math.log((c[w] + a) / (totals[label] + a * vocab)) for w in words)

        return Prediction(labels=[max(self.counts, key=lambda lab: score(lab, t.lower().split()))
                                  for t in texts])

    def describe(self) -> dict[str, Any]:
        return {"smoothing": self.model.smoothing, "fits": self.fits}


def keyword_pass(cell: Any) -> PassGuess:
    return PassGuess(pass_s=(0.01, 0.02), load_s=1.0, basis="keyword rule")


def keyword_fit(cell: Any) -> FitGuess:
    return FitGuess(seconds=(0.5, 1.0), basis="keyword fit rule")


KEYWORD = register_kind(ModelKind(
    "keyword", KeywordConfig, classifier=KeywordClassifier,
    measurement=MeasurementPolicy(warmup="one_text", repeat_passes=False),
    inference_estimate=keyword_pass, fit_estimate=keyword_fit))

MODEL_FILE = "name: keyword\nkind: keyword\ndisplay_name: Keyword NB\nsmoothing: 0.5\n"


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A working directory whose ./hydra_conf/model/ holds the kind's model file."""
    folder = tmp_path / "hydra_conf" / "model"
    folder.mkdir(parents=True)
    (folder / "keyword.yaml").write_text(MODEL_FILE)
    monkeypatch.chdir(tmp_path)
    register_configs()
    return tmp_path


def test_placement_and_estimate_come_from_the_kind(site):
    from energy_hpc.cell import compose_cell
    from energy_hpc.estimate import estimate

    assert "keyword" in kind_names()
    cell = compose_cell(["model=keyword", "cluster=capella", "repetitions=3"])
    assert cell.settings.model.smoothing == 0.5
    assert (cell.placement.gpus, cell.placement.memory_check) == (1, "passed")
    assert cell.placement.needed_gb == 50.0
    with pytest.raises(ConfigError, match=r"needs ~50 GB of GPU memory \(50 GB stated by the "
                                          r"test, on one GPU\).*more GPUs do not help"):
        compose_cell(["model=keyword", "cluster=clara"])  # 32 GB GPUs
    with pytest.raises(ConfigError, match="nodes=2 is not valid for keyword: the keyword model "
                                          "counts words in one process"):
        compose_cell(["model=keyword", "cluster=capella", "nodes=2"])
    with pytest.raises(ConfigError, match="model.smoothing=0"):
        compose_cell(["model=keyword", "model.smoothing=0"])

    est = estimate(cell)
    assert est.basis == "keyword rule; fit: keyword fit rule"
    assert est.fit_s == (0.5, 1.0)
    # one pass per split (the kind does not repeat passes) and a one-text warm-up, whatever the
    # window; the fit per split; the load once
    n_test = cell.settings.dataset.n_test
    assert est.wall_s == pytest.approx((1.0 + 3 * (0.01 + 0.01 / n_test + 0.5),
                                        1.0 + 3 * (0.02 + 0.02 / n_test + 1.0)))


def test_a_kind_from_a_test_module_runs_end_to_end(site):
    env = {"ENERGY_HPC_PLUGINS": "tests.test_kinds",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = site / "out"
    common = ["repetitions=2", "progress=false", f"out_dir={out}", "energy.min_window_s=0.5"]
    plan = run_cli("-m", "model=keyword,linear_bow", "dry_run=true", *common, cwd=site, env=env)
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert "keyword rule; fit: keyword fit rule" in plan.stdout
    assert "fit 0.5–1 s per split" in plan.stdout
    assert not out.exists() or not list(out.glob("cells/*/records.jsonl"))

    ran = run_cli("-m", "model=keyword,linear_bow", *common, cwd=site, env=env)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "Keyword NB" in ran.stdout

    from energy_hpc.results import load

    records = load(out)
    mine = records[records["model_kind"] == "keyword"]
    assert len(mine) == 2 and set(records["model_kind"]) == {"keyword", "traditional"}
    assert (mine["passes"] == 1).all()  # the kind's policy, although 0.5 s needs many passes
    assert (records[records["model_kind"] == "traditional"]["passes"] > 1).all()
    assert (mine["accuracy"] > 1.5 / mine["n_classes"]).all()  # it learns something
    assert (mine["fit_energy_wh"] > 0).all() and (mine["fit_method"] == "codecarbon").all()
    assert mine["est_basis"].str.contains("keyword rule").all()
    assert (mine["est_fit_duration_s_high"] == 1.0).all()


def test_a_plugin_that_cannot_be_imported_is_one_line(tmp_path):
    proc = run_cli("dry_run=true", cwd=tmp_path, env={"ENERGY_HPC_PLUGINS": "no_such_plugin_mod"})
    assert proc.returncode == 2
    assert "ENERGY_HPC_PLUGINS: cannot import plug-in module 'no_such_plugin_mod'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_kind_whose_config_names_another_kind_is_refused():
    @dataclass
    class Wrong(ModelConfig):
        kind: str = "other"

    with pytest.raises(ConfigError, match="must default its field kind to 'wrong'"):
        register_kind(ModelKind("wrong", Wrong, classifier=KeywordClassifier))
    with pytest.raises(ConfigError, match="'package.module:attribute'"):
        ModelKind("wrong", Wrong, classifier="no_colon_here")
