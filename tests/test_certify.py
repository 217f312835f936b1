"""The checker itself: classify's boundaries, the bounds against brute force, and the
rejection of malformed evidence (by certify and by Decision.verify)."""
from dataclasses import replace

import numpy as np
import pytest

from feasibility import FEASIBLE, INFEASIBLE, UNDETERMINED, Instance, decide, generate
from feasibility.core import certify
from feasibility.core.certify import (
    CertifiedBracket,
    FarkasCertificate,
    classify,
    margin_lower_bound,
    margin_upper_bound,
)
from feasibility.core.status import Verdict
from feasibility.core.tolerances import INFEASIBILITY_TOLERANCE, MARGIN_FLOOR

TAU = INFEASIBILITY_TOLERANCE


def normalised_constraints(instance):
    """Every (i, slot, a_ij / ||a_ij||_F) by explicit loops: the definition."""
    out = []
    for i in range(instance.n):
        own = instance.targets[instance.assignment[i]]
        for slot in range(instance.n_slots):
            if instance.decoupled:
                other = instance.competitors[i, slot]
            elif slot == instance.assignment[i]:
                continue
            else:
                other = instance.targets[slot]
            a = np.outer(own - other, instance.inputs[i])
            out.append((i, slot, a / np.linalg.norm(a)))
    return out


@pytest.mark.parametrize("model", ["coupled", "decoupled"])
def test_lower_bound_is_the_smallest_normalised_margin(model):
    inst = generate(model, 4, 7, 3)
    W = np.random.default_rng(0).standard_normal((4, 4))
    margins = [float(np.sum(a * W)) / np.linalg.norm(W) for _, _, a in normalised_constraints(inst)]
    assert margin_lower_bound(inst, W) == pytest.approx(min(margins), rel=1e-12)


@pytest.mark.parametrize("model", ["coupled", "decoupled"])
def test_upper_bound_is_the_norm_of_the_weighted_sum(model):
    inst = generate(model, 4, 7, 4)
    constraints = normalised_constraints(inst)
    rng = np.random.default_rng(1)
    lam = rng.random(len(constraints))
    lam /= lam.sum()
    rows = np.array([i for i, _, _ in constraints])
    slots = np.array([s for _, s, _ in constraints])
    expected = np.linalg.norm(sum(w * a for w, (_, _, a) in zip(lam, constraints)))
    assert margin_upper_bound(inst, FarkasCertificate(rows, slots, lam)) == pytest.approx(
        expected, rel=1e-12)


def test_classify_boundaries():
    """feasible iff lower >= margin and lower > MARGIN_FLOOR (checked first);
    infeasible iff upper <= margin + tolerance; both ends inclusive as documented."""
    assert classify(0.1, None, margin=0.1) == FEASIBLE              # lower == margin
    assert classify(0.1 - 1e-9, None, margin=0.1) == UNDETERMINED   # just below
    assert classify(MARGIN_FLOOR, None) == UNDETERMINED             # the floor itself
    assert classify(2 * MARGIN_FLOOR, None) == FEASIBLE
    assert classify(-1.0, None) == UNDETERMINED
    assert classify(None, TAU) == INFEASIBLE                        # upper == margin + tau
    assert classify(None, 0.25 + TAU, margin=0.25) == INFEASIBLE
    assert classify(None, TAU * (1 + 1e-9)) == UNDETERMINED         # just above
    assert classify(None, 0.5) == UNDETERMINED
    assert classify(None, None) == UNDETERMINED
    assert classify(0.2, 0.1 + TAU, margin=0.1) == FEASIBLE         # a W wins over a bound
    assert classify(None, 2e-6, tolerance=1e-5) == INFEASIBLE       # the tolerance is used


def test_verdicts_are_their_text():
    assert Verdict.FEASIBLE == "feasible" and f"{Verdict.INFEASIBLE}" == "infeasible"
    assert str(UNDETERMINED) == "undetermined" and Verdict("feasible") is FEASIBLE


@pytest.fixture
def two_facts():
    """Parallel inputs, different targets: lambda = 1/2 on the opposite pair proves 0."""
    return Instance(np.array([[1.0, 0.0], [2.0, 0.0]]), np.eye(2))


def test_a_valid_certificate_and_its_malformed_variants(two_facts):
    good = FarkasCertificate(np.array([0, 1]), np.array([1, 0]), np.array([0.5, 0.5]))
    assert margin_upper_bound(two_facts, good) == pytest.approx(0.0, abs=1e-15)
    malformed = {
        "weights sum to 1/2": FarkasCertificate(good.rows, good.slots, np.array([0.25, 0.25])),
        "weights sum to 2": FarkasCertificate(good.rows, good.slots, np.array([1.0, 1.0])),
        "a negative weight": FarkasCertificate(np.array([0, 1, 0]), np.array([1, 0, 1]),
                                               np.array([0.75, 0.5, -0.25])),
        "a NaN weight": FarkasCertificate(good.rows, good.slots, np.array([np.nan, 1.0])),
        "an input's own target": FarkasCertificate(np.array([0]), np.array([0]), np.ones(1)),
        "a row out of range": FarkasCertificate(np.array([2]), np.array([0]), np.ones(1)),
        "a slot out of range": FarkasCertificate(np.array([0]), np.array([5]), np.ones(1)),
    }
    for what, cert in malformed.items():
        assert margin_upper_bound(two_facts, cert) is None, what


def test_own_target_pairs_are_no_constraint():
    """a_ii = 0 for an input's own target: counting it would 'prove' anything infeasible."""
    inst = generate("coupled", 4, 5, 0)
    for i in range(inst.n):
        cert = FarkasCertificate(np.array([i]), np.array([inst.assignment[i]]), np.ones(1))
        assert margin_upper_bound(inst, cert) is None


def test_tiny_weights_cannot_fake_a_small_bound(orthonormal_instance):
    """Weights summing to 1e-9 would scale any bound below the tolerance."""
    inst = orthonormal_instance
    cert = FarkasCertificate(np.array([0]), np.array([1]), np.array([1e-9]))
    assert margin_upper_bound(inst, cert) is None
    assert margin_upper_bound(inst, replace(cert, weights=np.ones(1))) > 0.5


@pytest.mark.parametrize("W", [np.ones((3, 2)), np.full((2, 2), np.nan), np.zeros((2, 2)),
                               np.array([[1.0, np.inf], [0.0, 1.0]])])
def test_unusable_memories_give_no_lower_bound(two_facts, W):
    assert margin_lower_bound(two_facts, W) is None


def test_the_bracket_keeps_the_best_evidence_and_who_gave_it():
    inst = generate("coupled", 4, 6, 1)
    bracket = CertifiedBracket(inst)
    rng = np.random.default_rng(2)
    values = [bracket.offer_weights(rng.standard_normal((4, 4)), f"w{k}") for k in range(5)]
    assert bracket.lower == max(values) and bracket.lower_by == f"w{int(np.argmax(values))}"
    assert bracket.offer_weights(np.full((4, 4), np.nan), "nan") is None
    assert bracket.lower == max(values)
    mask = inst.slot_mask()
    rows, slots = np.nonzero(mask)
    uniform = FarkasCertificate(rows, slots, np.full(len(rows), 1 / len(rows)))
    single = FarkasCertificate(rows[:1], slots[:1], np.ones(1))
    a, b = bracket.offer_certificate(single, "one"), bracket.offer_certificate(uniform, "all")
    assert bracket.upper == min(a, b) and bracket.upper_by == ("all" if b < a else "one")
    assert bracket.verdict() == classify(bracket.lower, bracket.upper)


# -- Decision.verify: the evidence recomputed, malformed evidence rejected ---------------
@pytest.fixture
def feasible_decision(orthonormal_instance):
    decision = decide(orthonormal_instance)
    assert decision.verdict == FEASIBLE and decision.verify(orthonormal_instance)
    return orthonormal_instance, decision


@pytest.fixture
def infeasible_decision(shared_input_instance):
    decision = decide(shared_input_instance)
    assert decision.verdict == INFEASIBLE and decision.verify(shared_input_instance)
    return shared_input_instance, decision


def test_verify_rejects_a_malformed_memory(feasible_decision):
    inst, decision = feasible_decision
    W = decision.weights
    for bad in (W[:, :-1], np.vstack([W, W[:1]]), np.where(np.arange(W.size).reshape(W.shape) == 0,
                                                              np.nan, W)):
        assert not replace(decision, weights=bad).verify(inst)
    assert not replace(decision, weights=-W).verify(inst)          # margin no longer matches
    assert not replace(decision, margin_lower=2 * decision.margin_lower).verify(inst)
    assert not replace(decision, verdict=INFEASIBLE).verify(inst)
    assert not replace(decision, verdict="probably feasible").verify(inst)


def test_verify_rejects_a_malformed_certificate(infeasible_decision):
    inst, decision = infeasible_decision
    cert = decision.certificate
    half = replace(cert, weights=cert.weights / 2)
    negative = FarkasCertificate(np.r_[cert.rows, cert.rows[:1]], np.r_[cert.slots, cert.slots[:1]],
                                 np.r_[cert.weights * 2, [-1.0]])
    i = int(cert.rows[0])
    own = FarkasCertificate(np.array([i]), np.array([inst.assignment[i]]), np.ones(1))
    for bad in (half, negative, own):
        # even with the recorded bound forged to what a lax checker would compute
        forged = replace(decision, certificate=bad, margin_upper=0.0)
        assert not forged.verify(inst)
        assert forged.evidence_problems(inst)
    assert not replace(decision, certificate=None).verify(inst)
    assert not replace(decision, verdict=FEASIBLE).verify(inst)


def test_a_certificate_on_an_own_target_cannot_prove_a_feasible_instance(feasible_decision):
    """The lax checker's bound for (i, t(i)) would be 0: 'infeasible' for any instance."""
    inst, decision = feasible_decision
    own = FarkasCertificate(np.array([0]), np.array([inst.assignment[0]]), np.ones(1))
    forged = replace(decision, verdict=INFEASIBLE, weights=None, margin_lower=None,
                     certificate=own, margin_upper=0.0)
    assert not forged.verify(inst)


def test_verify_checks_the_instance_it_is_given(feasible_decision):
    inst, decision = feasible_decision
    other = Instance(inst.inputs[::-1].copy(), inst.targets)
    assert not decision.verify(other)


def test_evidence_problems_name_what_is_wrong(infeasible_decision):
    inst, decision = infeasible_decision
    problems = certify.evidence_problems(inst, FEASIBLE, decision.margin_lower,
                                         decision.margin_upper, decision.weights,
                                         decision.certificate, decision.margin, decision.tolerance)
    assert len(problems) == 1 and "does not follow" in problems[0]
