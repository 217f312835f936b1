"""Decoupled competitors stored against drawn on demand: one certified decision
of the same generated instance both ways, side by side in the same run (writes
its section of BENCHMARKS.md).

"stored" holds the p (p - 1) d float64 competitors, as every prefix of a search
does where they take at most STORED_COMPETITORS_FRACTION of physical memory;
"drawn" draws them again from their streams at each pass (DrawnCompetitors),
as a prefix does above it. Both must reach the same verdict and bracket; the
table says so per row.

    python benchmarks/drawn_competitors.py [--sizes 64:565,96:1110] [--resume]
                                           [--out BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import header, measure, publish, side_by_side  # noqa: E402  (benchmarks/)

CACHE = ROOT / "build" / "bench-drawn.jsonl"
BEGIN = "<!-- drawn-competitor rows: benchmarks/drawn_competitors.py -->"
END = "<!-- end of drawn-competitor rows -->"


def _decision(d, p, seed, drawn):
    from feasibility import decide
    from feasibility.core import instances

    instances.STORED_COMPETITORS_FRACTION = 0.0 if drawn else float("inf")
    instance = instances.GeneratedFamily("decoupled", d, p, seed).prefix(p)
    assert instance.draws_competitors == drawn
    start = time.perf_counter()
    decision = decide(instance, kappa_rtol=0.02, mirror_descent=False)
    seconds = time.perf_counter() - start
    return seconds, (f"{decision.verdict}, kappa* in [{decision.margin_lower:.6e}, "
                     f"{decision.margin_upper:.6e}], {decision.rounds} rounds")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64:565,96:1110",
                        help="comma-separated d:p, decoupled seed 0 (near p_c)")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--resume", action="store_true",
                        help="reuse runs recorded in build/bench-drawn.jsonl")
    args = parser.parse_args(argv)
    sizes = [tuple(int(v) for v in item.split(":")) for item in args.sizes.split(",")]

    started, load_before = time.time(), os.getloadavg()[0]
    lines = ["| d | p | stored competitors | stored s | drawn s | time ratio | stored MiB | "
             "drawn MiB | memory ratio | same bracket | outcome |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for d, p in sizes:
        stored = measure(_decision, (d, p, 0, False), 1, CACHE, args.resume)
        drawn = measure(_decision, (d, p, 0, True), 1, CACHE, args.resume)
        lines.append(f"| {d} | {p} | {8 * p * (p - 1) * d / 2**20:.0f} MiB | "
                     f"{side_by_side(stored, drawn)} | "
                     f"{'yes' if drawn.outcome == stored.outcome else 'NO'} | "
                     f"{stored.outcome} |")

    command = "python benchmarks/drawn_competitors.py " + " ".join(argv or [])
    prose = ("One `decide(instance, kappa_rtol=0.02, mirror_descent=False)` (a search's probe "
             "from the Hebbian start) per cell, in a fresh process: the same generated "
             "decoupled instance (seed 0, near p_c) with its competitors stored and drawn. "
             "The descent is off in both because over drawn competitors it runs on a share "
             "of each input's competitors, over stored ones on all of them; with it on, the "
             "cells would measure different starts, not the cost of drawing. The time ratio "
             "is drawn over stored; peak memory is the child's max RSS, instance generation "
             "included.")
    publish(Path(args.out), BEGIN, END,
            header("## Decoupled competitors: stored against drawn on demand (issue 12)",
                   command, started, load_before, prose) + lines)


if __name__ == "__main__":
    main(sys.argv[1:] or None)
