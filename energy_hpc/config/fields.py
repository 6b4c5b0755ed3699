"""What every config section shares: the allowed values, the checks that name the field, and which
fields define a measurement (the cell id) and which are scheduling knobs."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, field, fields
from typing import Any

from energy_hpc.errors import ConfigError

MODEL_FAMILIES = ("traditional", "adapted", "llm", "reasoning")
FEATURES = ("bow", "tfidf", "embedding")
ESTIMATORS = ("logreg", "xgboost")
DATA_SOURCES = ("demo", "file", "hf")
ID_EXEMPT = "not_in_cell_id"
ID_WHEN_SET = "in_cell_id_when_set"
RAM_MODELS = ("codecarbon", "paper_job", "paper_rss")
DECODINGS = ("free", "choice", "score")
BATCHINGS = ("sequential", "batched")
ENGINES = ("transformers", "vllm")


def _one_of(section: str, name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{section}.{name}={value!r} is not valid; use one of {', '.join(allowed)}")


def _positive(section: str, name: str, value: float | int | None, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{section}.{name}={value!r} is not valid; it must be {bound}")


def not_in_cell_id(default: Any = None, *, factory: Any = None) -> Any:
    """A field that schedules or labels a cell but does not change what is measured.

    The cell id leaves it out, so changing it (a longer time limit, another account, a display
    name) keeps a complete cell complete.
    """
    meta = {ID_EXEMPT: True}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def in_cell_id_when_set(default: Any = None) -> Any:
    """A field added after cells were recorded: in the cell id only when set, so cells recorded
    before it existed keep their ids (and stay complete) while a set value is a new cell."""
    return field(default=default, metadata={ID_WHEN_SET: True})


def identity_dict(section: Any) -> dict[str, Any]:
    """A config section's fields that define the measurement (the basis of the cell id)."""
    return {f.name: _plain(getattr(section, f.name)) for f in fields(section)
            if not f.metadata.get(ID_EXEMPT)
            and not (f.metadata.get(ID_WHEN_SET) and getattr(section, f.name) == f.default)}


def _plain(value: Any) -> Any:
    return asdict(value) if dataclasses.is_dataclass(value) else value


