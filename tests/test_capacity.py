import math
from pathlib import Path

import numpy as np
import pytest

from feasibility import FEASIBLE, INFEASIBLE, UNDETERMINED, decide, generate
from feasibility.capacity.bisection import bracket_search, capacity_bisection, capacity_guess
from feasibility.solvers import structured
from feasibility.solvers.structured import Evidence


@pytest.mark.parametrize("model,seed", [("coupled", 0), ("decoupled", 1)])
def test_bisection_finds_the_exact_transition(model, seed):
    full = generate(model, 6, 30, seed)
    result = capacity_bisection(full, guess=capacity_guess(6))
    assert result.status == "exact"
    p = result.p_star
    assert decide(full.prefix(p)).verdict == FEASIBLE
    assert decide(full.prefix(p + 1)).verdict == INFEASIBLE
    assert result.p_infeasible == p + 1
    # the answer does not depend on where the search starts
    for guess in (3, 29):
        assert capacity_bisection(full, guess=guess).p_star == p


def test_bisection_without_active_set_reuse_agrees():
    full = generate("coupled", 7, 36, 2)
    reused = capacity_bisection(full, guess=20)
    fresh = capacity_bisection(full, guess=20, reuse_active_set=False)
    assert reused.status == fresh.status == "exact"
    assert reused.p_star == fresh.p_star is not None
    p = reused.p_star
    assert decide(full.prefix(p)).verdict == FEASIBLE
    assert decide(full.prefix(p + 1)).verdict == INFEASIBLE


def test_the_fast_path_is_skipped_above_a_prefix_where_it_failed(monkeypatch):
    """Once the structured fast path failed at some p, larger prefixes of the same
    facts do not pay for it again; smaller ones still try it, in the plain search
    and in the one placed by kappa* (on real files the fast path is what decides
    the probes below p*: 0.2 s where the IPM takes minutes)."""
    calls = []

    def undecided(instance, margin, tolerance, time_limit):
        calls.append(instance.n)
        return Evidence(UNDETERMINED, "", None, None, 0.0)

    monkeypatch.setattr(structured, "worth_trying", lambda instance: True)
    monkeypatch.setattr(structured, "fast_path", undecided)
    full = generate("coupled", 6, 30, 3)
    p_star = None
    for secant in (False, True):
        calls.clear()
        # infeasible at 20: walks down, then up
        result = capacity_bisection(full, guess=20, secant=secant)
        probed = [probe.p for probe in result.probes]
        assert calls[:2] == probed[:2] == [20, 19]       # below a failure: tried again
        assert set(calls) < set(probed)                   # above one: skipped
        failed_at = math.inf
        for p in probed:                                  # called exactly where no failure sits below
            assert (p in calls) == (p < failed_at)
            if p in calls:
                failed_at = min(failed_at, p)
        assert result.status == "exact"
        assert p_star in (None, result.p_star)
        p_star = result.p_star
    assert decide(full.prefix(p_star), fast_path=False).verdict == FEASIBLE
    assert decide(full.prefix(p_star + 1), fast_path=False).verdict == INFEASIBLE


def test_capacity_censored_when_everything_fits():
    full = generate("coupled", 10, 8, 0)
    result = capacity_bisection(full)
    assert result.status == "at_least_p_max" and result.p_feasible == 8
    assert result.p_star is None


def test_capacity_guess_sits_between_the_asymptote_and_twice_it():
    for d in (8, 16, 24, 64, 256):
        p = capacity_guess(d)
        assert d * d / 2 <= p * np.log(p) <= 2 * d * d


def test_decoupled_guess_sits_nearer_the_measured_decoupled_capacity():
    """Only the number of probes depends on the guess; a guess above p* costs
    probes that give the secant nothing. The committed medians say where each
    model's p* sits: summed over d, the decoupled guess must be nearer its own
    (relative error) than the coupled guess is. Not at every d: at d = 128 the
    coupled guess is itself 0.7% below the coupled median and the decoupled p*
    is 0.99 of the coupled one, so there the coupled guess is the nearer. A
    median needs seeds: p* spreads 2.7% over 4 seeds at d = 128, more than the
    1-2% between the models, so only d with at least 4 decoupled seeds count."""
    import pandas as pd
    root = Path(__file__).resolve().parents[1] / "results" / "reference"
    rows = pd.concat([pd.read_csv(root / name) for name in
                      ("capacity.csv", "capacity-large.csv", "capacity-xl.csv")])
    by = rows[rows.d >= 24].groupby(["model", "d"]).p_star
    medians = by.median()[by.size() >= 4]
    assert len(medians["decoupled"]) >= 4
    own_error = coupled_error = 0.0
    for d, p_c in medians["decoupled"].items():
        own, coupled = capacity_guess(d, "decoupled"), capacity_guess(d)
        assert own < coupled
        own_error += abs(own - p_c) / p_c
        coupled_error += abs(coupled - p_c) / p_c
    assert own_error < coupled_error, (own_error, coupled_error)


def test_capacity_task_starts_from_its_models_guess(monkeypatch):
    from feasibility.capacity import batch
    seen = {}

    def record_guess(full, guess, **kwargs):
        seen[full.model] = guess
        raise KeyboardInterrupt  # the guess is all this test needs

    monkeypatch.setattr(batch, "capacity_bisection", record_guess)
    for model in ("coupled", "decoupled"):
        with pytest.raises(KeyboardInterrupt):
            batch.run_capacity_task(batch.CapacityTask(model, 32, 0))
    assert seen == {"coupled": capacity_guess(32), "decoupled": capacity_guess(32, "decoupled")}


def test_file_capacity_starts_where_two_answers_compete(tmp_path):
    """The first facts share one answer: those prefixes are no instance at all."""
    from feasibility import Instance
    from feasibility.capacity.batch import FileTask, run_file_task
    from feasibility.core.instances import save

    rng = np.random.default_rng(0)
    X = rng.standard_normal((14, 3))
    X[12] = X[1]  # fact 12 repeats fact 1's input with another answer
    assignment = np.array([0, 0, 0, 1, 2, 1, 0, 2, 1, 1, 0, 2, 2, 1])
    save(Instance(X, rng.standard_normal((3, 3)), assignment), tmp_path / "f.npz")
    row = run_file_task(FileTask(str(tmp_path / "f.npz"), 0))
    assert row["status"] == "exact" and row["p_infeasible"] <= 13
    assert row["p_star"] == row["p_infeasible"] - 1 >= 3


@pytest.mark.parametrize("threshold", [1, 2, 3, 17, 40, 99, 100])
@pytest.mark.parametrize("guess,step", [(2, 1), (20, 4), (64, 2), (100, 30)])
def test_bracket_search_finds_any_threshold_and_never_probes_twice(threshold, guess, step):
    asked = []

    def probe(p):
        asked.append(p)
        return FEASIBLE if p <= threshold else INFEASIBLE

    lower, upper, status = bracket_search(probe, 2, 100, guess, step)
    assert len(asked) == len(set(asked))
    if threshold == 100:
        assert (lower, status) == (100, "at_least_p_max")
    else:
        assert (lower, upper, status) == (max(threshold, 1), max(threshold + 1, 2), "exact")


def test_bracket_search_stops_at_an_undetermined_probe():
    def probe(p):
        return FEASIBLE if p <= 10 else ("undetermined" if p < 30 else INFEASIBLE)

    lower, upper, status = bracket_search(probe, 2, 100, 40, 4)
    # 40 and 36 are infeasible, 28 is not decided: the search stops with its bracket
    assert (lower, upper, status) == (1, 36, "undetermined")


# -- kappa-guided probe placement (issue 12) --------------------------------------------
def test_secant_zero_is_where_the_line_through_the_two_largest_p_reaches_zero():
    from feasibility.capacity.bisection import secant_zero
    # kappa = 3e-4 (100 - p): the zero is 100 whichever two points are largest
    points = {p: 3e-4 * (100 - p) for p in (60, 90, 97)}
    assert secant_zero(points) == pytest.approx(100.0)
    points[80] = 1.0   # not among the two largest p: ignored
    assert secant_zero(points) == pytest.approx(100.0)
    assert secant_zero({90: 1e-3}) is None                 # one point: no line
    assert secant_zero({90: 1e-3, 95: 2e-3}) is None       # kappa rising with p: no zero ahead
    assert secant_zero({90: 1e-3, 95: 0.0}) is None


def test_secant_prediction_stays_inside_the_certified_bracket():
    from feasibility.capacity.bisection import KAPPA_SLOPE_SCALE, secant_prediction
    line = {90: 3e-4 * 10.4, 97: 3e-4 * 3.4}               # zero at 100.4
    assert secant_prediction(line, 97, None, 64) == 100      # the last p before the zero
    assert secant_prediction(line, 97, 101, 64) == 100
    assert secant_prediction(line, 97, 100, 64) is None      # the line contradicts p = 100
    assert secant_prediction(line, 100, None, 64) == 101     # p* = lower by the line: check lower + 1
    # one point only: a line of slope 1 / (scale sqrt(order) p) through it
    one = {50: 2.0 / (KAPPA_SLOPE_SCALE * 8 * 50)}           # zero at 52 for order 64
    assert secant_prediction(one, 50, None, 64) == 52
    assert secant_prediction(one, 49, None, 64) is None      # nothing known at lower
    assert secant_prediction({}, 49, 60, 64) is None


def test_kappa_estimate_needs_a_two_sided_bracket():
    from feasibility.capacity.bisection import Probe, kappa_estimate

    def probe(verdict, lower, upper):
        return Probe(10, verdict, lower, upper, "ipm", 1, 0.0)

    assert kappa_estimate(probe(FEASIBLE, 1.0e-4, 1.02e-4)) == pytest.approx(1.01e-4)
    assert kappa_estimate(probe(FEASIBLE, 1.0e-4, None)) is None      # a fast path's W alone
    assert kappa_estimate(probe(FEASIBLE, 1.0e-4, 3.0e-4)) is None    # too loose to place a probe
    assert kappa_estimate(probe(INFEASIBLE, -1e-3, 1e-8)) is None


@pytest.mark.parametrize("model,seed,d,p_max", [("coupled", 0, 10, 60), ("decoupled", 2, 10, 60),
                                                ("coupled", 4, 12, 80)])
def test_secant_placement_finds_the_same_p_star_as_bisection(model, seed, d, p_max):
    full = generate(model, d, p_max, seed)
    plain = capacity_bisection(full, guess=capacity_guess(d), secant=False, seed_memory=False)
    guided = capacity_bisection(full, guess=capacity_guess(d))
    assert plain.status == guided.status == "exact"
    assert guided.p_star == plain.p_star is not None
    # a feasible probe that a solver decided carries kappa* to KAPPA_RTOL or to
    # a fraction of a fact (kappa_resolution), whichever is wider
    from feasibility.capacity.bisection import KAPPA_RTOL, kappa_resolution
    from feasibility.solvers.active_set import bracket_tight
    solved = [probe for probe in guided.probes
              if probe.verdict == FEASIBLE and probe.solver == "ipm"]
    assert all(bracket_tight(probe.margin_lower, probe.margin_upper * (1 - 1e-9), KAPPA_RTOL,
                             kappa_resolution(probe.p, d * d)) for probe in solved)


def test_a_generated_family_draws_the_prefixes_of_the_largest_instance():
    from feasibility.core.instances import GeneratedFamily
    for model in ("coupled", "decoupled"):
        family, full = GeneratedFamily(model, 5, 12, 3), generate(model, 5, 12, 3)
        assert (family.n, family.decoupled, family.d_in) == (12, model == "decoupled", 5)
        for p in (2, 7, 12):
            drawn, cut = family.prefix(p), full.prefix(p)
            assert np.array_equal(drawn.inputs, cut.inputs)
            assert np.array_equal(drawn.own_targets(), cut.own_targets())
            if model == "decoupled":
                assert np.array_equal(drawn.competitors, cut.competitors)
            else:
                assert np.array_equal(drawn.targets, cut.targets)
    with pytest.raises(Exception, match="prefix size"):
        GeneratedFamily("coupled", 5, 12, 3).prefix(13)


@pytest.mark.parametrize("guess,expected", [(30, [30, 34, 37, 38]), (45, [45, 41, 33, 37, 38])])
def test_bracket_search_probes_where_predict_points(guess, expected):
    """A prediction replaces the midpoint inside a bracket, and the walk's step
    above the largest feasible p where it points further."""
    star, probed = 37, []

    def probe(p):
        probed.append(p)
        return FEASIBLE if p <= star else INFEASIBLE

    def predict(lower, upper):
        return star if lower < star else star + 1

    assert bracket_search(probe, 2, 100, guess, 4, predict) == (37, 38, "exact")
    assert probed == expected


def test_each_probe_asks_for_kappa_to_a_fraction_of_a_fact(monkeypatch):
    """The secant needs kappa* at a probe only to a fraction of a fact: each
    probe's kappa_atol is the assumed drop of kappa* over KAPPA_RESOLUTION_FACTS
    facts at its own p; the plain search asks for no kappa* at all."""
    import feasibility.capacity.bisection as bisection
    real = bisection.decide
    asked = {}

    def recording(instance, *args, **kwargs):
        asked[instance.n] = (kwargs.get("kappa_rtol"), kwargs.get("kappa_atol"))
        return real(instance, *args, **kwargs)

    monkeypatch.setattr(bisection, "decide", recording)
    d = 10
    full = generate("coupled", d, 60, 0)
    capacity_bisection(full, guess=capacity_guess(d))
    assert len(asked) >= 2
    for p, (rtol, atol) in asked.items():
        assert rtol == bisection.KAPPA_RTOL
        assert atol == pytest.approx(bisection.KAPPA_RESOLUTION_FACTS
                                     / (bisection.KAPPA_SLOPE_SCALE * d * p))
    asked.clear()
    capacity_bisection(full, guess=capacity_guess(d), secant=False)
    assert asked and set(asked.values()) == {(None, None)}


def test_only_a_solver_s_feasible_w_seeds_the_next_probes(monkeypatch):
    """From a guess far below p*, the first probes are settled by the Hebbian
    memory (no round): their W is far from the optimum, and the next probe
    starts afresh instead; once a solver has decided a feasible probe, its W
    seeds every later one until the next such W."""
    import feasibility.capacity.bisection as bisection
    real = bisection.decide
    calls = []

    def recording(instance, *args, **kwargs):
        decision = real(instance, *args, **kwargs)
        calls.append((kwargs.get("seed_memory"), decision))
        return decision

    monkeypatch.setattr(bisection, "decide", recording)
    result = capacity_bisection(generate("coupled", 8, 45, 0), guess=3)
    assert result.status == "exact"
    assert [decision.rounds for _, decision in calls[:4]] == [0, 0, 0, 1]
    expected = None
    for seed, decision in calls:
        assert seed is expected
        if decision.rounds > 0 and decision.weights is not None:
            expected = decision.weights
    assert expected is not None   # a solver's W did seed later probes


def test_implying_probe_is_the_nearest_certified_one_that_implies_the_verdict():
    from feasibility.capacity.bisection import Probe, implying_probe
    from feasibility.core.status import Verdict
    probes = [Probe(p, verdict, None, None, "ipm", 1, 1.0)
              for p, verdict in ((10, Verdict.FEASIBLE), (20, Verdict.FEASIBLE),
                                 (25, Verdict.UNDETERMINED), (30, Verdict.INFEASIBLE),
                                 (40, Verdict.INFEASIBLE))]
    nearest = {5: 10, 10: 10, 15: 20, 20: 20, 30: 30, 35: 30, 45: 40}
    for p, q in nearest.items():
        assert implying_probe(probes, p).p == q, p
    for p in (21, 25, 29):     # inside the certified bracket: nothing implies it
        assert implying_probe(probes, p) is None
