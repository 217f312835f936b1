"""What the benchmark scripts share: measuring a job in fresh processes, and
writing a marked section of BENCHMARKS.md.

A job is a module-level function returning (seconds, outcome): it times only
the call it is about (imports and file loading stay outside), and its
outcome is a short text for the table. Each run happens in a spawned child,
so the peak memory reported is that job's own.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Measurement:
    seconds: tuple[float, ...]
    peak_mib: tuple[float, ...]
    outcome: str           # the last run's
    recorded: tuple[str, ...] = ()   # UTC times of the runs reused from the cache

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def peak(self) -> float:
        return max(self.peak_mib)

    @property
    def n(self) -> int:
        return len(self.seconds)

    def cell(self, digits: int = 2) -> str:
        """'median (min–max, n=k)', or 'value (n=1)'."""
        head = f"{self.median:.{digits}f}"
        if self.n == 1:
            return f"{head} (n=1)"
        return f"{head} ({min(self.seconds):.{digits}f}–{max(self.seconds):.{digits}f}, n={self.n})"


def _child(queue, job, args):
    seconds, outcome = job(*args)
    queue.put((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, outcome))


def _name(job) -> str:
    return job.__name__.lstrip("_")


def _cached(cache: Path | None, job, args) -> list[tuple]:
    if cache is None or not cache.exists():
        return []
    runs = []
    for line in cache.read_text().splitlines():
        record = json.loads(line)
        if record["job"] == _name(job) and tuple(record["args"]) == tuple(args):
            runs.append((*record["run"], record["when"]))
    return runs


def measure(job, args: tuple, repeats: int, cache: Path | None = None,
            resume: bool = False) -> Measurement:
    """Run job(*args) in `repeats` fresh processes.

    Every run is appended to `cache` (JSON lines) when given; with `resume`,
    runs recorded there by an interrupted benchmark are reused, not repeated.
    """
    ctx = mp.get_context("spawn")
    runs = _cached(cache, job, args)[:repeats] if resume else []
    recorded = tuple(run[3] for run in runs)
    for _ in range(repeats - len(runs)):
        queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(queue, job, args))
        proc.start()
        proc.join()
        if queue.empty():
            raise SystemExit(f"bench: {_name(job)}{tuple(args)} failed in its child process")
        result = queue.get()
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            with open(cache, "a") as handle:
                handle.write(json.dumps({"job": _name(job), "args": list(args),
                                         "run": list(result),
                                         "when": datetime.now(timezone.utc).isoformat()})
                             + "\n")
        runs.append(result)
        print(f"  {_name(job)}{tuple(args)}: {result[0]:.2f}s {result[1]:.0f} MiB  {result[2]}",
              file=sys.stderr, flush=True)
    return Measurement(tuple(r[0] for r in runs), tuple(r[1] for r in runs), runs[-1][2],
                       recorded)


def machine() -> str:
    cpu = platform.processor() or "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import cvxpy
    import scipy

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores, "
            f"{mem:.0f} GiB; Python {platform.python_version()}, numpy {np.__version__}, "
            f"scipy {scipy.__version__}, cvxpy {cvxpy.__version__}")


def side_by_side(first: Measurement, second: Measurement) -> str:
    """The middle of a row comparing two ways of doing the same job: each one's
    time, the time ratio second / first, each one's peak, the memory ratio."""
    return (f"{first.cell()} | {second.cell()} | **{second.median / first.median:.2f}×** | "
            f"{first.peak:.0f} | {second.peak:.0f} | **{second.peak / first.peak:.2f}×**")


def provenance(command: str, started: float, load_before: float, extra: str = "") -> list[str]:
    """The lines under a section's title: the command that made it, when, in how
    long, under what load (1-minute averages at its start and end; `extra` is
    appended to that sentence), and on which machine."""
    return [f"Made by `{command.strip()}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC "
            f"in {(time.time() - started) / 60:.1f} min; 1-minute load average "
            f"{load_before:.1f} at the start and {os.getloadavg()[0]:.1f} at the end." + extra,
            "", f"Machine: {machine()}.", ""]


def write_section(out: Path, section: str, begin: str, end: str) -> None:
    """Replace the section between the marker lines of `out`, keeping every other
    one; append it when the markers are not there yet."""
    text = out.read_text() if out.exists() else "# Benchmarks\n\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        # one blank line before whatever section follows, as when it was appended
        text = head + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    out.write_text(text)
    print(f"wrote {out}", file=sys.stderr)


def header(title: str, command: str, started: float, load_before: float, prose: str,
           extra: str = "") -> list[str]:
    """A section's title, its provenance (see ``provenance``) and what it measures."""
    return [title, "", *provenance(command, started, load_before, extra), prose, ""]


def publish(out: Path, begin: str, end: str, body: list[str], write: bool = True) -> str:
    """The section of `body`'s lines between the marker lines: printed, and (with
    `write`) put in place of the one in `out` (``write_section``)."""
    section = "\n".join([begin, *body, "", end]) + "\n"
    print(section)
    if write:
        write_section(out, section, begin, end)
    return section
