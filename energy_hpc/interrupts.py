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


TERM_GRACE_S = 3.0  # inside a submitit job: how long a SIGTERM waits for a following SIGUSR2


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGTERM (and SIGINT) raise :class:`Interrupted` inside; the previous handlers come back
    on the way out. A no-op outside the main thread.

    Inside a submitit job (a previous SIGTERM handler is installed) a SIGTERM can be the first
    half of a preemption: submitit's SIGUSR2 follows, checkpoints and requeues the job, and
    Slurm then sends SIGTERM again. So there a SIGTERM is passed to the previous handler and
    raises only if no SIGUSR2 came within ``TERM_GRACE_S``; from a SIGUSR2 on, SIGTERM is left
    to submitit, so the requeue is not cut short."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2, signal.SIGALRM)
    saved = {sig: signal.getsignal(sig) for sig in signals}
    # a handler of an enclosing signals_interrupt (the CLI's) is ours, not submitit's
    handled = callable(saved[signal.SIGTERM]) and not getattr(saved[signal.SIGTERM], "ours", False)
    checkpointing = False

    def on_int(signum: int, frame: Any) -> None:
        raise Interrupted(signum)

    def on_term(signum: int, frame: Any) -> None:
        if not handled:
            raise Interrupted(signum)
        previous = saved[signal.SIGTERM]
        if callable(previous):
            previous(signum, frame)
        if not checkpointing:
            signal.setitimer(signal.ITIMER_REAL, TERM_GRACE_S)

    def on_alarm(signum: int, frame: Any) -> None:
        if not checkpointing:
            raise Interrupted(signal.SIGTERM)

    def on_usr2(signum: int, frame: Any) -> None:
        nonlocal checkpointing
        checkpointing = True
        signal.setitimer(signal.ITIMER_REAL, 0)
        previous = saved[signal.SIGUSR2]
        if callable(previous):
            previous(signum, frame)

    for handler in (on_int, on_term, on_alarm, on_usr2):
        handler.ours = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGINT, on_int)
    signal.signal(signal.SIGTERM, on_term)
    if handled:
        signal.signal(signal.SIGALRM, on_alarm)
    if callable(saved[signal.SIGUSR2]):
        signal.signal(signal.SIGUSR2, on_usr2)
    try:
        yield
    finally:
        if handled:
            signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in saved.items():
            signal.signal(sig, handler)
