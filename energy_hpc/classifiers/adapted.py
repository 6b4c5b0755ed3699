"""Adapted small models: SetFit, a fine-tuned encoder, and an already fine-tuned classifier.

Each split trains from the pretrained weights: ``prepare_fit`` (outside both measured windows)
loads them fresh and seeds the training with the split's seed, ``fit`` (the measured fit window)
trains, ``predict`` (the measured inference) classifies. Training continues from where it
stopped, so a fit is never repeated inside its window (``fit_repeatable = False``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from energy_hpc.classifiers.base import ClassifierContext, Prediction
from energy_hpc.config import (
    OFFLINE_BODY,
    FinetuneModelConfig,
    HFClassifierModelConfig,
    SetFitModelConfig,
)
from energy_hpc.errors import ConfigError, DataError, UserError

log = logging.getLogger(__name__)


def resolve_weights(name: str, what: str) -> str:
    """A local folder, the offline MiniLM, or a hub id the Hugging Face cache must hold."""
    if name == OFFLINE_BODY:
        from energy_hpc.classifiers.traditional import resolve_embedding_model

        return resolve_embedding_model(name)
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    return name


def _not_found(name: str, what: str, exc: BaseException) -> UserError:
    import os

    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "~/.cache/huggingface"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return UserError(f"{what} {name!r} could not be loaded: not a local folder, not in the "
                     f"Hugging Face cache ({cache}), and the hub is unreachable or refused "
                     f"({type(exc).__name__}: {first}). Give a local folder, or "
                     f"'{OFFLINE_BODY}' for the offline MiniLM weights")


def _device(context: ClassifierContext) -> str:
    try:
        import torch
    except ImportError:
        raise UserError("adapted models need torch: pip install 'energy_hpc[adapt]' (install the "
                        "torch build for your machine first)") from None
    return "cuda" if context.gpus and torch.cuda.is_available() else "cpu"


def _seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _check_pairs(labels: Sequence[str]) -> None:
    from collections import Counter

    lonely = sorted(label for label, n in Counter(labels).items() if n < 2)
    if lonely:
        raise DataError(f"SetFit needs at least 2 training texts per class to form its positive "
                        f"pairs; class(es) {lonely} have 1 in this split. Drop them with "
                        "dataset.min_class_size=N or sample more training texts (dataset.n_train)")


class SetFitClassifier:
    """SetFit (PyPI ``setfit``) with its defaults unless the config says otherwise."""

    fit_repeatable = False

    def __init__(self, model: SetFitModelConfig, context: ClassifierContext) -> None:
        try:
            import setfit  # noqa: F401
        except ImportError:
            raise UserError("model.kind=setfit needs the 'setfit' package: pip install "
                            "'energy_hpc[adapt]'") from None
        self.model = model
        self.device = _device(context)
        self.path = resolve_weights(model.body, "SetFit body")
        self.net: Any = None
        self.seed = 0
        self._load()  # fails here, before anything is measured, when the body is not to be had

    def _load(self) -> None:
        from setfit import SetFitModel

        try:
            self.net = SetFitModel.from_pretrained(self.path, device=self.device)
        except Exception as exc:  # noqa: BLE001 - hub, cache and path failures alike
            raise _not_found(self.model.body, "SetFit body", exc) from None
        if self.model.max_length:
            limit = self.net.model_body.get_max_seq_length() or self.model.max_length
            if self.model.max_length > limit:
                raise ConfigError(f"model.max_length={self.model.max_length} is above the body's "
                                  f"limit of {limit} tokens; give at most {limit}")
            self.net.model_body.max_seq_length = self.model.max_length

    def prepare_fit(self, seed: int) -> None:
        """Fresh pretrained weights for the split (not measured) and its seed."""
        self.seed = seed
        _seed_everything(seed)
        self._load()

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        import tempfile

        from datasets import Dataset
        from setfit import Trainer, TrainingArguments

        _check_pairs(labels)
        m = self.model
        with tempfile.TemporaryDirectory(prefix="energy_hpc-setfit-") as scratch:
            args = TrainingArguments(
                output_dir=scratch, batch_size=m.batch_size, num_epochs=m.epochs,
                num_iterations=m.num_iterations, body_learning_rate=m.body_learning_rate,
                max_steps=m.max_steps or -1, seed=self.seed, show_progress_bar=False,
                report_to="none", save_strategy="no", logging_strategy="no")
            trainer = Trainer(model=self.net, args=args, train_dataset=Dataset.from_dict(
                {"text": list(texts), "label": list(labels)}))
            trainer.train()

    def predict(self, texts: Sequence[str]) -> Prediction:
        out = self.net.predict(list(texts), batch_size=self.model.batch_size, show_progress_bar=False)
        return Prediction(labels=[str(x) for x in list(out)])

    def describe(self) -> dict[str, Any]:
        m = self.model
        return {"body": m.body, "device": self.device, "num_iterations": m.num_iterations,
                "epochs": m.epochs, "batch_size": m.batch_size,
                "body_learning_rate": m.body_learning_rate, "max_steps": m.max_steps}


def _load_sequence_classifier(name: str, revision: str | None, what: str, **kwargs: Any) -> Any:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = resolve_weights(name, what)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, revision=revision)
        net = AutoModelForSequenceClassification.from_pretrained(path, revision=revision, **kwargs)
    except Exception as exc:  # noqa: BLE001
        raise _not_found(name, what, exc) from None
    return tokenizer, net


def _encoder_limit(net: Any, tokenizer: Any) -> int | None:
    limits = [getattr(net.config, "max_position_embeddings", None),
              getattr(tokenizer, "model_max_length", None)]
    limits = [x for x in limits if isinstance(x, int) and 0 < x < 1_000_000]
    return min(limits) if limits else None


def _batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class _SequenceClassifier:
    """Tokenise in batches, run the encoder, take the arg-max label."""

    model: Any
    device: str
    tokenizer: Any
    net: Any
    id_to_label: list[str]

    def _autocast(self) -> Any:
        import contextlib

        import torch

        precision = getattr(self.model, "mixed_precision", "no")
        if self.device != "cuda" or precision == "no":
            return contextlib.nullcontext()
        dtype = torch.float16 if precision == "fp16" else torch.bfloat16
        if precision == "auto" and not torch.cuda.is_bf16_supported():
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=dtype)

    def predict(self, texts: Sequence[str]) -> Prediction:
        import torch

        self.net.eval()
        labels: list[str | None] = []
        with torch.inference_mode(), self._autocast():
            for batch in _batches(list(texts), self.model.batch_size):
                enc = self.tokenizer(list(batch), truncation=True, padding=True,
                                     max_length=self.model.max_length, return_tensors="pt")
                logits = self.net(**{k: v.to(self.device) for k, v in enc.items()}).logits
                labels += [self.id_to_label[i] for i in logits.argmax(-1).tolist()]
        return Prediction(labels=labels)


class FinetuneClassifier(_SequenceClassifier):
    """``AutoModelForSequenceClassification`` with a new head, trained with AdamW."""

    fit_repeatable = False

    def __init__(self, model: FinetuneModelConfig, context: ClassifierContext) -> None:
        self.model = model
        self.device = _device(context)
        self.id_to_label = list(context.categories)
        self.seed = 0
        self._load()

    def _load(self) -> None:
        assert self.model.hf_id
        self.tokenizer, self.net = _load_sequence_classifier(
            self.model.hf_id, self.model.revision, "encoder", num_labels=len(self.id_to_label),
            id2label=dict(enumerate(self.id_to_label)),
            label2id={label: i for i, label in enumerate(self.id_to_label)})
        limit = _encoder_limit(self.net, self.tokenizer)
        if limit is not None and self.model.max_length > limit:
            raise ConfigError(f"model.max_length={self.model.max_length} is above the encoder's "
                              f"limit of {limit} tokens ({self.model.hf_id}); give at most {limit}")
        self.net.to(self.device)

    def prepare_fit(self, seed: int) -> None:
        """Fresh pretrained weights and a new head, seeded by the split (not measured)."""
        self.seed = seed
        _seed_everything(seed)
        self._load()

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        import torch

        m = self.model
        index = {label: i for i, label in enumerate(self.id_to_label)}
        y = torch.tensor([index[label] for label in labels])
        enc = self.tokenizer(list(texts), truncation=True, padding=True, max_length=m.max_length,
                             return_tensors="pt")
        optimizer = torch.optim.AdamW(self.net.parameters(), lr=m.learning_rate,
                                      weight_decay=m.weight_decay)
        order = torch.Generator().manual_seed(self.seed)
        steps = 0
        self.net.train()
        for _ in range(m.epochs):
            for idx in torch.randperm(len(y), generator=order).split(m.batch_size):
                batch = {k: v[idx].to(self.device) for k, v in enc.items()}
                with self._autocast():
                    loss = self.net(**batch, labels=y[idx].to(self.device)).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                steps += 1
                if m.max_steps and steps >= m.max_steps:
                    break
            if m.max_steps and steps >= m.max_steps:
                break
        self.steps = steps
        final = float(loss.detach()) if hasattr(loss, "detach") else float(loss)
        if not math.isfinite(final):
            log.warning("%s: the training loss is %s after %d steps", m.display_name, final, steps)

    def describe(self) -> dict[str, Any]:
        m = self.model
        return {"hf_id": m.hf_id, "device": self.device, "epochs": m.epochs,
                "learning_rate": m.learning_rate, "batch_size": m.batch_size,
                "max_length": m.max_length, "max_steps": m.max_steps,
                "mixed_precision": m.mixed_precision, "steps": getattr(self, "steps", None)}


class HFClassifier(_SequenceClassifier):
    """A classifier someone fine-tuned already: nothing is trained, its labels are mapped."""

    fit_note = "already fine-tuned: nothing trained (inference only)"

    def __init__(self, model: HFClassifierModelConfig, context: ClassifierContext) -> None:
        self.model = model
        self.device = _device(context)
        assert model.hf_id
        self.tokenizer, self.net = _load_sequence_classifier(model.hf_id, model.revision,
                                                             "classifier")
        self.net.to(self.device)
        own = [str(self.net.config.id2label[i]) for i in range(self.net.config.num_labels)]
        mapping = {str(k): str(v) for k, v in (model.label_map or {}).items()}
        categories = set(context.categories)
        unmapped = [label for label in own if mapping.get(label, label) not in categories]
        if unmapped:
            raise ConfigError(
                f"model.label_map: the classifier's label(s) {unmapped} map to no label of the "
                f"dataset ({sorted(categories)}); map each of {own} with model.label_map="
                "{MODEL_LABEL: DATASET_LABEL}")
        self.id_to_label = [mapping.get(label, label) for label in own]

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        return {"hf_id": self.model.hf_id, "device": self.device, "labels": self.id_to_label}
