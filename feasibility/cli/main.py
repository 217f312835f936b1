"""The `feasibility` command: parses and validates options, then calls the API.

Bad input exits with status 2 and one line on stderr; verdicts exit with 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import feasibility.cli.science as science_cli
from feasibility.capacity import batch
from feasibility.capacity.progress import solver_heartbeat
from feasibility.capacity.projection import figure_path, run_dims_capacity
from feasibility.capacity.spec import resolve_capacity_args
from feasibility.cli.options import Parser, finite, int_list, name_list
from feasibility.core.errors import FeasibilityError, InputError
from feasibility.core.files import save_npy_atomic, save_npz_atomic, write_csv_atomic
from feasibility.core.instances import generate, load, save
from feasibility.core.tolerances import INFEASIBILITY_TOLERANCE
from feasibility.solvers.active_set import check_solver, decide
from feasibility.solvers.console import solver_output_to_stderr
from feasibility.tools.audit import audit
from feasibility.tools.embed import DEFAULT_MODEL, embed_file
from feasibility.tools.explain import explain, write_explanation
from feasibility.tools.prune import prune, prune_progress, write_prune_report

EXIT_BAD_INPUT = 2
#: `capacity --reference`: the run finished, but some seed's p* differs from the reference
EXIT_NOT_REPRODUCED = 1


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="feasibility", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    gen = sub.add_parser("generate", help="write a random instance as .npz")
    gen.add_argument("--model", required=True)
    gen.add_argument("--d", type=int, required=True)
    gen.add_argument("--p", type=int, required=True)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--distribution", default="gaussian")
    gen.add_argument("-o", "--out", required=True)

    check = sub.add_parser("check", help="certified verdict on one instance file")
    check.add_argument("path")
    check.add_argument("--margin", type=finite, default=0.0,
                       help="normalised margin kappa to reach (default 0: strict separation)")
    check.add_argument("--solver", default=None, help="ipm (default), clarabel, ecos, scs, highs")
    check.add_argument("--program", default=None, choices=["minnorm", "socp", "lp"])
    check.add_argument("--tolerance", type=finite, default=None)
    check.add_argument("--json", action="store_true")
    check.add_argument("--save-weights", metavar="FILE.npy")
    check.add_argument("--save-certificate", metavar="FILE.npz")
    check.add_argument("--explain", action="store_true",
                       help="infeasible: the facts in the certificate's support, heaviest "
                            "first, and the exact conflicts among them")
    check.add_argument("--out", metavar="FILE.csv|FILE.json",
                       help="with --explain: write the explanation (CSV: one row per "
                            "constraint of the certificate; JSON: the whole record)")

    prn = sub.add_parser("prune", help="drop the facts that certificates name until the "
                                       "rest is certified feasible")
    prn.add_argument("path")
    prn.add_argument("-o", "--out", metavar="KEPT.npz", help="write the kept facts here")
    prn.add_argument("--report", metavar="FILE.csv|FILE.json",
                     help="write the dropped facts, each with the certificate that named it")
    prn.add_argument("--solver", default=None, help="ipm (default), clarabel, ecos, scs, highs")
    prn.add_argument("--max-rounds", type=int, default=None,
                     help="stop (undetermined) after this many solver-certified drops")
    prn.add_argument("--json", action="store_true")

    cap = sub.add_parser("capacity", help="largest storable p by bisection, as CSV")
    # grid options default to None so that --spec can fill them (spec.DEFAULTS)
    cap.add_argument("--spec", metavar="FILE.json",
                     help="read the options from a JSON specification (see instances/"
                          "small-grid.json); options given here override it")
    cap.add_argument("--model", type=name_list, default=None,
                     help="coupled (default), decoupled or both, comma-separated")
    cap.add_argument("--d", type=int_list, default=None, help="default 8,12,16")
    cap.add_argument("--seeds", type=int, default=None, help="default 8")
    cap.add_argument("--seed0", type=int, default=None, help="first seed (default 0)")
    cap.add_argument("--distribution", default=None, help="gaussian (default) or sphere")
    cap.add_argument("--file", help="bisect over the facts of this instance file instead")
    cap.add_argument("--shuffles", type=int, default=None,
                     help="with --file: also this many seeded orderings")
    cap.add_argument("--dims", type=int_list, default=None,
                     help="with --file: capacity at each memory size d, projecting onto the "
                          "leading principal components (see feasibility/capacity/projection.py)")
    cap.add_argument("--out", default=None, help="CSV to write (required, here or in --spec)")
    cap.add_argument("--reference", default=None, metavar="FILE.csv",
                     help="after the run, compare each seed's p* and status with this "
                          "CSV's row (e.g. results/reference/capacity.csv); exit 1 if any "
                          "differs")
    cap.add_argument("--solver", default=None)
    cap.add_argument("--jobs", type=int, default=None, help="parallel workers (default: cores)")
    cap.add_argument("--executor", default=None,
                     help="local (default: joblib, all cores), serial, or dask")
    cap.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="with --executor dask: the scheduler, e.g. tcp://host:8786")
    cap.add_argument("--quiet", action="store_true", help="no progress on stderr")

    aud = sub.add_parser("audit", help="every installed solver on one instance, side by side")
    aud.add_argument("path")
    aud.add_argument("--margin", type=finite, default=0.0,
                     help="normalised margin kappa to reach (default 0: strict separation)")
    aud.add_argument("--json", action="store_true")

    emb = sub.add_parser("embed", help="CSV of (subject, answer) texts -> instance .npz "
                                       "(needs the extra: pip install '.[embed]')")
    emb.add_argument("facts", help="CSV with 'subject' and 'answer' columns")
    emb.add_argument("-o", "--out", required=True, help="instance file to write (.npz)")
    emb.add_argument("--model", default=None,
                     help="all-MiniLM-L6-v2 (default, bundled) or a local model directory")
    emb.add_argument("--batch-size", type=int, default=64)

    science_cli.add_parsers(sub)
    return parser


def cmd_generate(args) -> int:
    out = Path(args.out)
    if out.suffix.lower() != ".npz":
        raise InputError(f"{out}: -o must name a .npz file")
    save(generate(args.model, args.d, args.p, args.seed, args.distribution), out)
    print(f"wrote {out}")
    return 0


def _file_heartbeat(args):
    """The solver's heartbeat on stderr after the file's name (a large file's solve
    takes hours: a D = 64,512 Newton matrix), except with --json."""
    return contextlib.nullcontext() if args.json else solver_heartbeat(Path(args.path).name)


def cmd_check(args) -> int:
    instance = load(args.path)
    check_solver(args.solver, args.program)
    tolerance = INFEASIBILITY_TOLERANCE if args.tolerance is None else args.tolerance
    if tolerance <= 0:
        raise InputError(f"--tolerance must be positive, got {tolerance}")
    for target in (args.save_weights, args.save_certificate, args.out):
        if target and not Path(target).resolve().parent.is_dir():
            raise InputError(f"{target}: its directory does not exist")
    if args.out and not args.explain:
        raise InputError("check: --out needs --explain")
    if args.out and Path(args.out).suffix.lower() not in (".csv", ".json"):
        raise InputError(f"{args.out}: --out must name a .csv or .json file")
    with _file_heartbeat(args):
        decision = decide(instance, args.margin, args.solver, args.program, tolerance)
    explanation = explain(instance, decision) if args.explain else None
    if args.out:
        write_explanation(explanation, args.out)
    if args.save_weights and decision.weights is not None:
        save_npy_atomic(decision.weights, args.save_weights)
    if args.save_certificate and decision.certificate is not None:
        cert = decision.certificate
        save_npz_atomic(args.save_certificate, rows=cert.rows, slots=cert.slots,
                        weights=cert.weights)
    record = {**instance.describe(), **decision.row()}
    if explanation is not None:
        record["explanation"] = explanation.record()
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
        if explanation is not None:
            print("\n".join(explanation.lines()))
    return 0


def cmd_prune(args) -> int:
    instance = load(args.path)
    check_solver(args.solver)
    for target, suffixes in ((args.out, (".npz",)), (args.report, (".csv", ".json"))):
        if target and Path(target).suffix.lower() not in suffixes:
            raise InputError(f"{target}: expected a {' or '.join(suffixes)} file")
        if target and not Path(target).resolve().parent.is_dir():
            raise InputError(f"{target}: its directory does not exist")
    if args.max_rounds is not None and args.max_rounds < 0:
        raise InputError(f"--max-rounds must be >= 0, got {args.max_rounds}")
    with _file_heartbeat(args):
        result = prune(instance, solver=args.solver, max_rounds=args.max_rounds,
                       progress=None if args.json else prune_progress)
    if args.out:
        save(result.kept, args.out)
    if args.report:
        write_prune_report(result, args.report)
    if args.json:
        print(json.dumps(result.record()))
    else:
        print("\n".join(result.lines()))
        if args.out:
            print(f"wrote {args.out}: the {result.kept.n} kept facts")
    return 0


def cmd_capacity(args) -> int:
    args = resolve_capacity_args(args)  # --spec FILE, defaults, conflicts
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
    if args.executor == "dask" and args.file and args.dims:
        raise InputError("--dims does not run on --executor dask yet; use local or serial")
    if args.executor == "dask":
        common["scheduler"] = args.scheduler
    if args.file:
        if args.shuffles < 0:
            raise InputError(f"--shuffles must be >= 0, got {args.shuffles}")
        if args.dims:
            frame = run_dims_capacity(args.file, args.dims, args.shuffles, out, **common)
            print(frame.to_string(index=False))
            print(f"wrote {out} and {figure_path(out)}", file=sys.stderr)
            return 0
        frame = batch.run_file_capacity(args.file, args.shuffles, out, **common)
        print(frame.to_string(index=False))
        return 0
    if args.dims:
        raise InputError("--dims needs --file (for random instances use --d)")
    tasks = batch.capacity_tasks(args.model, args.d, args.seeds, args.seed0, args.distribution)
    reference = batch.read_reference(args.reference) if args.reference else None
    frame = batch.run_capacity_grid(tasks, out, **common)
    summary = batch.summarise(frame)
    write_csv_atomic(summary, batch.summary_path(out))
    with_options = summary.round({"p_c_log_p_c_over_d2": 3, "seconds_per_seed": 1})
    print(with_options.to_string(index=False))
    print(f"wrote {out} and {batch.summary_path(out)}", file=sys.stderr)
    if reference is None:
        return 0
    agreement = batch.compare_with_reference(frame, reference, args.reference)
    print(agreement.report())
    return 0 if agreement.agrees else EXIT_NOT_REPRODUCED


def cmd_embed(args) -> int:
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    instance = embed_file(args.facts, args.out, args.model, args.batch_size)
    shared = " (shared answers: many-to-one)" if instance.m < instance.n else ""
    print(f"wrote {args.out}: {instance.n} facts, {instance.m} distinct answers{shared}, "
          f"{instance.d_in} dimensions ({args.model or DEFAULT_MODEL})")
    return 0


def cmd_audit(args) -> int:
    instance = load(args.path)
    with solver_output_to_stderr():
        report = audit(instance, args.margin)
    if args.json:
        print(json.dumps({**instance.describe(), **report.row()}))
    else:
        print(f"audit of {args.path}: {instance.n} facts, {instance.n_constraints} constraints, "
              f"margin {args.margin:g}, tolerance {report.tolerance:g}")
        print(report.table())
    if not report.agree:  # loud on the terminal even when stdout goes to a file
        print(f"feasibility: {report.disagreement()}", file=sys.stderr)
    return 0


COMMANDS = {"generate": cmd_generate, "check": cmd_check, "capacity": cmd_capacity,
            "embed": cmd_embed, "audit": cmd_audit, "prune": cmd_prune, **science_cli.COMMANDS}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that runs stop as cleanly as on Ctrl-C."""


def _raise_terminated(signum, frame):
    raise Terminated()


def _on_sigterm(handler):
    """Install `handler` for SIGTERM (main thread only); returns the previous one."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


def _interrupted(exc: KeyboardInterrupt, command: str | None) -> int:
    """One line on stderr and the shell's exit status for the signal."""
    how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
    hint = ("; finished rows and probes are kept, and a probe under way resumes from its "
            "last checkpoint: run the same command again to resume"
            if command == "capacity" else "")
    print(f"feasibility: {how}{hint}", file=sys.stderr)
    return 143 if isinstance(exc, Terminated) else 130


def _interruption_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt (or Terminated) during whose handling `exc` was raised."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def main(argv: list[str] | None = None) -> int:
    previous = _on_sigterm(_raise_terminated)
    command = None
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        return COMMANDS[args.command](args)
    except FeasibilityError as exc:
        print(f"feasibility: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM as Terminated
        return _interrupted(exc, command)
    except BrokenPipeError:
        return 0
    except (MemoryError, OSError) as exc:
        print(f"feasibility: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:
        # a signal that lands while joblib starts its workers can be masked by an
        # error of joblib's own clean-up ("cannot join thread before it is
        # started"), raised while the interruption was being handled
        cause = _interruption_behind(exc)
        if cause is None:
            raise
        return _interrupted(cause, command)
    finally:
        if previous is not None:
            _on_sigterm(previous)


if __name__ == "__main__":
    sys.exit(main())
