"""`make bench`, real-embedding rows: certified verdicts on files of the sizes users bring.

Rows (issue 6's table): the 106-fact country files made by `feasibility embed`
(384-dimensional all-MiniLM-L6-v2 embeddings), and synthetic 1,000-fact files
of 768 dimensions made by `feasibility.synthetic.embedding_like` (decaying
spectrum, common component, clustered inputs for shared answers), one target
per fact and 20 shared answers; then the prefix capacity (`capacity --file`)
of the 1,000-fact file.

Every measurement runs in a fresh child process (its peak memory is its own);
the time is that of the API call on a loaded file (`feasibility check` adds
~1.5 s of interpreter and import start-up). Verdicts go through
`feasibility.decide` (the structured fast path, then the active set); the
"active set alone" row turns the fast path off. Nothing here asserts a timing.

    python benchmarks/real_files.py [--repeats 3] [--core] [--cities-dims 16,32,64]
                                    [--out BENCHMARKS.md]

Issue 13's rows: the 5,000-fact city -> country file (instances/
facts-cities-countries.npz, 168 answers, 47 groups of identical inputs with
different answers): its verdict, `check --explain`, `prune`, the verdict on
the 4,948 facts prune keeps (build/bench/cities-kept.npz), and with
--cities-dims the capacity of the kept facts against d (`capacity --file
--dims`, one process for all d, as the command runs them serially).

The section is written between two marker lines in BENCHMARKS.md, replacing
an earlier one, so it can follow benchmarks/bench.py, which rewrites the file.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import measure, publish  # noqa: E402  (benchmarks/)

BUILD = ROOT / "build" / "bench"
BEGIN = "<!-- real-embedding rows: benchmarks/real_files.py -->"
END = "<!-- end of real-embedding rows -->"

REAL = {"capitals": ROOT / "instances" / "facts-countries-capitals.npz",
        "continents": ROOT / "instances" / "facts-countries-continents.npz",
        "cities": ROOT / "instances" / "facts-cities-countries.npz"}
#: prune's kept facts of the cities file (made by make_cities_kept)
CITIES_KEPT = "cities-kept"
SYNTHETIC = {"synthetic-1000x768": (1000, 768, None),
             "synthetic-1000x768-k20": (1000, 768, 20)}
#: the 20-answer file plus fact 0's subject once more with another answer
#: (as "Russia -> Europe" and "Russia -> Asia"): infeasible, and provably so
CONFLICT = "synthetic-1000x768-k20-conflict"


def path_of(name: str) -> Path:
    if name in REAL:
        return REAL[name]
    return BUILD / f"{name}.npz"


def make_cities_kept():
    from feasibility import load, save
    from feasibility.tools.prune import prune

    if not path_of(CITIES_KEPT).exists():
        BUILD.mkdir(parents=True, exist_ok=True)
        save(prune(load(path_of("cities"))).kept, path_of(CITIES_KEPT))


def make_synthetic():
    import numpy as np

    from feasibility import Instance, save
    from feasibility.core.synthetic import embedding_like

    BUILD.mkdir(parents=True, exist_ok=True)
    for name, (n, d, answers) in SYNTHETIC.items():
        if not path_of(name).exists():
            save(embedding_like(n, d, answers, seed=0), path_of(name))
    if not path_of(CONFLICT).exists():
        base = embedding_like(1000, 768, 20, seed=0)
        save(Instance(np.vstack([base.inputs, base.inputs[:1]]), base.targets,
                      np.r_[base.assignment, (base.assignment[0] + 1) % 20]), path_of(CONFLICT))


# -- jobs (run in a child; each returns seconds, outcome) ----------------------------
def _how(decision) -> str:
    """'structured/<path that decided>' or the solver's name."""
    if decision.solver == "structured":
        return next(t for t in decision.solvers_tried if t.startswith("structured/"))
    return decision.solver


def _verdict(name, fast_path=True):
    from feasibility import decide, load

    instance = load(path_of(name))
    start = time.perf_counter()
    decision = decide(instance, fast_path=fast_path)
    seconds = time.perf_counter() - start
    bound = decision.margin_lower if decision.verdict == "feasible" else decision.margin_upper
    return seconds, (f"{decision.verdict} by {_how(decision)} "
                     f"(certified bound {bound:.2e})")


def _capacity(name):
    from feasibility.capacity.batch import FileTask, run_file_task

    start = time.perf_counter()
    row = run_file_task(FileTask(str(path_of(name)), 0))
    p = row["p_star"] if row["status"] == "exact" else f">= {row['p_feasible']}"
    return time.perf_counter() - start, (f"p* {p} ({row['status']}, {row['solves']} "
                                         f"certified solves)")


def _dims(name, d=8):
    from feasibility.capacity.projection import DimTask, run_dim_task

    start = time.perf_counter()
    row = run_dim_task(DimTask(str(path_of(name)), d, 0))
    return time.perf_counter() - start, (
        f"d = {d}: p* {row['p_star']} ({row['status']}, {row['solves']} certified solves); "
        f"Gaussian surrogate p* {row['random_p_star']}")


def _explain(name):
    from feasibility import decide, load
    from feasibility.tools.explain import explain

    instance = load(path_of(name))
    start = time.perf_counter()
    explanation = explain(instance, decide(instance))
    seconds = time.perf_counter() - start
    kinds = sorted({c.kind for c in explanation.conflicts})
    return seconds, (f"verdict + explanation: {len(explanation.facts)} facts named, "
                     f"{', '.join(kinds) or 'no exact conflict'}")


def _prune(name):
    from feasibility import load
    from feasibility.tools.prune import BY_EXACT, prune

    instance = load(path_of(name))
    start = time.perf_counter()
    result = prune(instance)
    seconds = time.perf_counter() - start
    exact = sum(drop.named_by == BY_EXACT for drop in result.dropped)
    return seconds, (f"dropped {len(result.dropped)} ({exact} exact conflicts, "
                     f"{len(result.dropped) - exact} by solver certificates), kept "
                     f"{result.kept.n}: {result.decision.verdict} (margin "
                     f"{result.decision.margin_lower:.2e}), {result.solver_rounds} verdicts")


def _dims_all(name, dims):
    import math

    from feasibility.capacity.projection import DimTask, gaussian_p_c, run_dim_task

    start = time.perf_counter()
    rows = [run_dim_task(DimTask(str(path_of(name)), d, 0)) for d in dims]
    reference = gaussian_p_c(dims, BUILD / "cities-dims.csv", quiet=True)
    parts = [f"d={row['d']}: p* {row['p_star'] if row['status'] == 'exact' else '>= ' + str(row['p_feasible'])}"
             f" (surrogate {row['random_p_star']}, Gaussian {reference.get(row['d'], (math.nan,))[0]:g})"
             for row in rows]
    return time.perf_counter() - start, "; ".join(parts)


def describe(name) -> str:
    from feasibility import load

    inst = load(path_of(name))
    shape = "one target each" if inst.m == inst.n else f"{inst.m} shared answers"
    kind = "real, all-MiniLM-L6-v2" if name in REAL else "synthetic, embedding_like"
    return f"{inst.n} facts, {inst.d_in}-d, {shape}", kind


def cities_rows(args) -> list[str]:
    """Issue 13's rows on the 5,000-fact cities file and prune's kept facts."""
    rows = []
    facts, kind = describe("cities")
    for job, target, what in ((_verdict, "< 30 s, < 2 GiB", ""), (_explain, "< 60 s", ", `check --explain`"),
                              (_prune, "< 10 min", ", `prune`")):
        result = measure(job, ("cities",), 1 if job is _prune else args.repeats)
        rows.append(f"| {path_of('cities').name}{what} ({kind}) | {facts} | {target} | "
                    f"{result.cell()} | {result.peak:.0f} | {result.outcome} |")
    facts, _ = describe(CITIES_KEPT)
    result = measure(_verdict, (CITIES_KEPT,), args.repeats)
    rows.append(f"| {path_of(CITIES_KEPT).name} (prune's kept cities) | {facts} | < 30 s | "
                f"{result.cell()} | {result.peak:.0f} | {result.outcome} |")
    if args.cities_dims:
        dims = tuple(int(d) for d in args.cities_dims.split(","))
        result = measure(_dims_all, (CITIES_KEPT, dims), 1)
        rows.append(f"| `capacity --file --dims {args.cities_dims}` {path_of(CITIES_KEPT).name} | "
                    f"{facts} | < 15 min, < 4 GiB | {result.cell()} | {result.peak:.0f} | "
                    f"{result.outcome} |")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--core", action="store_true",
                        help="also time the active set alone on the 106-fact file (~2 min)")
    parser.add_argument("--cities-dims", default="",
                        help="also `capacity --file --dims` of the kept cities (e.g. 16,32,64)")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args(argv)
    # made in a child: Linux carries a parent's peak RSS over into every child it
    # spawns (ru_maxrss survives exec), so the parent must stay small
    for make in (make_synthetic, make_cities_kept):
        child = multiprocessing.get_context("spawn").Process(target=make)
        child.start()
        child.join()
    started, load_before = time.time(), os.getloadavg()[0]
    lines = ["## Real embedding files (issue 6)", "",
             "| file | facts | target | seconds: median (range) | peak MiB | outcome |",
             "| --- | --- | --- | --- | --- | --- |"]
    targets = {"capitals": "< 5 s", "continents": "",
               "synthetic-1000x768": "< 60 s, < 4 GiB", "synthetic-1000x768-k20": "< 60 s"}
    targets[CONFLICT] = ""
    for name in ("capitals", "continents", "synthetic-1000x768", "synthetic-1000x768-k20",
                 CONFLICT):
        facts, kind = describe(name)
        result = measure(_verdict, (name,), args.repeats)
        lines.append(f"| {path_of(name).name} ({kind}) | {facts} | {targets[name]} | "
                     f"{result.cell()} | {result.peak:.0f} | {result.outcome} |")
    if args.core:
        result = measure(_verdict, ("capitals", False), 1)
        lines.append(f"| {path_of('capitals').name}, active set alone | 106 facts, 384-d, "
                     f"one target each | | {result.cell()} | {result.peak:.0f} | "
                     f"{result.outcome} |")
    for name in ("synthetic-1000x768", "synthetic-1000x768-k20", CONFLICT):
        facts, kind = describe(name)
        result = measure(_capacity, (name,), 1)
        lines.append(f"| `capacity --file` {path_of(name).name} ({kind}) | "
                     f"{facts} | < 10 min | {result.cell()} | {result.peak:.0f} | "
                     f"{result.outcome} |")
    facts, kind = describe("synthetic-1000x768-k20")
    result = measure(_dims, ("synthetic-1000x768-k20",), 1)
    lines.append(f"| `capacity --file --dims 8` {path_of('synthetic-1000x768-k20').name} "
                 f"({kind}) | {facts} | | {result.cell()} | {result.peak:.0f} | "
                 f"{result.outcome} |")
    lines += cities_rows(args)
    lines += ["", f"Made by `python benchmarks/real_files.py` in "
                  f"{(time.time() - started) / 60:.1f} min, 1-minute load average "
                  f"{load_before:.1f} at the start and {os.getloadavg()[0]:.1f} at the end "
                  f"(2 cores). Each verdict is `feasibility.decide` on the loaded file "
                  "(structured fast path, then the active set), timed in a fresh process; "
                  "the capacity rows run `capacity_bisection` on the file's prefixes. "
                  "Synthetic files: `embedding_like(n, d, answers, seed=0)`, written to "
                  "build/bench/."]
    publish(Path(args.out), BEGIN, END, lines)


if __name__ == "__main__":
    main(sys.argv[1:] or None)
