"""How many solves a capacity search needs, by the slope of kappa*(p) it assumes.

    python benchmarks/search_replay.py [--scales 1.0,0.85,0.7,0.6,0.5] [--replays 50]
                                       [--out BENCHMARKS.md]

Replays the search (``bisection.bracket_search`` with ``secant_prediction``, as
``capacity_bisection`` drives them) for every committed capacity-xl seed on a
model of that seed's kappa*(p): the line fitted to its feasible probes' certified
kappa (the middle of each bracket), crossing zero between its p* and p* + 1,
plus independent noise of ``noise`` times the fitted drop per fact at each p. A
coupled probe at p <= 98.5% of p* is decided by the fast path, which gives no
kappa (as coupled d = 192's p = 3605 was). The search starts where
``capacity_guess`` puts it. Prints the mean number of solver probes per seed for
each KAPPA_SLOPE_SCALE, each seed's own scale, 1 / (fitted drop * d p*), and
the solver probes the committed searches made (with KAPPA_SLOPE_SCALE 1.0), and
writes them as its section of BENCHMARKS.md (`make bench` runs it; seconds).

No solver runs: the model stands in for the solves, so p* always comes out as
the seed's, and only the count of solves is compared.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import header, publish  # noqa: E402  (benchmarks/)

from feasibility.capacity import bisection  # noqa: E402
from feasibility.core.status import Verdict  # noqa: E402

REFERENCE = ROOT / "results" / "reference"
BEGIN = "<!-- search-replay rows: benchmarks/search_replay.py -->"
END = "<!-- end of search-replay rows -->"
#: coupled probes this far below p* are decided by the fast path (no kappa)
FAST_PATH_BELOW = 0.985
NOISES = (0.0, 0.5, 1.0, 1.5)


def seeds(reference: Path = REFERENCE) -> list[tuple[str, int, int, int, float]]:
    """(model, d, seed, p*, fitted drop of kappa* per fact) of every seed with
    two or more feasible probes whose bracket is within a factor 2."""
    rows = pd.read_csv(reference / "capacity-xl.csv")
    probes = pd.read_csv(reference / "capacity-xl-probes.csv")
    out = []
    for row in rows.dropna(subset=["p_star"]).itertuples():
        g = probes[(probes.model == row.model) & (probes.d == row.d) & (probes.seed == row.seed)
                   & (probes.verdict == "feasible") & (probes.margin_lower > 0)
                   & (2 * probes.margin_lower >= probes.margin_upper)]
        if len(g) >= 2:
            kappa = 0.5 * (g.margin_lower + g.margin_upper)
            out.append((row.model, int(row.d), int(row.seed), int(row.p_star),
                        -float(np.polyfit(g.p, kappa, 1)[0])))
    return out


def replay(model: str, d: int, p_star: int, drop: float, scale: float, noise: float,
           rng: np.random.Generator) -> int:
    """Solver probes of one search on the model of kappa*(p) (module docstring)."""
    bisection.KAPPA_SLOPE_SCALE = scale
    offset = rng.uniform(0.1, 0.9)
    jitter: dict[int, float] = {}
    points: dict[int, float] = {}
    solves = []

    def probe(p: int) -> Verdict:
        if p > p_star:
            solves.append(p)
            return Verdict.INFEASIBLE
        if model == "coupled" and p <= FAST_PATH_BELOW * p_star:
            return Verdict.FEASIBLE
        solves.append(p)
        jitter.setdefault(p, rng.normal(0.0, noise * drop))
        points[p] = max(drop * (p_star + offset - p) + jitter[p], 0.05 * drop)
        return Verdict.FEASIBLE

    guess = bisection.capacity_guess(d, model)
    lower, upper, _ = bisection.bracket_search(
        probe, bisection.SMALLEST_P, 10 * p_star, guess,
        max(1, guess // bisection.FIRST_STEP_DIVISOR),
        lambda low, up: bisection.secant_prediction(points, low, up, d * d))
    assert (lower, upper) == (p_star, p_star + 1)
    return len(solves)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="1.0,0.85,0.7,0.6,0.5")
    parser.add_argument("--replays", type=int, default=50)
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args(argv)
    started, load_before = time.time(), os.getloadavg()[0]
    scales = [float(s) for s in args.scales.split(",")]
    known = seeds()
    probes = pd.read_csv(REFERENCE / "capacity-xl-probes.csv")
    made = probes[~probes.boundary & (probes.solver != "structured")].groupby(
        ["model", "d", "seed"]).size()
    lines = ["| noise (drops a fact) | " + " | ".join(f"scale {s}" for s in scales) + " |",
             "| --- |" + " --- |" * len(scales)]
    for noise in NOISES:
        means = []
        for scale in scales:
            counts = []
            for model, d, seed, p_star, drop in known:
                rng = np.random.default_rng([d, seed])
                counts += [replay(model, d, p_star, drop, scale, noise, rng)
                           for _ in range(args.replays)]
            means.append(np.mean(counts))
        lines.append(f"| {noise} | " + " | ".join(f"{m:.2f}" for m in means) + " |")
    command = "python benchmarks/search_replay.py " + " ".join(argv or [])
    prose = (
        f"The {len(known)} committed capacity-xl searches (results/reference, d = 96-192) "
        f"replayed {args.replays} times each on a line through each seed's feasible probes' "
        "kappa*, with noise at each p: mean solver probes a seed by KAPPA_SLOPE_SCALE, the "
        "one-probe slope 1 / (scale d p). No solver runs; p* is each seed's. The seeds' own "
        "scales, 1 / (fitted drop d p*): " + ", ".join(
            f"{m} {d}/{s} {1 / (drop * d * p):.2f}" for m, d, s, p, drop in known)
        + f". The committed searches themselves (scale 1.0) made {made.mean():.2f} solver "
        "probes a seed.")
    publish(Path(args.out), BEGIN, END,
            header("## Solves a search needs, by the slope of kappa*(p) it assumes (issue 12)",
                   command, started, load_before, prose) + lines)


if __name__ == "__main__":
    main(sys.argv[1:] or None)
