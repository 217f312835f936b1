"""The shipped real fact set (5,000 cities -> 168 countries) and what `--dims` reads."""
import csv
from pathlib import Path

import numpy as np
import pytest

from feasibility import decide, load
from feasibility.capacity.projection import measured_gaussian_p_c
from feasibility.tools.embed import identical_inputs
from feasibility.tools.explain import IDENTICAL, explain

ROOT = Path(__file__).resolve().parents[1]
CITIES = ROOT / "instances" / "facts-cities-countries.npz"


@pytest.fixture(scope="module")
def cities():
    return load(CITIES)


def test_the_cities_file_carries_its_texts(cities):
    rows = list(csv.DictReader(open(CITIES.with_suffix(".csv"), encoding="utf-8")))
    assert cities.n == len(rows) == 5000 and cities.m == 168 and cities.d_in == 384
    assert list(cities.subjects) == [row["subject"] for row in rows]
    assert [cities.answers[t] for t in cities.assignment[:3]] == ["China"] * 3
    assert cities.answers[cities.assignment[28]] == "United Kingdom"  # London


def test_uncased_encoder_collisions_are_there_and_explained(cities):
    clashes = [group for group in identical_inputs(cities) if group.clash]
    assert len(clashes) == 47
    decision = decide(cities)
    assert decision.verdict == "infeasible"
    explanation = explain(cities, decision)
    assert explanation.conflicts[0].kind == IDENTICAL
    facts = explanation.conflicts[0].facts
    assert np.array_equal(cities.inputs[facts[0]], cities.inputs[facts[1]])
    assert len({cities.assignment[k] for k in facts}) == 2


def test_committed_gaussian_capacities_are_found_from_any_directory(tmp_path, monkeypatch):
    """--dims reads the Gaussian p_c from results/ wherever it runs (it recomputed
    3 seeds per d, ~20 min at d = 64, when the lookup missed the repository)."""
    monkeypatch.chdir(tmp_path)
    found = measured_gaussian_p_c()
    assert {16, 32, 64} <= set(found)
    assert found[64][0] == pytest.approx(572.0)
