"""The cost-controlled research desk: the runaway analyst is alerted on, stopped by its own
budget within one call and named as a gap; a tight run budget stops the desk and a resume
with more room finishes it without asking the analysts again; what each agent cost."""

from __future__ import annotations

from pathlib import Path

import pytest

from examples.cost_control import desk as example
from podium import NO_RETRY, Budget, BudgetExceededError, RunStatus, Runtime, ScriptedModel


async def test_the_runaway_analyst_is_stopped_by_its_budget_and_named_as_a_gap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result, report = await example.run_once(
        example.SAMPLE_QUESTION, store=f"sqlite:///{tmp_path / 'desk.db'}"
    )
    assert result.status == RunStatus.COMPLETED, result.error
    assert "No findings on competitors" in result.output
    agents = {line.name: line for line in report.by_agent}
    limit = example.ANALYST_BUDGET.usd
    assert limit is not None
    costs = [s.usd for s in report.steps if s.agent == "competitors" and s.kind == "model"]
    spent = agents["competitors"].usd
    assert sum(costs[:-1]) < limit <= spent <= limit + costs[-1]  # one call of overshoot
    assert agents["pricing"].usd < limit and agents["pricing"].model_calls == 3
    assert report.usd <= (example.RUN_BUDGET.usd or 0)
    assert report.by_agent[0].name == "competitors"  # the costliest
    kinds = [(a["kind"], a["limit"]) for a in report.alerts]
    assert ("budget.alert", "usd") in kinds and ("budget.exceeded", "usd") in kinds
    assert "warning: agent 'competitors' at /desk/analysts#0/competitors#0 budget: usd at" in (
        capsys.readouterr().err
    )


async def test_a_tight_run_budget_stops_the_desk_and_more_room_finishes_it(
    tmp_path: Path,
) -> None:
    desk = example.build_desk()
    analysts, writer = desk.steps[0], desk.steps[1]
    models = [a.model for a in analysts.branches]
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    async with Runtime(url, retry=NO_RETRY) as rt:
        first = await rt.run(desk, example.SAMPLE_QUESTION, budget=Budget(usd=0.004))
        assert first.status == RunStatus.FAILED
        error = first.exception
        assert isinstance(error, BudgetExceededError) and error.scope == "run"
        assert error.step == "/desk/writer#0/model#0"
        asked = [len(m.calls) for m in models if isinstance(m, ScriptedModel)]

        again = await rt.resume(first.run_id, desk, budget=Budget(usd=0.05))
        assert again.status == RunStatus.COMPLETED, again.error
        assert [len(m.calls) for m in models if isinstance(m, ScriptedModel)] == asked
        assert isinstance(writer.model, ScriptedModel) and len(writer.model.calls) == 1
        report = await rt.cost(first.run_id)
    (brief,) = [s for s in report.steps if s.agent == "writer" and s.status == "completed"]
    assert again.usage.usd == pytest.approx(first.usage.usd + brief.usd)
    assert report.usd == pytest.approx(again.usage.usd)
    assert report.budget == {"usd": 0.05, "alert_at": 0.7}


def test_main_prints_the_cost_and_the_brief(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert example.main(["--store", f"sqlite:///{tmp_path / 'desk.db'}"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cost: $") and "competitors" in out and "Brief:" in out
    assert (
        example.main(["--store", f"sqlite:///{tmp_path / 'desk.db'}", "--budget-usd", "0.004"]) == 1
    )
    err = capsys.readouterr().err
    assert "run budget exhausted" in err and "--budget usd=0.05" in err
