"""`check --explain` and `prune`: facts named from the certificate that proved the verdict."""
import csv
import json

import numpy as np
import pytest

from feasibility import Instance, decide, generate, load, save
from feasibility.cli.main import main
from feasibility.core import certify
from feasibility.core.certify import FEASIBLE, INFEASIBLE
from feasibility.tools.explain import CONE, IDENTICAL, PARALLEL, SAME_TARGET, explain
from feasibility.tools.prune import BY_EXACT, BY_SOLVER, prune


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def with_texts(instance, subjects=None, answers=None):
    subjects = subjects or tuple(f"subject {i}" for i in range(instance.n))
    answers = answers or tuple(f"answer {j}" for j in range(instance.m))
    return Instance(instance.inputs, instance.targets, instance.assignment, None,
                    instance.name, subjects, answers)


def one_input_two_answers():
    """20 Gaussian facts (d = 16: feasible) and fact 0's input again with fact 1's answer."""
    base = generate("coupled", 16, 20, 0)
    inputs = np.vstack([base.inputs, base.inputs[:1]])
    return with_texts(Instance(inputs, base.targets, np.r_[np.arange(20), 1]))


def convex_combination(scale=1.0):
    """Facts 0 and 1 share answer A; fact 5's input is 0.3 x_0 + 0.7 x_1 (times
    `scale`: parallel to that combination) with answer B. Facts 2-4: other answers."""
    rng = np.random.default_rng(3)
    inputs = rng.standard_normal((6, 8))
    inputs[5] = scale * (0.3 * inputs[0] + 0.7 * inputs[1])
    targets = rng.standard_normal((4, 8))
    return with_texts(Instance(inputs, targets, np.array([0, 0, 2, 3, 2, 1])))


# -- explain -----------------------------------------------------------------------------
def test_two_answers_for_one_input_are_named_as_identical_inputs():
    instance = one_input_two_answers()
    decision = decide(instance)
    assert decision.verdict == INFEASIBLE
    explanation = explain(instance, decision)
    assert set(explanation.named_facts) == {0, 20}
    assert [c.kind for c in explanation.conflicts] == [IDENTICAL]
    assert explanation.conflicts[0].facts == (0, 20)
    assert "'subject 20' -> 'answer 1'" in explanation.conflicts[0].detail
    assert "derived from the farkas certificate" in explanation.summary.lower()
    top = explanation.facts[0]
    assert top.weight == pytest.approx(0.5) and top.competitors[0].answer in ("answer 0",
                                                                              "answer 1")


def test_parallel_inputs_are_named_as_such():
    base = one_input_two_answers()
    inputs = base.inputs.copy()
    inputs[20] *= 3.0
    instance = with_texts(Instance(inputs, base.targets, base.assignment))
    explanation = explain(instance, decide(instance))
    assert [c.kind for c in explanation.conflicts] == [PARALLEL]


def test_a_fact_in_the_cone_of_another_answer_is_found_and_named():
    instance = convex_combination()
    decision = decide(instance)
    assert decision.verdict == INFEASIBLE
    explanation = explain(instance, decision)
    assert set(explanation.named_facts) == {0, 1, 5}
    cone = [c for c in explanation.conflicts if c.kind == CONE]
    assert len(cone) == 1 and cone[0].facts[0] == 5 and set(cone[0].facts[1:]) == {0, 1}
    assert "answer 0" in cone[0].detail


def test_an_answer_equal_to_a_competitor_is_a_zero_constraint():
    base = generate("coupled", 8, 10, 1)
    targets = base.targets.copy()
    targets[4] = targets[2]  # two answers, one target vector
    instance = with_texts(Instance(base.inputs, targets))
    explanation = explain(instance, decide(instance))
    assert explanation.conflicts[0].kind == SAME_TARGET
    assert explanation.named_facts[0] in (2, 4)


def test_a_feasible_file_has_nothing_to_explain():
    instance = generate("coupled", 16, 20, 0)
    decision = decide(instance)
    assert decision.verdict == FEASIBLE
    explanation = explain(instance, decision)
    assert explanation.facts == () and "nothing to explain" in explanation.summary


def test_explain_refuses_a_certificate_of_another_file():
    decision = decide(one_input_two_answers())
    other = with_texts(Instance(np.random.default_rng(0).standard_normal((21, 16)),
                                one_input_two_answers().targets,
                                one_input_two_answers().assignment))
    with pytest.raises(ValueError, match="does not prove"):
        explain(other, decision)


# -- prune -------------------------------------------------------------------------------
def planted_clashes():
    """Two planted clashes in 30 Gaussian facts (feasible at d = 16): an identical
    input and a cone combination."""
    base = generate("coupled", 16, 30, 2)
    inputs = np.vstack([base.inputs, base.inputs[3], 0.4 * base.inputs[7] + 0.6 * base.inputs[9]])
    # fact 30: fact 3's input with fact 4's answer; fact 31: inputs of facts 7
    # and 9 (answer 7) combined, with answer 12; facts 7 and 9 share answer 7
    assignment = np.r_[np.arange(30), 4, 12]
    assignment[9] = 7
    return with_texts(Instance(inputs, base.targets, assignment))


@pytest.mark.parametrize("cone_pass", [True, False])
def test_prune_drops_only_named_facts_and_keeps_a_certified_feasible_set(monkeypatch,
                                                                         cone_pass):
    """Without the cone pass the cone combination is named by the solver's certificate."""
    if not cone_pass:
        monkeypatch.setattr("feasibility.tools.prune.CONE_CANDIDATES", 0)
        monkeypatch.setattr("feasibility.tools.prune.CONE_CANDIDATES_OTHERS", 0)
    instance = planted_clashes()
    result = prune(instance)
    assert result.complete and result.decision.verdict == FEASIBLE
    dropped = {drop.fact: drop for drop in result.dropped}
    assert set(dropped) <= {3, 30, 7, 9, 31} and len(dropped) == 2
    assert dropped.keys() & {3, 30} and dropped.keys() & {7, 9, 31}
    for drop in result.dropped:
        assert drop.fact in drop.certificate_facts and drop.certificate_bound <= 1e-6
    kinds = {(d.named_by, d.kind) for d in result.dropped}
    assert (BY_EXACT, IDENTICAL) in kinds
    assert ((BY_EXACT, CONE) if cone_pass else (BY_SOLVER, "ipm")) in kinds
    # the verdict on what is kept, checked again outside prune
    kept = instance.subset(result.kept_facts)
    assert certify.margin_lower_bound(kept, result.decision.weights) > 0
    assert len(result.kept_facts) == 30 and 0 not in dropped


def test_prune_of_a_feasible_file_drops_nothing():
    instance = generate("coupled", 16, 30, 2)
    result = prune(instance)
    assert result.dropped == () and result.kept.n == 30 and result.complete


def test_prune_keeps_texts_and_the_first_fact_of_an_identical_group():
    instance = one_input_two_answers()
    result = prune(instance)
    assert [drop.fact for drop in result.dropped] == [20]
    assert result.dropped[0].subject == "subject 20" and result.dropped[0].answer == "answer 1"
    assert result.kept.subjects == tuple(f"subject {i}" for i in range(20))


# -- command line ------------------------------------------------------------------------
def test_cli_check_explain_prints_and_writes_csv_and_json(tmp_path, capsys):
    path = tmp_path / "clash.npz"
    save(one_input_two_answers(), path)
    assert load(path).subjects[20] == "subject 20"  # texts round-trip through the file
    code, out, _ = run(capsys, "check", path, "--explain", "--out", tmp_path / "why.csv")
    assert code == 0 and out.startswith("infeasible")
    assert IDENTICAL in out and "fact 20: 'subject 20' -> 'answer 1'" in out
    rows = list(csv.DictReader(open(tmp_path / "why.csv")))
    assert {row["fact"] for row in rows} == {"0", "20"}
    assert all(row["exact_conflict"] == IDENTICAL for row in rows)
    code, out, _ = run(capsys, "check", path, "--explain", "--json", "--out",
                       tmp_path / "why.json")
    record = json.loads(out)
    assert record["explanation"]["conflicts"][0]["facts"] == [0, 20]
    assert json.load(open(tmp_path / "why.json"))["derived_from"].startswith("the Farkas")


def test_cli_check_explain_on_a_feasible_file(tmp_path, capsys):
    path = tmp_path / "ok.npz"
    save(generate("coupled", 16, 20, 0), path)
    code, out, _ = run(capsys, "check", path, "--explain")
    assert code == 0 and "nothing to explain" in out


@pytest.mark.parametrize("argv", [["--out", "why.csv"], ["--explain", "--out", "why.txt"]])
def test_cli_explain_bad_options_are_one_line(tmp_path, capsys, argv):
    path = tmp_path / "ok.npz"
    save(generate("coupled", 8, 10, 0), path)
    code, out, err = run(capsys, "check", path, *[a if not a.startswith("why") else
                                                  tmp_path / a for a in argv])
    assert code == 2 and len(err.splitlines()) == 1 and out == ""


def test_cli_prune_writes_the_kept_facts_and_the_report(tmp_path, capsys):
    path = tmp_path / "clash.npz"
    save(one_input_two_answers(), path)
    code, out, err = run(capsys, "prune", path, "-o", tmp_path / "kept.npz",
                         "--report", tmp_path / "dropped.csv")
    assert code == 0 and "kept 20 of 21 facts" in out and "fact 20" in out
    assert "round 1" in err
    kept = load(tmp_path / "kept.npz")
    assert kept.n == 20 and decide(kept).verdict == FEASIBLE
    rows = list(csv.DictReader(open(tmp_path / "dropped.csv")))
    assert [row["fact"] for row in rows] == ["20"] and rows[0]["certificate_facts"] == "0 20"


@pytest.mark.parametrize("argv", [["-o", "kept.csv"], ["--report", "r.txt"],
                                  ["--max-rounds", "-1"]])
def test_cli_prune_bad_options_are_one_line(tmp_path, capsys, argv):
    path = tmp_path / "clash.npz"
    save(one_input_two_answers(), path)
    argv = [tmp_path / a if a.endswith((".csv", ".txt")) else a for a in argv]
    code, out, err = run(capsys, "prune", path, *argv)
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
