"""Ctrl-C and SIGTERM: stop at once, keep every finished split, say how to resume.

A split cut short is not recorded (its record is written only after its window closed), so the
same command measures it again. SIGINT and SIGTERM both become :class:`Interrupted` while a cell
runs; the runner turns that into :class:`CellInterrupted`, which names the cell and its recorded
splits; entry points print its one line and exit 128 + the signal number (130, 143).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any


class Interrupted(KeyboardInterrupt):
    """A signal that stops the run: a KeyboardInterrupt (SIGTERM too), so ``except Exception`` in
    Hydra's job runner or a sweep loop does not swallow it and go on, and a notebook stops."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


class CellInterrupted(Interrupted):
    """An interrupted cell: which one, how many of its splits are recorded; ``not_run`` lists
    the cells of the same command that had not started (filled in by whoever ran them)."""

    def __init__(self, signum: int, cell_id: str, label: str, recorded: int, repetitions: int) -> None:
        super().__init__(signum)
        self.cell_id, self.label = cell_id, label
        self.recorded, self.repetitions = recorded, repetitions
        self.not_run: list[str] = []

    def line(self) -> str:
        return (f"interrupted ({self.name}) during cell {self.cell_id} ({self.label}): "
                f"{self.recorded} of {self.repetitions} split(s) recorded, the split in progress "
                "was not; rerun the same command to resume (recorded splits are kept)")

    def lines(self) -> list[str]:
        out = [self.line()]
        if self.not_run:
            out.append(f"{len(self.not_run)} cell(s) of this command not run:")
            out += [f"  {cell}" for cell in self.not_run]
        return out

    def __str__(self) -> str:
        return "; ".join(self.lines())


def as_interrupted(exc: BaseException) -> Interrupted:
    return exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)


def _raise(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGTERM (and SIGINT) raise :class:`Interrupted` inside; the previous handlers (e.g.
    submitit's inside a Slurm job) come back on the way out. A no-op outside the main thread."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in saved:
        signal.signal(sig, _raise)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
