"""Grids of capacity runs: tasks, executors, resumable CSV output, summaries.

One task = one (model, d, seed) bisection, or one ordering of a user's file
(whose rows carry the file's content digest: a rerun after the file changed
is refused, never answered with the old file's rows).
Each finished task is appended to the CSV as one line and flushed to disk, so a
run that is killed and started again with the same arguments skips the rows it
has and ends with exactly the rows of an uninterrupted run. At the end the file
is rewritten in task order, atomically. One run at a time may write a file: a
second run on the same --out is refused while the first holds its lock.

Executors (``EXECUTORS``): ``local`` (joblib worker processes, all cores by
default), ``serial`` (in this process) and ``dask`` (a dask.distributed cluster
at ``scheduler``; dask is imported only then). A task's result depends on the
task alone (its seed comes from the task, never from run order), so every
executor gives the same rows.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import math
import os
import socket
import sys
import warnings
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import joblib
import pandas as pd

from feasibility.capacity.bisection import CapacityResult, capacity_bisection, capacity_guess
from feasibility.capacity.journal import ProbeJournal, gather, journal_folder
from feasibility.capacity.progress import Progress, solver_heartbeat, worker_line
from feasibility.core.errors import InputError, WorkerLost
from feasibility.core.files import content_digest, write_csv_atomic, write_text_atomic
from feasibility.core.instances import (
    GeneratedFamily,
    check_family,
    file_order,
    first_contested_prefix,
    load,
)
from feasibility.core.tolerances import boundary_tolerance, capacity_tolerance

#: per-seed capacity rows (documented in README.md, "CSV columns")
CAPACITY_COLUMNS = ["model", "d", "seed", "distribution", "p_max", "p_star", "p_feasible",
                    "p_infeasible", "status", "kappa_at_p_star", "solves", "rounds",
                    "seconds", "solver", "tolerance", "kappa_bound_above",
                    "boundary_tolerance", "boundary_verdict", "boundary_seconds"]
FILE_COLUMNS = ["file", "file_sha256", "n_facts", "shuffle", "p_star", "p_feasible", "p_infeasible",
                "status", "kappa_at_p_star", "solves", "rounds", "seconds", "solver"]
SUMMARY_COLUMNS = ["model", "d", "seeds", "exact", "p_c", "p_star_q25", "p_star_q75",
                   "p_star_min", "p_star_max", "p_c_log_p_c_over_d2", "seconds_per_seed"]
EXECUTORS = ("local", "serial", "dask")
#: seconds to wait for a Dask scheduler before giving up with one line
DASK_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class CapacityTask:
    model: str
    d: int
    seed: int
    distribution: str = "gaussian"

    @property
    def key(self) -> tuple:
        return (self.model, str(self.d), str(self.seed), self.distribution)


@dataclass(frozen=True)
class FileTask:
    path: str
    shuffle: int  # 0: file order; k >= 1: the k-th seeded permutation
    #: the file's content_digest (computed if not given), so that a changed file
    #: is never taken for the one a row or a journal was made from
    digest: str | None = None

    def __post_init__(self):
        if self.digest is None:
            object.__setattr__(self, "digest", content_digest(self.path))

    @property
    def key(self) -> tuple:
        return (Path(self.path).name, self.digest, str(self.shuffle))


def capacity_tasks(models, dims, seeds: int, seed0: int = 0,
                   distribution: str = "gaussian") -> list[CapacityTask]:
    check_family(models, distribution, seed0, seed_name="--seed0")
    if seeds < 1:
        raise InputError(f"--seeds must be >= 1, got {seeds}")
    for d in dims:
        if d < 2:
            raise InputError(f"dimensions must be >= 2, got {d}")
    for name, values in (("models", models), ("dimensions", dims)):
        if len(set(values)) != len(values):
            raise InputError(f"{name} listed twice: {', '.join(map(str, values))}")
    return [CapacityTask(model, int(d), seed0 + s, distribution)
            for model in models for d in dims for s in range(seeds)]


#: a solved probe that took this long gets a progress line of its own: at d = 128
#: a seed's row comes after hours, while at d <= 32 a line per probe would bury
#: the rows (a probe there takes well under a second)
REPORTED_PROBE_SECONDS = 5.0


def p_max_for(d: int) -> int:
    """Facts drawn per seed: well above the guess; a seed reaching it is
    reported as status at_least_p_max, never truncated silently."""
    return int(math.ceil(1.6 * capacity_guess(d))) + 10


def run_capacity_task(task: CapacityTask, solver: str | None = None,
                      journal: str | None = None, progress: bool = False, **search) -> dict:
    """One per-seed bisection; with a `journal` folder, its probes are recorded
    there as they finish and a rerun after an interruption reuses them.
    ``progress``: a line on stderr for each probe solved in REPORTED_PROBE_SECONDS
    or more (a seed at d = 128 takes hours, its row comes only at the end).
    ``search``: options of capacity_bisection and decide (benchmarks/bisections.py
    runs the plain search with secant=False, seed_memory=False, mirror_descent=False)."""
    p_max = p_max_for(task.d)
    full = GeneratedFamily(task.model, task.d, p_max, task.seed, task.distribution)
    tolerance = capacity_tolerance(task.d)
    search.setdefault("boundary_tolerance", boundary_tolerance(task.d))
    result = journaled_bisection(full, task.key, f"{task.model} d={task.d} seed={task.seed}",
                                 journal, progress, guess=capacity_guess(task.d, task.model),
                                 solver=solver, tolerance=tolerance, **search)
    return {"model": task.model, "d": task.d, "seed": task.seed,
            "distribution": task.distribution, "p_max": p_max, **result.row(),
            "solver": solver or "default", "tolerance": tolerance}


def journaled_bisection(full, key: tuple, label: str, journal: str | None = None,
                        progress: bool = False, **search) -> CapacityResult:
    """capacity_bisection of one task whose probes go to the journal named `key` in
    the `journal` folder (a rerun after an interruption reuses them, seeds its
    first solve with the last W kept there, and resumes a probe cut short from its
    checkpoint) and, with `progress`, get a line on stderr after `label`
    (probe_reporter). ``search``: capacity_bisection's options."""
    probe_journal = ProbeJournal(journal, key) if journal is not None else None
    known, known_boundary = probe_journal.recorded() if probe_journal else (None, None)
    with solver_heartbeat(label) if progress else contextlib.nullcontext():
        return capacity_bisection(full, known=known, known_boundary=known_boundary,
                                  memory=probe_journal.memory() if probe_journal else None,
                                  on_probe=probe_reporter(label, probe_journal, progress),
                                  checkpoints=probe_journal.checkpoint if probe_journal
                                  else None, **search)


def probe_reporter(label: str, journal: ProbeJournal | None = None, progress: bool = False):
    """capacity_bisection's ``on_probe``: each probe solved goes to the `journal`,
    and with `progress` those that took REPORTED_PROBE_SECONDS or more get a line
    on stderr, after `label` (inside a solve, progress.solver_heartbeat speaks).
    None where neither is asked for."""
    if journal is None and not progress:
        return None

    def on_probe(probe, weights):
        if journal is not None:
            journal.record(probe, weights)
        if progress and probe.seconds >= REPORTED_PROBE_SECONDS:
            worker_line(f"{label}: {probe.describe()}")

    return on_probe


def run_file_task(task: FileTask, solver: str | None = None, journal: str | None = None,
                  progress: bool = False) -> dict:
    """Prefix capacity of a file's facts in one ordering; ``journal`` and
    ``progress`` as in run_capacity_task."""
    instance = load(task.path)
    ordered = instance.permuted(file_order(instance.n, task.shuffle))
    # shorter prefixes share one answer: nothing to separate, trivially stored
    result = journaled_bisection(ordered, task.key, f"{task.key[0]} shuffle {task.shuffle}",
                                 journal, progress, guess=instance.n,
                                 p_min=first_contested_prefix(ordered), solver=solver)
    return {"file": Path(task.path).name, "file_sha256": task.digest, "n_facts": instance.n,
            "shuffle": task.shuffle, **result.row(), "solver": solver or "default"}


# -- resumable CSV ------------------------------------------------------------------
class ResumableCSV:
    """Append-only CSV whose complete lines are the finished tasks."""

    def __init__(self, path: Path, columns: list[str], key_columns: list[str]):
        self.path, self.columns, self.key_columns = Path(path), columns, key_columns
        self.rows: list[dict] = []
        #: whether the file was rewritten with our columns (a new inode: see _OutputLock.follow)
        self.upgraded = False
        if self.path.exists():
            self._recover()

    def _recover(self):
        data = self.path.read_bytes()
        if not data:
            return
        complete = data[:data.rfind(b"\n") + 1]  # drop a line cut by a kill
        try:
            text = complete.decode("utf-8")
            lines = list(csv.reader(io.StringIO(text)))
        except (UnicodeDecodeError, csv.Error):
            raise InputError(f"{self.path} exists and is not a CSV written by feasibility; "
                             f"choose another --out or move it away") from None
        header = lines[0] if lines else None
        # a file written by an earlier version, whose columns all lead ours, is kept:
        # its rows get the new columns, empty
        older = bool(header) and header == self.columns[:len(header)]
        if header != self.columns and not older:
            raise InputError(f"{self.path} exists with other columns; choose another --out "
                             f"or move it away")
        for number, fields in enumerate(lines[1:], start=2):
            if len(fields) != len(header):
                raise InputError(f"{self.path}: line {number} has {len(fields)} fields, "
                                 f"expected {len(header)}; fix or remove that line, "
                                 f"or choose another --out")
        if header != self.columns:
            lines = [self.columns] + [fields + [""] * (len(self.columns) - len(header))
                                      for fields in lines[1:]]
            self._rewrite(lines)
            data = complete  # the rewrite left out a cut line: nothing to truncate
            self.upgraded = True
        self.rows = [dict(zip(self.columns, fields)) for fields in lines[1:]]
        if len(complete) != len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(len(complete))

    def _rewrite(self, lines: list[list[str]]):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(lines)
        write_text_atomic(buffer.getvalue(), self.path)

    def done(self) -> set[tuple]:
        return {tuple(row[c] for c in self.key_columns) for row in self.rows}

    def append(self, row: dict):
        new = not self.path.exists() or self.path.stat().st_size == 0
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerow({c: row.get(c) for c in self.columns})
        with open(self.path, "a", newline="") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        self.rows.append({c: str(row.get(c)) for c in self.columns})


class _OutputLock:
    """An exclusive advisory lock on the output CSV (released even by SIGKILL)."""

    def __init__(self, path: Path):
        self.path, self.handle, self.created = Path(path), None, False

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return self
        self.created = not self.path.exists()
        self.handle = open(self.path, "a")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.close()
            raise InputError(f"{self.path} is being written by another run; wait for it "
                             f"or choose another --out") from None
        return self

    def follow(self):
        """Lock the file that now has our path: an atomic rewrite gave the name a
        new inode, and the lock held stays with the old one."""
        if self.handle is None:
            return
        old, self.handle = self.handle, None
        try:
            self.__enter__()
        finally:
            old.close()

    def __exit__(self, *exc):
        if self.handle is not None:
            self.handle.close()  # releases the lock
            if self.created and exc[0] is not None and self.path.exists() \
                    and self.path.stat().st_size == 0:
                self.path.unlink()  # leave no empty file behind a failed start
        return False


# -- executors -------------------------------------------------------------------
def default_jobs() -> int:
    """All cores this process may use (CPU affinity and cgroup quotas respected)."""
    return max(1, joblib.cpu_count())


def execute(function, tasks, solver=None, jobs: int | None = None, executor: str = "local",
            scheduler: str | None = None):
    """Yield (task, function(task, solver)) as tasks finish, in any order.

    The one place where the package runs work in parallel: every grid (capacity,
    files, projections, Hebbian, two-layer, top-k, spectra) goes through it, so
    each gets the same three executors. `jobs` None means every core.
    """
    jobs = jobs or default_jobs()
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    if executor == "dask":
        yield from _execute_dask(function, tasks, solver, scheduler)
        return
    if executor == "serial" or jobs == 1 or len(tasks) <= 1:
        for task in tasks:
            yield task, function(task, solver)
        return
    parallel = joblib.Parallel(n_jobs=jobs, return_as="generator_unordered")
    outputs = parallel(joblib.delayed(_tagged)(function, task, solver) for task in tasks)
    try:
        for task, row in outputs:
            yield task, row
    finally:
        # an interruption stops the workers here; their unfinished tasks are the
        # ones a rerun does, so joblib's warning about cancelling them is noise
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*still being processed.*")
            outputs.close()


def _check_scheduler(address: str):
    """Fail fast, with one line, on an address Dask cannot use or a closed port
    (a Client would retry for DASK_CONNECT_TIMEOUT, then complain at exit)."""
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    try:
        scheme, location = parse_address(address)
        get_backend(scheme)
        if scheme not in ("tcp", "tls"):
            return
        host, port = parse_host_port(location)
        socket.create_connection((host, port), timeout=DASK_CONNECT_TIMEOUT).close()
    except (ValueError, TypeError, OSError, OverflowError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot reach the Dask scheduler at {address!r} ({detail})") from None


def _execute_dask(function, tasks, solver, scheduler: str | None):
    """Run the tasks on a dask.distributed cluster; its workers need this package."""
    if not scheduler:
        raise InputError("--executor dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise InputError("--executor dask needs dask.distributed: "
                         "pip install 'feasibility[dask]'") from None
    if not tasks:
        return
    _check_scheduler(scheduler)
    try:
        client = Client(scheduler, timeout=DASK_CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot reach the Dask scheduler at {scheduler!r} ({detail})") from None
    futures = {}
    try:
        for task in tasks:
            futures[client.submit(function, task, solver, pure=False)] = task
        for future in as_completed(futures, loop=client.loop):
            yield futures[future], future.result()
    finally:
        client.cancel(list(futures))
        client.close()


def _tagged(function, task, solver):
    return task, function(task, solver)


def run_tasks(tasks, out: Path, columns, key_columns, function, solver=None,
              jobs: int | None = None, executor: str = "local", quiet: bool = False,
              label=lambda row: "", scheduler: str | None = None,
              finish=None, check=None) -> pd.DataFrame:
    """Run what `out` does not have yet; return all rows in task order.
    ``check(rows)``, if given, sees the rows already in `out` before any task runs
    (and raises InputError to refuse them); ``finish()``, if given, runs once the
    rows are in; both under `out`'s lock."""
    out = Path(out)
    if out.parent and not out.parent.exists():
        raise InputError(f"{out.parent}: no such directory")
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    with _OutputLock(out) as lock:
        frame = _run_locked(tasks, out, columns, key_columns, function, solver, jobs,
                            executor, quiet, label, scheduler, lock, check)
        if finish is not None:
            finish()
        return frame


def _run_locked(tasks, out, columns, key_columns, function, solver, jobs, executor, quiet,
                label, scheduler, lock, check) -> pd.DataFrame:
    store = ResumableCSV(out, columns, key_columns)
    if store.upgraded:
        lock.follow()
    if check is not None:
        check(store.rows)
    done = store.done()
    todo = list({task.key: task for task in tasks if task.key not in done}.values())
    if not quiet and len(todo) < len(tasks):
        print(f"resuming: {len(tasks) - len(todo)} of {len(tasks)} rows already in {out}",
              file=sys.stderr)
    progress = Progress(len(tasks), len(tasks) - len(todo), quiet)
    try:
        for task, row in execute(function, todo, solver, jobs, executor, scheduler):
            store.append(row)
            progress.update(label(row))
    except BrokenProcessPool:  # joblib's TerminatedWorkerError among them
        raise WorkerLost(f"a worker process died (most often killed by the kernel for memory); "
                         f"the {len(store.rows)} rows finished are kept in {out}: run the same "
                         f"command again to resume, with --jobs 1 or fewer tasks at once"
                         ) from None
    finally:
        progress.close()
    order = {task.key: k for k, task in enumerate(tasks)}
    frame = pd.read_csv(out)
    # a row is never repeated, even if two runs ever appended the same task
    frame = frame.loc[~frame[key_columns].astype(str).duplicated(keep="first")]
    keys = frame[key_columns].astype(str).apply(tuple, axis=1)
    # rows of other grids already in the file are kept, ahead of this grid's
    frame = frame.assign(_order=keys.map(order).fillna(-1))
    frame = frame.sort_values("_order", kind="stable").drop(columns="_order")
    frame = frame.reset_index(drop=True)
    write_csv_atomic(frame, out)
    return frame


def run_capacity_grid(tasks: list[CapacityTask], out: Path, **kwargs) -> pd.DataFrame:
    """Every per-seed bisection of the grid; each probe is journaled while its task
    runs (an interrupted task resumes with its probes), then gathered into
    OUT-probes.csv, one row per certified probe."""
    key_columns = ["model", "d", "seed", "distribution"]
    function = functools.partial(run_capacity_task, journal=str(journal_folder(out)),
                                 progress=not kwargs.get("quiet", False))
    # folded under the lock: a second run on `out` cannot be writing journals then
    return run_tasks(tasks, out, CAPACITY_COLUMNS, key_columns, function,
                     label=lambda r: f"{r['model']} d={r['d']} seed={r['seed']} "
                                     f"p*={r['p_star']} ({r['seconds']:.1f}s)",
                     finish=lambda: gather(out, key_columns), **kwargs)


def run_file_capacity(path, shuffles: int, out: Path, **kwargs) -> pd.DataFrame:
    """Every ordering's prefix capacity, probes journaled as in run_capacity_grid."""
    load(path)  # validate before any work
    digest = content_digest(path)
    tasks = [FileTask(str(path), k, digest) for k in range(shuffles + 1)]
    key_columns = ["file", "file_sha256", "shuffle"]
    function = functools.partial(run_file_task, journal=str(journal_folder(out)),
                                 progress=not kwargs.get("quiet", False))
    return run_tasks(tasks, out, FILE_COLUMNS, key_columns, function,
                     label=lambda r: f"shuffle {r['shuffle']} p*={r['p_star']}",
                     check=one_version_of(path, digest, out),
                     finish=lambda: gather(out, key_columns), **kwargs)


def one_version_of(path, digest: str, out: Path):
    """run_tasks' ``check`` for a file's rows: `out` may hold rows of other files, but
    none of another version of this one (same name, other content), which a
    rerun would otherwise report beside, or instead of, this version's."""
    name = Path(path).name

    def check(rows):
        other = sorted({row.get("file_sha256") or "none recorded" for row in rows
                        if row.get("file") == name} - {digest})
        if other:
            raise InputError(f"{out} has rows of another {name} (content sha256 "
                             f"{', '.join(other)}; this one is {digest}): choose another "
                             f"--out or move it away")

    return check


def spread(values: pd.Series) -> dict:
    """median, q25, q75, min, max of `values` (NaN each when empty): the
    per-(model, d) summary of a capacity column over seeds."""
    if len(values) == 0:
        return dict.fromkeys(("median", "q25", "q75", "min", "max"), math.nan)
    return {"median": float(values.median()), "q25": float(values.quantile(0.25)),
            "q75": float(values.quantile(0.75)), "min": float(values.min()),
            "max": float(values.max())}


def p_log_p_over_d2(p: float, d: int) -> float:
    return p * math.log(p) / d**2 if p > 1 else math.nan


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, d): p_c = median p_star over seeds whose bracket closed."""
    rows = []
    for (model, d), group in frame.groupby(["model", "d"], sort=False):
        exact = spread(group.loc[group["status"] == "exact", "p_star"].astype(float))
        rows.append({
            "model": model, "d": int(d), "seeds": len(group),
            "exact": int((group["status"] == "exact").sum()),
            "p_c": exact["median"],
            "p_star_q25": exact["q25"], "p_star_q75": exact["q75"],
            "p_star_min": exact["min"], "p_star_max": exact["max"],
            "p_c_log_p_c_over_d2": p_log_p_over_d2(exact["median"], d),
            "seconds_per_seed": float(group["seconds"].mean()),
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def summary_path(out: Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + "-summary" + out.suffix)


# -- agreement with committed reference rows -----------------------------------------
#: what identifies a capacity row, and what a rerun must reproduce of it
CAPACITY_KEY = ["model", "d", "seed", "distribution"]
REPRODUCED = ["p_star", "status"]


@dataclass(frozen=True)
class Agreement:
    """Per-seed comparison of a run's capacity rows with reference rows."""

    reference: str
    compared: int               # rows that the reference also has
    differing: pd.DataFrame     # those whose p_star or status differ, both values side by side
    not_in_reference: int

    @property
    def agrees(self) -> bool:
        return self.differing.empty

    def report(self) -> str:
        lines = [f"per-seed p*: {self.compared - len(self.differing)} of {self.compared} "
                 f"seeds agree with {self.reference}"
                 + (f" ({self.not_in_reference} seeds not in it)" if self.not_in_reference
                    else "")]
        if not self.agrees:
            lines.append(self.differing.to_string(index=False))
        return "\n".join(lines)


def read_reference(path) -> pd.DataFrame:
    """Committed per-seed capacity rows, checked before any run starts."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such reference file")
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a readable CSV ({detail})") from None
    missing = [c for c in CAPACITY_KEY + REPRODUCED if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: not per-seed capacity rows (no column "
                         f"{', '.join(missing)})")
    return frame


def compare_with_reference(frame: pd.DataFrame, reference: pd.DataFrame,
                           name: str = "the reference") -> Agreement:
    """Match rows on (model, d, seed, distribution) and compare p_star and status,
    both sides brought to one text form first (see _as_text)."""
    ours = _as_text(frame)
    theirs = _as_text(reference).drop_duplicates(CAPACITY_KEY)
    both = ours.merge(theirs, on=CAPACITY_KEY, how="left", suffixes=("", "_reference"),
                      indicator=True)
    found = both[both["_merge"] == "both"]
    differs = (found["p_star"] != found["p_star_reference"]) | \
        (found["status"] != found["status_reference"])
    columns = CAPACITY_KEY + [c for v in REPRODUCED for c in (v, f"{v}_reference")]
    return Agreement(name, len(found), found.loc[differs, columns].reset_index(drop=True),
                     int((both["_merge"] == "left_only").sum()))


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Key and compared columns as text: 25 whether a CSV held 25 or 25.0 (a column with
    an undetermined seed is written as floats), a missing p* as ''."""
    text = frame[CAPACITY_KEY + REPRODUCED].copy()
    for column in text.columns:
        values = text[column]
        if pd.api.types.is_float_dtype(values) and values.dropna().mod(1).eq(0).all():
            values = values.astype("Int64")
        text[column] = values.astype("string").fillna("").astype(str)
    return text
