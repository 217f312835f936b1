"""`make bench`: the project against the naive dense cvxpy model, side by side.

Every measurement runs in a fresh child process (so its peak memory is its
own), is repeated, and is reported as a median; ratios compare medians taken
in the same run. Benchmarks are never tests: nothing here asserts a timing.

    python benchmarks/bench.py [--repeats 3] [--baseline-repeats 2] [--quick]
                               [--resume] [--out BENCHMARKS.md]

Whole per-seed bisections are benchmarks/bisections.py's (guided against plain).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import header, measure, publish  # noqa: E402  (benchmarks/)


# -- the measured jobs (run in a child; each returns seconds, outcome) ----------------
def _baseline(model, d, p, seed):
    import cvxpy as cp

    from feasibility import generate
    from feasibility.solvers.programs import dense_lp

    problem, _, _ = dense_lp(generate(model, d, p, seed))
    start = time.perf_counter()
    try:
        problem.solve(solver=cp.ECOS)
        outcome = f"status {problem.status} (uncertified)"
    except cp.error.SolverError as exc:
        outcome = f"solver error: {str(exc).splitlines()[0]}"
    return time.perf_counter() - start, outcome


def _project(model, d, p, seed):
    from feasibility import decide, generate

    instance = generate(model, d, p, seed)
    start = time.perf_counter()
    decision = decide(instance)
    seconds = time.perf_counter() - start

    def fmt(value):
        return "-" if value is None else f"{value:.2e}"

    return seconds, (f"{decision.verdict} (certified, kappa* in [{fmt(decision.margin_lower)}, "
                     f"{fmt(decision.margin_upper)}], by {decision.solver})")


CACHE = ROOT / "build" / "bench-measurements.jsonl"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-repeats", type=int, default=3,
                        help="repeats of the dense baseline at d <= 16 (once above: "
                             "minutes per solve at d = 24)")
    parser.add_argument("--quick", action="store_true", help="small sizes only (smoke run)")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--resume", action="store_true",
                        help="reuse runs recorded in build/bench-measurements.jsonl")
    args = parser.parse_args(argv)

    reused = []

    def run(job, job_args, repeats):
        measurement = measure(job, job_args, repeats, CACHE, args.resume)
        reused.extend(measurement.recorded)
        return measurement

    head_to_head = [(16, 62), (24, 120)] if not args.quick else [(12, 40)]
    # p near the measured p_c (results/reference/capacity-large-summary.csv)
    scaling = [(16, 62), (24, 120), (32, 185), (48, 355), (64, 565)] if not args.quick \
        else [(12, 40), (16, 62)]
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
            base = run(_baseline, (model, d, p, seed), repeats)
            ours = run(_project, (model, d, p, seed), args.repeats)
            lines.append(f"| {model} | {d} | {p} | {base.cell()} | {ours.cell(3)} | "
                         f"**{base.median / ours.median:.0f}×** | {base.peak:.0f} | "
                         f"{ours.peak:.0f} | {base.outcome} | {ours.outcome} |")
    lines += ["", "### Scaling of one near-critical certified decision with d", "",
              "| model | d | p | seconds: median (range) | peak MiB | verdict |",
              "| --- | --- | --- | --- | --- | --- |"]
    for model in ("coupled", "decoupled"):
        for d, p in scaling:
            repeats = args.repeats if d <= 48 else 1
            ours = run(_project, (model, d, p, seed), repeats)
            lines.append(f"| {model} | {d} | {p} | {ours.cell()} | {ours.peak:.0f} | "
                         f"{ours.outcome} |")

    command = "make bench" if not argv else "python benchmarks/bench.py " + " ".join(argv)
    reuse = (f" {len(reused)} of the runs were reused from build/bench-measurements.jsonl, "
             f"recorded by an earlier run between {min(reused)[:16].replace('T', ' ')} and "
             f"{max(reused)[11:16]} UTC." if reused else "")
    prose = ("Each cell is the median over n fresh processes (peak memory is the largest "
             "max RSS of those children; imports and instance generation are not timed). "
             "The baseline is "
             "`feasibility.programs.dense_lp` (one dense row per constraint over vec(W), "
             "all margins ≥ 1) solved by ECOS through cvxpy; its outcome is the solver's "
             "status, which nothing certifies. The project is `feasibility.decide` with "
             "its defaults (structured IPM on an active set, every verdict certified in "
             "numpy). Instances: `generate(model, d, p, seed=0)`.")
    publish(Path(args.out), BEGIN, END,
            header("## Gaussian instances (issue 3)", command, started, load_before, prose,
                   reuse) + lines,
            write=not args.quick)


BEGIN = "<!-- gaussian rows: benchmarks/bench.py -->"
END = "<!-- end of gaussian rows -->"


if __name__ == "__main__":
    main(sys.argv[1:] or None)
