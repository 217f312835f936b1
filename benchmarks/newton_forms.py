"""The IPM's Newton forms side by side: one certified decision of the same
generated instance with the default form and with the float32-only one, in the
same run (writes its section of BENCHMARKS.md).

"default" is what every capacity run uses where memory allows ("mixed" on the
D-space: float32 factors refined in float64, conjugate gradients on the same
factor once refinement stalls, float64 once they do not converge either);
"refinement only" is that form without the conjugate gradients (MIXED_KRYLOV
off: the default before 2026-12-02), the baseline of the second table;
"float32" is what the IPM falls back on where the packed float64 matrix would
pass its memory budget (d = 256: 17 GB): float32 factors preconditioning
conjugate gradients on the exact float64 product, assembled by panels. Here
it is forced by a budget one byte under the float64 matrix. Both must reach
the same verdict, proved by the same bound; the table says so per row.

    python benchmarks/newton_forms.py [--sizes 96:1125:3,96:1131:3] [--resume]
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

CACHE = ROOT / "build" / "bench-newton-forms.jsonl"
BEGIN = "<!-- newton-form rows: benchmarks/newton_forms.py -->"
END = "<!-- end of newton-form rows -->"


def _decision(d, p, seed, form):
    from feasibility import decide, generate
    from feasibility.solvers import active_set, ipm

    instance = generate("coupled", d, p, seed=seed)
    factorisations = {"float32": 0, "float64": 0}
    real_factorise = ipm.NewtonSolver._factorise

    def counted(self, out):
        factorisations[out.dtype.name] += 1
        return real_factorise(self, out)
    ipm.NewtonSolver._factorise = counted
    if form == "refined":
        ipm.MIXED_KRYLOV = False
    if form == "float32":
        forms = active_set.newton_forms(active_set.ReducedInstance.of(instance),
                                        instance.n_constraints)
        active_set.newton_memory_budget = lambda: forms["mixed"] - 1
    start = time.perf_counter()
    decision = decide(instance, kappa_rtol=0.02)
    seconds = time.perf_counter() - start
    # the bound that proves the verdict (a W's margin, a certificate's norm), to 4
    # digits: the forms' inexact solves end on slightly different iterates, and
    # the bracket's other side is only the best the solve met on its way
    proof = decision.margin_lower if decision.verdict == "feasible" else decision.margin_upper
    return seconds, (f"{decision.verdict}, proved by {proof:.3e}; kappa* in "
                     f"[{decision.margin_lower:.3e}, {decision.margin_upper:.3e}], "
                     f"{decision.rounds} rounds; {factorisations['float32']} float32 and "
                     f"{factorisations['float64']} float64 factorisations")


def _factorisations(measurement) -> str:
    """How many float32 and float64 Newton matrices a cell factorised."""
    return measurement.outcome.split("; ")[-1]


def _proof(measurement) -> str:
    """The verdict and the bound that proves it, from a cell's outcome."""
    return measurement.outcome.split(";")[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="96:1125:3,96:1131:3",
                        help="comma-separated d:p:seed, coupled (default: p* and p* + 1)")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--resume", action="store_true",
                        help="reuse runs recorded in build/bench-newton-forms.jsonl")
    args = parser.parse_args(argv)
    sizes = [tuple(int(v) for v in item.split(":")) for item in args.sizes.split(",")]

    started, load_before = time.time(), os.getloadavg()[0]
    lines = ["| d | p | seed | default s | float32 s | time ratio | default MiB | "
             "float32 MiB | memory ratio | same proof | default's outcome |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    refined_lines = [
        "| d | p | seed | refinement only s | default s | time ratio | refinement only MiB | "
        "default MiB | memory ratio | same proof | refinement only's outcome | default's "
        "factorisations |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for d, p, seed in sizes:
        default = measure(_decision, (d, p, seed, "default"), 1, CACHE, args.resume)
        single = measure(_decision, (d, p, seed, "float32"), 1, CACHE, args.resume)
        refined = measure(_decision, (d, p, seed, "refined"), 1, CACHE, args.resume)
        lines.append(f"| {d} | {p} | {seed} | {side_by_side(default, single)} | "
                     f"{'yes' if _proof(single) == _proof(default) else 'NO'} | "
                     f"{default.outcome} |")
        refined_lines.append(f"| {d} | {p} | {seed} | {side_by_side(refined, default)} | "
                             f"{'yes' if _proof(refined) == _proof(default) else 'NO'} | "
                             f"{refined.outcome} | {_factorisations(default)} |")

    command = "python benchmarks/newton_forms.py " + " ".join(argv or [])
    prose = ("One `decide(instance, kappa_rtol=0.02)` (a search's probe from the "
             "mirror-descent start) per cell, in a fresh process, on the same generated "
             "coupled instance: with the default Newton form, and with the float32-only form "
             "that the IPM takes where the packed float64 matrix would not fit (forced here by "
             "the memory budget). The time ratio is float32 over default; peak memory is the "
             "child's max RSS, instance generation included. \"Same proof\": the same "
             "verdict, proved by the same bound (a W's margin, a certificate's norm) to the 4 "
             "digits shown.")
    refined_header = ["", "The default form against itself without the conjugate gradients "
                      "that take over where refinement of a float32 factor stalls (refinement "
                      "only: float64 from there on, the default before 2026-12-02); the time "
                      "ratio is default over refinement only. Same instances, same run.", ""]
    publish(Path(args.out), BEGIN, END,
            header("## The IPM's Newton forms: default against float32-only and "
                   "refinement-only (issue 12)", command, started, load_before, prose)
            + lines + refined_header + refined_lines)


if __name__ == "__main__":
    main(sys.argv[1:] or None)
