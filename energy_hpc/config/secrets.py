"""Secrets (HF tokens and the like) in a cluster's ``env``: recognised by name, redacted in every
file and printed line, handed to Slurm jobs only through sbatch's environment."""

from __future__ import annotations

import re
from typing import Any

from energy_hpc.config.groups import ClusterConfig

SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "ACCESS_KEY", "CREDENTIALS",
                "CREDENTIAL")
REDACTED = "<redacted>"
# a secret word as a whole part of a name: HF_TOKEN, token, AWS_SECRET_ACCESS_KEY; not max_tokens
_SECRET_NAME = re.compile(r"(?i)(?:^|[^A-Za-z0-9])(?:" + "|".join(SECRET_WORDS) + r")(?:$|[^A-Za-z0-9])")
# key=value: an override (+cluster.env.HF_TOKEN=x), an export line, a joined override list
_ASSIGNMENT = re.compile(r"([A-Za-z_+~][\w.+~@/-]*)(\s*=\s*)(\"[^\"]*\"|'[^']*'|[^,\s]+)")
_EXPORT = re.compile(r"^\s*export\s+([A-Za-z_]\w*)=(.*)$")

# Secret values of cluster.env (and `export SECRET=…` setup lines) are held here, in this process
# only: a Settings, a pickled Cell, meta.json, Hydra's files and sbatch scripts carry REDACTED.
# A Slurm submission hands them to sbatch through its environment (Slurm's default --export=ALL).
_SECRET_ENV: dict[str, str] = {}


def is_secret(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def redact(name: str, value: Any) -> Any:
    return REDACTED if is_secret(name) else value


def redact_text(text: str) -> str:
    """Every ``SECRET_NAME=value`` in a line (an override, an export, a joined override list)
    with its value replaced."""
    return _ASSIGNMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}"
                           if is_secret(m.group(1).rsplit(".", 1)[-1]) else m.group(0), text)


def redact_tree(value: Any) -> Any:
    """A plain config tree (or override list) safe to write: a secret-named key's scalar value and
    every secret assignment inside a string are redacted."""
    if isinstance(value, dict):
        return {k: (REDACTED if is_secret(str(k)) and not isinstance(v, dict | list) and v is not None
                    else redact_tree(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_tree(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def secret_env() -> dict[str, str]:
    """The secret environment variables the cluster files and overrides of this process named."""
    return dict(_SECRET_ENV)


def _withhold_secrets(cluster: ClusterConfig) -> None:
    """Move secret values out of a cluster section into this process's :data:`_SECRET_ENV`."""
    import shlex

    for name, value in list(cluster.env.items()):
        if is_secret(name) and value != REDACTED:
            _SECRET_ENV[name] = str(value)
            cluster.env[name] = REDACTED
    kept = []
    for line in cluster.setup:
        match = _EXPORT.match(line)
        if match and is_secret(match.group(1)):
            words = shlex.split(match.group(2)) or [""]
            _SECRET_ENV[match.group(1)] = words[0]
            cluster.env[match.group(1)] = REDACTED
        else:
            kept.append(line)
    cluster.setup = kept


