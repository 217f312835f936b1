"""Mutation check of the verdict-critical lines: does some test fail on each change?

Usage (from the repository root, with the project's interpreter)::

    python scripts/mutants.py            # every mutant
    python scripts/mutants.py -k classify  # those whose name contains 'classify'
    python scripts/mutants.py --list

Stdlib only. The package and the tests are copied to a temporary folder; each
mutant changes one line of the copy (the text must occur exactly once, else the
mutant is reported as stale), runs ``python -m pytest -q -x`` on its test files
in that folder with PYTHONPATH at the copy, and restores the line. A mutant is
*caught* when pytest fails, with the first failing test named; *survived* when
the tests pass. The unmutated copy is run first: if it fails, nothing is judged.
Exit status 1 when a mutant survived or is stale.

Last run (2026-12-03, main, 31 mutants, all caught; mutant -> first test that
failed):

    classify: lower >= margin -> >           test_certify.py::test_classify_boundaries
    classify: lower >= margin -> <=          test_certify.py::test_classify_boundaries
    classify: feasible at 1e-3 below margin  test_certify.py::test_classify_boundaries
    classify: floor > -> >=                  test_certify.py::test_classify_boundaries
    classify: floor dropped                  test_certify.py::test_classify_boundaries
    classify: upper <= -> <                  test_certify.py::test_classify_boundaries
    classify: upper <= -> >=                 test_certify.py::test_classify_boundaries
    classify: upper within 2x                test_certify.py::test_classify_boundaries
    classify: tolerance ignored              test_certify.py::test_classify_boundaries
    certificate: weights need not sum to 1   test_certify.py::test_a_valid_certificate_and_its_malformed_variants
    certificate: negative weights accepted   test_certify.py::test_a_valid_certificate_and_its_malformed_variants
    certificate: own-target pair accepted    test_certify.py::test_a_valid_certificate_and_its_malformed_variants
    certificate: spectral norm               test_certify.py::test_upper_bound_is_the_norm_of_the_weighted_sum[coupled]
    certificate: bound halved                test_certify.py::test_upper_bound_is_the_norm_of_the_weighted_sum[coupled]
    lower bound: min -> max                  test_certify.py::test_lower_bound_is_the_smallest_normalised_margin[coupled]
    lower bound: min -> mean of constraints  test_certify.py::test_lower_bound_is_the_smallest_normalised_margin[coupled]
    lower bound: not divided by ||W||        test_certify.py::test_lower_bound_is_the_smallest_normalised_margin[coupled]
    bracket: keeps the worse W               test_certify.py::test_the_bracket_keeps_the_best_evidence_and_who_gave_it
    verify: recorded bounds not compared     test_certify.py::test_verify_rejects_a_malformed_memory
    verify: verdict not re-derived           test_certify.py::test_verify_rejects_a_malformed_memory
    bisection: p_star = lower + 1            test_capacity.py::test_bisection_finds_the_exact_transition[coupled-0]
    bisection: p_star = lower - 1            test_capacity.py::test_bisection_finds_the_exact_transition[coupled-0]
    bisection: stops with a gap of 2         test_capacity.py::test_bisection_finds_the_exact_transition[coupled-0]
    tolerance 1e-3 instead of 1e-6           test_decide.py::test_a_near_critical_verdict_depends_on_the_tolerance
    decide: time limit ignored               test_decide.py::test_a_time_limit_of_zero_stops_before_any_round
    decide: no escalation                    test_decide.py::test_a_failing_solver_escalates_to_the_next
    bisection: fast path never skipped       test_capacity.py::test_the_fast_path_is_skipped_above_a_prefix_where_it_failed
    journal: recorded probes not reused      test_journal.py::test_an_interrupted_search_resumes_with_its_probes
    journal: another task's probes reused    test_journal.py::test_a_journal_of_another_task_is_not_used
    ipm: no memory guard                     test_limits.py::test_the_ipm_refuses_a_newton_matrix_that_cannot_fit
    ipm: slowest Newton form that fits       test_limits.py::test_the_ipm_refuses_a_newton_matrix_that_cannot_fit

About 4 s a mutant (pytest's start-up dominates); ~2.5 min in all on 2 busy cores.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: what the copy needs to import the package and run its tests (some read the
#: committed reference results, or import the benchmark scripts they check)
COPIED = ("feasibility", "tests", "pyproject.toml", "benchmarks", "results/reference")

CERTIFY = "feasibility/core/certify.py"
TOLERANCES = "feasibility/core/tolerances.py"
BISECTION = "feasibility/capacity/bisection.py"
ACTIVE_SET = "feasibility/solvers/active_set.py"
JOURNAL = "feasibility/capacity/journal.py"

#: test files per concern, fastest first (pytest -x stops at the first failure)
CHECKER_TESTS = ("tests/test_certify.py", "tests/test_verdicts.py", "tests/test_decide.py")
CAPACITY_TESTS = ("tests/test_capacity.py", "tests/test_decide.py")
DECIDE_TESTS = ("tests/test_decide.py", "tests/test_verdicts.py")

CLASSIFY_FEASIBLE = "if lower is not None and lower >= margin and lower > MARGIN_FLOOR:"
CLASSIFY_INFEASIBLE = "if upper is not None and upper <= margin + tolerance:"


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str          # must occur exactly once in the file
    new: str
    tests: tuple[str, ...] = CHECKER_TESTS


MUTANTS = (
    Mutant("classify: lower >= margin -> >", CERTIFY, CLASSIFY_FEASIBLE,
           CLASSIFY_FEASIBLE.replace("lower >= margin", "lower > margin")),
    Mutant("classify: lower >= margin -> <=", CERTIFY, CLASSIFY_FEASIBLE,
           CLASSIFY_FEASIBLE.replace("lower >= margin", "lower <= margin")),
    Mutant("classify: feasible at 1e-3 below margin", CERTIFY, CLASSIFY_FEASIBLE,
           CLASSIFY_FEASIBLE.replace("lower >= margin", "lower >= margin - 1e-3")),
    Mutant("classify: floor > -> >=", CERTIFY, CLASSIFY_FEASIBLE,
           CLASSIFY_FEASIBLE.replace("lower > MARGIN_FLOOR", "lower >= MARGIN_FLOOR")),
    Mutant("classify: floor dropped", CERTIFY, CLASSIFY_FEASIBLE,
           CLASSIFY_FEASIBLE.replace(" and lower > MARGIN_FLOOR", "")),
    Mutant("classify: upper <= -> <", CERTIFY, CLASSIFY_INFEASIBLE,
           CLASSIFY_INFEASIBLE.replace("upper <=", "upper <")),
    Mutant("classify: upper <= -> >=", CERTIFY, CLASSIFY_INFEASIBLE,
           CLASSIFY_INFEASIBLE.replace("upper <=", "upper >=")),
    Mutant("classify: upper within 2x", CERTIFY, CLASSIFY_INFEASIBLE,
           CLASSIFY_INFEASIBLE.replace("margin + tolerance", "2 * (margin + tolerance)")),
    Mutant("classify: tolerance ignored", CERTIFY, CLASSIFY_INFEASIBLE,
           CLASSIFY_INFEASIBLE.replace("margin + tolerance", "margin + INFEASIBILITY_TOLERANCE")),
    Mutant("certificate: weights need not sum to 1", CERTIFY,
           "and np.isclose(weights.sum(), 1.0, rtol=0, atol=CERTIFICATE_SUM_ATOL))",
           "and True)"),
    Mutant("certificate: negative weights accepted", CERTIFY,
           "np.all(weights >= 0)", "np.all(weights >= -np.inf)"),
    Mutant("certificate: own-target pair accepted", CERTIFY,
           "return bool(instance.decoupled or np.all(slots != instance.assignment[rows]))",
           "return True"),
    Mutant("certificate: spectral norm", CERTIFY,
           "return float(np.linalg.norm(V.T @ x_hat))", "return float(np.linalg.norm(V.T @ x_hat, 2))"),
    Mutant("certificate: bound halved", CERTIFY,
           "return float(np.linalg.norm(V.T @ x_hat))", "return float(np.linalg.norm(V.T @ x_hat)) / 2"),
    Mutant("lower bound: min -> max", CERTIFY,
           "return float(scaled.min() / norm)", "return float(scaled.max() / norm)"),
    Mutant("lower bound: min -> mean of constraints", CERTIFY,
           "return float(scaled.min() / norm)",
           "return float(scaled[np.isfinite(scaled)].mean() / norm)"),
    Mutant("lower bound: not divided by ||W||", CERTIFY,
           "return float(scaled.min() / norm)", "return float(scaled.min())"),
    Mutant("bracket: keeps the worse W", CERTIFY,
           "if value is not None and (self.lower is None or value > self.lower):",
           "if value is not None and (self.lower is None or value < self.lower):"),
    Mutant("verify: recorded bounds not compared", CERTIFY,
           "    return bool(np.isclose(recomputed, recorded, rtol=RECOMPUTE_RTOL, atol=0.0))",
           "    return True"),
    Mutant("verify: verdict not re-derived", CERTIFY,
           "    if follows != verdict:", "    if False:"),
    Mutant("bisection: p_star = lower + 1", BISECTION,
           "p_star = lower if status == CapacityStatus.EXACT else None",
           "p_star = lower + 1 if status == CapacityStatus.EXACT else None", CAPACITY_TESTS),
    Mutant("bisection: p_star = lower - 1", BISECTION,
           "p_star = lower if status == CapacityStatus.EXACT else None",
           "p_star = lower - 1 if status == CapacityStatus.EXACT else None", CAPACITY_TESTS),
    Mutant("bisection: stops with a gap of 2", BISECTION,
           "if upper is not None and upper - lower <= 1:",
           "if upper is not None and upper - lower <= 2:", CAPACITY_TESTS),
    Mutant("tolerance 1e-3 instead of 1e-6", TOLERANCES,
           "INFEASIBILITY_TOLERANCE = 1e-6", "INFEASIBILITY_TOLERANCE = 1e-3"),
    Mutant("decide: time limit ignored", ACTIVE_SET,
           "        if deadline is not None and time.monotonic() > deadline:\n"
           "            return rounds,",
           "        if False:\n            return rounds,", DECIDE_TESTS),
    Mutant("decide: no escalation", ACTIVE_SET, "        if escalate:", "        if False:",
           DECIDE_TESTS),
    Mutant("bisection: fast path never skipped", BISECTION,
           "fast_path=p < fast_path_failed_at", "fast_path=True", CAPACITY_TESTS),
    Mutant("journal: recorded probes not reused", BISECTION,
           "        certified = known.get(p) or implying_probe(known.values(), p)",
           "        certified = None", ("tests/test_journal.py",)),
    Mutant("journal: another task's probes reused", JOURNAL,
           'if record is None or list(record.get("key", ())) != list(self.key):',
           "if record is None:", ("tests/test_journal.py",)),
    Mutant("ipm: no memory guard", ACTIVE_SET,
           "    if form is None:", "    if False:", ("tests/test_limits.py",)),
    Mutant("ipm: slowest Newton form that fits", ACTIVE_SET,
           "    return fitting[0], forms[fitting[0]]", "    return fitting[-1], forms[fitting[-1]]",
           ("tests/test_limits.py",)),
)


def copy_tree(target: Path) -> None:
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target / name)


def run_tests(copy: Path, tests: tuple[str, ...], timeout: float) -> tuple[int, str]:
    """pytest in the copy (cwd and PYTHONPATH there); (exit status, its output)."""
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, "timeout"
    return done.returncode, done.stdout + done.stderr


def first_failure(output: str) -> str:
    """The first 'FAILED tests/x.py::name' (or ERROR) of pytest's short summary."""
    match = re.search(r"^(?:FAILED|ERROR) (tests/\S+?)(?: - |$)", output, re.MULTILINE)
    return match.group(1).removeprefix("tests/") if match else "?"


def judge(copy: Path, mutant: Mutant, timeout: float) -> tuple[str, str]:
    """Apply one mutant, run its tests, restore; (outcome, detail)."""
    path = copy / mutant.path
    original = path.read_text()
    if original.count(mutant.old) != 1:
        return "stale", f"{mutant.old!r} occurs {original.count(mutant.old)} times"
    path.write_text(original.replace(mutant.old, mutant.new))
    try:
        status, output = run_tests(copy, mutant.tests, timeout)
    finally:
        path.write_text(original)
    if status == 0:
        return "survived", ""
    if status == -1:
        return "caught", "timeout"
    return "caught", first_failure(output)


def check_imports_from(copy: Path) -> None:
    """The copy, not an installed package, is what the tests import."""
    env = {**os.environ, "PYTHONPATH": str(copy)}
    where = subprocess.run([sys.executable, "-c", "import feasibility; print(feasibility.__file__)"],
                           cwd=copy, env=env, capture_output=True, text=True, check=True)
    if not Path(where.stdout.strip()).resolve().is_relative_to(copy.resolve()):
        sys.exit(f"the tests would import {where.stdout.strip()}, not the copy")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="only mutants whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per mutant")
    parser.add_argument("--tests", nargs="+", default=None,
                        help="run these test files for every mutant (e.g. tests/ for the suite)")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if args.k in m.name]
    if args.tests:
        chosen = [replace(m, tests=tuple(args.tests)) for m in chosen]
    if args.list:
        for mutant in chosen:
            print(f"{mutant.name:40s} {mutant.path}")
        return 0
    with tempfile.TemporaryDirectory(prefix="mutants-") as folder:
        copy = Path(folder)
        copy_tree(copy)
        check_imports_from(copy)
        every_file = tuple(sorted({t for m in chosen for t in m.tests}))
        status, output = run_tests(copy, every_file, args.timeout)
        if status != 0:
            print(output[-3000:])
            print("the unmutated tests fail: no mutant can be judged")
            return 2
        bad = 0
        for mutant in chosen:
            start = time.monotonic()
            outcome, detail = judge(copy, mutant, args.timeout)
            bad += outcome != "caught"
            print(f"{outcome:8s} {mutant.name:40s} {detail}  ({time.monotonic() - start:.0f} s)",
                  flush=True)
        print(f"{len(chosen) - bad} of {len(chosen)} mutants caught")
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
