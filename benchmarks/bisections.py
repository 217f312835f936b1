"""Whole per-seed capacity bisections: probes placed by kappa* against the plain
walk and bisection, side by side in the same run (writes its section of
BENCHMARKS.md).

"guided" is `run_capacity_task` as shipped: feasible probes bracket kappa* to
2% or to half a fact's worth (kappa_atol), the next probe goes where the
secant of kappa(p) puts p*, and each probe's active set starts from the last
probe's W (the first from a mirror-descent memory over all constraints).
"plain" is the same engine with `secant=False, seed_memory=False,
mirror_descent=False`: the walk from the guess in doubling steps, then
bisection, each active set seeded by the Hebbian memory. Both must give the
same p*; the table says so per row.

    python benchmarks/bisections.py [--rows 64,coupled:96] [--resume] [--out BENCHMARKS.md]
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

CACHE = ROOT / "build" / "bench-bisections.jsonl"
BEGIN = "<!-- bisection rows: benchmarks/bisections.py -->"
END = "<!-- end of bisection rows -->"


def _bisection(model, d, seed, guided):
    from feasibility.capacity.batch import CapacityTask, run_capacity_task

    # the boundary check (d >= 96) is the same solve after either search: left out
    options = {"boundary_tolerance": None}
    if not guided:
        options.update(secant=False, seed_memory=False, mirror_descent=False)
    start = time.perf_counter()
    row = run_capacity_task(CapacityTask(model, d, seed), **options)
    return time.perf_counter() - start, (f"p* = {row['p_star']} ({row['status']}, "
                                         f"{row['solves']} solves, {row['rounds']} rounds)")


def rows(text: str) -> list[tuple[str, int]]:
    """'64,coupled:96' -> [(coupled, 64), (decoupled, 64), (coupled, 96)]."""
    items = []
    for item in filter(None, text.split(",")):
        model, _, d = item.rpartition(":")
        items += [(m, int(d)) for m in ((model,) if model else ("coupled", "decoupled"))]
    return sorted(items, key=lambda item: (item[1], item[0]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="64",
                        help="comma-separated d (both models) or model:d (seed 0), "
                             "e.g. 64,coupled:96 (d = 96: ~10 + 20 min)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--resume", action="store_true",
                        help=f"reuse the runs an interrupted benchmark recorded in {CACHE}")
    args = parser.parse_args(argv)
    started, load_before = time.time(), os.getloadavg()[0]
    lines = ["| model | d | plain s | guided s | time ratio | plain MiB | guided MiB "
             "| plain | guided |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for model, d in rows(args.rows):
        plain = measure(_bisection, (model, d, args.seed, False), 1, CACHE, args.resume)
        guided = measure(_bisection, (model, d, args.seed, True), 1, CACHE, args.resume)
        same = plain.outcome.split(" (")[0] == guided.outcome.split(" (")[0]
        lines.append(f"| {model} | {d} | {plain.median:.1f} | {guided.median:.1f} | "
                     f"**{plain.median / guided.median:.2f}×** | {plain.peak:.0f} | "
                     f"{guided.peak:.0f} | {plain.outcome} | {guided.outcome}"
                     f"{'' if same else ' **p* differs**'} |")
    command = "python benchmarks/bisections.py " + " ".join(argv or sys.argv[1:])
    prose = ("Seed 0, one fresh process per cell (peak = its max RSS). Both columns run "
             "`run_capacity_task` (every probe certified); *plain* with "
             "`secant=False, seed_memory=False`, *guided* as shipped. Same engine "
             "otherwise. Neither runs the boundary check of rows at d >= 96 (p* + 1 "
             "decided again at tau/100: one solve more, the same after either search).")
    publish(Path(args.out), BEGIN, END,
            header("## Whole per-seed capacity bisections (issue 12)", command, started,
                   load_before, prose) + lines)


if __name__ == "__main__":
    main(sys.argv[1:] or None)
