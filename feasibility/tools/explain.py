"""Why facts do not fit: an infeasible verdict read back from its Farkas certificate.

An infeasible verdict is proved by weights lambda >= 0 (summing to 1) on
constraints (i, j) -- "fact i scores its own answer above competitor j" --
whose normalised constraint matrices sum to (almost) zero: no memory can make
all of them positive. The facts i in the certificate's support are therefore
facts that cannot all be stored together; their weights say how much each
takes part. This module lists them, largest weight first, with the
competitors each is weighed against, and names the exact conflicts among them:

- identical or parallel inputs with different answers (an uncased,
  accent-stripping encoder maps "San Jose" and "San José" to one input): the
  two facts' constraints against each other's answer are opposite;
- a zero constraint: a fact whose answer coincides with a competitor
  (two answers with the same target vector, or a competitor equal to the
  fact's own target) or whose input is zero;
- an input that is a nonnegative combination of the inputs of other facts in
  the support that share one answer, different from its own (the planted
  "convex combination" conflict).

Nothing here proves anything new: the explanation is derived from the
certificate that proved the verdict, which is checked again
(feasibility.core.certify.margin_upper_bound) before it is read. An
interior-point certificate spreads its weight over every constraint of the
optimal face; before reading it, `sparsest_within` looks for a certificate on
a few of its heaviest constraints (a subset of its support, found by NNLS,
which returns vertex solutions) and keeps it only if it verifies too: the
facts named are then the few that clash, not the whole face.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.optimize as opt

from feasibility.core import certify
from feasibility.core.certify import INFEASIBLE, FarkasCertificate
from feasibility.core.errors import InputError
from feasibility.core.files import write_text_atomic
from feasibility.core.instances import Instance
from feasibility.solvers.active_set import Decision
from feasibility.solvers.structured import parallel_groups

#: a residual below this (relative to ||x||) makes an input a cone combination
CONE_RTOL = 1e-9
#: the cone test runs on at most this many of the heaviest facts of a support
#: of at most CONE_MAX_SUPPORT facts (one small NNLS per fact and answer)
CONE_TOP_FACTS, CONE_MAX_SUPPORT = 20, 500
#: facts shown on the terminal (the CSV and JSON hold all of them)
SHOWN_FACTS = 20
#: sparsest_within tries the heaviest 8, 32, ... constraints of a support, up to
SPARSE_MAX_CONSTRAINTS = 512
#: ... and cuts weights below these fractions of the largest (sparsest first)
TRUNCATIONS = (1e-1, 1e-2, 1e-3, 1e-4, 0.0)
#: a certificate on more facts than this is called collective in the summary
COLLECTIVE_FACTS = 50

IDENTICAL, PARALLEL, ZERO_INPUT, SAME_TARGET, CONE = (
    "identical inputs, different answers", "parallel inputs, different answers",
    "zero input", "answer coincides with a competitor",
    "input is a nonnegative combination of inputs with another answer")


@dataclass(frozen=True)
class Competitor:
    """One constraint of the certificate: fact scores its answer above `slot`."""

    slot: int
    answer: str | None
    weight: float


@dataclass(frozen=True)
class FactWeight:
    """A fact in the certificate's support and its share of the weight."""

    fact: int
    subject: str | None
    answer_index: int
    answer: str | None
    weight: float
    competitors: tuple[Competitor, ...]


@dataclass(frozen=True)
class Conflict:
    """An exact reason, checked directly on the data, why these facts clash."""

    kind: str
    facts: tuple[int, ...]
    detail: str


@dataclass(frozen=True)
class Explanation:
    """What the certificate of an infeasible verdict says, fact by fact."""

    verdict: str
    summary: str
    bound: float | None
    tolerance: float
    proved_by: str
    facts: tuple[FactWeight, ...] = ()
    conflicts: tuple[Conflict, ...] = ()

    @property
    def named_facts(self) -> tuple[int, ...]:
        return tuple(fact.fact for fact in self.facts)

    def lines(self, shown: int = SHOWN_FACTS) -> list[str]:
        out = [self.summary]
        if not self.facts:
            return out
        if self.conflicts:
            out.append(f"exact conflicts ({len(self.conflicts)}):")
            out += [f"  {c.kind}: {c.detail}" for c in self.conflicts[:shown]]
            if len(self.conflicts) > shown:
                out.append(f"  ... and {len(self.conflicts) - shown} more")
        out.append("facts in the certificate, largest weight first "
                   "(fact index from 0; weight = its share of lambda):")
        for fact in self.facts[:shown]:
            against = ", ".join(f"{_label(c.answer, c.slot)} {c.weight:.3g}"
                                for c in fact.competitors[:4])
            more = len(fact.competitors) - 4
            against += f", +{more} more" if more > 0 else ""
            out.append(f"  {fact.weight:9.3g}  fact {fact.fact}: "
                       f"{_fact_text(fact)}  vs {against}")
        if len(self.facts) > shown:
            rest = sum(f.weight for f in self.facts[shown:])
            out.append(f"  ... and {len(self.facts) - shown} more facts (weight {rest:.3g})")
        return out

    def rows(self) -> list[dict]:
        """One row per constraint of the certificate (for CSV), heaviest fact first."""
        conflicts = {}
        for conflict in self.conflicts:
            for fact in conflict.facts:
                conflicts.setdefault(fact, conflict.kind)
        return [{"rank": rank, "fact": fact.fact, "subject": fact.subject,
                 "answer": fact.answer, "answer_index": fact.answer_index,
                 "fact_weight": fact.weight, "competitor_slot": c.slot,
                 "competitor_answer": c.answer, "constraint_weight": c.weight,
                 "exact_conflict": conflicts.get(fact.fact, "")}
                for rank, fact in enumerate(self.facts, start=1) for c in fact.competitors]

    def record(self) -> dict:
        return {"verdict": self.verdict, "summary": self.summary, "bound": self.bound,
                "tolerance": self.tolerance, "proved_by": self.proved_by,
                "derived_from": "the Farkas certificate that proved the verdict",
                "conflicts": [asdict(c) for c in self.conflicts],
                "facts": [asdict(f) for f in self.facts]}


def _label(answer: str | None, index: int) -> str:
    return repr(answer) if answer is not None else f"#{index}"


def _fact_text(fact: FactWeight) -> str:
    subject = repr(fact.subject) if fact.subject is not None else "input"
    return f"{subject} -> {_label(fact.answer, fact.answer_index)}"


# -- the explanation -------------------------------------------------------------------
def explain(instance: Instance, decision: Decision) -> Explanation:
    """The facts that the certificate behind `decision` names, and why they clash.

    A feasible (or undetermined) decision has no certificate of infeasibility:
    the explanation then says so and lists nothing.
    """
    tolerance = decision.tolerance
    if decision.verdict != INFEASIBLE or decision.certificate is None:
        what = ("feasible: every fact is stored (a W with a positive margin proves it), "
                "nothing to explain" if decision.verdict != "undetermined" else
                "undetermined: no certificate proved infeasibility, nothing to explain")
        return Explanation(decision.verdict, what, None, tolerance, decision.solver)
    limit = decision.margin + tolerance
    original = decision.certificate
    bound = certify.margin_upper_bound(instance, original)
    if bound is None or bound > limit:
        raise InputError("the decision's certificate does not prove this instance "
                         "infeasible (was it made for another file?)")
    certificate, bound = sparsest_within(instance, original, limit)
    facts = certificate_facts(instance, certificate)
    conflicts = exact_conflicts(instance, certificate, facts)
    narrowed = ("" if len(certificate.weights) == len(original.weights) else
                f", narrowed from its {len(original.weights)} constraints to a verified "
                f"certificate on {len(certificate.weights)} of them")
    summary = (f"infeasible: no memory stores all {instance.n} facts. Derived from the Farkas "
               f"certificate that proved the verdict (by {decision.solver}{narrowed}; "
               f"||sum lambda a_hat|| = {bound:.3e} <= margin + tolerance {limit:g}): "
               f"{len(facts)} facts, {len(certificate.weights)} constraints")
    if len(facts) > COLLECTIVE_FACTS and not conflicts and not narrowed:
        summary += (f". No certificate on its {SPARSE_MAX_CONSTRAINTS} heaviest constraints "
                    f"verifies: these facts clash collectively (more than this memory holds), "
                    f"not in a few pairs; the heaviest take the largest part")
    return Explanation(INFEASIBLE, summary, bound, tolerance, decision.solver,
                       tuple(facts), tuple(conflicts))


def sparsest_within(instance: Instance, certificate: FarkasCertificate,
                    limit: float) -> tuple[FarkasCertificate, float]:
    """The verified certificate with the fewest constraints among: `certificate`
    with its small weights cut (below 10^-1 ... 10^-4 of the largest), and the
    min-norm weights (NNLS) of its heaviest 8, 32, 128, ... constraints, cut the
    same way; `certificate` itself (and its bound) if none verifies."""
    found = [(certificate, certify.margin_upper_bound(instance, certificate))]

    def offer(rows, slots, weights):
        for cut in TRUNCATIONS:
            keep = weights > cut * weights.max()
            candidate = FarkasCertificate(rows[keep], slots[keep],
                                          weights[keep] / weights[keep].sum())
            bound = certify.margin_upper_bound(instance, candidate)
            if bound is not None and bound <= limit:
                found.append((candidate, bound))
                return

    offer(certificate.rows, certificate.slots, certificate.weights)
    order = np.argsort(-certificate.weights, kind="stable")
    size = 8
    # two constraints are as few as a nonzero certificate has: stop there
    while size < min(len(order), SPARSE_MAX_CONSTRAINTS) * 4 and _fewest(found) > 2:
        chosen = order[:size]
        size *= 4
        weights = _min_norm_weights(instance, certificate.rows[chosen],
                                    certificate.slots[chosen])
        if weights is not None:
            offer(certificate.rows[chosen], certificate.slots[chosen], weights)
    return min(found, key=lambda pair: (len(pair[0].weights), pair[1]))


def _fewest(found) -> int:
    return min(len(certificate.weights) for certificate, _ in found)


def _min_norm_weights(instance: Instance, rows: np.ndarray, slots: np.ndarray):
    """min ||sum mu_k a_hat_k|| over the simplex, by NNLS on a square root of the
    Gram matrix <a_hat_k, a_hat_l> = <u_k, u_l> <x_i(k), x_i(l)> (unit vectors)
    with a heavy row for the sum; NNLS's active set leaves a sparse mu."""
    u = instance.differences(rows, slots)
    u_norm = np.linalg.norm(u, axis=1)
    x = instance.inputs[rows]
    x_norm = np.linalg.norm(x, axis=1)
    if np.any(u_norm == 0) or np.any(x_norm == 0):
        return None  # zero constraints: zero_constraint_certificate's case
    u, x = u / u_norm[:, None], x / x_norm[:, None]
    gram = (u @ u.T) * (x @ x.T)
    values, vectors = np.linalg.eigh(gram)
    root = np.sqrt(np.clip(values, 0.0, None))[:, None] * vectors.T  # root^T root = gram
    heavy = 1e4
    weights, _ = opt.nnls(np.vstack([root, heavy * np.ones((1, len(rows)))]),
                          np.r_[np.zeros(len(rows)), heavy], maxiter=50 * len(rows))
    return weights if weights.sum() > 0 else None


def certificate_facts(instance: Instance, certificate: FarkasCertificate) -> list[FactWeight]:
    """The support grouped by fact, heaviest first (ties: file order)."""
    rows, slots, lam = certificate.rows, certificate.slots, certificate.weights
    totals = np.bincount(rows, weights=lam, minlength=instance.n)
    order = np.lexsort((np.unique(rows), -totals[np.unique(rows)]))
    facts = []
    for i in np.unique(rows)[order]:
        mine = np.flatnonzero(rows == i)
        mine = mine[np.argsort(-lam[mine], kind="stable")]
        competitors = tuple(Competitor(int(slots[k]), _slot_answer(instance, int(i),
                                                                    int(slots[k])),
                                       float(lam[k])) for k in mine)
        t = int(instance.assignment[i])
        facts.append(FactWeight(int(i), _subject(instance, int(i)), t,
                                _answer(instance, t), float(totals[i]), competitors))
    return facts


def _subject(instance: Instance, i: int) -> str | None:
    return instance.subjects[i] if instance.subjects else None


def _answer(instance: Instance, t: int) -> str | None:
    return instance.answers[t] if instance.answers else None


def _slot_answer(instance: Instance, i: int, slot: int) -> str | None:
    """A coupled slot is a target (its answer text); a decoupled one has none."""
    return None if instance.decoupled else _answer(instance, slot)


# -- exact conflicts ---------------------------------------------------------------------
def exact_conflicts(instance: Instance, certificate: FarkasCertificate,
                    facts: list[FactWeight]) -> list[Conflict]:
    """Exact reasons among the certificate's facts: zero constraints, parallel
    inputs with different answers, inputs in the cone of another answer's inputs."""
    support = np.array([fact.fact for fact in facts], dtype=np.int64)
    found = zero_constraints(instance, certificate)
    if not instance.decoupled:
        found += [conflict for group in parallel_groups(instance.inputs, support)
                  for conflict in _parallel_conflicts(instance, group)]
        named = {fact for conflict in found for fact in conflict.facts}
        found += cone_conflicts(instance, support, named)
    return found


def zero_constraints(instance: Instance, certificate: FarkasCertificate) -> list[Conflict]:
    """Constraints a_ij = 0 in the support: no W gives them a positive margin."""
    rows, slots = certificate.rows, certificate.slots
    zero = instance.constraint_norms()[rows, slots] == 0
    out = []
    for i, j in sorted(set(zip(rows[zero].tolist(), slots[zero].tolist()))):
        text = _fact_detail(instance, i)
        if not np.any(instance.inputs[i]):
            out.append(Conflict(ZERO_INPUT, (i,), f"{text} has a zero input"))
        else:
            competitor = (f"competitor {j}" if instance.decoupled else
                          f"answer {_label(_answer(instance, j), j)}")
            out.append(Conflict(SAME_TARGET, (i,), f"{text}: its target equals that of "
                                                   f"{competitor}"))
    return out


def _parallel_conflicts(instance: Instance, group: np.ndarray) -> list[Conflict]:
    """One conflict per group with more than one answer."""
    answers = instance.assignment[group]
    if len(np.unique(answers)) < 2:
        return []
    identical = all(np.array_equal(instance.inputs[group[0]], instance.inputs[k])
                    for k in group[1:])
    detail = "; ".join(_fact_detail(instance, int(k)) for k in group)
    return [Conflict(IDENTICAL if identical else PARALLEL, tuple(int(k) for k in group),
                     detail)]


def cone_conflicts(instance: Instance, support: np.ndarray, named: set[int]) -> list[Conflict]:
    """Facts whose input is a nonnegative combination of the inputs of other facts
    of the support that all have one answer, not its own: with every one of those
    facts preferring that answer, no memory lets this fact prefer its own."""
    if len(support) > CONE_MAX_SUPPORT:
        return []
    out = []
    for i in [k for k in support if k not in named][:CONE_TOP_FACTS]:
        x = instance.inputs[i]
        for answer in np.unique(instance.assignment[support]):
            if answer == instance.assignment[i]:
                continue
            others = support[instance.assignment[support] == answer]
            weights, residual = opt.nnls(instance.inputs[others].T, x)
            if residual <= CONE_RTOL * max(np.linalg.norm(x), np.finfo(float).tiny):
                used = others[weights > 0]
                detail = (f"{_fact_detail(instance, int(i))} = "
                          + " + ".join(f"{w:.3g} x(fact {k})"
                                       for w, k in zip(weights[weights > 0], used))
                          + f", facts with answer {_label(_answer(instance, int(answer)), int(answer))}")
                out.append(Conflict(CONE, (int(i), *(int(k) for k in used)), detail))
                break
    return out


def _fact_detail(instance: Instance, i: int) -> str:
    t = int(instance.assignment[i])
    subject = _subject(instance, i)
    text = f"{subject!r} -> {_label(_answer(instance, t), t)}" if subject is not None else \
        f"-> {_label(_answer(instance, t), t)}"
    return f"fact {i} ({text})"


# -- files -------------------------------------------------------------------------------
def write_explanation(explanation: Explanation, path: str | os.PathLike) -> Path:
    """CSV (one row per constraint) or JSON (the whole record), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise InputError(f"{path}: --out must name a .csv or .json file")
    if not path.resolve().parent.is_dir():
        raise InputError(f"{path}: its directory does not exist")
    handle = io.StringIO(newline="")
    if suffix == ".json":
        json.dump(explanation.record(), handle, indent=1)
    else:
        writer = csv.DictWriter(handle, fieldnames=EXPLANATION_COLUMNS)
        writer.writeheader()
        writer.writerows(explanation.rows())
    return write_text_atomic(handle.getvalue(), path)


EXPLANATION_COLUMNS = ["rank", "fact", "subject", "answer", "answer_index", "fact_weight",
                       "competitor_slot", "competitor_answer", "constraint_weight",
                       "exact_conflict"]
