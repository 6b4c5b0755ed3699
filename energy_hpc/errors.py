"""One exception type for mistakes a user can fix, so entry points print one line, not a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input: a message that names the field, file or value and what would be accepted."""


class ConfigError(UserError):
    """A config value or file that does not validate."""


class DataError(UserError):
    """A dataset that cannot be loaded or split as asked."""


class MeterUnavailable(UserError):
    """A meter that was asked for by name but cannot measure on this machine."""
