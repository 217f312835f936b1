"""`feasibility audit`: every installed solver and program, side by side; a clash is loud."""
import json
import time
from dataclasses import replace

import pytest

import feasibility.tools.audit as audit_module
from feasibility import FEASIBLE, INFEASIBLE, UNDETERMINED, decide, generate, save
from feasibility.cli.main import main
from feasibility.core.status import EngineStatus, RoundStatus
from feasibility.solvers.active_set import SOLVERS, installed_solvers
from feasibility.tools.audit import AuditRecord, audit, solver_programs


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_every_installed_solver_and_program_is_run():
    expected = {(name, program) for name in installed_solvers()
                for program in SOLVERS[name][1]}
    assert set(solver_programs()) == expected and len(expected) >= 4
    report = audit(generate("coupled", 6, 16, 1))  # the Hebbian memory does not separate it
    assert {(r.solver, r.program) for r in report.records} == expected
    assert all(r.statuses for r in report.records), "every solver really ran"


@pytest.mark.parametrize("args, verdict", [(("coupled", 6, 16, 1), FEASIBLE),
                                           (("decoupled", 5, 16, 2), INFEASIBLE)])
def test_certified_verdicts_agree_with_decide(args, verdict):
    instance = generate(*args)
    start = time.monotonic()
    report = audit(instance)
    wall = time.monotonic() - start
    decision = decide(instance)
    assert decision.verdict == verdict and decision.verify(instance)
    assert report.agree and report.verdict == verdict and report.disagreement() == ""
    assert report.consistent
    for record in report.records:
        assert record.verdict in (verdict, UNDETERMINED)
        # each run is timed by itself: a share of the audit's wall time, not zero
        # when its solver ran
        assert 0 < record.seconds <= wall
        assert record.statuses and all(s.solver == record.solver for s in record.statuses)
    assert sum(record.seconds for record in report.records) <= wall
    assert report.margin_lower <= report.margin_upper + 1e-12


def test_a_clash_is_a_disagreement_and_is_shown(tmp_path, capsys, monkeypatch):
    """Fabricated: one solver certifies feasible, another infeasible."""
    real = audit_module.decide

    def clashing(instance, margin, solver, program, **kwargs):
        decision = real(instance, margin, solver=solver, program=program, **kwargs)
        if solver == "clarabel" and program == "socp":
            return replace(decision, verdict=INFEASIBLE, margin_upper=1e-7)
        return decision

    monkeypatch.setattr(audit_module, "decide", clashing)
    path = save(generate("coupled", 6, 16, 1), tmp_path / "inst.npz")
    report = audit(generate("coupled", 6, 16, 1))
    assert not report.agree and report.verdict == "disagreement"
    assert not report.consistent  # a W with margin 1e-3 and an upper bound 1e-7
    assert "clarabel/socp certifies infeasible" in report.disagreement()
    code, out, err = run(capsys, "audit", path)
    assert code == 0
    assert "DISAGREEMENT" in out and "DISAGREEMENT" in err
    code, out, _ = run(capsys, "audit", path, "--json")
    record = json.loads(out)
    assert record["agree"] is False and record["verdict"] == "disagreement"
    assert record["disagreement"].startswith("DISAGREEMENT")


def test_undetermined_is_reported_not_a_disagreement(capsys, monkeypatch):
    real = audit_module.decide

    def undecided(instance, margin, solver, program, **kwargs):
        decision = real(instance, margin, solver=solver, program=program, **kwargs)
        if solver == "scs":
            return replace(decision, verdict=UNDETERMINED)
        return decision

    monkeypatch.setattr(audit_module, "decide", undecided)
    report = audit(generate("coupled", 6, 16, 1))
    assert report.agree and report.verdict == FEASIBLE
    assert any(r.verdict == UNDETERMINED for r in report.records)
    assert "undetermined" in report.table().splitlines()[-1]


def test_status_summary_counts_the_rounds():
    rounds = (RoundStatus("clarabel", EngineStatus.OPTIMAL),) * 3 + (
        RoundStatus("clarabel", EngineStatus.INFEASIBLE),)
    record = AuditRecord("clarabel", "socp", rounds, UNDETERMINED, None, None, 0.1)
    assert record.status_summary() == "optimal x3, infeasible"
    ipm = replace(record, solver="ipm", statuses=(RoundStatus("ipm", EngineStatus.TARGET, 7),))
    assert ipm.status_summary() == "target(7)" and ipm.row()["statuses"] == ["ipm:target(7)"]


def test_a_solver_crash_is_recorded(monkeypatch):
    real = audit_module.decide

    def crashing(instance, margin, solver, program, **kwargs):
        if solver == "ecos":
            raise RuntimeError("segfault averted")
        return real(instance, margin, solver=solver, program=program, **kwargs)

    monkeypatch.setattr(audit_module, "decide", crashing)
    if "ecos" not in installed_solvers():
        pytest.skip("ecos not installed")
    report = audit(generate("coupled", 5, 20, 0))
    crashed = [r for r in report.records if r.solver == "ecos"]
    assert crashed and all(r.verdict == UNDETERMINED for r in crashed)
    assert "segfault averted" in crashed[0].reason
    assert [str(s) for s in crashed[0].statuses] == ["ecos:exception"]
    assert crashed[0].status_summary() == "exception"
    assert report.agree and report.verdict == INFEASIBLE


def test_audit_command_table_and_json(tmp_path, capfd):
    instance = generate("decoupled", 5, 16, 2)
    path = save(instance, tmp_path / "inst.npz")
    assert main(["audit", str(path)]) == 0
    out, _ = capfd.readouterr()
    lines = out.strip().splitlines()
    assert lines[1].split()[:3] == ["solver", "program", "verdict"]
    assert len(lines) == 2 + len(solver_programs()) + 1
    assert lines[-1].startswith("agree:") and "infeasible" in lines[-1]
    assert main(["audit", str(path), "--json", "--margin", "0.01"]) == 0
    out, _ = capfd.readouterr()
    record = json.loads(out)  # stdout is only the JSON, even if a solver prints a banner
    assert record["margin"] == 0.01 and record["n"] == 16
    for row in record["records"]:
        assert {"solver", "program", "statuses", "verdict", "margin_lower", "margin_upper",
                "seconds"} <= set(row)


def test_audit_refuses_a_bad_margin(tmp_path, capsys):
    path = save(generate("coupled", 4, 6, 0), tmp_path / "inst.npz")
    code, out, err = run(capsys, "audit", path, "--margin", "-1")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1

