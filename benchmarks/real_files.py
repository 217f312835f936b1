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
`feasibility.structured.decide` (the fast path, then the active set); the
capacity row runs `capacity_bisection` with that same decide in place of
solve.decide, i.e. as it will run once solve.decide calls the fast path
itself. Nothing here asserts a timing.

    python benchmarks/real_files.py [--repeats 3] [--core] [--out BENCHMARKS.md]

The section is written between two marker lines in BENCHMARKS.md, replacing
an earlier one, so it can follow benchmarks/bench.py, which rewrites the file.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUILD = ROOT / "build" / "bench"
BEGIN = "<!-- real-embedding rows: benchmarks/real_files.py -->"
END = "<!-- end of real-embedding rows -->"

REAL = {"capitals": ROOT / "instances" / "facts-countries-capitals.npz",
        "continents": ROOT / "instances" / "facts-countries-continents.npz"}
SYNTHETIC = {"synthetic-1000x768": (1000, 768, None),
             "synthetic-1000x768-k20": (1000, 768, 20)}
#: the 20-answer file plus fact 0's subject once more with another answer
#: (as "Russia -> Europe" and "Russia -> Asia"): infeasible, and provably so
CONFLICT = "synthetic-1000x768-k20-conflict"


def path_of(name: str) -> Path:
    if name in REAL:
        return REAL[name]
    return BUILD / f"{name}.npz"


def make_synthetic():
    import numpy as np

    from feasibility import Instance, save
    from feasibility.synthetic import embedding_like

    BUILD.mkdir(parents=True, exist_ok=True)
    for name, (n, d, answers) in SYNTHETIC.items():
        if not path_of(name).exists():
            save(embedding_like(n, d, answers, seed=0), path_of(name))
    if not path_of(CONFLICT).exists():
        base = embedding_like(1000, 768, 20, seed=0)
        save(Instance(np.vstack([base.inputs, base.inputs[:1]]), base.targets,
                      np.r_[base.assignment, (base.assignment[0] + 1) % 20]), path_of(CONFLICT))


# -- jobs (run in a child) ------------------------------------------------------------
def _verdict(name):
    from feasibility import load
    from feasibility.structured import decide

    instance = load(path_of(name))
    start = time.perf_counter()
    decision = decide(instance)
    seconds = time.perf_counter() - start
    bound = decision.margin_lower if decision.verdict == "feasible" else decision.margin_upper
    return seconds, (f"{decision.verdict} by {decision.solver}/{decision.program} "
                     f"(certified bound {bound:.2e})")


def _core(name):
    from feasibility import decide, load

    instance = load(path_of(name))
    start = time.perf_counter()
    decision = decide(instance)
    return time.perf_counter() - start, f"{decision.verdict} by {decision.solver} (core only)"


def _capacity(name):
    from feasibility import capacity, structured
    from feasibility.batch import FileTask, run_file_task

    capacity.decide = structured.decide  # the hook solve.decide is to get
    start = time.perf_counter()
    row = run_file_task(FileTask(str(path_of(name)), 0))
    p = row["p_star"] if row["status"] == "exact" else f">= {row['p_feasible']}"
    return time.perf_counter() - start, (f"p* {p} ({row['status']}, {row['solves']} "
                                         f"certified solves)")


def _dims(name, d=8):
    from feasibility import capacity, structured
    from feasibility.projection import DimTask, run_dim_task

    capacity.decide = structured.decide  # the hook solve.decide is to get
    start = time.perf_counter()
    row = run_dim_task(DimTask(str(path_of(name)), d, 0))
    return time.perf_counter() - start, (
        f"d = {d}: p* {row['p_star']} ({row['status']}, {row['solves']} certified solves); "
        f"Gaussian surrogate p* {row['random_p_star']}")


JOBS = {"verdict": _verdict, "core": _core, "capacity": _capacity, "dims": _dims}


def _child(queue, job, name):
    seconds, outcome = JOBS[job](name)
    queue.put((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, outcome))


def measure(job, name, repeats):
    ctx = mp.get_context("spawn")
    runs = []
    for _ in range(repeats):
        queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(queue, job, name))
        proc.start()
        runs.append(queue.get())
        proc.join()
        print(f"  {job} {name}: {runs[-1][0]:.2f}s {runs[-1][1]:.0f} MiB  {runs[-1][2]}",
              file=sys.stderr, flush=True)
    times = [r[0] for r in runs]
    cell = f"{statistics.median(times):.2f}" + (
        f" ({min(times):.2f}–{max(times):.2f}, n={len(runs)})" if len(runs) > 1 else " (n=1)")
    return cell, max(r[1] for r in runs), runs[-1][2], len(runs)


def describe(name) -> str:
    from feasibility import load

    inst = load(path_of(name))
    shape = "one target each" if inst.m == inst.n else f"{inst.m} shared answers"
    kind = "real, all-MiniLM-L6-v2" if name in REAL else "synthetic, embedding_like"
    return f"{inst.n} facts, {inst.d_in}-d, {shape}", kind


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--core", action="store_true",
                        help="also time the active set alone on the 106-fact file (~2 min)")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args(argv)
    make_synthetic()
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
        t, m, o, n = measure("verdict", name, args.repeats)
        lines.append(f"| {path_of(name).name} ({kind}) | {facts} | {targets[name]} | "
                     f"{t} | {m:.0f} | {o} |")
    if args.core:
        t, m, o, n = measure("core", "capitals", 1)
        lines.append(f"| {path_of('capitals').name}, active set alone | 106 facts, 384-d, "
                     f"one target each | | {t} | {m:.0f} | {o} |")
    for name in ("synthetic-1000x768", "synthetic-1000x768-k20", CONFLICT):
        facts, kind = describe(name)
        t, m, o, n = measure("capacity", name, 1)
        lines.append(f"| `capacity --file` {path_of(name).name} ({kind}) | "
                     f"{facts} | < 10 min | {t} | {m:.0f} | {o} |")
    facts, kind = describe("synthetic-1000x768-k20")
    t, m, o, n = measure("dims", "synthetic-1000x768-k20", 1)
    lines.append(f"| `capacity --file --dims 8` {path_of('synthetic-1000x768-k20').name} "
                 f"({kind}) | {facts} | | {t} | {m:.0f} | {o} |")
    lines += ["", f"Made by `python benchmarks/real_files.py` in "
                  f"{(time.time() - started) / 60:.1f} min, 1-minute load average "
                  f"{load_before:.1f} at the start and {os.getloadavg()[0]:.1f} at the end "
                  f"(2 cores, shared). Each verdict is "
                  "`feasibility.structured.decide` on the loaded file (fast certified path, "
                  "then the active set), timed in a fresh process; the capacity row runs "
                  "`capacity_bisection` with that decide in place of `solve.decide`. "
                  "Synthetic files: `embedding_like(n, d, answers, seed=0)`, written to "
                  "build/bench/.", ""]
    section = "\n".join([BEGIN, *lines, END]) + "\n"
    print(section)
    out = Path(args.out)
    text = out.read_text() if out.exists() else "# Benchmarks\n\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    out.write_text(text)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:] or None)
