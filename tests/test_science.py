"""The science layer: Hebbian baseline, spectra, storage mechanism, theory curves,
two-layer memories and the tail-average-margin criterion. Small instances with
known answers; every claim re-checked from scratch."""
import math

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest

from feasibility import FEASIBLE, INFEASIBLE, UNDETERMINED, Instance, decide, generate
from feasibility.capacity.bisection import capacity_bisection
from feasibility.cli.main import main
from feasibility.core.certify import margin_lower_bound
from feasibility.core.instances import competitor_rows
from feasibility.core.tolerances import MARGIN_FLOOR
from feasibility.science import analysis, topk, twolayer
from feasibility.solvers.active_set import hebbian_memory


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- Hebbian baseline ----------------------------------------------------------------------
@pytest.mark.parametrize("model", ["coupled", "decoupled"])
def test_hebbian_scan_equals_the_direct_check_at_every_prefix(model):
    full = generate(model, 6, 30, 4)
    scan = analysis._HebbianScan(model, 6, 4, "gaussian", 30)
    direct = np.array([analysis.hebbian_kappa(full.prefix(q)) for q in range(2, 31)])
    assert np.allclose(scan.kappas(2, 30), direct, rtol=1e-9, atol=1e-12)
    # a chunk that starts in the middle gives the same numbers
    assert np.allclose(scan.kappas(11, 23), direct[9:22], rtol=1e-9, atol=1e-12)


def test_decoupled_competitors_are_streamed_like_generate():
    full = generate("decoupled", 5, 9, 3)
    for i in (0, 4, 8):
        assert np.array_equal(competitor_rows(5, 3, i, 8), full.competitors[i])


@pytest.mark.parametrize("model,d,seed", [("coupled", 16, 0), ("decoupled", 12, 1)])
def test_hebbian_capacity_is_the_first_failure_minus_one(model, d, seed):
    result = analysis.hebbian_capacity(model, d, seed)
    assert result.status == "exact"
    p = result.p_hebbian
    full = generate(model, d, result.p_scanned, seed)
    for q in range(2, p + 1):   # every prefix up to p_H is separated by its own W_H
        assert analysis.hebbian_kappa(full.prefix(q)) > MARGIN_FLOOR
    assert analysis.hebbian_kappa(full.prefix(p + 1)) <= MARGIN_FLOOR
    assert result.p_last_separated >= p
    W = hebbian_memory(full.prefix(p))
    assert margin_lower_bound(full.prefix(p), W) == pytest.approx(result.kappa_at_p_hebbian)


@pytest.mark.parametrize("model", ["coupled", "decoupled"])
def test_hebbian_capacity_never_exceeds_the_optimal_one(model):
    for seed in range(3):
        hebb = analysis.hebbian_capacity(model, 6, seed)
        best = capacity_bisection(generate(model, 6, 40, seed), guess=12)
        assert best.status == "exact" and hebb.status == "exact"
        assert hebb.p_hebbian <= best.p_star


# -- spectra and mechanism -------------------------------------------------------------------
def test_singular_values_of_a_known_hebbian_memory():
    X = np.eye(3)
    Y = np.diag([3.0, 2.0, 1.0])
    W = hebbian_memory(Instance(X, Y))
    assert np.allclose(W, np.diag([3.0, 2.0, 1.0]))
    s = analysis.normalised_singular_values(W)
    assert np.allclose(s, np.array([3.0, 2.0, 1.0]) * math.sqrt(3 / 14))
    assert np.sum(s**2) == pytest.approx(3)


def test_spectra_rows_are_certified_and_normalised():
    frame = pd.DataFrame(analysis.spectra_rows(6, 9, 1))
    assert set(frame["memory"]) == {"coupled", "decoupled", "hebbian"}
    for memory in ("coupled", "decoupled"):
        rows = frame[frame["memory"] == memory]
        assert (rows["verdict"] == FEASIBLE).all() and (rows["kappa_lower"] > 0).all()
        assert rows["sigma"].pow(2).sum() == pytest.approx(6)
        assert list(rows["k"]) == list(range(1, 7))


@pytest.mark.parametrize("model", ["coupled", "decoupled"])
def test_mechanism_margins_recompute(model):
    frame = pd.DataFrame(analysis.mechanism_rows(model, 6, 9, 1))
    assert set(frame["memory"]) == {"optimal", "hebbian"}
    assert np.allclose(frame["margin"], frame["correct"] - frame["max_competitor"])
    norms = frame.groupby("memory")["frobenius_norm"].first()
    assert norms["optimal"] == pytest.approx(norms["hebbian"])
    instance = generate(model, 6, 9, 1)
    hebb = frame[frame["memory"] == "hebbian"].sort_values("fact")
    raw = instance.raw_margins(hebbian_memory(instance)).min(axis=1)
    assert np.allclose(hebb["margin"], raw)
    assert (frame.loc[frame["memory"] == "optimal", "margin"] > 0).all()
    assert (frame["competitors"] == 8).all()


# -- theory ----------------------------------------------------------------------------------
def test_moments_of_the_maximum_of_normals():
    assert analysis.max_normal_moments(1) == pytest.approx((0.0, 1.0), abs=1e-9)
    assert analysis.max_normal_moments(2) == pytest.approx((1 / math.sqrt(math.pi), 1.0))
    m1, m2 = analysis.max_normal_moments(3)
    assert m1 == pytest.approx(3 / (2 * math.sqrt(math.pi)))
    assert m2 == pytest.approx(1 + math.sqrt(3) / (2 * math.pi))
    # Monte Carlo at n = 50
    draws = np.random.default_rng(0).standard_normal((200_000, 50)).max(axis=1)
    m1, m2 = analysis.max_normal_moments(50)
    assert m1 == pytest.approx(draws.mean(), abs=0.01)
    assert m2 == pytest.approx(np.mean(draws**2), abs=0.03)


def test_theory_curves_solve_their_equations():
    for d in (8, 64, 256):
        pa = analysis.asymptote_p(d)
        assert pa * math.log(pa) == pytest.approx(d * d / 2)
        pe = analysis.extreme_value_p(d)
        assert pe * analysis.max_normal_moments(pe - 1)[1] == pytest.approx(d * d, rel=1e-6)
    table = analysis.theory_table([8, 64, 1024])
    # the heuristic's p ln p / d^2 falls towards the asymptote's 1/2
    assert list(table["ratio_extreme_value"]) == sorted(table["ratio_extreme_value"],
                                                        reverse=True)
    assert (table["ratio_extreme_value"] > 0.5).all()


def test_extrapolation_recovers_a_known_limit():
    d = np.array([8, 16, 32, 64])
    frame = pd.DataFrame({"d": d, "ratio": 0.5 + 1.3 / np.log(d), "ratio_se": 0.01,
                          "p_c": [23, 65, 187, 572]})
    fit = analysis.extrapolate(frame, "1/log d")
    assert fit["r_inf"] == pytest.approx(0.5) and fit["slope"] == pytest.approx(1.3)
    assert fit["chi2"] == pytest.approx(0.0, abs=1e-12)


def test_the_fit_comparison_prefers_the_form_the_data_follow():
    """Ratios made by the extreme-value correction: that form fits exactly, predicts
    the held-out largest d, and has the smallest AIC; the others miss."""
    d = np.array([16, 24, 32, 48, 64, 96, 128])
    p = np.array([65, 117, 187, 355, 572, 1124, 1850], dtype=float)
    ratio = 0.5 + 2.0 * np.log(np.log(p)) / np.log(p)
    frame = pd.DataFrame({"d": d, "p_c": p, "ratio": ratio, "ratio_se": 0.005})
    table = analysis.compare_fits(frame).set_index("form")
    best = table.loc["loglog p/log p"]
    assert best["r_inf"] == pytest.approx(0.5) and best["slope"] == pytest.approx(2.0)
    assert best["held_out_d"] == 128 and abs(best["held_out_miss_se"]) < 1e-6
    assert table["aic"].idxmin() == "loglog p/log p"
    assert (table.drop("loglog p/log p")["chi2"] > 1).all()
    # the held-out prediction comes from a fit that never saw d = 128
    rest = analysis.extrapolate(frame.iloc[:-1], "1/d")
    assert table.loc["1/d", "held_out_predicted"] == pytest.approx(
        rest["r_inf"] + rest["slope"] / 128)
    assert abs(table.loc["1/d", "held_out_miss_se"]) > 1


def test_a_single_seed_borrows_the_per_seed_spread_of_the_nearest_d():
    """One seed measures no spread; it gets that of one seed (not of a median) at
    the nearest d of its model with several seeds, plus its own rounding term."""
    spreads = {16: (64, [0, 1, 2, 3]), 32: (186, [0, 4, 8, 12]), 48: (355, [0, 2, 4, 6])}
    rows = [{"model": "coupled", "d": d, "seed": s, "status": "exact", "p_star": p + k}
            for d, (p, ks) in spreads.items() for s, k in enumerate(ks)]
    rows += [{"model": "coupled", "d": 128, "seed": 0, "status": "exact", "p_star": 1850},
             {"model": "decoupled", "d": 128, "seed": 0, "status": "exact", "p_star": 1819}]
    table = analysis.ratio_table(pd.DataFrame(rows)).set_index(["model", "d"])
    one = table.loc[("coupled", 128)]
    p48 = np.array([355, 357, 359, 361], float)
    sd48 = np.std(p48 * np.log(p48) / 48**2, ddof=1)
    rounding = (math.log(1850) + 1) / 128**2 / math.sqrt(12)
    assert one["se_from"] == 48
    assert one["ratio_se"] == pytest.approx(math.hypot(sd48, rounding))
    assert (table.loc["coupled"].loc[[16, 32, 48], "se_from"] == [16, 32, 48]).all()
    # a model with no d of several seeds has nothing to borrow
    assert np.isnan(table.loc[("decoupled", 128), "ratio_se"])


# -- two-layer memories ------------------------------------------------------------------------
def test_frozen_identity_first_layer_is_the_one_layer_problem():
    for model, p in (("coupled", 20), ("coupled", 30), ("decoupled", 22)):
        instance = generate(model, 8, p, 1)
        one = decide(instance)
        frozen, W = twolayer.decide_frozen(instance, np.eye(8))
        assert frozen.verdict == one.verdict != UNDETERMINED
        if frozen.verdict == FEASIBLE:
            assert margin_lower_bound(instance, W) > MARGIN_FLOOR


def _needs_rank_two():
    """Three facts e_i -> e_i: the identity stores them; no rank-1 W = b a^T can
    (at most one input with a.x > 0 can have its target on top, one with a.x < 0)."""
    return Instance(np.eye(3), np.eye(3))


def test_width_below_the_rank_needed():
    instance = _needs_rank_two()
    assert decide(instance).verdict == FEASIBLE
    for seed in range(3):
        A = twolayer.random_first_layer(3, 1, seed)
        assert twolayer.decide_frozen(instance, A)[0].verdict == INFEASIBLE
    result = twolayer.train(instance, 1)
    assert result.verdict == UNDETERMINED       # never "infeasible" from the heuristic
    assert result.full_rank_verdict == FEASIBLE
    assert twolayer.train(instance, 2).verdict == FEASIBLE


def test_trained_verdicts_are_certified_both_ways():
    instance = generate("coupled", 8, 18, 0)
    result = twolayer.train(instance, 3)
    assert result.verdict == FEASIBLE
    W = result.B @ result.A
    assert np.linalg.matrix_rank(W) <= 3
    assert margin_lower_bound(instance, W) == pytest.approx(result.kappa_lower)
    assert result.kappa_lower > MARGIN_FLOOR
    # infeasible only through the full-rank relaxation
    clash = Instance(np.ones((2, 3)), np.eye(2, 3))
    result = twolayer.train(clash, 1)
    assert result.verdict == INFEASIBLE and result.full_rank_verdict == INFEASIBLE


def test_twolayer_capacities_are_ordered():
    row = twolayer.twolayer_capacity("coupled", 6, 3, 0)
    assert row["p_frozen"] <= row["p_trained"] <= row["p_full"]
    wide = twolayer.twolayer_capacity("coupled", 6, 6, 0, trained=False)
    assert wide["p_frozen"] == wide["p_full"]   # a random square A is invertible


# -- tail-average margin -------------------------------------------------------------------------
@pytest.mark.parametrize("p", [14, 24, 26, 32])
def test_tam_1_is_top_1(p):
    instance = generate("coupled", 8, p, 0)
    top1 = decide(instance).verdict
    tam = topk.decide_tam(instance, "tam:1")
    assert tam.verdict == top1 != UNDETERMINED
    _assert_tam_certified(instance, tam, topk.parse_criterion("tam:1"))


def _assert_tam_certified(instance, decision, criterion):
    if decision.verdict == FEASIBLE:
        W = decision.weights
        values = topk.tam_values(instance, W, criterion)
        assert (values > 0).all()
        # the mean of the K largest, recomputed by brute force
        Z = instance.inputs @ W.T
        for i in range(instance.n):
            others = np.delete(instance.targets, i, axis=0) @ Z[i]
            k = criterion.tail(len(others))
            assert Z[i] @ instance.targets[i] - np.sort(others)[-k:].mean() == \
                pytest.approx(values[i])
    else:
        cert = decision.certificate
        assert cert.weights.sum() == pytest.approx(1) and (cert.weights >= 0).all()
        assert topk.tam_upper_bound(instance, cert, criterion) <= decision.margin_upper + 1e-15
        assert decision.margin_upper <= 1e-6


@pytest.mark.parametrize("criterion", ["tam:4", "tam:0.3"])
def test_tam_verdicts_are_certified(criterion):
    parsed = topk.parse_criterion(criterion)
    for p in (20, 60):
        instance = generate("coupled", 6, p, 1)
        decision = topk.decide_tam(instance, parsed)
        assert decision.verdict != UNDETERMINED
        _assert_tam_certified(instance, decision, parsed)


def test_tam_certificate_caps_are_enforced():
    instance = generate("coupled", 4, 12, 0)
    crit = topk.parse_criterion("tam:3")
    rows, slots = np.array([0, 0]), np.array([1, 2])
    too_heavy = topk.TamCertificate(rows, slots, np.array([0.9, 0.1]))  # 0.9 > 1/3
    assert topk.tam_upper_bound(instance, too_heavy, crit) is None


def test_tam_matches_cvxpy_sum_largest():
    """Our epigraph model and cvxpy's sum_largest give the same kappa*_tam."""
    instance = generate("coupled", 4, 9, 2)
    k = 3
    X = instance.inputs / np.linalg.norm(instance.inputs, axis=1)[:, None]
    Y = instance.targets
    W = cp.Variable((4, 4))
    kappa = cp.Variable()
    cons = [cp.norm(W, "fro") <= 1]
    for i in range(instance.n):
        z = W @ X[i]
        others = np.delete(Y, i, axis=0) @ z
        cons.append(Y[i] @ z - cp.sum_largest(others, k) / k >= kappa)
    cp.Problem(cp.Maximize(kappa), cons).solve(solver=cp.CLARABEL)
    decision = topk.decide_tam(instance, f"tam:{k}")
    assert decision.verdict == "feasible" and decision.margin_upper is not None
    # equal: cvxpy's optimum lies in our certified bracket, to Clarabel's accuracy,
    # and the bracket is narrow, so neither bound can drift from kappa*
    assert decision.margin_lower - 1e-7 <= kappa.value <= decision.margin_upper + 1e-7
    assert decision.margin_upper - decision.margin_lower <= 1e-6 * kappa.value


def test_tam_capacity_is_at_least_top1_capacity():
    top1 = topk.tam_capacity("coupled", 6, 0, "top1")
    tam = topk.tam_capacity("coupled", 6, 0, "tam:3")
    assert top1["status"] == tam["status"] == "exact"
    best = capacity_bisection(generate("coupled", 6, 40, 0), guess=12)
    assert top1["p_star"] == best.p_star
    assert tam["p_star"] >= top1["p_star"]


def test_parse_criterion():
    assert topk.parse_criterion("top1").k == 1
    assert topk.parse_criterion("tam:5").k == 5
    assert topk.parse_criterion("tam:0.25").fraction == 0.25
    for bad in ("tam:0", "tam:1.5", "tam:-2", "tam:x", "top2", "tam:"):
        with pytest.raises(ValueError):
            topk.parse_criterion(bad)


# -- command line and figures --------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["hebbian", "--d", "8", "--out", "{dir}/h.txt"], "h.txt: --out must name a .csv file"),
    (["hebbian", "--model", "hopfield", "--d", "8", "--out", "{dir}/h.csv"],
     "unknown model 'hopfield': choose one of coupled, decoupled"),
    (["hebbian", "--d", "8", "--seed0", "-2", "--out", "{dir}/h.csv"],
     "--seed0 must be a non-negative integer, got -2"),
    (["spectra", "--d", "6", "--p", "1", "--out", "{dir}/s.csv"], "--p must be >= 2, got 1"),
    (["spectra", "--d", "6", "--rtol", "2", "--out", "{dir}/s.csv"],
     "--rtol must lie in (0, 1), got 2.0"),
    (["spectra", "--d", "6", "--distribution", "cauchy", "--out", "{dir}/s.csv"],
     "unknown distribution 'cauchy': choose one of gaussian, sphere"),
    (["mechanism", "--d", "6", "--out", "{dir}/missing/m.csv"], "missing: no such directory"),
    (["theory", "--d", "1", "--out", "{dir}/t.csv"], "dimensions must be >= 2, got 1"),
    (["twolayer", "--d", "6", "--h", "0", "--out", "{dir}/w.csv"],
     "hidden widths must be >= 1, got 0"),
    (["topk", "--criterion", "tam:0", "--out", "{dir}/k.csv"], "unknown criterion 'tam:0'"),
    (["figures", "--results", "{dir}/nowhere"], "nowhere: no such directory"),
    (["figures", "--results", "{dir}"], "no result CSVs to draw from"),
])
def test_bad_science_options_get_one_line_naming_the_problem_and_status_2(tmp_path, capsys,
                                                                           argv, message):
    argv = [a.format(dir=tmp_path) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.startswith("feasibility: error: ") and err.count("\n") == 1
    assert message in err, err


def test_commands_write_csvs_and_figures(tmp_path, capsys):
    assert run(capsys, "hebbian", "--d", "6,8", "--seeds", 2, "--jobs", 1, "--quiet",
               "--out", tmp_path / "hebbian.csv")[0] == 0
    assert run(capsys, "theory", "--d", "6,8,16", "--out", tmp_path / "theory.csv")[0] == 0
    assert run(capsys, "mechanism", "--model", "coupled", "--d", 6, "--p", 9, "--seed", 1,
               "--out", tmp_path / "mechanism.csv")[0] == 0
    assert run(capsys, "spectra", "--d", 6, "--p", 9, "--seeds", 2, "--seed0", 1, "--jobs", 1,
               "--out", tmp_path / "spectra.csv")[0] == 0
    assert run(capsys, "twolayer", "--d", 5, "--h", "2,5", "--seeds", 1, "--jobs", 1,
               "--quiet", "--out", tmp_path / "twolayer.csv")[0] == 0
    assert run(capsys, "topk", "--d", "4,5", "--seeds", 1, "--criterion", "top1,tam:2",
               "--jobs", 1, "--quiet", "--out", tmp_path / "topk.csv")[0] == 0
    assert run(capsys, "capacity", "--model", "coupled,decoupled", "--d", "4,5", "--seeds", 2,
               "--jobs", 1, "--quiet", "--out", tmp_path / "capacity.csv")[0] == 0
    code, out, _ = run(capsys, "figures", "--results", tmp_path)
    assert code == 0
    for name in ("capacity-models", "capacity-theory", "spectra", "hebbian", "mechanism",
                 "twolayer", "topk"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000, name
    claims = pd.read_csv(tmp_path / "claims.csv")
    assert set(claims["claim"].astype(str)) >= {"1", "2", "3", "4", "5", "top-k"}
