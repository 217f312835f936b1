from dataclasses import replace

import numpy as np
import pytest

from feasibility import InputError, Instance, generate, load, save
from feasibility.capacity.batch import capacity_tasks
from feasibility.core.instances import check_family
from feasibility.science.analysis import hebbian_capacity, mechanism_rows


@pytest.mark.parametrize("model", ["coupled", "decoupled"])
def test_generation_is_reproducible_and_nested(model):
    big = generate(model, 6, 30, seed=3)
    again = generate(model, 6, 30, seed=3)
    small = generate(model, 6, 12, seed=3)
    assert np.array_equal(big.inputs, again.inputs)
    prefix = big.prefix(12)
    assert np.array_equal(prefix.inputs, small.inputs)
    assert np.array_equal(prefix.targets, small.targets)
    if model == "decoupled":
        assert np.array_equal(prefix.competitors, small.competitors)
        assert small.competitors.shape == (12, 11, 6)
    assert not np.array_equal(generate(model, 6, 12, seed=4).inputs, small.inputs)


def test_models_share_inputs_and_targets():
    coupled, decoupled = generate("coupled", 5, 9, 1), generate("decoupled", 5, 9, 1)
    assert np.array_equal(coupled.inputs, decoupled.inputs)
    assert np.array_equal(coupled.targets, decoupled.targets)


def test_sphere_distribution_has_unit_rows():
    inst = generate("decoupled", 7, 10, 0, distribution="sphere")
    assert np.allclose(np.linalg.norm(inst.inputs, axis=1), 1)
    assert np.allclose(np.linalg.norm(inst.competitors, axis=2), 1)


@pytest.mark.parametrize("model", ["coupled", "decoupled"])
def test_npz_round_trip(tmp_path, model):
    inst = generate(model, 4, 7, 2)
    back = load(save(inst, tmp_path / "x.npz"))
    for name in ("inputs", "targets", "assignment"):
        assert np.array_equal(getattr(inst, name), getattr(back, name))
    if model == "decoupled":
        assert np.array_equal(inst.competitors, back.competitors)


def test_csv_round_trip_merges_shared_answers(tmp_path):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((5, 3)), rng.standard_normal((2, 2))
    t = np.array([0, 1, 0, 1, 1])
    path = tmp_path / "facts.csv"
    lines = ["x0,x1,x2,y0,y1"] + [",".join(repr(float(v)) for v in [*X[i], *Y[t[i]]]) for i in range(5)]
    path.write_text("\n".join(lines) + "\n")
    inst = load(path)
    assert inst.m == 2 and inst.n == 5
    assert np.array_equal(inst.inputs, X)
    assert np.array_equal(inst.own_targets(), Y[t])


def test_prefix_of_many_to_one_relabels_targets():
    rng = np.random.default_rng(0)
    inst = Instance(rng.standard_normal((6, 3)), rng.standard_normal((4, 3)),
                    np.array([3, 1, 3, 0, 2, 1]))
    pre = inst.prefix(3)
    assert pre.m == 2
    assert np.array_equal(pre.own_targets(), inst.own_targets()[:3])


@pytest.mark.parametrize("kwargs, message", [
    (dict(inputs=np.ones((3, 2)), targets=np.ones((4, 2))), "assignment missing"),
    (dict(inputs=np.ones((3, 2)), targets=np.ones((3, 2)), assignment=[0, 1, 3]), "[0, 3)"),
    (dict(inputs=np.full((3, 2), np.nan), targets=np.ones((3, 2))), "NaN"),
    (dict(inputs=np.ones((0, 2)), targets=np.ones((0, 2))), "empty"),
    (dict(inputs=np.array([["a", "b"]]), targets=np.ones((1, 2))), "real numbers"),
    (dict(inputs=np.ones((2, 2)) * 1j, targets=np.ones((2, 2))), "real numbers"),
    (dict(inputs=np.ones(3), targets=np.ones((3, 2))), "2-D"),
    (dict(inputs=np.ones((2, 2)), targets=np.ones((2, 2)), competitors=np.ones((2, 1, 3))),
     "competitors"),
])
def test_invalid_instances_are_refused(kwargs, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace(")", r"\)")):
        Instance(**kwargs)


def test_integer_and_boolean_embeddings_become_float():
    inst = Instance(np.eye(3, dtype=int), np.eye(3, dtype=bool))
    assert inst.inputs.dtype == np.float64 and inst.targets.dtype == np.float64


# -- one validation of model, distribution and seed, whoever asks ---------------------
FAMILY_REFUSALS = [
    (dict(model="hopfield"), "unknown model 'hopfield': choose one of coupled, decoupled"),
    (dict(distribution="cauchy"), "unknown distribution 'cauchy': choose one of gaussian, sphere"),
    (dict(seed=-1), "seed must be a non-negative integer, got -1"),
]


#: each takes (model, distribution, seed) and draws from that family
ENTRY_POINTS = {
    "generate": lambda m, dist, s: generate(m, 4, 5, s, dist),
    "capacity_tasks": lambda m, dist, s: capacity_tasks([m], [4], 1, s, dist),
    "hebbian_capacity": lambda m, dist, s: hebbian_capacity(m, 4, s, dist),
    "mechanism_rows": lambda m, dist, s: mechanism_rows(m, 4, 5, s, dist),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("bad, message", FAMILY_REFUSALS)
def test_every_entry_point_refuses_a_bad_family_in_the_same_words(entry, bad, message):
    family = {"model": "coupled", "distribution": "gaussian", "seed": 0, **bad}
    with pytest.raises(InputError) as refused:
        ENTRY_POINTS[entry](family["model"], family["distribution"], family["seed"])
    # the grids name the seed by its option, --seed0
    assert str(refused.value).replace("--seed0", "seed") == message


def test_check_family_takes_one_model_or_a_list():
    check_family("coupled", "sphere", 0)
    check_family(["coupled", "decoupled"])
    with pytest.raises(InputError, match="'x'"):
        check_family(["coupled", "x"])


@pytest.mark.parametrize("model", ["coupled", "decoupled"])
def test_constraint_differences_leave_the_instance_as_it_was(model):
    """differences() subtracts into an array of its own: the directions the
    solvers scale in place are never the instance's targets or competitors."""
    instance = generate(model, 5, 9, 0)
    before = {name: getattr(instance, name).copy() for name in ("targets", "competitors")
              if getattr(instance, name, None) is not None}
    rows, slots = np.nonzero(instance.slot_mask())
    u = instance.differences(rows, slots)
    u *= 0.0
    for name, value in before.items():
        assert np.array_equal(getattr(instance, name), value), name
    own = instance.targets[instance.assignment[rows]]
    other = instance.competitors[rows, slots] if model == "decoupled" else instance.targets[slots]
    assert np.allclose(instance.differences(rows, slots), own - other)


def test_a_replaced_instance_recomputes_its_constraint_norms():
    """dataclasses.replace must not carry the old instance's cached norms."""
    instance = generate("coupled", 5, 8, 0)
    before = instance.constraint_norms().copy()
    inputs = instance.inputs.copy()
    inputs[2] *= 3.0
    scaled = replace(instance, inputs=inputs)
    np.testing.assert_allclose(scaled.constraint_norms()[2], 3.0 * before[2])
    np.testing.assert_allclose(scaled.constraint_norms()[3], before[3])
