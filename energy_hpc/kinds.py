"""A model kind is one object, registered once: :class:`ModelKind` and :func:`register_kind`.

Everything the rest of energy_hpc asks of a model it asks its kind, so nothing else branches on a
kind's name:

- the **config dataclass** (a :class:`~energy_hpc.config.ModelConfig` subclass): its fields and
  checks, and its placement needs as methods (``uses_gpu``, ``requires_gpu``,
  ``single_node_reason``, ``gpu_memory`` for inference and training, ``rough_seconds``);
- the **classifier factory** ``(model, context) -> Classifier``;
- the **measurement policy**: the warm-up before the inference window and whether short passes
  are repeated inside it;
- the **estimates** before anything is measured: one pass of inference, and one split's fit
  (records calibrate both once cells have run).

Factories and estimators are given as callables or as ``"package.module:attribute"`` strings,
imported on first use, so a lean install never imports an LLM or training stack it does not use.
A plug-in kind registers itself when its module is imported: the CLI imports the modules named
in ``ENERGY_HPC_PLUGINS`` and every ``energy_hpc.plugins`` entry point (:func:`load_plugins`); a
Slurm job imports the module again when it unpickles its cell.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from energy_hpc.errors import ConfigError

Ref = str | Callable[..., Any]  # "package.module:attribute" (imported when first used) or the callable
WARMUPS = ("pass", "one_text")


@dataclass(frozen=True)
class MeasurementPolicy:
    """How a kind's inference is measured (``energy.warmup=false`` skips any warm-up).

    ``warmup``: ``pass`` runs one whole pass over the test set before the window; ``one_text``
    sends one request (the paper's LLM warm-up: a second pass would only warm a prefix cache).
    ``repeat_passes``: a pass shorter than ``energy.min_window_s`` is repeated inside the window
    (the energy is then per pass); False measures exactly one pass, however short.
    """

    warmup: str = "pass"
    repeat_passes: bool = True

    def __post_init__(self) -> None:
        if self.warmup not in WARMUPS:
            raise ConfigError(f"MeasurementPolicy.warmup={self.warmup!r} is not valid; use one "
                              f"of {', '.join(WARMUPS)}")


@dataclass(frozen=True)
class GpuMemory:
    """What a cell of a kind needs in GPU memory, and how it was counted (said in the plan and
    in refusals). ``divisible``: whether more GPUs share it (an LLM's tensor and pipeline
    parallelism); otherwise it must fit on one GPU."""

    weights_gb: float
    needed_gb: float
    how: str
    divisible: bool = False


@dataclass(frozen=True)
class ModelKind:
    """One model kind: everything it takes to plan, place, estimate, run and record it."""

    name: str
    config: type  # a energy_hpc.config.ModelConfig subclass (checked by name: config imports this module)
    classifier: Ref
    measurement: MeasurementPolicy = MeasurementPolicy()
    # (cell) -> energy_hpc.estimate.PassGuess | str (why there is none): one pass over the test set
    inference_estimate: Ref | None = None
    # (cell) -> energy_hpc.estimate.FitGuess | str: one split's fit
    fit_estimate: Ref | None = None

    def __post_init__(self) -> None:
        # by name: energy_hpc.config imports this module, so this one cannot import it
        is_model_config = isinstance(self.config, type) and any(
            c.__name__ == "ModelConfig" and c.__module__.startswith("energy_hpc.config")
            for c in self.config.__mro__)
        if not is_model_config:
            raise ConfigError(f"model kind {self.name!r}: config must be a ModelConfig subclass, "
                              f"got {self.config!r}")
        for name in ("classifier", "inference_estimate", "fit_estimate"):
            ref = getattr(self, name)
            if isinstance(ref, str) and ":" not in ref:
                raise ConfigError(f"model kind {self.name!r}: {name}={ref!r} is not valid; give a "
                                  "callable or 'package.module:attribute'")

    def build_classifier(self, model: Any, context: Any) -> Any:
        return resolve(self.classifier)(model, context)

    def estimate_inference(self, cell: Any) -> Any:
        if self.inference_estimate is None:
            return f"no inference estimate for {self.name} models"
        return resolve(self.inference_estimate)(cell)

    def estimate_fit(self, cell: Any) -> Any:
        if self.fit_estimate is None:
            return f"no fit estimate for {self.name} models"
        return resolve(self.fit_estimate)(cell)


def resolve(ref: Ref) -> Callable[..., Any]:
    """A callable, or the attribute a ``"module:attribute"`` string names (imported now)."""
    if callable(ref):
        return ref
    module, _, attribute = ref.partition(":")
    return getattr(importlib.import_module(module), attribute)


_KINDS: dict[str, ModelKind] = {}


def register_kind(kind: ModelKind) -> ModelKind:
    """Make ``kind: <name>`` valid in model files, with everything the kind brings. Registering
    a name again replaces it (a plug-in may override a built-in kind on purpose)."""
    if getattr(kind.config, "kind", None) != kind.name:
        raise ConfigError(f"model kind {kind.name!r}: its config {kind.config.__name__} must "
                          f"default its field kind to {kind.name!r}")
    _KINDS[kind.name] = kind
    return kind


def kind_names() -> tuple[str, ...]:
    return tuple(_KINDS)


def registered_kinds() -> tuple[ModelKind, ...]:
    return tuple(_KINDS.values())


def get_kind(name: Any, source: str = "model") -> ModelKind:
    """The kind registered as ``name``; a clear refusal naming the valid ones otherwise."""
    if name not in _KINDS:
        raise ConfigError(f"{source}: model.kind={name!r} is not valid; use one of "
                          f"{', '.join(_KINDS)}")
    return _KINDS[name]


def kind_of(model: Any) -> ModelKind:
    """The kind of a built model config."""
    return get_kind(model.kind)


PLUGINS_ENV = "ENERGY_HPC_PLUGINS"
_LOADED: set[str] = set()


_CLUSTER_KINDS: list[str] = ["local", "slurm"]  # each has an executor (energy_hpc/launch/executors.py)


def register_cluster_kind(name: str) -> None:
    """A cluster kind a cluster file may name (``kind: NAME``); :func:`energy_hpc.launch.executors.
    register_executor` calls it with the executor that runs that kind's cells."""
    if name not in _CLUSTER_KINDS:
        _CLUSTER_KINDS.append(name)


def cluster_kinds() -> tuple[str, ...]:
    return tuple(_CLUSTER_KINDS)


def load_plugins(env: str | None = None) -> list[str]:
    """Import the plug-in modules: those named in ``ENERGY_HPC_PLUGINS`` (comma-separated module
    names on the Python path, no packaging needed) and every ``energy_hpc.plugins`` entry point of
    an installed package. Their kinds and meters register on import. Returns the names imported;
    a module that cannot be imported is one line naming it (a :class:`ConfigError`)."""
    import os
    from importlib.metadata import entry_points

    named = os.environ.get(PLUGINS_ENV, "") if env is None else env
    loaded = []
    for module in (m.strip() for m in named.split(",")):
        if not module or module in _LOADED:
            continue
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any failure of a plug-in is the user's line
            raise ConfigError(f"{PLUGINS_ENV}: cannot import plug-in module {module!r} "
                              f"({type(exc).__name__}: {exc}); give module names on the Python "
                              "path, comma-separated") from None
        _LOADED.add(module)
        loaded.append(module)
    for entry in entry_points(group="energy_hpc.plugins"):
        if entry.value in _LOADED:
            continue
        try:
            entry.load()
        except Exception as exc:  # noqa: BLE001
            raise ConfigError(f"plug-in entry point {entry.name!r} ({entry.value}) failed to load: "
                              f"{type(exc).__name__}: {exc}") from None
        _LOADED.add(entry.value)
        loaded.append(entry.value)
    return loaded


__all__ = ["GpuMemory", "MeasurementPolicy", "ModelKind", "get_kind", "kind_names", "kind_of",
           "load_plugins", "register_kind", "registered_kinds", "resolve"]
