"""The numbers of the summaries, checked against hand computations on small frames."""
import math

import numpy as np
import pandas as pd
import pytest

from feasibility.capacity import batch
from feasibility.science import analysis


def capacity_rows(model, d, p_stars, statuses=None, seconds=None):
    n = len(p_stars)
    return pd.DataFrame({
        "model": model, "d": d, "seed": range(n), "distribution": "gaussian",
        "p_star": p_stars, "status": statuses or ["exact"] * n,
        "seconds": seconds or [1.0] * n})


@pytest.fixture
def grid():
    """coupled d = 8: four closed brackets and one seed that reached p_max; decoupled
    d = 8: no closed bracket at all."""
    return pd.concat([
        capacity_rows("coupled", 8, [25, 20, 30, 22, 99],
                      ["exact"] * 4 + ["at_least_p_max"], [1, 2, 3, 4, 5]),
        capacity_rows("decoupled", 8, [np.nan, np.nan], ["undetermined"] * 2, [6, 8]),
    ], ignore_index=True)


def test_capacity_summary_by_hand(grid):
    summary = batch.summarise(grid)
    assert list(summary.columns) == batch.SUMMARY_COLUMNS
    coupled = summary.iloc[0].to_dict()
    # exact seeds sorted: 20 22 25 30 -> median (22 + 25) / 2; quartiles interpolate
    # linearly at positions 0.75 and 2.25: 20 + 0.75 * 2 and 25 + 0.25 * 5
    assert coupled == pytest.approx({
        "model": "coupled", "d": 8, "seeds": 5, "exact": 4, "p_c": 23.5,
        "p_star_q25": 21.5, "p_star_q75": 26.25, "p_star_min": 20.0, "p_star_max": 30.0,
        "p_c_log_p_c_over_d2": 23.5 * math.log(23.5) / 64,   # = 1.1592...
        "seconds_per_seed": 3.0})                            # over every seed, 99 included
    assert coupled["p_c_log_p_c_over_d2"] == pytest.approx(1.15921, abs=1e-5)
    decoupled = summary.iloc[1]
    assert decoupled["exact"] == 0 and decoupled["seeds"] == 2
    assert decoupled[["p_c", "p_star_q25", "p_star_min", "p_c_log_p_c_over_d2"]].isna().all()
    assert decoupled["seconds_per_seed"] == 7.0


def test_p_log_p_needs_p_above_one():
    assert batch.p_log_p_over_d2(math.e, 1) == pytest.approx(math.e)
    assert math.isnan(batch.p_log_p_over_d2(1, 4))
    assert math.isnan(batch.p_log_p_over_d2(math.nan, 4))


def test_hebbian_summary_by_hand():
    frame = pd.DataFrame({
        "model": "coupled", "d": 16, "seed": range(4),
        "p_hebbian": [10, 14, 11, np.nan], "status": ["exact"] * 3 + ["at_least_p_max"],
        "separated_after_failure": [0, 2, 0, 0], "seconds": [0.5, 0.5, 1.0, 2.0]})
    row = analysis.hebbian_summary(frame).iloc[0].to_dict()
    assert row == pytest.approx({
        "model": "coupled", "d": 16, "seeds": 4, "exact": 3, "p_hebbian": 11.0,
        "q25": 10.5, "q75": 12.5, "min": 10.0, "max": 14.0,
        "p_log_p_over_d2": 11 * math.log(11) / 256, "non_monotone_seeds": 1,
        "seconds_per_seed": 1.0})


def test_ratio_table_by_hand():
    frame = pd.concat([capacity_rows("coupled", 8, [20, 22, 25, 30]),
                       capacity_rows("decoupled", 12, [40] * 5)], ignore_index=True)
    table = analysis.ratio_table(frame).set_index("model")
    coupled = table.loc["coupled"]
    assert coupled["p_c"] == 23.5 and coupled["q25"] == 21.5 and coupled["q75"] == 26.25
    assert coupled["ratio"] == pytest.approx(23.5 * math.log(23.5) / 64)
    # every seed alike: no spread over seeds, only p*'s rounding to an integer,
    # uniform over one fact: (ln p + 1) / d^2 / sqrt(12)
    decoupled = table.loc["decoupled"]
    assert decoupled["ratio"] == pytest.approx(40 * math.log(40) / 144)
    assert decoupled["ratio_se"] == pytest.approx((math.log(40) + 1) / 144 / math.sqrt(12))


def test_boundary_table_counts_the_rows_whose_p_star_holds_at_the_tighter_tolerance():
    rows = capacity_rows("coupled", 96, [1124, 1145, 1130]).assign(
        tolerance=1e-6, boundary_tolerance=[1e-8, 1e-8, np.nan],
        boundary_verdict=["infeasible", "undetermined", np.nan],
        kappa_bound_above=[4e-9, 3e-8, 5e-7])
    old = capacity_rows("coupled", 64, [570])       # written before the check existed
    table = analysis.boundary_table(pd.concat([rows, old], ignore_index=True))
    assert table.to_dict("records") == [{"model": "coupled", "d": 96, "checked": 2,
                                         "unchanged": 1, "largest_bound_over_tau": 0.03,
                                         "boundary_over_tau": 0.01}]
    assert analysis.boundary_table(old).empty


def test_models_comparison_pairs_by_seed():
    frame = pd.concat([capacity_rows("coupled", 8, [20, 22, 25, 30]),
                       capacity_rows("decoupled", 8, [21, 22, 24, 33]),
                       capacity_rows("decoupled", 12, [40, 41])], ignore_index=True)
    table = analysis.models_comparison(frame)
    assert list(table["d"]) == [8]                 # d = 12 has no coupled seed to pair with
    row = table.iloc[0]
    ratios = np.array([21 / 20, 22 / 22, 24 / 25, 33 / 30])
    assert row["seeds"] == 4 and row["p_c_coupled"] == 23.5 and row["p_c_decoupled"] == 23.0
    assert row["mean_difference"] == pytest.approx((1 + 0 - 1 + 3) / 4)
    assert row["mean_ratio"] == pytest.approx(ratios.mean())
    assert row["seeds_decoupled_lower"] == 1 and row["seeds_equal"] == 1
    assert ratios.min() <= row["ratio_ci_low"] <= row["mean_ratio"] <= row["ratio_ci_high"] \
        <= ratios.max()


def test_reference_comparison_matches_rows_by_key_and_compares_text(tmp_path):
    ours = pd.concat([capacity_rows("coupled", 8, [25, 20, 30]),
                      capacity_rows("decoupled", 8, [np.nan], ["undetermined"])],
                     ignore_index=True)
    # the reference as a CSV holds it: a missing p* as an empty field, p* as floats
    # (as pandas writes a column with a missing value), rows in another order, one seed
    # changed and one absent
    ours.iloc[[3, 1, 0]].assign(p_star=["", "21.0", "25"]).to_csv(tmp_path / "ref.csv",
                                                                 index=False)
    reference = batch.read_reference(tmp_path / "ref.csv")
    agreement = batch.compare_with_reference(ours, reference, "ref.csv")
    assert (agreement.compared, agreement.not_in_reference) == (3, 1)
    assert not agreement.agrees
    assert agreement.differing.to_dict("records") == [
        {"model": "coupled", "d": "8", "seed": "1", "distribution": "gaussian",
         "p_star": "20", "p_star_reference": "21", "status": "exact",
         "status_reference": "exact"}]
    assert agreement.report().startswith("per-seed p*: 2 of 3 seeds agree with ref.csv "
                                         "(1 seeds not in it)")
