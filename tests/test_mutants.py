"""scripts/mutants.py stays runnable: every mutant still finds its line (once)."""
import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "mutants.py"
spec = importlib.util.spec_from_file_location("mutants", SCRIPT)
mutants = importlib.util.module_from_spec(spec)
sys.modules["mutants"] = mutants  # dataclasses look their module up there
spec.loader.exec_module(mutants)


@pytest.mark.parametrize("mutant", mutants.MUTANTS, ids=lambda m: m.name)
def test_each_mutant_changes_exactly_one_place(mutant):
    text = (mutants.ROOT / mutant.path).read_text()
    assert text.count(mutant.old) == 1
    assert mutant.old != mutant.new
    assert all((mutants.ROOT / test).exists() for test in mutant.tests)


def test_the_mutants_cover_the_required_changes():
    names = " | ".join(m.name for m in mutants.MUTANTS)
    for required in ("classify", "sum to 1", "negative weights", "own-target", "min -> max",
                     "min -> mean", "p_star = lower", "tolerance 1e-3"):
        assert required in names
