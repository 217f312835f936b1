"""Decoupled competitors drawn on demand (core.instances.DrawnCompetitors) are
the stored ones bit for bit: every pass over them, every selection of facts,
every verdict and every search come out identical, in p d bytes, not p^2 d."""

import tracemalloc

import numpy as np
import pytest

from feasibility import decide, generate, load, save
from feasibility.capacity.bisection import capacity_bisection
from feasibility.core import certify, instances
from feasibility.core.instances import DrawnCompetitors, GeneratedFamily
from feasibility.solvers import active_set, first_order
from feasibility.solvers.active_set import max_margin


@pytest.fixture
def drawing(monkeypatch):
    """Every decoupled prefix drawn, three or four facts to a block, so that
    passes cross block boundaries."""
    monkeypatch.setattr(instances, "STORED_COMPETITORS_FRACTION", 0)
    monkeypatch.setattr(instances, "COMPETITOR_BLOCK_BYTES", 8 * 11 * 5 * 3)


def pair(d=5, p=12, seed=3, distribution="gaussian"):
    """(drawn, stored): the same generated decoupled instance both ways."""
    drawn = GeneratedFamily("decoupled", d, p, seed, distribution).prefix(p)
    assert drawn.draws_competitors and not generate("coupled", d, p, seed).draws_competitors
    return drawn, generate("decoupled", d, p, seed, distribution)


@pytest.mark.parametrize("distribution", ["gaussian", "sphere"])
def test_drawn_competitors_are_the_stored_ones(drawing, distribution):
    drawn, stored = pair(distribution=distribution)
    assert drawn.competitors.shape == stored.competitors.shape == (12, 11, 5)
    assert np.array_equal(np.asarray(drawn.competitors), stored.competitors)
    assert np.array_equal(drawn.competitors[4], stored.competitors[4])
    assert np.array_equal(drawn.competitors[-1], stored.competitors[-1])


def test_every_pass_over_drawn_competitors_matches_the_stored_one(drawing, monkeypatch):
    drawn, stored = pair()
    rng = np.random.default_rng(0)
    W = rng.standard_normal((5, 5))
    weights = rng.random((12, 11))
    assert np.array_equal(drawn.constraint_norms(), stored.constraint_norms())
    for a, b in zip(drawn.scores(W), stored.scores(W)):
        assert np.array_equal(a, b)
    assert np.array_equal(drawn.raw_margins(W), stored.raw_margins(W))
    assert np.array_equal(drawn.combination(weights), stored.combination(weights))
    # repeated facts, slots out of order, a fact's last slot
    rows = np.array([7, 0, 7, 11, 3, 7, 0])
    slots = np.array([2, 10, 0, 5, 10, 9, 1])
    assert np.array_equal(drawn.differences(rows, slots), stored.differences(rows, slots))
    assert np.array_equal(drawn.competitors[rows, slots], stored.competitors[rows, slots])
    with pytest.raises(IndexError):
        drawn.competitors[np.array([0]), np.array([11])]
    # passes in one block give the same numbers as passes in blocks of 3 facts
    with monkeypatch.context() as patch:
        patch.setattr(instances, "COMPETITOR_BLOCK_BYTES", 2**26)
        whole = generate("decoupled", 5, 12, 3)
        assert np.array_equal(whole.constraint_norms(), drawn.constraint_norms())
        assert np.array_equal(whole.raw_margins(W), drawn.raw_margins(W))
        assert np.array_equal(whole.combination(weights), drawn.combination(weights))


def test_selections_of_drawn_facts_match_the_stored_ones(drawing):
    drawn, stored = pair()
    order = np.random.default_rng(1).permutation(12)
    for a, b in [(drawn.prefix(7), stored.prefix(7)),
                 (drawn.subset(np.array([5, 2, 9])), stored.subset(np.array([5, 2, 9]))),
                 (drawn.permuted(order), stored.permuted(order))]:
        assert isinstance(a.competitors, DrawnCompetitors)
        assert np.array_equal(np.asarray(a.competitors), b.competitors)
        assert np.array_equal(a.inputs, b.inputs)
        assert np.array_equal(a.own_targets(), b.own_targets())


def test_a_drawn_instance_saves_its_competitors(drawing, tmp_path):
    drawn, stored = pair()
    back = load(save(drawn, tmp_path / "drawn.npz"))
    assert np.array_equal(back.competitors, stored.competitors)


@pytest.mark.parametrize("p", [20, 40])
def test_a_drawn_instance_gets_the_stored_ones_verdict_and_bracket(drawing, p):
    drawn = GeneratedFamily("decoupled", 6, p, 2).prefix(p)
    stored = generate("decoupled", 6, p, 2)
    a, b = decide(drawn, kappa_rtol=1e-2), decide(stored, kappa_rtol=1e-2)
    assert a.verdict == b.verdict
    assert (a.margin_lower, a.margin_upper) == (b.margin_lower, b.margin_upper)


def test_a_search_over_drawn_prefixes_finds_the_stored_searchs_probes(drawing, monkeypatch):
    family = GeneratedFamily("decoupled", 6, 60, 1)
    drawn = capacity_bisection(family, guess=30)
    monkeypatch.setattr(instances, "STORED_COMPETITORS_FRACTION", 1)
    stored = capacity_bisection(family, guess=30)
    assert drawn.p_star == stored.p_star
    assert [(q.p, q.verdict, q.margin_lower, q.margin_upper) for q in drawn.probes] == \
        [(q.p, q.verdict, q.margin_lower, q.margin_upper) for q in stored.probes]


def test_a_large_decoupled_prefix_holds_its_facts_not_its_competitors(monkeypatch):
    # d = 256 at p = 7,000: the stored competitors would be 100 GB, more than
    # this machine's share (on a larger one, the fraction set here decides)
    monkeypatch.setattr(instances, "physical_memory", lambda: 24 * 2**30)
    tracemalloc.start()
    try:
        instance = GeneratedFamily("decoupled", 256, 7000, 0).prefix(7000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert instance.competitors.shape == (7000, 6999, 256)
    assert peak < 100 * 2**20
    assert np.array_equal(instance.competitors[np.array([6999]), np.array([6998])][0],
                          instances.competitor_rows(256, 0, 6999, 6999)[6998])


def test_over_drawn_competitors_decide_descends_on_each_inputs_tightest_share(
        drawing, monkeypatch, start_per_input):
    """A descent over all drawn competitors makes 600 passes (hours at d = 192): it
    runs on each input's Hebbian-tightest share, stored, and the verdict is the
    stored instance's; where memory holds too few for it, the Hebbian memory starts."""
    calls = []
    real = first_order.mirror_descent_memory
    monkeypatch.setattr(first_order, "mirror_descent_memory",
                        lambda instance: calls.append((instance.draws_competitors,
                                                       instance.n_slots)) or real(instance))
    start_per_input(8)
    drawn, stored = pair(d=8, p=30, seed=2)
    from_stored = decide(stored, fast_path=False)
    assert calls == [(False, 29)]                # 8 of 29 slots: the stored one descends
    from_drawn = decide(drawn, fast_path=False)
    # 15% of 29 is 5, under twice the start's 8: 16 an input
    assert calls[1:] == [(False, 16)] and from_drawn.verdict == from_stored.verdict
    assert from_drawn.verify(drawn)
    monkeypatch.setattr(active_set, "physical_memory", lambda: 30 * 8 * 8 * 15 / 0.15)
    assert decide(drawn, fast_path=False).verify(drawn)
    assert len(calls) == 2                       # 15 an input fit: under 16, no descent


def test_tightest_competitors_are_the_drawn_ones_of_smallest_margin(drawing):
    drawn, stored = pair(d=6, p=20, seed=1)
    margins = certify.scaled_margins(drawn, active_set.hebbian_memory(drawn))
    subset = first_order.tightest_competitors(drawn, margins, 5)
    assert subset.competitors.shape == (20, 5, 6) and not subset.draws_competitors
    kept = np.sort(np.argsort(margins, axis=1)[:, :5], axis=1)
    np.testing.assert_array_equal(
        subset.competitors, stored.competitors[np.arange(20)[:, None], kept])
    np.testing.assert_array_equal(
        certify.scaled_margins(subset, active_set.hebbian_memory(drawn)),
        np.take_along_axis(margins, kept, axis=1))


@pytest.mark.parametrize("d,p,seed", [(12, 36, 1), (12, 40, 0), (16, 56, 0)])
def test_the_descent_on_a_share_starts_with_more_binding_constraints_than_hebbian(
        drawing, d, p, seed):
    """8 constraints an input to start from, the descent on half of each input's."""
    instance = GeneratedFamily("decoupled", d, p, seed).prefix(p)
    optimum = max_margin(instance, solver="ipm", rtol=1e-6)
    mask = instance.slot_mask()
    margins = certify.scaled_margins(instance, optimum.weights) / np.linalg.norm(
        optimum.weights)
    binding = mask & (margins <= optimum.margin_lower * 1.01)
    hebbian = certify.scaled_margins(instance, active_set.hebbian_memory(instance))
    descended = first_order.mirror_descent_memory(
        first_order.tightest_competitors(instance, hebbian, instance.n_slots // 2))

    def held(scaled):
        return int((active_set.smallest_per_row(scaled, 8, mask) & binding).sum())

    assert held(certify.scaled_margins(instance, descended)) > held(hebbian)

def test_competitors_add_to_the_target_span_only_where_targets_leave_room(drawing,
                                                                          monkeypatch):
    """The reduced instance's target basis spans targets and competitors. Where
    the targets alone span every direction (p >= d), the competitors are not
    drawn for it; where they do not, the competitors' directions are kept."""
    drawn, _ = pair(d=5, p=12)
    passes = {"n": 0}
    blocks = DrawnCompetitors.blocks

    def counted(self):
        passes["n"] += 1
        return blocks(self)
    monkeypatch.setattr(DrawnCompetitors, "blocks", counted)
    assert active_set.ReducedInstance.of(drawn).basis_out is None
    assert passes["n"] == 0

    # 4 targets in the plane of the first two axes, competitors along the fifth
    targets = np.zeros((4, 5))
    targets[:, :2] = np.random.default_rng(0).standard_normal((4, 2))
    competitors = np.zeros((4, 3, 5))
    competitors[:, :, 4] = 1.0
    narrow = instances.Instance(np.eye(4, 5), targets, np.arange(4), competitors)
    basis = active_set.ReducedInstance.of(narrow).basis_out
    assert basis.shape == (5, 3)
    projector = basis @ basis.T
    assert np.allclose(projector, np.diag([1.0, 1.0, 0.0, 0.0, 1.0]))
