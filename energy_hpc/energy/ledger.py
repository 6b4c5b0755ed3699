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


@dataclass
class WindowEntry:
    path: Path
    label: str
    start: float
    pid: int


def ledger_dir() -> Path:
    return Path(os.environ.get(LEDGER_ENV) or DEFAULT_DIR)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


class WindowLedger:
    """Open and close measured windows on this host; closing names the windows that overlapped."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.dir = Path(directory) if directory is not None else ledger_dir()
        self.host = socket.gethostname()
        self._seq = 0
        self._ready = False

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
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)

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

    def _clear_dead(self) -> None:
        """Windows whose process died (killed inside its window) before this one starts: they
        cannot overlap it. Each still-open window is told (it may have overlapped them), then the
        entries and their notes go."""
        try:
            listed = os.listdir(self.dir)
        except OSError:
            return
        names = [n for n in listed if n.endswith(".json") and not n.startswith((".", NOTE))]
        stems = {n[:-5] for n in names}
        for note in listed:  # notes left for a window that has closed meanwhile: nobody reads them
            if note.startswith(NOTE) and note[len(NOTE):].split("--", 1)[0] not in stems:
                _unlink(self.dir / note)
        entries = [(self.dir / n, _read(self.dir / n)) for n in names]
        dead = [(p, d) for p, d in entries if d.get("host") == self.host and "pid" in d
                and not _alive(int(d["pid"]))]
        if not dead:
            return
        alive = [(p, d) for p, d in entries if (p, d) not in dead and "start" in d]
        for path, data in dead:
            self._retire(path, data, [other for other, _ in alive])

    def close(self, entry: WindowEntry | None) -> list[str]:
        """Close a window that ends now: the labels of the other windows on this host that
        overlapped it (sorted, each once; windows under the same label are one measurement, e.g.
        a multi-node cell's head and its node meter on the same host).

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
                    overlapped.add(_read(path).get("label", "?"))
                    _unlink(path)
                continue
            if path == entry.path:
                continue
            data = _read(path)
            if "start" not in data or data["start"] >= end:
                continue
            open_now.append((path, data))
        dead = [(p, d) for p, d in open_now if d.get("host") == self.host
                and not _alive(int(d.get("pid", 0)))]
        alive = [(p, d) for p, d in open_now if (p, d) not in dead]
        for path, data in dead:  # died inside its window: it closes now, as it would have
            self._retire(path, data, [other for other, _ in alive])
        overlapped |= {data.get("label", "?") for _, data in open_now}
        for path, data in alive:
            if data.get("label") != entry.label:
                self._note(path, mine, entry.label)
        _unlink(entry.path)
        overlapped.discard(entry.label)
        return sorted(overlapped)

    def _retire(self, path: Path, data: dict[str, Any], open_windows: list[Path]) -> None:
        """A dead process's window: tell every open window it may have overlapped them, then
        remove its entry and the notes left for it."""
        for other in open_windows:
            self._note(other, path.stem, data.get("label", "?"))
        _unlink(path)
        for note in self.dir.glob(f"{NOTE}{path.stem}--*.json"):
            _unlink(note)

    def _note(self, target: Path, writer: str, label: str) -> None:
        """Tell the open window ``target`` that ``label`` overlapped it (one note per label: a
        cell's later windows overwrite its earlier note, so notes stay few)."""
        import hashlib

        key = hashlib.sha1(label.encode()).hexdigest()[:16]
        try:
            self._write(self.dir / f"{NOTE}{target.stem}--{key}.json", {"label": label})
        except OSError:
            pass


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # removed meanwhile, or half a foreign file: not ours to judge


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
