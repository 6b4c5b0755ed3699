"""The classifier protocol; a kind's factory builds one (:mod:`energy_hpc.kinds`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from energy_hpc.cluster.placement import Placement
    from energy_hpc.config import ModelConfig


@dataclass
class Prediction:
    """Labels for a batch of texts; ``None`` marks an answer outside the category set."""

    labels: list[str | None]
    raw: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClassifierContext:
    """What a classifier is told about its cell besides its model config."""

    categories: tuple[str, ...] = ()
    placement: Placement | None = None
    ray_address: str | None = None  # set when the cell spans nodes (vLLM runs over this Ray)

    @property
    def gpus(self) -> int:
        return self.placement.gpus if self.placement is not None else 0


@runtime_checkable
class Classifier(Protocol):
    """``fit`` on a split's training texts and ``predict`` on its test texts are each measured in
    a window of their own. Optional attributes say how the fit is measured: ``fit_note`` (a
    reason: nothing is trained, the fit is recorded as 0 Wh and not measured) and
    ``fit_repeatable`` (default True: a fit shorter than the meter's resolution is repeated
    inside its window, as a refit from scratch gives the same model; False for training that
    continues from where it stopped, such as fine-tuning), and ``prepare_fit(seed)``, called
    before the fit window (fresh pretrained weights, the split's seed: loading is not measured)."""

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> None: ...

    def predict(self, texts: Sequence[str]) -> Prediction: ...

    def describe(self) -> dict[str, Any]: ...


ClassifierFactory = Callable[["ModelConfig", ClassifierContext], Classifier]


def build_classifier(model: ModelConfig, context: ClassifierContext | None = None) -> Classifier:
    """Build the classifier of ``model.kind`` (its kind's factory, imported on first use)."""
    from energy_hpc.kinds import kind_of

    return kind_of(model).build_classifier(model, context or ClassifierContext())
