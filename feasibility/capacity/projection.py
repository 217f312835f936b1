"""Capacity against memory size for a user's file: principal-component projections.

``feasibility capacity --file F --dims 8,12,16`` asks how many of the file's
facts a d x d memory holds, for each d. The memory reads d input directions
and writes d output directions; which ones is fixed once per file, by
principal components fitted on the *whole* file (every fact, before any prefix
or shuffle), so the prefixes stay nested and the bisection stays exact:

- inputs: the leading right singular vectors of the **uncentred** input matrix
  X (n x d_in, every fact's input), i.e. the principal axes of the second
  moment X^T X. Inputs are not centred: x_i enters each score
  multiplicatively, so subtracting a mean would change the facts (the common
  component of real embeddings is part of every score). x~_i = V_X^T x_i.
- targets: the leading principal components of the **centred distinct**
  targets (each answer once, however many facts share it). Scores compare
  targets only through differences y_t - y_j, which a common shift leaves
  alone, and the second moment of all differences is 2m times the centred
  covariance: centring loses nothing. y~_j = V_Y^T (y_j - mean). With m
  distinct answers the centred targets span at most m - 1 directions, so the
  output side uses min(d, that rank) components (column ``d_out``).

Each d's row carries the fraction of input energy (uncentred) and of target
variance (centred) that the d components keep, and the Gaussian p_c at the same
d for comparison: the median p* of the coupled Gaussian model (d x d, one target
per fact), read from the committed results in results/reference (GAUSSIAN_FILES:
capacity-summary, capacity-large, gaussian-reference) when they have that d, else computed with
the batch API at GAUSSIAN_SEEDS seeds into OUT-gaussian.csv (column
``gaussian_source`` says which). For a file with shared answers the
Gaussian p_c is a scale, not a like-for-like null: it has one target per fact.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from feasibility.capacity import batch
from feasibility.capacity.bisection import capacity_guess
from feasibility.capacity.journal import gather, journal_folder
from feasibility.core.errors import InputError
from feasibility.core.files import content_digest, write_atomic, write_csv_atomic
from feasibility.core.instances import (
    SURROGATE_STREAM,
    Instance,
    file_order,
    first_contested_prefix,
    load,
)
from feasibility.core.tolerances import RANK_RTOL

#: seeds per d when the Gaussian p_c has to be computed
GAUSSIAN_SEEDS = 3
#: where measured Gaussian capacities are looked up (relative to cwd and repo), in
#: this order; summaries (a p_c column) or per-seed rows (p_star, status) both work.
#: gaussian-reference is `capacity --model coupled --d 4,6,10,14,20,24,32 --seeds 8`.
GAUSSIAN_FILES = tuple(f"results/reference/{name}.csv" for name in (
    "capacity-summary", "capacity-large-summary", "capacity-large",
    "capacity-large-d64-summary", "capacity-large-d64", "gaussian-reference-summary"))
DIMS_COLUMNS = ["file", "file_sha256", "d", "d_in", "d_out", "input_energy", "target_variance",
                "n_facts", "shuffle", "p_star", "p_feasible", "p_infeasible", "status",
                "kappa_at_p_star", "solves", "rounds", "seconds", "solver",
                "random_p_star", "random_p_feasible", "random_status"]
GAUSSIAN_COLUMNS = ["gaussian_p_c", "gaussian_source"]
#: what names a row of a --dims run (and, with the part, a journal of its probes)
DIMS_KEY = ["file", "file_sha256", "d", "shuffle"]


@dataclass(frozen=True, eq=False)
class Projection:
    """Principal axes of a file's inputs (uncentred) and distinct targets (centred)."""

    input_axes: np.ndarray    # d_in x r_in, columns by decreasing energy
    input_energy: np.ndarray  # r_in: squared singular values
    target_axes: np.ndarray   # d_out x r_out
    target_variance: np.ndarray
    target_mean: np.ndarray

    @classmethod
    def fit(cls, instance: Instance) -> "Projection":
        if instance.decoupled:
            raise InputError("--dims needs a file of facts with targets, not explicit competitors")
        in_axes, in_energy = _principal_axes(instance.inputs)
        mean = instance.targets.mean(axis=0)
        out_axes, out_var = _principal_axes(instance.targets - mean)
        return cls(in_axes, in_energy, out_axes, out_var, mean)

    @property
    def max_d(self) -> int:
        return self.input_axes.shape[1]

    def apply(self, instance: Instance, d: int) -> Instance:
        """The instance seen through d input and min(d, rank) target components."""
        if d < 1:
            raise InputError(f"--dims: dimensions must be >= 1, got {d}")
        k_in = min(d, self.input_axes.shape[1])
        k_out = min(d, self.target_axes.shape[1])
        if k_out < 1:
            raise InputError("the file's targets are all equal: nothing to separate")
        inputs = instance.inputs @ self.input_axes[:, :k_in]
        targets = (instance.targets - self.target_mean) @ self.target_axes[:, :k_out]
        return Instance(inputs, targets, instance.assignment, None,
                        name=f"{instance.name}-pca{d}", subjects=instance.subjects,
                        answers=instance.answers)

    def kept(self, d: int) -> tuple[float, float]:
        """Fractions (input energy, target variance) kept by d components."""
        return (float(self.input_energy[:d].sum() / self.input_energy.sum()),
                float(self.target_variance[:d].sum() / max(self.target_variance.sum(),
                                                           np.finfo(float).tiny)))


def _principal_axes(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right singular vectors of A with nonzero singular values, and s^2."""
    _, s, vt = np.linalg.svd(A, full_matrices=False)
    keep = s > RANK_RTOL * max(s[0] if len(s) else 0.0, np.finfo(float).tiny)
    return vt[keep].T, s[keep] ** 2


def parse_dims(dims) -> list[int]:
    dims = [int(d) for d in dims]
    if not dims or min(dims) < 1:
        raise InputError(f"--dims: expected positive integers, got {dims}")
    return sorted(set(dims))


@dataclass(frozen=True)
class DimTask:
    path: str
    d: int
    shuffle: int
    digest: str | None = None  # the file's content_digest (see batch.FileTask)

    def __post_init__(self):
        if self.digest is None:
            object.__setattr__(self, "digest", content_digest(self.path))

    @property
    def key(self) -> tuple:
        return (Path(self.path).name, self.digest, str(self.d), str(self.shuffle))


def surrogate(instance: Instance, d_in: int, d_out: int, seed: int) -> Instance:
    """Random facts with the file's shape: the same n facts and the same answer
    of each fact (so the same sharing), Gaussian N(0, I/d) inputs and targets.

    Drawn from default_rng([seed, SURROGATE_STREAM, d_in, d_out]) for the whole
    file at once (see core.instances for the table of streams),
    so its prefixes are nested like the file's.
    """
    rng = np.random.default_rng([seed, SURROGATE_STREAM, d_in, d_out])
    inputs = rng.standard_normal((instance.n, d_in)) / np.sqrt(d_in)
    targets = rng.standard_normal((instance.m, d_out)) / np.sqrt(d_out)
    return Instance(inputs, targets, instance.assignment, None, name=f"{instance.name}-random")


def _prefix_capacity(ordered: Instance, d: int, solver, key: tuple, label: str,
                     journal: str | None, progress: bool):
    p_min = first_contested_prefix(ordered)
    guess = min(ordered.n, max(capacity_guess(d), p_min))
    return batch.journaled_bisection(ordered, key, label, journal, progress, guess=guess,
                                     p_min=p_min, solver=solver)


def run_dim_task(task: DimTask, solver: str | None = None, journal: str | None = None,
                 progress: bool = False) -> dict:
    """Prefix capacity of the file projected to d components, in one ordering,
    and of its Gaussian surrogate (seed = the ordering's number) in the same order.
    ``journal`` and ``progress`` as in batch.run_capacity_task (the two parts'
    probes are journaled apart: key + ("file",) and key + ("surrogate",))."""

    instance = load(task.path)
    projection = Projection.fit(instance)
    projected = projection.apply(instance, task.d)
    order = file_order(instance.n, task.shuffle)
    label = f"{task.key[0]} d={task.d} shuffle {task.shuffle}"
    result = _prefix_capacity(projected.permuted(order), task.d, solver,
                              task.key + ("file",), label, journal, progress)
    random = surrogate(projected, projected.d_in, projected.d_out, task.shuffle)
    random_result = _prefix_capacity(random.permuted(order), task.d, solver,
                                     task.key + ("surrogate",), f"{label} surrogate",
                                     journal, progress)
    energy, variance = projection.kept(task.d)
    return {"file": Path(task.path).name, "file_sha256": task.digest, "d": task.d,
            "d_in": projected.d_in, "d_out": projected.d_out, "input_energy": round(energy, 6),
            "target_variance": round(variance, 6), "n_facts": instance.n,
            "shuffle": task.shuffle, **result.row(), "solver": solver or "default",
            "random_p_star": random_result.p_star, "random_p_feasible": random_result.p_feasible,
            "random_status": random_result.status}


# -- Gaussian reference --------------------------------------------------------------
#: the repository root (feasibility/capacity/projection.py -> three levels up):
#: since the layered layout, parent.parent was the package and the committed
#: results were never found, so every `--dims` run recomputed the Gaussian p_c
#: (3 seeds; about 20 min at d = 64 on 2 cores) after its own rows
REPOSITORY = Path(__file__).resolve().parents[2]


def _gaussian_candidates() -> list[Path]:
    roots = [Path.cwd(), REPOSITORY]
    seen, out = set(), []
    for root in roots:
        for name in GAUSSIAN_FILES:
            path = (root / name).resolve()
            if path not in seen:
                seen.add(path)
                out.append(path)
    return out


def measured_gaussian_p_c() -> dict[int, tuple[float, str]]:
    """d -> (p_c, source) for the coupled Gaussian model, from the result files.

    A file with a ``p_c`` column is a summary; one with per-seed ``p_star`` rows
    is summarised here (median over seeds whose bracket closed). Where several
    files have a d, the one with the most such seeds wins (a run still in
    progress does not shadow a finished one); ties go to GAUSSIAN_FILES order.
    """
    found: dict[int, tuple[float, str, int]] = {}

    def offer(d, p_c, source, seeds):
        if d not in found or seeds > found[d][2]:
            found[d] = (p_c, f"{source}, {seeds} seeds", seeds)

    for path in _gaussian_candidates():
        if not path.is_file():
            continue
        try:
            frame = pd.read_csv(path)
        except (OSError, ValueError, pd.errors.ParserError):
            continue
        if "model" not in frame or "d" not in frame:
            continue
        frame = frame[frame["model"] == "coupled"]
        if "p_c" in frame:
            for _, row in frame.iterrows():
                if pd.notna(row["p_c"]):
                    seeds = row["exact"] if "exact" in frame else row.get("seeds", 0)
                    offer(int(row["d"]), float(row["p_c"]), path.name, int(seeds))
        elif "p_star" in frame and "status" in frame:
            for d, group in frame.groupby("d"):
                exact = group.loc[group["status"] == "exact", "p_star"].astype(float)
                if len(exact):
                    offer(int(d), float(exact.median()), path.name, len(exact))
    return {d: (p_c, source) for d, (p_c, source, _) in found.items()}


def gaussian_p_c(dims, out: Path, solver=None, jobs=None, executor="local", quiet=False,
                 seeds: int = GAUSSIAN_SEEDS) -> dict[int, tuple[float, str]]:
    """p_c at each d: measured if on file, else computed (resumably) beside `out`."""

    found = measured_gaussian_p_c()
    missing = [d for d in dims if d not in found and d >= 2]
    if missing:
        tasks = batch.capacity_tasks(["coupled"], missing, seeds)
        grid = batch.run_capacity_grid(tasks, gaussian_path(out), solver=solver, jobs=jobs,
                                       executor=executor, quiet=quiet)
        for _, row in batch.summarise(grid).iterrows():
            if not math.isnan(row["p_c"]):
                found[int(row["d"])] = (float(row["p_c"]),
                                        f"computed, {int(row['exact'])} seeds "
                                        f"({gaussian_path(out).name})")
    return {d: found[d] for d in dims if d in found}


def gaussian_path(out: Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + "-gaussian" + out.suffix)


def figure_path(out: Path) -> Path:
    return Path(out).with_suffix(".png")


def run_dims_capacity(path, dims, shuffles: int, out: Path, solver=None, jobs=None,
                      executor: str = "local", quiet: bool = False,
                      gaussian: bool = True) -> pd.DataFrame:
    """One row per (d, ordering), with the Gaussian p_c beside it; CSV and figure."""

    dims = parse_dims(dims)
    instance = load(path)  # validate before any work
    Projection.fit(instance)
    if shuffles < 0:
        raise InputError(f"--shuffles must be >= 0, got {shuffles}")
    digest = content_digest(path)
    tasks = [DimTask(str(path), d, k, digest) for d in dims for k in range(shuffles + 1)]
    function = functools.partial(run_dim_task, journal=str(journal_folder(out)),
                                 progress=not quiet)
    # the Gaussian columns are filled in below, after the rows: a finished file has
    # them, and a rerun that adds a d or an ordering reads it as its own
    frame = batch.run_tasks(tasks, out, DIMS_COLUMNS + GAUSSIAN_COLUMNS, DIMS_KEY, function,
                            solver=solver, jobs=jobs, executor=executor, quiet=quiet,
                            label=lambda r: f"d={r['d']} shuffle {r['shuffle']} "
                                            f"p*={r['p_star']} ({r['seconds']:.1f}s)",
                            check=batch.one_version_of(path, digest, out),
                            finish=lambda: gather(out, DIMS_KEY + ["part"]))
    reference = gaussian_p_c(dims, out, solver, jobs, executor, quiet) if gaussian else {}
    frame["gaussian_p_c"] = [reference.get(int(d), (math.nan, ""))[0] for d in frame["d"]]
    frame["gaussian_source"] = [reference.get(int(d), (math.nan, "not computed"))[1]
                                for d in frame["d"]]
    write_csv_atomic(frame, out)
    plot_dims(frame, figure_path(out), title=Path(path).name)
    return frame


def plot_dims(frame: pd.DataFrame, path: Path, title: str = "") -> Path:
    """p* of the file and of its surrogate against d, next to the Gaussian p_c; a PNG.

    A prefix capacity that reached every fact (status at_least_p_max) is drawn
    at n as a hollow marker: a lower bound.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    n_facts = int(frame["n_facts"].iloc[0])
    ds = np.array(sorted(frame["d"].unique()))
    orderings = frame["shuffle"].nunique()
    median = f", median of {orderings} orderings" if orderings > 1 else ""
    series = [("p_star", "status", "C0", "o-", f"{title}{median}")]
    if "random_p_star" in frame:
        series.append(("random_p_star", "random_status", "C2", "^-",
                       "random facts, same answers (Gaussian surrogate)"))
    for column, status, color, style, label in series:
        at_max = frame[status] == "at_least_p_max"
        value = frame[column].astype(float).where(~at_max, n_facts)
        grouped = frame.assign(value=value, full=at_max).groupby("d")
        mid = grouped["value"].median().reindex(ds)
        ax.plot(ds, mid, style, color=color, label=label)
        full = grouped["full"].all().reindex(ds).to_numpy(dtype=bool)
        if full.any():
            ax.plot(ds[full], mid[full], style[0], color=color, mfc="white")
        if orderings > 1:
            ax.fill_between(ds, grouped["value"].min().reindex(ds),
                            grouped["value"].max().reindex(ds), color=color, alpha=0.15)
    gauss = frame.groupby("d")["gaussian_p_c"].first().reindex(ds).astype(float)
    if gauss.notna().any():
        ax.plot(ds, gauss, "s--", color="C3", label="Gaussian p_c (coupled, one target each)")
    ax.axhline(n_facts, color="grey", lw=0.8, ls=":")
    ax.text(ds[0], n_facts, f" all {n_facts} facts (hollow: p* >= {n_facts})", va="bottom",
            fontsize=7, color="grey")
    ax.set_xlabel("memory size d (leading principal components kept)")
    ax.set_ylabel("prefix capacity p* (facts stored)")
    ax.set_title("capacity against memory size" + (f": {title}" if title else ""), fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        return write_atomic(path, lambda handle: fig.savefig(handle, format="png"))
    finally:
        plt.close(fig)
