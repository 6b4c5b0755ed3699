"""The classifier protocol and the registry that maps a model kind to its implementation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from energy_hpc.errors import ConfigError

if TYPE_CHECKING:
    from energy_hpc.config import ModelConfig


@dataclass
class Prediction:
    """Labels for a batch of texts; ``None`` marks an answer outside the category set."""

    labels: list[str | None]
    raw: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Classifier(Protocol):
    """``fit`` is never measured; ``predict`` on the test texts is the measured inference."""

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> None: ...

    def predict(self, texts: Sequence[str]) -> Prediction: ...

    def describe(self) -> dict[str, Any]: ...


ClassifierFactory = Callable[["ModelConfig", dict[str, Any]], Classifier]
_REGISTRY: dict[str, ClassifierFactory] = {}


def register_classifier(kind: str, factory: ClassifierFactory) -> None:
    _REGISTRY[kind] = factory


def build_classifier(model: ModelConfig, context: dict[str, Any] | None = None) -> Classifier:
    """Build the classifier for ``model.kind``; ``context`` carries placement, categories and the like."""
    if model.kind not in _REGISTRY:
        _load_builtin(model.kind)
    if model.kind not in _REGISTRY:
        raise ConfigError(f"model.kind={model.kind!r} has no classifier; known: {sorted(_REGISTRY)}")
    return _REGISTRY[model.kind](model, context or {})


def _load_builtin(kind: str) -> None:
    # Imported lazily so the lean install never imports an LLM stack it does not use.
    if kind == "traditional":
        import energy_hpc.classifiers.traditional  # noqa: F401
    elif kind == "llm":
        import energy_hpc.classifiers.llm  # noqa: F401
