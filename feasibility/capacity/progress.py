"""What a long run says on stderr while it runs: the grid's progress (a bar on
a terminal, a line per finished task elsewhere), and from inside a solve, a
heartbeat: a probe at d = 128 is 6-20 min of IPM iterations, at d = 192 hours,
and without one the run looks hung."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import sys
import threading
import time

from feasibility.core.memory import peak_resident_bytes
from feasibility.solvers import solver_log

#: at most one heartbeat line this often from a solve: none at d <= 64, where a
#: probe takes under a minute; one per IPM iteration at d = 192 (2.5-7 min each
#: on 2 cores)
HEARTBEAT_SECONDS = 60.0


def _clock(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "--:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return (f"{hours}:" if hours else "") + f"{rest // 60:02d}:{rest % 60:02d}"


class Progress:
    """Counts, elapsed time and ETA on stderr.

    ``bar``: one line redrawn in place, when the stream is a terminal and the
    environment variable CI is unset; ``lines``: one line per finished task
    (logs, CI, pipes); ``off``: nothing (``--quiet``). The ETA is the mean time
    per task finished in this run times the tasks left.
    """

    WIDTH = 24

    def __init__(self, total: int, done: int, quiet: bool, stream=None):
        self.total, self.done, self.quiet = total, done, quiet
        self.stream = sys.stderr if stream is None else stream
        self.start, self.new = time.monotonic(), 0
        self.mode = "off" if quiet else ("bar" if self.interactive(self.stream) else "lines")
        self._drawn = False
        if self.mode == "bar" and self.done < self.total:
            self._draw("")

    @staticmethod
    def interactive(stream) -> bool:
        """Whether the bar is drawn on `stream`: a terminal, outside CI."""
        if os.environ.get("CI") or os.environ.get("TERM") == "dumb":
            return False
        try:
            return bool(stream.isatty())
        except (AttributeError, ValueError):
            return False

    def eta(self) -> float | None:
        if self.new == 0:
            return None
        return (self.total - self.done) * (time.monotonic() - self.start) / self.new

    def _draw(self, label: str):
        fraction = self.done / self.total if self.total else 1.0
        filled = int(round(fraction * self.WIDTH))
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        line = (f"[{bar}] {self.done}/{self.total} {fraction:4.0%}  "
                f"elapsed {_clock(time.monotonic() - self.start)}  eta {_clock(self.eta())}"
                + (f"  {label}" if label else ""))
        width = shutil.get_terminal_size((100, 20)).columns
        self.stream.write("\r" + line[:max(width - 1, 20)] + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def update(self, label: str):
        self.done += 1
        self.new += 1
        if self.mode == "bar":
            self._draw(label)
        elif self.mode == "lines":
            print(f"[{self.done}/{self.total}] {label}  elapsed "
                  f"{_clock(time.monotonic() - self.start)}  eta {_clock(self.eta())}",
                  file=self.stream, flush=True)

    def close(self):
        """End the bar's line (so that what follows starts on a fresh one)."""
        if self.mode == "bar" and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def worker_line(text: str, stream=None):
    """One line from inside a task: started afresh where the parent draws a bar,
    and written whole, so that lines from several workers do not interleave."""
    stream = sys.stderr if stream is None else stream
    start = "\r\x1b[K" if Progress.interactive(stream) else ""
    stream.write(f"{start}  {text}\n")
    stream.flush()


class SolverHeartbeat(logging.Handler):
    """The solvers' progress records (solver_log) as a line on stderr after
    `label`, at most one every `every` seconds (those at INFO or above, such as
    a solve resumed from its checkpoint, every one), with this process's peak memory.
    Only the records of the thread that made it: tasks that share a process
    (threads) keep their labels."""

    def __init__(self, label: str, every: float):
        super().__init__(logging.DEBUG)
        self.label, self.every = label, every
        self.thread = threading.get_ident()
        self.last = time.monotonic()

    def emit(self, record: logging.LogRecord):
        now = time.monotonic()
        if record.thread != self.thread or (record.levelno < logging.INFO
                                            and now - self.last < self.every):
            return
        self.last = now
        peak = peak_resident_bytes()
        memory = "" if peak is None else f"; peak memory {peak / 2**30:.2f} GiB"
        worker_line(f"{self.label}: {record.getMessage()}{memory}")


@contextlib.contextmanager
def solver_heartbeat(label: str, every: float | None = None):
    """Within this block, a solve's IPM iterations and descent steps show on
    stderr, after `label`, at most one line every `every` seconds
    (HEARTBEAT_SECONDS)."""
    handler = SolverHeartbeat(label, HEARTBEAT_SECONDS if every is None else every)
    level = solver_log.level
    solver_log.addHandler(handler)
    if not solver_log.isEnabledFor(logging.DEBUG):
        solver_log.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        solver_log.removeHandler(handler)
        solver_log.setLevel(level)
