"""`make bench`: the project against the naive dense cvxpy model, side by side.

Every measurement runs in a fresh child process (so its peak memory is its
own), is repeated, and is reported as a median; ratios compare medians taken
in the same run. Benchmarks are never tests: nothing here asserts a timing.

    python benchmarks/bench.py [--repeats 3] [--baseline-repeats 2] [--quick]
                               [--bisection-dims 64] [--out BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# -- the measured jobs (run in a child) ---------------------------------------------
def _baseline(model, d, p, seed):
    import cvxpy as cp

    from feasibility import generate
    from feasibility.programs import dense_lp

    problem, _, _ = dense_lp(generate(model, d, p, seed))
    try:
        problem.solve(solver=cp.ECOS)
        return f"status {problem.status} (uncertified)"
    except cp.error.SolverError as exc:
        return f"solver error: {str(exc).splitlines()[0]}"


def _project(model, d, p, seed):
    from feasibility import decide, generate

    decision = decide(generate(model, d, p, seed))

    def fmt(value):
        return "-" if value is None else f"{value:.2e}"

    return (f"{decision.verdict} (certified, kappa* in [{fmt(decision.margin_lower)}, "
            f"{fmt(decision.margin_upper)}], by {decision.solver})")


def _bisection(model, d, seed):
    from feasibility.batch import CapacityTask, run_capacity_task

    row = run_capacity_task(CapacityTask(model, d, seed))
    return f"p* = {row['p_star']} ({row['status']}, {row['solves']} certified solves)"


JOBS = {"baseline": _baseline, "project": _project, "bisection": _bisection}


def _child(queue, job, args):
    import cvxpy  # noqa: F401  imports are not part of the measurement

    import feasibility.batch  # noqa: F401
    start = time.perf_counter()
    outcome = JOBS[job](*args)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((seconds, peak_mib, outcome))


CACHE = ROOT / "build" / "bench-measurements.jsonl"
RESUME = False


def _cached(job, args):
    if not (RESUME and CACHE.exists()):
        return []
    runs = []
    for line in CACHE.read_text().splitlines():
        record = json.loads(line)
        if record["job"] == job and tuple(record["args"]) == tuple(args):
            runs.append(tuple(record["run"]))
    return runs


def measure(job, args, repeats):
    """Median seconds and peak MiB over `repeats` fresh processes.

    Every run is also appended to build/bench-measurements.jsonl; with --resume
    runs recorded there (by an interrupted bench) are reused, not repeated.
    """
    ctx = mp.get_context("spawn")
    runs = _cached(job, args)[:repeats]
    for _ in range(repeats - len(runs)):
        queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(queue, job, args))
        proc.start()
        proc.join()
        if queue.empty():
            raise SystemExit(f"bench: {job}{args} failed in its child process")
        result = queue.get()
        CACHE.parent.mkdir(exist_ok=True)
        with open(CACHE, "a") as handle:
            handle.write(json.dumps({"job": job, "args": list(args), "run": list(result),
                                     "when": datetime.now(timezone.utc).isoformat()}) + "\n")
        runs.append(result)
        print(f"  {job}{args}: {result[0]:.2f}s {result[1]:.0f} MiB  {result[2]}",
              file=sys.stderr, flush=True)
    return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
            runs[-1][2], len(runs))


# -- report ------------------------------------------------------------------------
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-repeats", type=int, default=3,
                        help="repeats of the dense baseline at d <= 16 (once above: "
                             "minutes per solve at d = 24)")
    parser.add_argument("--quick", action="store_true", help="small sizes only (smoke run)")
    parser.add_argument("--bisection-dims", default="64,96",
                        help="comma-separated d for whole per-seed bisections")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--resume", action="store_true",
                        help="reuse runs recorded in build/bench-measurements.jsonl")
    args = parser.parse_args(argv)
    global RESUME
    RESUME = args.resume

    head_to_head = [(16, 62), (24, 120)] if not args.quick else [(12, 40)]
    # p near the measured p_c (results/capacity-large-summary.csv)
    scaling = [(16, 62), (24, 120), (32, 185), (48, 355), (64, 565)] if not args.quick \
        else [(12, 40), (16, 62)]
    bisections = [int(d) for d in args.bisection_dims.split(",") if d] if not args.quick \
        else [16]
    seed = 0
    lines = []
    started, load_before = time.time(), os.getloadavg()[0]

    lines += ["### Project vs the dense cvxpy model (ECOS), same instances, same run", "",
              "| model | d | p | baseline s | project s | time ratio | baseline MiB | "
              "project MiB | baseline outcome | project verdict |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for model in ("coupled", "decoupled"):
        for d, p in head_to_head:
            # one dense ECOS solve at d = 24 takes minutes: repeat the smaller only
            repeats = args.baseline_repeats if d <= 16 else 1
            bt, bm, bo, bn = measure("baseline", (model, d, p, seed), repeats)
            pt, pm, po, pn = measure("project", (model, d, p, seed), args.repeats)
            lines.append(f"| {model} | {d} | {p} | {bt:.2f} (n={bn}) | {pt:.3f} (n={pn}) | "
                         f"**{bt / pt:.0f}×** | {bm:.0f} | {pm:.0f} | {bo} | {po} |")
    lines += ["", "### Scaling of one near-critical certified decision with d", "",
              "| model | d | p | seconds (median) | peak MiB | verdict |",
              "| --- | --- | --- | --- | --- | --- |"]
    for model in ("coupled", "decoupled"):
        for d, p in scaling:
            repeats = args.repeats if d <= 48 else 1
            t, m, o, n = measure("project", (model, d, p, seed), repeats)
            lines.append(f"| {model} | {d} | {p} | {t:.2f} (n={n}) | {m:.0f} | {o} |")
    if bisections:
        lines += ["", "### Whole per-seed capacity bisection", "",
                  "| model | d | seconds | peak MiB | outcome |",
                  "| --- | --- | --- | --- | --- |"]
    for model in ("coupled", "decoupled"):
        for d in bisections:
            t, m, o, n = measure("bisection", (model, d, seed), 1)
            lines.append(f"| {model} | {d} | {t:.1f} | {m:.0f} | {o} |")

    command = "make bench" if not argv else "python benchmarks/bench.py " + " ".join(argv)
    load = os.getloadavg()[0]
    header = ["## Gaussian instances (issue 3)", "",
              f"Made by `{command}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC "
              f"in {(time.time() - started) / 60:.1f} min; 1-minute load average "
              f"{load_before:.1f} at the start and {load:.1f} at the end.", "",
              f"Machine: {machine()}.", "",
              "Each cell is the median over n fresh processes (peak memory is the child's "
              "max RSS; imports are not timed). The baseline is "
              "`feasibility.programs.dense_lp` (one dense row per constraint over vec(W), "
              "all margins ≥ 1) solved by ECOS through cvxpy; its outcome is the solver's "
              "status, which nothing certifies. The project is `feasibility.decide` with "
              "its defaults (structured IPM on an active set, every verdict certified in "
              "numpy). Instances: `generate(model, d, p, seed=0)`.", ""]
    section = "\n".join([BEGIN, *header, *lines, "", END]) + "\n"
    print(section)
    if not args.quick:
        write_section(Path(args.out), section)
        print(f"wrote {args.out}", file=sys.stderr)


BEGIN = "<!-- gaussian rows: benchmarks/bench.py -->"
END = "<!-- end of gaussian rows -->"


def write_section(out: Path, section: str, begin: str = BEGIN, end: str = END):
    """Replace the marked section of BENCHMARKS.md, keeping every other one."""
    text = out.read_text() if out.exists() else "# Benchmarks\n\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1].lstrip("\n")
    else:
        title, _, body = text.partition("\n\n")
        text = title + "\n\n" + section + "\n" + body
    out.write_text(text)


if __name__ == "__main__":
    main(sys.argv[1:] or None)
