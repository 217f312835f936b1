"""Decoupled competitors drawn on demand (core.instances.DrawnCompetitors) are
the stored ones bit for bit: every pass over them, every selection of facts,
every verdict and every search come out identical, in p d bytes, not p^2 d."""

import tracemalloc

import numpy as np
import pytest

from feasibility import decide, generate, load, save
from feasibility.capacity.bisection import capacity_bisection
from feasibility.core import instances
from feasibility.core.instances import DrawnCompetitors, GeneratedFamily
from feasibility.solvers import first_order


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


def test_decide_does_not_descend_over_drawn_competitors(drawing, monkeypatch, start_per_input):
    # the descent makes two passes a step, 600 in all: drawn, that is hours at d = 192
    calls = []
    real = first_order.mirror_descent_memory
    monkeypatch.setattr(first_order, "mirror_descent_memory",
                        lambda instance: calls.append(instance.draws_competitors)
                        or real(instance))
    start_per_input(8)
    drawn, stored = pair(d=8, p=30, seed=2)
    from_stored = decide(stored, fast_path=False)
    assert calls == [False]                    # 8 of 29 slots: the stored one descends
    from_drawn = decide(drawn, fast_path=False)
    assert calls == [False] and from_drawn.verdict == from_stored.verdict
    assert from_drawn.verify(drawn)
