"""Does p* depend on tau? Per-seed bisections at the capacity tolerance and at a
tau 100x tighter, side by side (issue: "a tolerance that keeps its meaning").

    python benchmarks/tolerance_check.py --d 32,48 --seeds 4 --out results/tolerance-check.csv

One row per (model, d, seed): p* and the certified kappa at p* under each tau,
solves and seconds of each. A p* that changes is printed; exit status 1 then.
Rows are appended as they finish (a rerun skips the ones it has).

At d >= 96 a whole bisection per tau is too dear: capacity rows from d = 96 on
check their own boundary as they are made (their boundary_* columns).
``--boundary CAPACITY.csv`` checks the rows made before that, one solve each
(its active set grown from the Hebbian memory, as no W of p* is kept):

    python benchmarks/tolerance_check.py --boundary results/reference/capacity-xl.csv \
        --d 128 --out results/tolerance-boundary.csv

p* stays feasible at tau/100 (its certified kappa is >= tau), so p* is unchanged
iff p* + 1 is still certified infeasible at tau/100 (monotonicity in p then
covers every larger p). One row per (model, d, seed): that verdict, its
certified upper bound on kappa*, rounds and seconds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from feasibility import decide, generate
from feasibility.capacity.batch import p_max_for
from feasibility.capacity.bisection import capacity_bisection, capacity_guess
from feasibility.core.instances import GeneratedFamily
from feasibility.core.tolerances import BOUNDARY_TIGHTENING, capacity_tolerance

TIGHTER = float(BOUNDARY_TIGHTENING)


def one(model: str, d: int, seed: int) -> dict:
    full = generate(model, d, p_max_for(d), seed)
    row = {"model": model, "d": d, "seed": seed}
    for name, tau in (("tau", capacity_tolerance(d)), ("tight", capacity_tolerance(d) / TIGHTER)):
        result = capacity_bisection(full, guess=capacity_guess(d, model), tolerance=tau)
        row.update({f"{name}": tau, f"p_star_{name}": result.p_star,
                    f"status_{name}": str(result.status),
                    f"kappa_at_p_star_{name}": result.kappa_at_p_star,
                    f"solves_{name}": len(result.probes),
                    f"seconds_{name}": round(result.seconds, 1)})
    return row


def finished(out: Path) -> set[tuple]:
    """(model, d, seed) of the rows an earlier run appended to `out`."""
    done = pd.read_csv(out) if out.exists() else pd.DataFrame()
    return set(zip(done.get("model", []), done.get("d", []), done.get("seed", [])))


def boundary(row) -> dict:
    """p* + 1 of a committed capacity row, decided afresh at tau / TIGHTER."""
    d, p = int(row.d), int(row.p_star) + 1
    family = GeneratedFamily(row.model, d, int(row.p_max), int(row.seed), row.distribution)
    tau = capacity_tolerance(d)
    decision = decide(family.prefix(p), tolerance=tau / TIGHTER)
    return {"model": row.model, "d": d, "seed": int(row.seed), "p_star": int(row.p_star),
            "kappa_at_p_star": row.kappa_at_p_star, "tau": tau, "tight": tau / TIGHTER,
            "verdict_tight": str(decision.verdict), "margin_upper_tight": decision.margin_upper,
            "solver_tight": decision.solver, "rounds_tight": decision.rounds,
            "seconds_tight": round(decision.seconds, 1)}


def check_boundaries(capacity: Path, models: set[str], dims: set[int], out: Path) -> int:
    rows = pd.read_csv(capacity)
    rows = rows[(rows.status == "exact") & rows.model.isin(models) & rows.d.isin(dims)]
    if "boundary_verdict" in rows:
        print(f"{rows.boundary_verdict.notna().sum()} rows checked their own boundary: "
              f"{(rows.boundary_verdict == 'infeasible').sum()} p* unchanged", flush=True)
        rows = rows[rows.boundary_verdict.isna()]
    have = finished(out)
    for row in rows.itertuples():
        if (row.model, row.d, row.seed) in have:
            continue
        if row.kappa_at_p_star < capacity_tolerance(row.d):
            raise SystemExit(f"{capacity}: kappa at p* below tau in {row.model} d={row.d} "
                             f"seed={row.seed}")
        result = boundary(row)
        pd.DataFrame([result]).to_csv(out, mode="a", index=False, header=not out.exists())
        print(f"{row.model} d={row.d} seed={row.seed}: p*+1 = {row.p_star + 1} "
              f"{result['verdict_tight']} at tau {result['tight']:.1e} (kappa* <= "
              f"{result['margin_upper_tight']:.1e}; {result['seconds_tight']} s)", flush=True)
    if not out.exists():
        return 0
    frame = pd.read_csv(out)
    changed = frame[frame.verdict_tight != "infeasible"]
    print(f"{len(frame) - len(changed)} of {len(frame)} per-seed p* unchanged by a "
          f"{TIGHTER:.0f}x tighter tau (p* + 1 still infeasible)")
    if len(changed):
        print(changed.to_string(index=False), file=sys.stderr)
    return 1 if len(changed) else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="coupled,decoupled")
    parser.add_argument("--d", default="32,48")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("results/tolerance-check.csv"))
    parser.add_argument("--boundary", type=Path, metavar="CAPACITY_CSV",
                        help="check the exact rows of this capacity CSV at p* + 1 only")
    args = parser.parse_args(argv)
    if args.boundary is not None:
        return check_boundaries(args.boundary, set(args.model.split(",")),
                                {int(v) for v in args.d.split(",")}, args.out)
    have = finished(args.out)
    for d in (int(v) for v in args.d.split(",")):
        for model in args.model.split(","):
            for seed in range(args.seeds):
                if (model, d, seed) in have:
                    continue
                row = one(model, d, seed)
                pd.DataFrame([row]).to_csv(args.out, mode="a", index=False,
                                           header=not args.out.exists())
                print(f"{model} d={d} seed={seed}: p* {row['p_star_tau']} at tau "
                      f"{row['tau']:.1e}, {row['p_star_tight']} at {row['tight']:.1e} "
                      f"({row['seconds_tau']} s / {row['seconds_tight']} s)", flush=True)
    frame = pd.read_csv(args.out)
    changed = frame[frame.p_star_tau != frame.p_star_tight]
    print(f"{len(frame) - len(changed)} of {len(frame)} per-seed p* unchanged by a "
          f"{TIGHTER:.0f}x tighter tau")
    if len(changed):
        print(changed.to_string(index=False), file=sys.stderr)
    return 1 if len(changed) else 0


if __name__ == "__main__":
    sys.exit(main())
