"""Secrets (HF tokens and the like) in a cluster's ``env`` and ``setup``: recognised by name or by
the look of the value, redacted in every file, printed line and log line, handed to Slurm jobs only
through sbatch's environment."""

from __future__ import annotations

import re
from typing import Any

from energy_hpc.config.groups import ClusterConfig

SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "ACCESS_KEY", "CREDENTIALS",
                "CREDENTIAL", "PAT", "PRIVATE_KEY", "APIKEY")
REDACTED = "<redacted>"
# a secret word as a whole part of a name: HF_TOKEN, token, AWS_SECRET_ACCESS_KEY; not max_tokens
_SECRET_NAME = re.compile(r"(?i)(?:^|[^A-Za-z0-9])(?:" + "|".join(SECRET_WORDS) + r")(?:$|[^A-Za-z0-9])")
# key=value: an override (+cluster.env.HF_TOKEN=x), an export line, a joined override list
_ASSIGNMENT = re.compile(r"([A-Za-z_+~][\w.+~@/-]*)(\s*=\s*)(\"[^\"]*\"|'[^']*'|[^,\s]+)")
_EXPORT = re.compile(r"^\s*export\s+([A-Za-z_]\w*)=(.*)$")
# a YAML or log line "  HF_TOKEN: value" (what --cfg job, --info config and verbose logs print)
_KEY_VALUE = re.compile(r"(?m)^(\s*-?\s*['\"]?)([A-Za-z_][\w.-]*)(['\"]?\s*:[ \t]+)(?!\s*$)([^\n#]*)")
# tokens by their well-known shapes, whatever they are called: Hugging Face, GitHub (classic and
# fine-grained), GitLab, Slack, AWS access key ids, OpenAI-style keys
TOKEN_VALUE = re.compile(
    # (a digit or capital inside, and 20+ characters: hf_classifier is a config name, not a token)
    r"(?<![A-Za-z0-9_])(?:(?:hf_|gh[pousr]_)(?=[a-z]*[A-Z0-9])[A-Za-z0-9]{20,}"
    r"|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|(?:AKIA|ASIA)[A-Z0-9]{16}|sk-(?=[a-z-]*[A-Z0-9])[A-Za-z0-9_-]{20,})(?![A-Za-z0-9])")
# a name holding a secret word without separators (HFTOKEN, MYPASSWORD): kept, but warned about
_SECRETISH_NAME = re.compile(r"(?i)" + "|".join(w for w in SECRET_WORDS if len(w) > 3))

# Secret values of cluster.env (and `export SECRET=…` setup lines) are held here, in this process
# only: a Settings, a pickled Cell, meta.json, Hydra's files and sbatch scripts carry REDACTED.
# A Slurm submission hands them to sbatch through its environment (Slurm's default --export=ALL).
_SECRET_ENV: dict[str, str] = {}


def is_secret(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def redact(name: str, value: Any) -> Any:
    return REDACTED if is_secret(name) else value


def looks_like_token(value: Any) -> bool:
    """A value shaped like a credential: a well-known token prefix, or a long random-looking
    string (at least 32 characters of letters, digits and ``+/=_-``, mixing cases and digits,
    with the character spread of a random key)."""
    import math
    from collections import Counter

    text = str(value).strip().strip("'\"")
    if TOKEN_VALUE.fullmatch(text):
        return True
    if len(text) < 32 or not re.fullmatch(r"[A-Za-z0-9+/=_-]+", text):
        return False
    if not (re.search(r"[a-z]", text) and re.search(r"[A-Z]", text) and re.search(r"\d", text)):
        return False
    counts = Counter(text)
    entropy = -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())
    return entropy >= 4.0


def redact_text(text: str) -> str:
    """A line or block safe to print or write: every ``SECRET_NAME=value`` (an override, an
    export, a joined override list) and ``SECRET_NAME: value`` (YAML, a log line) with its value
    replaced, every token-shaped value and every secret value this process holds too."""
    if not isinstance(text, str) or not text:
        return text
    for value in _SECRET_ENV.values():
        if len(value) >= 6 and value in text:
            text = text.replace(value, REDACTED)
    text = TOKEN_VALUE.sub(REDACTED, text)
    text = _ASSIGNMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}"
                           if is_secret(m.group(1).rsplit(".", 1)[-1]) else m.group(0), text)
    return _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{REDACTED}"
                          if (is_secret(m.group(2).rsplit(".", 1)[-1])
                              or looks_like_token(m.group(4)))
                          and m.group(4).strip() not in ("", "null", "{}", "[]", REDACTED)
                          else m.group(0), text)


def redact_tree(value: Any) -> Any:
    """A plain config tree (or override list) safe to write: a secret-named key's scalar value and
    every secret assignment inside a string are redacted."""
    if isinstance(value, dict):
        return {k: (REDACTED if is_secret(str(k)) and not isinstance(v, dict | list) and v is not None
                    else redact_tree(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_tree(v) for v in value]
    if isinstance(value, str):
        return REDACTED if looks_like_token(value) else redact_text(value)
    return value


class _RedactingStream:
    """A text stream whose every write is redacted first (--cfg job, --info config, Hydra's
    verbose logs and ours print through it); everything else is the wrapped stream's."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact_text(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def redact_output() -> None:
    """From now on, in this process: every line printed to stdout or stderr and every log record
    (Hydra's job log file too) redacted, whatever printed it. Idempotent."""
    import logging
    import sys

    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, _RedactingStream):
            setattr(sys, name, _RedactingStream(stream))
    factory = logging.getLogRecordFactory()
    if getattr(factory, "_energy_hpc_redacts", False):
        return

    def redacting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is logging's to report
            return record
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return record

    redacting._energy_hpc_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting)


def secret_env() -> dict[str, str]:
    """The secret environment variables the cluster files and overrides of this process named."""
    return dict(_SECRET_ENV)


def _withhold_secrets(cluster: ClusterConfig) -> None:
    """Move secret values out of a cluster section into this process's :data:`_SECRET_ENV`."""
    import hashlib
    import logging
    import shlex

    for name, value in list(cluster.env.items()):
        if value == REDACTED or value is None:
            continue
        if is_secret(name) or looks_like_token(value):
            _SECRET_ENV[name] = str(value)
            cluster.env[name] = REDACTED
        elif _SECRETISH_NAME.search(name):
            logging.getLogger("energy_hpc.config").warning(
                "cluster.env.%s is kept as written (its name is not recognised as a secret's and "
                "its value does not look like a token); if it is a secret, name it with _TOKEN, "
                "_SECRET, _PASSWORD or _API_KEY so it is redacted (docs/admin.md#secrets)", name)
    kept = []
    for line in cluster.setup:
        match = _EXPORT.match(line)
        if match:
            try:
                words = shlex.split(match.group(2)) or [""]
            except ValueError:
                words = [match.group(2)]
        if match and (is_secret(match.group(1)) or looks_like_token(words[0])):
            _SECRET_ENV[match.group(1)] = words[0]
            cluster.env[match.group(1)] = REDACTED
            continue
        # a token inside any other line (huggingface-cli login --token hf_…): the line reads it
        # from a variable handed to the job through sbatch's environment
        def withhold(m: re.Match[str]) -> str:
            var = "ENERGY_HPC_SECRET_" + hashlib.sha256(m.group(0).encode()).hexdigest()[:8].upper()
            _SECRET_ENV[var] = m.group(0)
            cluster.env[var] = REDACTED
            return "${" + var + "}"

        kept.append(TOKEN_VALUE.sub(withhold, line))
    cluster.setup = kept


