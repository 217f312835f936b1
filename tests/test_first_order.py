"""The mirror-descent memory that starts the active set: the adjoint it is built
on, what it approximates, its invariances, and how decide uses it."""
from dataclasses import replace

import numpy as np
import pytest

from feasibility import FEASIBLE, decide, generate, max_margin
from feasibility.core import certify
from feasibility.solvers import first_order
from feasibility.solvers.active_set import hebbian_memory
from feasibility.solvers.selection import smallest_per_row


def normalised_kappa(instance, W):
    return float(certify.scaled_margins(instance, W)[instance.slot_mask()].min()
                 / np.linalg.norm(W))


@pytest.mark.parametrize("model", ["coupled", "decoupled"])
def test_combination_is_the_adjoint_of_the_margins(model):
    """<W, sum_ij w_ij a_ij> = sum_ij w_ij <a_ij, W> for any W and weights."""
    instance = generate(model, 7, 15, 3)
    rng = np.random.default_rng(0)
    W = rng.standard_normal((instance.d_out, instance.d_in))
    weights = rng.random((instance.n, instance.n_slots)) * instance.slot_mask()
    margins = np.where(instance.slot_mask(), instance.raw_margins(W), 0.0)
    assert np.sum(W * instance.combination(weights)) == pytest.approx(np.sum(weights * margins),
                                                                       rel=1e-12)


@pytest.mark.parametrize("model,d,p,seed", [("coupled", 10, 26, 0), ("decoupled", 10, 26, 1)])
def test_its_margin_approaches_kappa_star_from_below(model, d, p, seed):
    """A feasible instance the Hebbian memory does not store: given enough
    steps, the mirror-descent memory stores it, within a factor 2 of kappa*
    (never above: any W is a lower bound)."""
    instance = generate(model, d, p, seed)
    kappa_star = max_margin(instance, solver="ipm", rtol=1e-6).margin_lower
    assert kappa_star > 0 > normalised_kappa(instance, hebbian_memory(instance))
    kappa = normalised_kappa(instance, first_order.mirror_descent_memory(instance, steps=10_000))
    assert 0.5 * kappa_star < kappa <= kappa_star * (1 + 1e-9)


def test_it_does_not_depend_on_the_scale_of_an_input_or_the_order_of_facts():
    """It works on the normalised constraints a_ij / ||a_ij||: scaling x_i leaves
    them as they are, and permuting facts permutes them."""
    instance = generate("coupled", 8, 20, 2)
    W = first_order.mirror_descent_memory(instance)
    inputs = instance.inputs.copy()
    inputs[3] *= 7.0
    scaled = replace(instance, inputs=inputs)
    np.testing.assert_allclose(first_order.mirror_descent_memory(scaled), W, rtol=1e-9, atol=1e-12)
    order = np.random.default_rng(1).permutation(instance.n)
    permuted = first_order.mirror_descent_memory(instance.permuted(order))
    np.testing.assert_allclose(permuted, W, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("d,p,seed", [(10, 28, 0), (10, 30, 2), (12, 40, 0)])
def test_its_tightest_constraints_hold_more_of_the_binding_ones_than_hebbian(d, p, seed):
    """The start the active set takes from each memory (8 constraints per input),
    against the constraints that bind at the optimum."""
    instance = generate("coupled", d, p, seed)
    optimum = max_margin(instance, solver="ipm", rtol=1e-6)
    mask = instance.slot_mask()
    margins = certify.scaled_margins(instance, optimum.weights) / np.linalg.norm(optimum.weights)
    binding = mask & (margins <= optimum.margin_lower * 1.01)

    def held(W):
        start = smallest_per_row(certify.scaled_margins(instance, W), 8, mask)
        return int((start & binding).sum())

    assert held(first_order.mirror_descent_memory(instance)) > held(hebbian_memory(instance))


def test_decide_starts_from_it_only_where_the_start_leaves_most_constraints_out(
        monkeypatch, start_per_input):
    calls = []
    real = first_order.mirror_descent_memory
    monkeypatch.setattr(first_order, "mirror_descent_memory",
                        lambda instance: calls.append(instance.n) or real(instance))
    instance = generate("coupled", 10, 30, 2)
    decide(instance, fast_path=False)            # 24 per input cover all 29 slots
    start_per_input(15)
    decide(instance, fast_path=False)            # 15 of 29: over half of them
    assert calls == []
    start_per_input(8)
    decision = decide(instance, fast_path=False, kappa_rtol=1e-3)
    assert calls == [30] and decision.verdict == FEASIBLE and decision.verify(instance)
    decide(instance, fast_path=False, seed_memory=decision.weights)   # a seed memory is better
    decide(instance, fast_path=False, mirror_descent=False)
    assert calls == [30]


def test_a_mirror_descent_memory_that_stores_the_facts_settles_the_verdict(start_per_input):
    """No solver runs where its W already stores every fact (the Hebbian
    memory does not store these 18)."""
    start_per_input(8)
    instance = generate("coupled", 10, 18, 0)
    assert normalised_kappa(instance, hebbian_memory(instance)) < 0
    decision = decide(instance, fast_path=False)
    assert decision.verdict == FEASIBLE and decision.verify(instance)
    assert decision.solver == "mirror-descent" and decision.rounds == 0


@pytest.mark.parametrize("d,p,seed", [(8, 20, 1), (10, 28, 0), (10, 30, 2), (12, 44, 1)])
def test_from_its_start_a_decision_needs_fewer_rounds_than_from_the_hebbian_one(
        start_per_input, d, p, seed):
    """8 constraints per input to start from: the Hebbian start takes 3-4 rounds."""
    start_per_input(8)
    instance = generate("coupled", d, p, seed)
    mirror = decide(instance, fast_path=False, kappa_rtol=1e-3)
    hebbian = decide(instance, fast_path=False, kappa_rtol=1e-3, mirror_descent=False)
    assert mirror.verdict == hebbian.verdict == FEASIBLE and mirror.verify(instance)
    assert mirror.rounds < hebbian.rounds


def test_a_step_too_long_to_settle_still_returns_its_best_iterate():
    """The step schedule does not depend on the number of steps, so more steps
    never return a worse memory, even where the steps oscillate."""
    instance = generate("coupled", 10, 26, 0)
    kappas = [normalised_kappa(instance, first_order.mirror_descent_memory(
        instance, steps=steps, step_scale=3.0)) for steps in (10, 30, 100, 300)]
    assert kappas == sorted(kappas)
