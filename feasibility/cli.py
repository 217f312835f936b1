"""The `feasibility` command: parses and validates options, then calls the API.

Bad input exits with status 2 and one line on stderr; verdicts exit with 0.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from .errors import FeasibilityError, InputError

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        raise InputError(f"{self.prog}: {message}")


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def _name_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="feasibility", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    gen = sub.add_parser("generate", help="write a random instance as .npz")
    gen.add_argument("--model", required=True)
    gen.add_argument("--d", type=int, required=True)
    gen.add_argument("--p", type=int, required=True)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--distribution", default="gaussian")
    gen.add_argument("-o", "--out", required=True)

    check = sub.add_parser("check", help="certified verdict on one instance file")
    check.add_argument("path")
    check.add_argument("--margin", type=_finite, default=0.0,
                       help="normalised margin kappa to reach (default 0: strict separation)")
    check.add_argument("--solver", default=None, help="clarabel (default), ecos, scs, highs")
    check.add_argument("--program", default=None, choices=["socp", "lp"])
    check.add_argument("--tolerance", type=_finite, default=None)
    check.add_argument("--json", action="store_true")
    check.add_argument("--save-weights", metavar="FILE.npy")
    check.add_argument("--save-certificate", metavar="FILE.npz")

    cap = sub.add_parser("capacity", help="largest storable p by bisection, as CSV")
    cap.add_argument("--model", type=_name_list, default=["coupled"],
                     help="coupled, decoupled or both, comma-separated")
    cap.add_argument("--d", type=_int_list, default=[8, 12, 16])
    cap.add_argument("--seeds", type=int, default=8)
    cap.add_argument("--seed0", type=int, default=0, help="first seed")
    cap.add_argument("--distribution", default="gaussian")
    cap.add_argument("--file", help="bisect over the facts of this instance file instead")
    cap.add_argument("--shuffles", type=int, default=0,
                     help="with --file: also this many seeded orderings")
    cap.add_argument("--out", required=True)
    cap.add_argument("--solver", default=None)
    cap.add_argument("--jobs", type=int, default=None, help="parallel workers (default: cores)")
    cap.add_argument("--executor", default="local", help="local (default) or serial")
    cap.add_argument("--quiet", action="store_true")
    return parser


def _save_npy(path: str, array: np.ndarray):
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as handle:
        np.save(handle, array)
    os.replace(tmp, path)


def cmd_generate(args) -> int:
    from .instances import generate, save

    out = Path(args.out)
    if out.suffix.lower() != ".npz":
        raise InputError(f"{out}: -o must name a .npz file")
    save(generate(args.model, args.d, args.p, args.seed, args.distribution), out)
    print(f"wrote {out}")
    return 0


def cmd_check(args) -> int:
    from .instances import load
    from .solve import check_solver, decide
    from .tolerances import INFEASIBILITY_TOLERANCE

    instance = load(args.path)
    check_solver(args.solver, args.program)
    tolerance = INFEASIBILITY_TOLERANCE if args.tolerance is None else args.tolerance
    if tolerance <= 0:
        raise InputError(f"--tolerance must be positive, got {tolerance}")
    for target in (args.save_weights, args.save_certificate):
        if target and not Path(target).resolve().parent.is_dir():
            raise InputError(f"{target}: its directory does not exist")
    decision = decide(instance, args.margin, args.solver, args.program, tolerance)
    if args.save_weights and decision.weights is not None:
        _save_npy(args.save_weights, decision.weights)
    if args.save_certificate and decision.certificate is not None:
        cert = decision.certificate
        tmp = Path(args.save_certificate + ".partial")
        with open(tmp, "wb") as handle:
            np.savez(handle, rows=cert.rows, slots=cert.slots, weights=cert.weights)
        os.replace(tmp, args.save_certificate)
    record = {**instance.describe(), **decision.row()}
    if args.json:
        print(json.dumps(record))
    else:
        lower = "-" if decision.margin_lower is None else f"{decision.margin_lower:.6g}"
        upper = "-" if decision.margin_upper is None else f"{decision.margin_upper:.6g}"
        print(f"{decision.verdict}  ({instance.n} facts, {instance.n_constraints} constraints, "
              f"d_in={instance.d_in}, d_out={instance.d_out})")
        print(f"normalised max-margin kappa* in [{lower}, {upper}]  "
              f"tolerance {decision.tolerance:g}  solver {decision.solver}  "
              f"{decision.seconds:.2f}s")
        print(f"evidence: {decision.reason}")
    return 0


def cmd_capacity(args) -> int:
    from . import batch
    from .solve import check_solver

    check_solver(args.solver)
    if args.jobs is not None and args.jobs < 1:
        raise InputError(f"--jobs must be >= 1, got {args.jobs}")
    if args.executor not in batch.EXECUTORS:
        raise InputError(f"unknown executor {args.executor!r}: "
                         f"choose one of {', '.join(batch.EXECUTORS)}")
    out = Path(args.out)
    if out.suffix.lower() != ".csv":
        raise InputError(f"{out}: --out must name a .csv file")
    common = dict(solver=args.solver, jobs=args.jobs, executor=args.executor, quiet=args.quiet)
    if args.file:
        if args.shuffles < 0:
            raise InputError(f"--shuffles must be >= 0, got {args.shuffles}")
        frame = batch.run_file_capacity(args.file, args.shuffles, out, **common)
        print(frame.to_string(index=False))
        return 0
    tasks = batch.capacity_tasks(args.model, args.d, args.seeds, args.seed0, args.distribution)
    from .instances import DISTRIBUTIONS
    if args.distribution not in DISTRIBUTIONS:
        raise InputError(f"unknown distribution {args.distribution!r}")
    frame = batch.run_capacity_grid(tasks, out, **common)
    summary = batch.summarise(frame)
    batch.write_csv_atomic(summary, batch.summary_path(out))
    with_options = summary.round({"p_c_log_p_c_over_d2": 3, "seconds_per_seed": 1})
    print(with_options.to_string(index=False))
    print(f"wrote {out} and {batch.summary_path(out)}", file=sys.stderr)
    return 0


COMMANDS = {"generate": cmd_generate, "check": cmd_check, "capacity": cmd_capacity}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except FeasibilityError as exc:
        print(f"feasibility: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("feasibility: interrupted; run the same command again to resume",
              file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except (MemoryError, OSError) as exc:
        print(f"feasibility: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
