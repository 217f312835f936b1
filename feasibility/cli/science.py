"""The science subcommands of `feasibility` (registered by cli.py):

    hebbian    largest p the Hebbian rule W_H stores, per seed (exact, no solver)
    spectra    singular values of the optimal W (coupled, decoupled) and of W_H
    mechanism  per fact: correct score, largest competitor, margin (optimal vs W_H)
    theory     the asymptote p ln p = d^2/2 and the extreme-value heuristic
    twolayer   capacity of W = B A against the hidden width h
    topk       capacity under the top-1 or tail-average-margin criterion
    figures    every figure as PNG from the CSVs in a results folder, plus claims.csv

Like the rest of the CLI these only parse and validate, then call the API;
bad input raises InputError (one line, exit status 2).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import pandas as pd

from feasibility.capacity import batch
from feasibility.capacity.bisection import capacity_guess
from feasibility.cli.options import finite, int_list, name_list
from feasibility.core.errors import InputError
from feasibility.core.files import write_csv_atomic
from feasibility.core.instances import check_family
from feasibility.science import analysis, topk, twolayer
from feasibility.science.figures import claims_table, make_figures, topk_table
from feasibility.solvers.active_set import check_solver


def add_parsers(sub) -> None:
    def grid(p, d_default, seeds_default, d_list=True):
        p.add_argument("--model", type=name_list, default=["coupled", "decoupled"],
                       help="coupled, decoupled or both, comma-separated")
        if d_list:
            p.add_argument("--d", type=int_list, default=d_default,
                           help="dimensions, comma-separated")
        p.add_argument("--seeds", type=int, default=seeds_default)
        p.add_argument("--seed0", type=int, default=0, help="first seed")
        p.add_argument("--distribution", default="gaussian")
        p.add_argument("--jobs", type=int, default=None, help="parallel workers (default: cores)")
        p.add_argument("--quiet", action="store_true")

    heb = sub.add_parser("hebbian", help="Hebbian-rule capacity per seed (exact, no solver)")
    grid(heb, [8, 16, 32, 64, 128, 256], 8)
    heb.add_argument("--out", required=True, help="CSV (resumable); a -summary.csv goes beside")

    spec = sub.add_parser("spectra", help="singular values of the optimal W and of W_H, as CSV")
    spec.add_argument("--d", type=int, default=24)
    spec.add_argument("--p", type=int, default=None,
                      help="facts (default: 0.8 x the capacity guess for d)")
    spec.add_argument("--seeds", type=int, default=4)
    spec.add_argument("--seed0", type=int, default=0)
    spec.add_argument("--distribution", default="gaussian")
    spec.add_argument("--rtol", type=finite, default=1e-4,
                      help="relative width of the certified bracket on kappa*")
    spec.add_argument("--jobs", type=int, default=None)
    spec.add_argument("--out", required=True)

    mech = sub.add_parser("mechanism", help="per-fact scores of the optimal W and of W_H")
    mech.add_argument("--model", type=name_list, default=["coupled", "decoupled"])
    mech.add_argument("--d", type=int, default=24)
    mech.add_argument("--p", type=int, default=None,
                      help="facts (default: 0.8 x the capacity guess for d)")
    mech.add_argument("--seed", type=int, default=0)
    mech.add_argument("--distribution", default="gaussian")
    mech.add_argument("--rtol", type=finite, default=1e-4)
    mech.add_argument("--out", required=True)

    theory = sub.add_parser("theory", help="theory curves p(d), as CSV")
    theory.add_argument("--d", type=int_list,
                        default=[4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256])
    theory.add_argument("--out", required=True)

    two = sub.add_parser("twolayer", help="capacity of W = B A against the hidden width h")
    grid(two, None, 4, d_list=False)
    two.set_defaults(model=["coupled"])
    two.add_argument("--d", type=int, default=12)
    two.add_argument("--h", type=int_list, default=[3, 6, 9, 12, 18],
                     help="hidden widths, comma-separated")
    two.add_argument("--no-trained", action="store_true",
                     help="frozen A only (skip the alternating heuristic)")
    two.add_argument("--solver", default=None)
    two.add_argument("--out", required=True)

    topk = sub.add_parser("topk", help="capacity under top-1 or tail-average-margin retrieval")
    grid(topk, [4, 6, 8, 10, 12], 4)
    topk.set_defaults(model=["coupled"])
    topk.add_argument("--criterion", type=name_list, default=["top1", "tam:0.3"],
                      help="top1, tam:K (K largest competitors) or tam:F (a fraction), "
                           "comma-separated")
    topk.add_argument("--out", required=True)

    figs = sub.add_parser("figures", help="every figure as PNG from the CSVs, plus claims.csv")
    figs.add_argument("--results", default="results",
                      help="folder of the CSVs, where the figures go too (default results; "
                           "the committed ones are in results/reference)")


def _csv_out(path: str) -> Path:
    out = Path(path)
    if out.suffix.lower() != ".csv":
        raise InputError(f"{out}: --out must name a .csv file")
    if not out.resolve().parent.is_dir():
        raise InputError(f"{out.parent}: no such directory")
    return out


def _check_common(args):
    check_family(getattr(args, "model", None) or [], getattr(args, "distribution", None),
                 getattr(args, "seed0", None), seed_name="--seed0")
    if getattr(args, "jobs", None) is not None and args.jobs < 1:
        raise InputError(f"--jobs must be >= 1, got {args.jobs}")
    if getattr(args, "seeds", 1) < 1:
        raise InputError(f"--seeds must be >= 1, got {args.seeds}")


def _default_p(d: int, p: int | None) -> int:
    if d < 2:
        raise InputError(f"--d must be >= 2, got {d}")
    p = p if p is not None else max(2, int(0.8 * capacity_guess(d)))
    if p < 2:
        raise InputError(f"--p must be >= 2, got {p}")
    return p


def _check_rtol(rtol: float):
    if not 0 < rtol < 1:
        raise InputError(f"--rtol must lie in (0, 1), got {rtol}")


def cmd_hebbian(args) -> int:
    _check_common(args)
    out = _csv_out(args.out)
    frame = analysis.run_hebbian_grid(args.model, args.d, args.seeds, out, args.seed0,
                                      args.distribution, args.jobs, args.quiet)
    summary = analysis.hebbian_summary(frame)
    write_csv_atomic(summary, batch.summary_path(out))
    print(summary.round(3).to_string(index=False))
    print(f"wrote {out} and {batch.summary_path(out)}", file=sys.stderr)
    return 0


def _spectra_of_seed(seed: int, solver, d: int, p: int, distribution: str,
                     rtol: float) -> list[dict]:
    """One task of the spectra grid, in the (task, solver) form batch.execute calls."""
    return analysis.spectra_rows(d, p, seed, distribution, rtol, solver)


def cmd_spectra(args) -> int:
    _check_common(args)
    _check_rtol(args.rtol)
    out = _csv_out(args.out)
    p = _default_p(args.d, args.p)
    seeds = list(range(args.seed0, args.seed0 + args.seeds))
    of_seed = functools.partial(_spectra_of_seed, d=args.d, p=p,
                                distribution=args.distribution, rtol=args.rtol)
    parts = dict(batch.execute(of_seed, seeds, jobs=args.jobs))
    frame = pd.DataFrame([row for seed in seeds for row in parts[seed]],
                         columns=analysis.SPECTRA_COLUMNS)
    write_csv_atomic(frame, out)
    agreement = analysis.spectra_agreement(frame)
    verdicts = frame.drop_duplicates(["memory", "seed"])[["memory", "seed", "verdict"]]
    print(verdicts.pivot(index="seed", columns="memory", values="verdict").to_string())
    if not agreement.empty:
        print(agreement.round(4).to_string(index=False))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def cmd_mechanism(args) -> int:
    _check_common(args)
    _check_rtol(args.rtol)
    out = _csv_out(args.out)
    p = _default_p(args.d, args.p)
    rows = []
    for model in args.model:
        rows += analysis.mechanism_rows(model, args.d, p, args.seed, args.distribution,
                                        args.rtol)
    frame = pd.DataFrame(rows, columns=analysis.MECHANISM_COLUMNS)
    write_csv_atomic(frame, out)
    print(analysis.mechanism_summary(frame).round(3).to_string(index=False))
    if "optimal" not in set(frame["memory"]):
        print("note: the instance is not feasible, so there is no optimal W to show; "
              "choose a smaller --p", file=sys.stderr)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def cmd_theory(args) -> int:
    out = _csv_out(args.out)
    frame = analysis.theory_table(args.d)
    write_csv_atomic(frame, out)
    print(frame.round(4).to_string(index=False))
    return 0


def cmd_twolayer(args) -> int:
    _check_common(args)
    check_solver(args.solver)
    if args.d < 2:
        raise InputError(f"--d must be >= 2, got {args.d}")
    out = _csv_out(args.out)
    frame = twolayer.run_twolayer_grid(args.model, args.d, args.h, args.seeds, out,
                                       args.seed0, args.distribution, not args.no_trained,
                                       args.solver, args.jobs, args.quiet)
    cols = ["model", "d", "h", "seed", "p_full", "p_frozen", "p_trained", "trained_not_found_at"]
    print(frame[cols].to_string(index=False))
    return 0


def cmd_topk(args) -> int:
    _check_common(args)
    for criterion in args.criterion:
        topk.parse_criterion(criterion)
    for d in args.d:
        if d < 2:
            raise InputError(f"dimensions must be >= 2, got {d}")
    out = _csv_out(args.out)
    frame = topk.run_topk_grid(args.model, args.d, args.seeds, args.criterion, out,
                               args.seed0, args.distribution, args.jobs, args.quiet)

    print(topk_table(frame).round(3).to_string(index=False))
    return 0


def cmd_figures(args) -> int:
    results = Path(args.results)
    if not results.is_dir():
        raise InputError(f"{results}: no such directory")
    written = make_figures(results)
    if not written:
        raise InputError(f"{results}: no result CSVs to draw from (run `make reproduce`)")
    for path in written:
        print(f"wrote {path}")
    claims = claims_table(results)
    with pd.option_context("display.max_colwidth", 200, "display.width", 250):
        print(claims.to_string(index=False))
    return 0


COMMANDS = {"hebbian": cmd_hebbian, "spectra": cmd_spectra, "mechanism": cmd_mechanism,
            "theory": cmd_theory, "twolayer": cmd_twolayer, "topk": cmd_topk,
            "figures": cmd_figures}
