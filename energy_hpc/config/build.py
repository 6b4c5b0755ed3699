"""From a composed config to :class:`Settings`: each section built with a message naming its
file and field, unknown options refused with the valid ones, the schema registered with Hydra."""

from __future__ import annotations

import copy
import difflib
import json
from dataclasses import fields
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from energy_hpc.config.groups import ClusterConfig, DatasetConfig, EnergyConfig
from energy_hpc.config.models import ModelConfig, model_config_class
from energy_hpc.config.options import (
    Config,
    Settings,
    _model_field_defaults,
)
from energy_hpc.config.secrets import (
    _withhold_secrets,
)
from energy_hpc.errors import ConfigError


def build_section(cls: type, values: Any, source: str) -> Any:
    """Build dataclass ``cls`` from a mapping, naming ``source`` and the valid fields on a mistake.

    The same mapping builds the same object, so a sweep of many cells validates each distinct
    file once (a copy is returned: cells never share a mutable section).
    """
    if isinstance(values, DictConfig):
        values = OmegaConf.to_container(values, resolve=True)
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a mapping of fields, got {type(values).__name__}")
    try:
        key = (cls, source, json.dumps(values, sort_keys=True, default=str))
    except (TypeError, ValueError):
        return _build_section(cls, values, source)
    if key not in _SECTION_CACHE:
        _SECTION_CACHE[key] = _build_section(cls, values, source)
    return copy.deepcopy(_SECTION_CACHE[key])


_SECTION_CACHE: dict[tuple[type, str, str], Any] = {}


def _build_section(cls: type, values: dict[str, Any], source: str) -> Any:
    valid = [f.name for f in fields(cls)]
    for key in values:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"{source}: unknown field '{key}'{hint} Valid fields: {', '.join(valid)}"
            )
    missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in values]
    if missing:
        raise ConfigError(f"{source}: required field(s) missing: {', '.join(missing)}")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls), values)
        return OmegaConf.to_object(merged)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except OmegaConfBaseException as exc:
        first = str(exc).splitlines()[0]
        key = getattr(exc, "full_key", None)
        where = f" field '{key}':" if key else ""
        raise ConfigError(f"{source}:{where} {first}") from None


def build_model(values: Any, source: str) -> ModelConfig:
    """The model section as its kind's dataclass.

    The composed tree carries every kind's defaults (so ``model.max_tokens=8`` needs no ``+``);
    another kind's field still at its default is dropped, one set to anything else is refused.
    """
    if isinstance(values, DictConfig):
        values = OmegaConf.to_container(values, resolve=True)
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a mapping of fields, got {type(values).__name__}")
    cls = model_config_class(values.get("kind", "traditional"), source)
    own = {f.name for f in fields(cls)}
    defaults = _model_field_defaults()
    kept = {k: v for k, v in values.items()
            if k in own or k not in defaults or v != defaults[k]}
    return build_section(cls, kept, source)


def top_level_keys() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Config))


def unknown_top_level_key(key: str) -> str | None:
    """Why ``key`` (an override's first component) is not a top-level option, else None."""
    valid = top_level_keys()
    if key in valid or key == "hydra":
        return None
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return (f"unknown option '{key}'{hint} Valid: {', '.join(valid)} (a group's fields as "
            "e.g. model.max_tokens=8; with or without +, an unknown option is refused rather "
            "than added unused)")


def settings_from_cfg(cfg: DictConfig | dict, choices: dict[str, str] | None = None) -> Settings:
    """Validate a composed config; raise :class:`ConfigError` naming the file and field."""
    choices = {k: v for k, v in (choices or {}).items() if not k.startswith("hydra")}
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)

    def source(group: str) -> str:
        return f"{group}/{choices[group]}.yaml" if group in choices else group

    sections = {"model": build_model(cfg.get("model"), source("model"))}
    for group, cls in (("dataset", DatasetConfig), ("cluster", ClusterConfig),
                       ("energy", EnergyConfig)):
        sections[group] = build_section(cls, cfg.get(group), source(group))
    _withhold_secrets(sections["cluster"])
    top = {k: v for k, v in cfg.items() if k not in sections and k not in ("embedding_model",)}
    for key in top:
        if problem := unknown_top_level_key(key):
            raise ConfigError(problem)
    return Settings(**sections, choices=choices, **top)


def register_configs() -> None:
    """Put the schemas into Hydra's ConfigStore (the root schema plus one per group)."""
    cs = ConfigStore.instance()
    cs.store(name="energy_hpc_schema", node=Config)


def compose_settings(overrides: list[str] | tuple[str, ...] = ()) -> Settings:
    """Compose and validate one cell from Hydra overrides, without running the CLI (notebooks, tests)."""
    from hydra import compose, initialize_config_module

    register_configs()
    with initialize_config_module("energy_hpc.hydra_conf", version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    return settings_from_cfg(without_hydra(cfg), dict(cfg.hydra.runtime.choices))


def without_hydra(cfg: DictConfig) -> dict[str, Any]:
    """A composed config as a resolved mapping, Hydra's own ``hydra`` node left out (resolving it
    would need Hydra's runtime)."""
    plain = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(plain, dict)
    plain.pop("hydra", None)
    resolved = OmegaConf.to_container(OmegaConf.create(plain), resolve=True)
    assert isinstance(resolved, dict)
    return resolved  # type: ignore[return-value]
