"""The paper's setup (Zschache & Hartwig 2025): which weights, classes and split sizes its numbers
belong to, so a cell is compared with a published number only when it ran the same thing.

The models' weights are the shipped catalogue (``energy_hpc/hydra_conf/model/*.yaml``, the paper's Table 1);
the embedding models used ``paraphrase-multilingual-mpnet-base-v2``; the datasets' class counts
and split sizes are the paper's Section 3 (FKTG: 14 topics, 378 rows split 50:50; the others
200 train + 200 test).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

from energy_hpc.config.quantization import method_of

PAPER_EMBEDDING = "sentence-transformers/paraphrase-multilingual-mpnet-base-v2"

# dataset -> (classes, n_train + n_test per split)
PAPER_DATASETS: dict[str, tuple[int, int]] = {
    "fktg": (14, 378), "news": (4, 400), "yelp": (5, 400), "tomatoes": (2, 400), "emotion": (6, 400),
}


def weights_of(model: Any) -> str | None:
    """The weights a model config runs: an LLM's ``hf_id`` (with revision), an embedding
    pipeline's sentence encoder; None for BoW / TF-IDF (no pretrained weights)."""
    hf_id = getattr(model, "hf_id", None)
    if hf_id:
        revision = getattr(model, "revision", None)
        return f"{hf_id}@{revision}" if revision else hf_id
    if getattr(model, "features", None) == "embedding":
        return getattr(model, "embedding_model", None)
    return None


@lru_cache(maxsize=64)
def paper_weights(model_name: str) -> str | None:
    """The weights the paper used for a model of the shipped catalogue (None: not a paper model,
    or one without pretrained weights)."""
    import yaml

    path = resources.files("energy_hpc.hydra_conf") / "model" / f"{model_name}.yaml"
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (FileNotFoundError, OSError):
        return None
    if data.get("features") == "embedding":
        return PAPER_EMBEDDING
    return data.get("hf_id")


def short_weights(weights: str) -> str:
    return weights.rstrip("/").rsplit("/", 1)[-1]


def display_name(model: Any) -> str:
    """The model's display name, with its weights named when they are not the paper's (a
    ``model.hf_id`` override must not run under the paper model's name) and its quantization
    when it has one (two precisions of one model are two rows everywhere)."""
    mine, theirs = weights_of(model), paper_weights(model.name)
    name = model.display_name
    if mine and theirs and mine != theirs:
        name = f"{name} ({short_weights(mine)})"
    method = method_of(model)
    return name if method in (None, "none") else f"{name} [{method}]"


# how the paper ran its LLMs (dspy: free generation, one text at a time, zero-shot, 16-bit)
PAPERS_WAY = {"quantization": ("none", "quantized ({}; the paper served 16-bit weights)"),
              "decoding": ("free", "decoding={} (the paper generated freely)"),
              "batching": ("sequential", "batching={} (the paper prompted one text at a time)"),
              "few_shot": (0, "{}-shot (the paper was zero-shot)"),
              "thinking_tokens": (None, "thinking capped at {} tokens (the paper let it think up "
                                        "to max_tokens)")}


def mismatch(model: str, weights: str | None, dataset: str, n_classes: int | None,
             n_rows: int | None, way: dict[str, Any] | None = None) -> str | None:
    """Why a cell is not the paper's setup (None: it is): weights, how an LLM was run (``way``:
    decoding, batching, few_shot, quantization as recorded), classes or split sizes."""
    theirs = paper_weights(model)
    if theirs and weights and weights != theirs:
        return f"other weights ({short_weights(weights)}; the paper used {short_weights(theirs)})"
    if theirs and (why := way_mismatch(way or {})):
        return why
    return data_mismatch(dataset, n_classes, n_rows)


def way_mismatch(way: dict[str, Any]) -> str | None:
    """How an LLM run differs from the paper's way (:data:`PAPERS_WAY`), or None; a value not
    recorded (None, ``-``) is taken as the paper's."""
    for key, (papers, why) in PAPERS_WAY.items():
        value = way.get(key)
        if value is not None and value not in ("-", papers) and str(value) != str(papers):
            return why.format(int(value) if isinstance(value, float) else value)
    return None


def data_mismatch(dataset: str, n_classes: int | None, n_rows: int | None) -> str | None:
    """Why a dataset under a paper name is not the paper's data (None: same classes and sizes,
    or a dataset the paper did not use, so there is nothing to compare with)."""
    if dataset not in PAPER_DATASETS:
        return None
    classes, rows = PAPER_DATASETS[dataset]
    if n_classes is not None and int(n_classes) != classes:
        return f"{int(n_classes)} classes here, {classes} in the paper"
    if n_rows is not None and int(n_rows) != rows:
        return f"{int(n_rows)} train+test texts per split here, {rows} in the paper"
    return None
