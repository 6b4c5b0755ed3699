"""What a name that becomes a file or folder may hold, and opening the layout's files without
following a link: the one rule for both (docs/records.md#names-and-links).

Every value a user or a config file gives that becomes part of a path (model, dataset and
cluster names, the sweep, the cell id built from them) passes :func:`check_name` when it is
validated; a name outside the rule is refused, never rewritten, so the records' names are the
names given. Labels read back from records (written by another version, or by hand) become file
names only through :func:`file_name`, which maps anything to a safe name.

Inside an out_dir nothing is followed: :func:`inside` refuses a path one of whose parts below the
out_dir is a symbolic link, and :func:`open_file` opens with ``O_NOFOLLOW``, so a link planted
where a layout file should be is refused with one line naming it, and the file it points to is
never read, truncated or copied.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
from pathlib import Path
from typing import IO, Any

from energy_hpc.errors import ConfigError, UserError

NAME_MAX = 100
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
NAME_RULE = (f"letters, digits and . _ + - only, starting with a letter or digit, at most "
             f"{NAME_MAX} characters (it becomes a file or folder name)")


class UnsafePathError(UserError):
    """A link (or another non-file) where a file of the layout should be."""


def is_name(value: Any) -> bool:
    return (isinstance(value, str) and len(value) <= NAME_MAX
            and _NAME.fullmatch(value) is not None)


def check_name(field: str, value: Any) -> str:
    """``value`` if it may become a file or folder name; otherwise :class:`ConfigError` naming the
    field, the value and what is accepted."""
    if is_name(value):
        return value
    hint = re.sub(r"[^A-Za-z0-9._+-]+", "_", str(value)).strip("._+-")[:NAME_MAX] or "my_name"
    raise ConfigError(f"{field}={value!r} is not a valid name: {NAME_RULE}; e.g. {field}={hint}")


def file_name(label: Any) -> str:
    """A safe file name for any label (a name read back from records): the label itself when it
    passes the rule, else its safe characters and a short hash, so two labels never collide."""
    text = str(label)
    if is_name(text):
        return text
    safe = re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("._+-")[:60] or "name"
    return f"{safe}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def inside(root: str | Path, *parts: str) -> Path:
    """``root/parts…``, refused when a part holds a separator or is ``.``/``..``, or when a part
    that exists below ``root`` is a symbolic link (``root`` itself may be one: the user chose it)."""
    path = Path(root)
    for part in parts:
        if not part or part in (".", "..") or "/" in part or "\0" in part:
            raise UnsafePathError(f"{part!r} cannot be part of a path under {root}: {NAME_RULE}")
        path = path / part
        refuse_link(path)
    return path


def refuse_link(path: Path) -> None:
    if path.is_symlink():
        raise UnsafePathError(
            f"{path} is a symbolic link; energy_hpc never follows a link inside its out_dir "
            f"(it could point at a file the run must not touch): remove it (rm '{path}') and rerun")


def umask() -> int:
    """This process's umask (read by setting and restoring it): files and folders made through
    mkstemp/mkdtemp get the mode a plain open/mkdir would, so a group's out_dir stays readable."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def open_file(path: str | Path, mode: str = "r", *, encoding: str | None = "utf-8",
              perm: int = 0o666, **kwargs: Any) -> IO[Any]:
    """``open`` that never follows a link at the last part (``O_NOFOLLOW``); a link there, or a
    FIFO or device, is refused naming the path. Modes ``r``, ``w``, ``a``, ``a+`` (``b`` too)."""
    base = mode.replace("b", "")
    flags = {"r": os.O_RDONLY, "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
             "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
             "a+": os.O_RDWR | os.O_CREAT | os.O_APPEND}[base]
    # O_NONBLOCK: a FIFO planted where a file should be must not hang the open
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0),
                     perm)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            refuse_link(Path(path))
        raise
    try:
        import stat

        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePathError(f"{path} is not a regular file; energy_hpc reads and writes only "
                                  f"plain files inside its out_dir: remove it and rerun")
        os.set_blocking(fd, True)
        if "b" in mode:
            return os.fdopen(fd, mode, **kwargs)
        return os.fdopen(fd, mode, encoding=encoding, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def read_text(path: str | Path, *, errors: str = "strict") -> str:
    with open_file(path, "r", errors=errors) as fh:
        return fh.read()


__all__ = ["NAME_MAX", "NAME_RULE", "UnsafePathError", "check_name", "file_name", "inside",
           "is_name", "open_file", "read_text", "refuse_link", "umask"]
