"""Grids of capacity runs: tasks, executors, resumable CSV output, summaries.

One task = one (model, d, seed) bisection, or one ordering of a user's file.
Each finished task is appended to the CSV as one line and flushed to disk, so a
run that is killed and started again with the same arguments skips the rows it
has and ends with exactly the rows of an uninterrupted run. At the end the file
is rewritten in task order, atomically.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .capacity import capacity_bisection, capacity_guess
from .errors import InputError
from .instances import MODELS, generate, load

#: per-seed capacity rows (documented in README.md, "CSV columns")
CAPACITY_COLUMNS = ["model", "d", "seed", "distribution", "p_max", "p_star", "p_feasible",
                    "p_infeasible", "status", "kappa_at_p_star", "solves", "rounds",
                    "seconds", "solver"]
FILE_COLUMNS = ["file", "n_facts", "shuffle", "p_star", "p_feasible", "p_infeasible",
                "status", "kappa_at_p_star", "solves", "rounds", "seconds", "solver"]
SUMMARY_COLUMNS = ["model", "d", "seeds", "exact", "p_c", "p_star_q25", "p_star_q75",
                   "p_star_min", "p_star_max", "p_c_log_p_c_over_d2", "seconds_per_seed"]
EXECUTORS = ("local", "serial")


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

    @property
    def key(self) -> tuple:
        return (Path(self.path).name, str(self.shuffle))


def capacity_tasks(models, dims, seeds: int, seed0: int = 0,
                   distribution: str = "gaussian") -> list[CapacityTask]:
    for model in models:
        if model not in MODELS:
            raise InputError(f"unknown model {model!r}: choose from {', '.join(MODELS)}")
    if seeds < 1:
        raise InputError(f"--seeds must be >= 1, got {seeds}")
    for d in dims:
        if d < 2:
            raise InputError(f"dimensions must be >= 2, got {d}")
    return [CapacityTask(model, int(d), seed0 + s, distribution)
            for model in models for d in dims for s in range(seeds)]


def p_max_for(d: int) -> int:
    """Facts drawn per seed: three times the starting guess, ample above p_c."""
    return 3 * capacity_guess(d)


def run_capacity_task(task: CapacityTask, solver: str | None = None) -> dict:
    p_max = p_max_for(task.d)
    full = generate(task.model, task.d, p_max, task.seed, task.distribution)
    result = capacity_bisection(full, guess=capacity_guess(task.d), solver=solver)
    return {"model": task.model, "d": task.d, "seed": task.seed,
            "distribution": task.distribution, "p_max": p_max, **result.row(),
            "solver": solver or "default"}


def file_order(n: int, shuffle: int) -> np.ndarray:
    """Shuffle k >= 1 is default_rng([k, 2]).permutation(n); 0 is file order."""
    return np.arange(n) if shuffle == 0 else np.random.default_rng([shuffle, 2]).permutation(n)


def run_file_task(task: FileTask, solver: str | None = None) -> dict:
    instance = load(task.path)
    ordered = instance.permuted(file_order(instance.n, task.shuffle))
    result = capacity_bisection(ordered, guess=instance.n, solver=solver)
    return {"file": Path(task.path).name, "n_facts": instance.n, "shuffle": task.shuffle,
            **result.row(), "solver": solver or "default"}


# -- resumable CSV ------------------------------------------------------------------
class ResumableCSV:
    """Append-only CSV whose complete lines are the finished tasks."""

    def __init__(self, path: Path, columns: list[str], key_columns: list[str]):
        self.path, self.columns, self.key_columns = Path(path), columns, key_columns
        self.rows: list[dict] = []
        if self.path.exists():
            self._recover()

    def _recover(self):
        data = self.path.read_bytes()
        if not data:
            return
        complete = data[:data.rfind(b"\n") + 1]  # drop a line cut by a kill
        text = complete.decode("utf-8", errors="replace")
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames != self.columns:
            raise InputError(f"{self.path} exists with other columns; choose another --out "
                             f"or move it away")
        self.rows = list(reader)
        if len(complete) != len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(len(complete))

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


def write_csv_atomic(frame: pd.DataFrame, path: Path):
    """A reader sees the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    frame.to_csv(tmp, index=False)
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


# -- executors -------------------------------------------------------------------
def _execute(function, tasks, solver, jobs: int, executor: str):
    """Yield (task, row) as tasks finish, whatever the backend."""
    if executor == "serial" or jobs == 1 or len(tasks) <= 1:
        for task in tasks:
            yield task, function(task, solver)
        return
    if executor != "local":
        raise InputError(f"unknown executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=jobs, return_as="generator_unordered")
    for task, row in parallel(delayed(_tagged)(function, task, solver) for task in tasks):
        yield task, row


def _tagged(function, task, solver):
    return task, function(task, solver)


class Progress:
    """Counts, rate and ETA on stderr; silent when quiet."""

    def __init__(self, total: int, done: int, quiet: bool):
        self.total, self.done, self.quiet = total, done, quiet
        self.start, self.new = time.monotonic(), 0

    def update(self, label: str):
        self.done += 1
        self.new += 1
        if self.quiet:
            return
        elapsed = time.monotonic() - self.start
        left = (self.total - self.done) * elapsed / self.new
        print(f"[{self.done}/{self.total}] {label}  elapsed {elapsed:.0f}s  eta {left:.0f}s",
              file=sys.stderr, flush=True)


def run_tasks(tasks, out: Path, columns, key_columns, function, solver=None,
              jobs: int | None = None, executor: str = "local", quiet: bool = False,
              label=lambda row: "") -> pd.DataFrame:
    """Run what `out` does not have yet; return all rows in task order."""
    out = Path(out)
    if out.parent and not out.parent.exists():
        raise InputError(f"{out.parent}: no such directory")
    store = ResumableCSV(out, columns, key_columns)
    done = store.done()
    todo = [task for task in tasks if task.key not in done]
    jobs = jobs or os.cpu_count() or 1
    progress = Progress(len(tasks), len(tasks) - len(todo), quiet)
    if not quiet and len(todo) < len(tasks):
        print(f"resuming: {len(tasks) - len(todo)} of {len(tasks)} rows already in {out}",
              file=sys.stderr)
    for task, row in _execute(function, todo, solver, jobs, executor):
        store.append(row)
        progress.update(label(row))
    order = {task.key: k for k, task in enumerate(tasks)}
    frame = pd.read_csv(out)
    keys = frame[key_columns].astype(str).apply(tuple, axis=1)
    frame = frame.assign(_order=keys.map(order)).dropna(subset=["_order"])
    frame = frame.sort_values("_order").drop(columns="_order").reset_index(drop=True)
    write_csv_atomic(frame, out)
    return frame


def run_capacity_grid(tasks: list[CapacityTask], out: Path, **kwargs) -> pd.DataFrame:
    return run_tasks(tasks, out, CAPACITY_COLUMNS, ["model", "d", "seed", "distribution"],
                     run_capacity_task,
                     label=lambda r: f"{r['model']} d={r['d']} seed={r['seed']} "
                                     f"p*={r['p_star']} ({r['seconds']:.1f}s)", **kwargs)


def run_file_capacity(path, shuffles: int, out: Path, **kwargs) -> pd.DataFrame:
    load(path)  # validate before any work
    tasks = [FileTask(str(path), k) for k in range(shuffles + 1)]
    return run_tasks(tasks, out, FILE_COLUMNS, ["file", "shuffle"], run_file_task,
                     label=lambda r: f"shuffle {r['shuffle']} p*={r['p_star']}", **kwargs)


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, d): p_c = median p_star over seeds whose bracket closed."""
    rows = []
    for (model, d), group in frame.groupby(["model", "d"], sort=False):
        exact = group.loc[group["status"] == "exact", "p_star"].astype(float)
        p_c = float(exact.median()) if len(exact) else math.nan
        rows.append({
            "model": model, "d": int(d), "seeds": len(group), "exact": len(exact),
            "p_c": p_c,
            "p_star_q25": float(exact.quantile(0.25)) if len(exact) else math.nan,
            "p_star_q75": float(exact.quantile(0.75)) if len(exact) else math.nan,
            "p_star_min": float(exact.min()) if len(exact) else math.nan,
            "p_star_max": float(exact.max()) if len(exact) else math.nan,
            "p_c_log_p_c_over_d2": p_c * math.log(p_c) / d**2 if p_c > 1 else math.nan,
            "seconds_per_seed": float(group["seconds"].mean()),
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def summary_path(out: Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + "-summary" + out.suffix)
