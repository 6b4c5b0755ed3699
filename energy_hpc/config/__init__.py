"""Structured configs: the schema every YAML file in ``energy_hpc/hydra_conf/`` must fit.

Hydra composes the config tree; :func:`settings_from_cfg` turns the composed tree into typed
dataclasses and rejects misspelled or out-of-range values with a message that names the file,
the field and what would be accepted (the submitit way), before anything is measured.
"""

from __future__ import annotations

from energy_hpc.config.build import (
    build_model,
    build_section,
    compose_settings,
    register_configs,
    settings_from_cfg,
    top_level_keys,
    unknown_top_level_key,
    without_hydra,
)
from energy_hpc.config.fields import (
    BATCHINGS,
    DATA_SOURCES,
    DECODINGS,
    ENGINES,
    ESTIMATORS,
    FEATURES,
    ID_EXEMPT,
    MODEL_FAMILIES,
    RAM_MODELS,
    identity_dict,
    in_cell_id_when_set,
    not_in_cell_id,
)
from energy_hpc.config.groups import (
    ClusterConfig,
    DatasetConfig,
    EnergyConfig,
)
from energy_hpc.config.models import (
    BYTES_PER_PARAM,
    CUDA_CONTEXT_GB,
    HEADROOM,
    MIXED_PRECISION,
    OFFLINE_BODY,
    TRAINING_ACTIVATIONS,
    TRAINING_BYTES_PER_PARAM,
    FinetuneModelConfig,
    HFClassifierModelConfig,
    LLMModelConfig,
    ModelConfig,
    RoughSeconds,
    SetFitModelConfig,
    TraditionalModelConfig,
    model_config_class,
    model_kinds,
)
from energy_hpc.config.options import (
    RUN_OPTIONS,
    Config,
    RunOptions,
    Settings,
)
from energy_hpc.config.secrets import (
    REDACTED,
    SECRET_WORDS,
    is_secret,
    looks_like_token,
    redact,
    redact_output,
    redact_text,
    redact_tree,
    secret_env,
)

# what the single-module energy_hpc.config offered besides its own names (plug-ins import them here)
from energy_hpc.errors import ConfigError
from energy_hpc.kinds import GpuMemory, MeasurementPolicy, ModelKind, register_kind

__all__ = ["ConfigError", "GpuMemory", "MeasurementPolicy", "ModelKind", "register_kind", "BATCHINGS", "BYTES_PER_PARAM", "CUDA_CONTEXT_GB", "ClusterConfig", "Config", "DATA_SOURCES", "DECODINGS", "DatasetConfig", "ENGINES", "ESTIMATORS", "EnergyConfig", "FEATURES", "FinetuneModelConfig", "HEADROOM", "HFClassifierModelConfig", "ID_EXEMPT", "LLMModelConfig", "MIXED_PRECISION", "MODEL_FAMILIES", "ModelConfig", "OFFLINE_BODY", "RAM_MODELS", "REDACTED", "RUN_OPTIONS", "RoughSeconds", "RunOptions", "SECRET_WORDS", "SetFitModelConfig", "Settings", "TRAINING_ACTIVATIONS", "TRAINING_BYTES_PER_PARAM", "TraditionalModelConfig", "build_model", "build_section", "compose_settings", "identity_dict", "is_secret", "looks_like_token", "redact_output", "model_config_class", "model_kinds", "in_cell_id_when_set", "not_in_cell_id", "redact", "redact_text", "redact_tree", "register_configs", "secret_env", "settings_from_cfg", "top_level_keys", "unknown_top_level_key", "without_hydra"]
