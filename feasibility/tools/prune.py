"""The facts that fit: drop the facts that certificates name until the rest is
certified feasible.

Each round works on the facts kept so far (with the answers they use):

1. exact conflicts first, all at once and without a solver: facts whose
   inputs are parallel (identical, after an uncased encoder) with different
   answers. In each such group the first fact in file order is kept with
   every fact sharing its answer; each other fact is dropped, named by the
   two-point certificate lambda = 1/2 on (first, its answer) and (it, the
   first's answer), which is checked by feasibility.core.certify on the kept
   set before the drop;
2. otherwise `decide` on the kept facts: feasible ends the search (its W,
   margins recomputed in numpy, is the certified verdict of what is kept);
   infeasible names the facts of its certificate's support (narrowed to the
   fewest of its constraints that still verify), and the heaviest one (ties:
   the last in file order) is dropped; undetermined stops, and
   nothing is dropped without a certificate.

A certificate for the kept set is a certificate for the whole file (its
constraints are a subset), so every dropped fact is named by a verified Farkas
certificate, and no fact is dropped that none named. Dropping one fact per
certificate is a greedy choice: the kept set is certified feasible, not
proved to be the largest one.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from feasibility.core import certify
from feasibility.core.certify import FEASIBLE, INFEASIBLE, FarkasCertificate
from feasibility.core.errors import InputError
from feasibility.core.instances import Instance
from feasibility.core.tolerances import INFEASIBILITY_TOLERANCE
from feasibility.solvers.active_set import Decision, decide
from feasibility.tools.explain import IDENTICAL, PARALLEL, parallel_groups, sparsest_within

Progress = Callable[[str], None]

#: how a dropped fact was named
BY_EXACT, BY_SOLVER = "exact conflict", "solver certificate"
REPORT_COLUMNS = ["fact", "subject", "answer", "round", "named_by", "kind", "proved_by",
                  "certificate_bound", "certificate_facts", "weight"]


@dataclass(frozen=True)
class Dropped:
    """A fact left out, and the verified certificate that named it."""

    fact: int                 # index in the original file (from 0)
    subject: str | None
    answer: str | None
    round: int
    named_by: str             # BY_EXACT or BY_SOLVER
    kind: str                 # the exact conflict's kind, or the solver's name
    proved_by: str
    certificate_bound: float  # ||sum lambda a_hat|| of that certificate, recomputed
    certificate_facts: tuple[int, ...]  # every fact it names (original indices)
    weight: float             # this fact's share of the certificate's lambda

    def describe(self) -> str:
        subject = repr(self.subject) if self.subject is not None else "input"
        others = [k for k in self.certificate_facts if k != self.fact]
        shown = ", ".join(str(k) for k in others[:6]) + (", ..." if len(others) > 6 else "")
        return (f"round {self.round}: fact {self.fact} ({subject} -> {self.answer!r}), "
                f"{self.kind} [{self.named_by}, bound {self.certificate_bound:.2e}, "
                f"weight {self.weight:.3g}; with facts {shown or '-'}]")


@dataclass(frozen=True, eq=False)
class PruneResult:
    """The kept facts, what was dropped and why, and the verdict on what is kept."""

    n_facts: int
    kept_facts: np.ndarray
    kept: Instance
    dropped: tuple[Dropped, ...]
    decision: Decision
    solver_rounds: int
    seconds: float
    stopped: str = ""
    rounds_log: tuple[str, ...] = field(default=(), repr=False)

    @property
    def complete(self) -> bool:
        return self.decision.verdict == FEASIBLE

    def lines(self) -> list[str]:
        verdict = self.decision.verdict
        head = (f"kept {self.kept.n} of {self.n_facts} facts, dropped {len(self.dropped)} "
                f"({sum(d.named_by == BY_EXACT for d in self.dropped)} by exact conflicts, "
                f"{sum(d.named_by == BY_SOLVER for d in self.dropped)} by solver certificates; "
                f"{self.solver_rounds} verdicts, {self.seconds:.1f}s)")
        out = [head, f"kept facts: {verdict} ({self.decision.reason})"]
        if self.stopped:
            out.append(f"stopped: {self.stopped}")
        out.append("dropped facts, each with the certificate that named it "
                   "(fact index from 0):" if self.dropped else "nothing dropped")
        out += [f"  {drop.describe()}" for drop in self.dropped]
        return out

    def record(self) -> dict:
        return {"n_facts": self.n_facts, "kept": int(self.kept.n),
                "dropped": [asdict(drop) for drop in self.dropped],
                "kept_verdict": self.decision.row(), "solver_rounds": self.solver_rounds,
                "seconds": self.seconds, "stopped": self.stopped}


def prune_progress(message: str) -> None:
    print(f"feasibility: prune: {message}", file=sys.stderr, flush=True)


# -- subsets ---------------------------------------------------------------------------
def facts_subset(instance: Instance, rows: np.ndarray) -> tuple[Instance, np.ndarray]:
    """The facts `rows` (file order kept) with the answers they use, relabelled;
    returns (instance, used) with used[j] = original target of new target j."""
    rows = np.asarray(rows, dtype=np.int64)
    subjects = None if instance.subjects is None else tuple(instance.subjects[k] for k in rows)
    if instance.decoupled:
        used = instance.assignment[rows]
        answers = None if instance.answers is None else tuple(instance.answers[k] for k in used)
        return Instance(instance.inputs[rows], instance.targets[used], None,
                        instance.competitors[rows], instance.name, subjects, answers), used
    used = np.unique(instance.assignment[rows])
    if len(used) < 2:
        raise InputError("prune: the kept facts share one answer: nothing left to separate")
    answers = None if instance.answers is None else tuple(instance.answers[k] for k in used)
    relabel = np.searchsorted(used, instance.assignment[rows])
    return Instance(instance.inputs[rows], instance.targets[used], relabel, None,
                    instance.name, subjects, answers), used


# -- the rounds ------------------------------------------------------------------------
def prune(instance: Instance, solver: str | None = None, max_rounds: int | None = None,
          tolerance: float = INFEASIBILITY_TOLERANCE,
          progress: Progress | None = None) -> PruneResult:
    """Drop certificate-named facts until the kept ones are certified feasible.

    ``max_rounds``: at most this many solver verdicts that end in a drop
    (None: no limit); the result then says where it stopped.
    """
    start = time.monotonic()
    keep = np.arange(instance.n)
    dropped: list[Dropped] = []
    solver_rounds, round_number, stopped = 0, 0, ""
    while True:
        round_number += 1
        current, _ = facts_subset(instance, keep)
        exact = [] if instance.decoupled else exact_drops(instance, current, keep, round_number,
                                                          tolerance)
        if exact:
            dropped += exact
            keep = np.setdiff1d(keep, [drop.fact for drop in exact])
            _say(progress, f"round {round_number}: {len(exact)} facts dropped by exact "
                           f"conflicts, {len(keep)} kept")
            continue
        decision = decide(current, solver=solver, tolerance=tolerance)
        solver_rounds += 1
        if decision.verdict != INFEASIBLE:
            if decision.verdict != FEASIBLE:
                stopped = f"the kept facts are undetermined ({decision.reason}): nothing dropped"
            break
        if max_rounds is not None and solver_rounds > max_rounds:
            stopped = f"--max-rounds {max_rounds} reached; the kept facts are still infeasible"
            break
        drop = solver_drop(instance, current, decision, keep, round_number)
        dropped.append(drop)
        keep = np.setdiff1d(keep, [drop.fact])
        _say(progress, f"{drop.describe()}; {len(keep)} kept")
    return PruneResult(instance.n, keep, current, tuple(dropped), decision, solver_rounds,
                       time.monotonic() - start, stopped)


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def exact_drops(instance: Instance, current: Instance, keep: np.ndarray, round_number: int,
                tolerance: float) -> list[Dropped]:
    """Step 1 of the module docstring, each drop's certificate verified on `current`."""
    drops = []
    for group in parallel_groups(current.inputs, np.arange(current.n)):
        first = int(group[0])
        t_first = int(current.assignment[first])
        for k in group[1:]:
            k = int(k)
            t_k = int(current.assignment[k])
            if t_k == t_first:
                continue
            cert = FarkasCertificate(np.array([first, k]), np.array([t_k, t_first]),
                                     np.array([0.5, 0.5]))
            bound = certify.margin_upper_bound(current, cert)
            if bound is None or bound > tolerance:
                continue  # not proved: leave it to the solver
            identical = np.array_equal(current.inputs[first], current.inputs[k])
            drops.append(_dropped(instance, keep, k, round_number, BY_EXACT,
                                  IDENTICAL if identical else PARALLEL, "exact", bound,
                                  (first, k), 0.5))
    return drops


def solver_drop(instance: Instance, current: Instance, decision: Decision, keep: np.ndarray,
                round_number: int) -> Dropped:
    """The heaviest fact of the certificate that proved `current` infeasible
    (ties: the last in file order), narrowed first to the fewest of its
    constraints that still verify (explain.sparsest_within)."""
    limit = decision.margin + decision.tolerance
    bound = certify.margin_upper_bound(current, decision.certificate)
    if bound is None or bound > limit:
        raise InputError("prune: the solver's certificate did not verify")  # never expected
    cert, bound = sparsest_within(current, decision.certificate, limit)
    weight = np.bincount(cert.rows, weights=cert.weights, minlength=current.n)
    named = np.unique(cert.rows)
    heaviest = named[weight[named] == weight[named].max()].max()
    return _dropped(instance, keep, int(heaviest), round_number, BY_SOLVER, decision.solver,
                    decision.solver, bound, tuple(int(k) for k in named),
                    float(weight[heaviest]))


def _dropped(instance, keep, local, round_number, named_by, kind, proved_by, bound,
             named_local, weight) -> Dropped:
    """A Dropped record in the original file's numbering."""
    fact = int(keep[local])
    answer_index = int(instance.assignment[fact])
    return Dropped(fact, instance.subjects[fact] if instance.subjects else None,
                   instance.answers[answer_index] if instance.answers else str(answer_index),
                   round_number, named_by, kind, proved_by, float(bound),
                   tuple(int(keep[k]) for k in named_local), float(weight))


# -- files -------------------------------------------------------------------------------
def write_prune_report(result: PruneResult, path: str | os.PathLike) -> Path:
    """CSV (one row per dropped fact) or JSON (the whole record), atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        if path.suffix.lower() == ".json":
            json.dump(result.record(), handle, indent=1)
        else:
            writer = csv.DictWriter(handle, fieldnames=REPORT_COLUMNS)
            writer.writeheader()
            for drop in result.dropped:
                row = asdict(drop)
                row["certificate_facts"] = " ".join(str(k) for k in drop.certificate_facts)
                writer.writerow(row)
    os.replace(tmp, path)
    return path
