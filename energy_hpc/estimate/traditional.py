"""A rule of thumb for the traditional pipelines (the ``traditional`` kind's estimates).

Seconds per text in one pass (predict), and per split to fit, low–high. The paper's Table B1
(H100 node) lies inside: BoW/TF-IDF ~5e-5 s per text, embeddings 9–15 ms per text (encoding is
the cost); fitting an embedding pipeline encodes the training texts first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from energy_hpc.estimate.values import FitGuess, PassGuess

if TYPE_CHECKING:
    from energy_hpc.cell import Cell

PASS_S_PER_TEXT = {"bow": (1e-5, 5e-4), "tfidf": (1e-5, 5e-4), "embedding": (2e-3, 3e-2)}
FIT_S = {"logreg": (0.05, 5.0), "xgboost": (0.5, 30.0)}
ENCODER_LOAD_S = 120.0  # loading a sentence encoder (a cold shared file system)


def inference(cell: Cell) -> PassGuess | str:
    s, model = cell.settings, cell.settings.model
    per_text = PASS_S_PER_TEXT.get(getattr(model, "features", None) or "")
    if per_text is None:
        return f"no rule of thumb for features={getattr(model, 'features', None)!r}"
    n_test = s.dataset.n_test or 200
    return PassGuess(pass_s=(per_text[0] * n_test, per_text[1] * n_test),
                     load_s=ENCODER_LOAD_S if model.features == "embedding" else 0.0,
                     basis=f"rule of thumb for {model.features} + {model.estimator} "
                           "(nothing measured yet)")


def fit(cell: Cell) -> FitGuess | str:
    s, model = cell.settings, cell.settings.model
    fit_s = FIT_S.get(getattr(model, "estimator", None) or "")
    if fit_s is None:
        return f"no rule of thumb for estimator={getattr(model, 'estimator', None)!r}"
    if model.features == "embedding":  # the training texts are encoded first
        per_text = PASS_S_PER_TEXT["embedding"]
        n_train = s.dataset.n_train or 200
        return FitGuess(seconds=(fit_s[0] + per_text[0] * n_train, fit_s[1] + per_text[1] * n_train),
                        basis="")
    return FitGuess(seconds=fit_s, basis="")
