"""The per-host ledger of measured windows: which other measurement shared this host's meters.

CodeCarbon, RAPL and NVML over all of a node's GPUs read the whole machine, so a window that ran
while another energy_hpc window ran on the same host measured both. Every window (fit, inference,
idle baseline) is entered here when it opens and closed when it ends; on closing, every other
window on this host that overlapped it in time is named (``overlapped_with``), and the caller
flags the reading ``overlapping_window``.

The ledger is a directory on the host's own disk (``ENERGY_HPC_LEDGER_DIR``, default
``/tmp/energy_hpc-windows``; world-writable and sticky like /tmp, so every user's runs see each
other), one small JSON file per *open* window, written atomically. A window that closes names
the windows open now and those that left it a note, leaves a note for each window still open,
and removes itself. An entry whose process died is cleared by the next window that opens (it
cannot overlap that one; the windows open then are told); one that dies during another's window
counts as overlapping it (it may have run until it was found dead).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LEDGER_ENV = "ENERGY_HPC_LEDGER_DIR"
DEFAULT_DIR = "/tmp/energy_hpc-windows"
OVERLAP_FLAG = "overlapping_window"
NOTE = "note-"  # note-<open window>--<label hash>.json: "<label> overlapped you"
log = logging.getLogger("energy_hpc.ledger")


@dataclass
class WindowEntry:
    path: Path
    label: str
    start: float
    pid: int


def ledger_dir() -> Path:
    return Path(os.environ.get(LEDGER_ENV) or DEFAULT_DIR)


# an entry is at most this large; anything bigger is not one of ours
_MAX_ENTRY_BYTES = 64 * 1024
# a process's start time (psutil, from /proc) is rounded; a window cannot open before it
_START_SLACK_S = 2.0


def _process_alive(pid: int, owner_uid: int | None, start: float) -> bool:
    """Whether ``pid`` is the live process that wrote this entry: it exists, belongs to the
    entry file's owner and started before the window did (else the pid was reused, or the entry
    was planted naming another process)."""
    if pid <= 0 or not _pid_exists(pid):
        return False
    try:
        import psutil

        proc = psutil.Process(pid)
        if proc.create_time() > start + _START_SLACK_S:
            return False
        if owner_uid is not None and proc.uids().real != owner_uid:
            return False
    except Exception:  # noqa: BLE001 - gone meanwhile, or /proc unreadable: judged by kill alone
        return _pid_exists(pid)
    return True


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _schema_problem(data: Any) -> str | None:
    """Why a parsed entry is not a window entry (None: it is one)."""
    import math

    if not isinstance(data, dict):
        return "not a JSON object"
    if not isinstance(data.get("label"), str) or not data["label"]:
        return "label must be a non-empty string"
    if not isinstance(data.get("pid"), int) or isinstance(data["pid"], bool) or data["pid"] <= 0:
        return "pid must be a whole number > 0"
    if not isinstance(data.get("host"), str):
        return "host must be a string"
    for key in ("start", "end"):
        value = data.get(key)
        if key == "end" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return f"{key} must be a time in seconds" + (" or null" if key == "end" else "")
    return None


class WindowLedger:
    """Open and close measured windows on this host; closing names the windows that overlapped."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.dir = Path(directory) if directory is not None else ledger_dir()
        self.host = socket.gethostname()
        self.uid = os.getuid()
        self._seq = 0
        self._ready = False
        self._warned: set[str] = set()

    def _prepare(self) -> None:
        if self._ready:
            return
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            if self.dir.stat().st_uid == os.getuid():
                os.chmod(self.dir, 0o1777)
        except OSError:
            pass  # another user made it: theirs is fine as long as we can write into it
        self._ready = True

    def _write(self, path: Path, data: dict[str, Any]) -> None:
        """Written to a new file of ours (``O_EXCL``: never through a link someone planted) and
        renamed into place."""
        import tempfile

        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=self.dir)
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(data))
            os.replace(tmp, path)
        except BaseException:
            _unlink(Path(tmp))
            raise

    def _read(self, path: Path, schema: bool = True) -> dict[str, Any] | None:
        """An entry (or a note, ``schema=False``) with its file's owner as ``owner_uid``; None when
        it is gone, or is no entry (a link, a non-file, unparsable, failing the schema: warned
        once, naming the file, and otherwise ignored)."""
        from energy_hpc.safe_paths import UnsafePathError, open_file

        try:
            fh = open_file(path, "rb")
        except FileNotFoundError:
            return None
        except UnsafePathError:
            return self._ignore(path, "not a regular file (a link, a FIFO, a device)")
        except OSError as exc:
            return self._ignore(path, f"cannot be opened as a file ({exc.strerror})")
        with fh:
            st = os.fstat(fh.fileno())
            if st.st_size > _MAX_ENTRY_BYTES:
                return self._ignore(path, "larger than an entry can be")
            raw = fh.read(_MAX_ENTRY_BYTES)
        try:
            data = json.loads(raw)
        except ValueError:
            return self._ignore(path, "not JSON")
        if schema:
            problem = _schema_problem(data)
            if problem:
                return self._ignore(path, problem)
        elif not isinstance(data, dict) or not isinstance(data.get("label"), str):
            return self._ignore(path, "not a note (a JSON object with a label)")
        data["owner_uid"] = st.st_uid
        return data

    def _ignore(self, path: Path, why: str) -> None:
        if path.name not in self._warned:
            self._warned.add(path.name)
            log.warning("ignoring %s in the window ledger: %s (not an energy_hpc window entry; "
                        "docs/measurement.md#isolation)", path, why)
        return None

    def _who(self, data: dict[str, Any]) -> str:
        """The label an overlap is recorded under: another user's entry says whose it is."""
        uid = data.get("owner_uid")
        label = str(data.get("label", "?"))
        return label if uid in (None, self.uid) else f"{label} (uid {uid})"

    def _alive(self, data: dict[str, Any]) -> bool:
        """Entries of other hosts (a ledger on a shared file system) cannot be checked: alive."""
        if data.get("host") != self.host:
            return True
        return _process_alive(int(data["pid"]), data.get("owner_uid"), float(data["start"]))

    def open(self, label: str) -> WindowEntry | None:
        """Enter a window that starts now; None (and nothing flagged) when the ledger cannot be
        written: a measurement never fails for want of its ledger."""
        self._prepare()
        self._clear_dead()
        self._seq += 1
        pid = os.getpid()
        path = self.dir / f"{self.host}-{pid}-{self._seq}-{time.time_ns()}.json"
        start = time.time()
        try:
            self._write(path, {"label": label, "pid": pid, "host": self.host, "start": start,
                               "end": None})
        except OSError:
            return None
        return WindowEntry(path=path, label=label, start=start, pid=pid)

    def _entries(self, names: list[str]) -> list[tuple[Path, dict[str, Any]]]:
        out = []
        for name in names:
            data = self._read(self.dir / name)
            if data is not None:
                out.append((self.dir / name, data))
        return out

    def _clear_dead(self) -> None:
        """Windows whose process died (killed inside its window), or that closed by their own
        stated end, before this one starts: they cannot overlap it. Each still-open window is
        told of a dead one (it may have overlapped them), then the entries and their notes go."""
        try:
            listed = os.listdir(self.dir)
        except OSError:
            return
        names = [n for n in listed if n.endswith(".json") and not n.startswith((".", NOTE))]
        stems = {n[:-5] for n in names}
        for note in listed:  # notes left for a window that has closed meanwhile: nobody reads them
            if note.startswith(NOTE) and note[len(NOTE):].split("--", 1)[0] not in stems:
                _unlink(self.dir / note)
        entries = self._entries(names)
        now = time.time()
        ended = [(p, d) for p, d in entries if d.get("end") is not None and d["end"] <= now]
        for path, _ in ended:
            self._remove(path)
        entries = [(p, d) for p, d in entries if (p, d) not in ended]
        dead = [(p, d) for p, d in entries if not self._alive(d)]
        if not dead:
            return
        alive = [(p, d) for p, d in entries if (p, d) not in dead]
        for path, data in dead:
            self._retire(path, data, [other for other, _ in alive])

    def close(self, entry: WindowEntry | None) -> list[str]:
        """Close a window that ends now: the labels of the other windows on this host that
        overlapped it (sorted, each once; windows under the same label are one measurement, e.g.
        a multi-node cell's head and its node meter on the same host; another user's window
        carries its owner, ``label (uid N)``).

        Those are the windows open now and the ones that closed while this one was open (each
        left a note for it). This one leaves a note for every window still open and is removed:
        only open windows and their notes are ever read, so the cost does not grow with the
        number of windows a long run has closed."""
        if entry is None:
            return []
        end = time.time()
        try:
            names = os.listdir(self.dir)
        except OSError:
            return []
        mine = entry.path.stem
        overlapped: set[str] = set()
        open_now: list[tuple[Path, dict[str, Any]]] = []
        for name in names:
            if not name.endswith(".json") or name.startswith("."):
                continue
            path = self.dir / name
            if name.startswith(NOTE):
                if name.startswith(f"{NOTE}{mine}--"):
                    note = self._read(path, schema=False)
                    if note is not None:
                        overlapped.add(self._who(note))
                    _unlink(path)
                continue
            if path == entry.path:
                continue
            data = self._read(path)
            if data is None or data["start"] >= end:
                continue
            if data.get("end") is not None and data["end"] <= entry.start:
                continue  # ended, by its own word, before this window began
            open_now.append((path, data))
        dead = [(p, d) for p, d in open_now if not self._alive(d)]
        alive = [(p, d) for p, d in open_now if (p, d) not in dead]
        for path, data in dead:  # died inside its window: it closes now, as it would have
            self._retire(path, data, [other for other, _ in alive])
        overlapped |= {self._who(data) for _, data in open_now}
        for path, data in alive:
            if data.get("label") != entry.label:
                self._note(path, mine, entry.label)
        _unlink(entry.path)
        overlapped.discard(entry.label)
        return sorted(overlapped)

    def _remove(self, path: Path) -> None:
        _unlink(path)
        for note in self.dir.glob(f"{NOTE}{path.stem}--*.json"):
            _unlink(note)

    def _retire(self, path: Path, data: dict[str, Any], open_windows: list[Path]) -> None:
        """A dead process's window: tell every open window it may have overlapped them, then
        remove its entry and the notes left for it."""
        for other in open_windows:
            self._note(other, path.stem, self._who(data))
        self._remove(path)

    def _note(self, target: Path, writer: str, label: str) -> None:
        """Tell the open window ``target`` that ``label`` overlapped it (one note per label: a
        cell's later windows overwrite its earlier note, so notes stay few)."""
        import hashlib

        key = hashlib.sha1(label.encode()).hexdigest()[:16]
        try:
            self._write(self.dir / f"{NOTE}{target.stem}--{key}.json", {"label": label})
        except OSError:
            pass


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


_LEDGER: WindowLedger | None = None


def host_ledger() -> WindowLedger:
    """This process's ledger (one per process; the directory is read from the environment the
    first time)."""
    global _LEDGER
    if _LEDGER is None or _LEDGER.dir != ledger_dir():
        _LEDGER = WindowLedger()
    return _LEDGER


def note_overlaps(readings: list[Any], overlapped: list[str]) -> None:
    """Flag every reading of a window that overlapped others and name them in its info."""
    if not overlapped:
        return
    for reading in readings:
        if OVERLAP_FLAG not in reading.flags:
            reading.flags.append(OVERLAP_FLAG)
        reading.info["overlapped_with"] = sorted(set(reading.info.get("overlapped_with", []))
                                                 | set(overlapped))


def overlaps_of(reading: Any) -> list[str]:
    """The windows a reading overlapped: its own host's and, for a multi-node reading, every
    node's (cell ids, sorted, each once)."""
    return sorted({label for _, info in reading.infos() for label in info.get("overlapped_with") or []})
