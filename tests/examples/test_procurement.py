"""The procurement example: Router -> Supervisor -> Parallel groups, on a real SQLite store,
with keys and events at every level and a resume after a deep failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from examples.procurement import flow as example
from podium import NO_RETRY, RunStatus, Runtime
from podium.patterns.supervisor import SupervisorResult

ROOT = Path(__file__).resolve().parents[2]

TOP = "/desk/procurement#0"


async def test_the_sample_purchase_goes_through_three_levels(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/desk.db"
    systems = example.Systems()
    result = await example.run_once(example.SAMPLE, store=url, systems=systems)
    assert result.status == RunStatus.COMPLETED, result.error
    out: SupervisorResult = result.output
    assert out.status == "completed" and out.turns == 3
    assert out.output == "PO-040-GLOBEX: globex, 43600 EUR held (risk low); no quote from initech"
    assert out.results["quotes"].gaps == {"initech": "ConnectionError: initech is not answering"}
    async with Runtime(url) as rt:
        keys = {s.key for s in await rt.steps(result.run_id)}
        events = await rt.events(result.run_id)
    assert {
        "/desk/desk.classify#0",
        f"{TOP}/planner#0/model#0",
        f"{TOP}/quotes#0/globex#0",
        f"{TOP}/evaluation#0/risk_analyst#0/model#0",
        f"{TOP}/purchase_order#0/budget_hold#0",
        f"{TOP}/summary#0",
    } <= keys
    decisions = {(e.kind, e.key) for e in events if not e.kind.startswith(("step.", "run."))}
    assert decisions == {
        ("route.decision", "/desk"),
        ("supervisor.plan", TOP),
        ("supervisor.review", TOP),
        ("supervisor.stop", TOP),
        ("parallel.gap", f"{TOP}/quotes#0"),
    }


async def test_a_question_goes_to_the_helpdesk() -> None:
    result = await example.run_once({"text": "what is the laptop policy?"})
    assert result.output.startswith("(scripted echo)")


async def test_a_down_budget_ledger_fails_the_run_and_resume_only_holds_the_budget(
    tmp_path: Path,
) -> None:
    systems = example.Systems()
    systems.down.add("budget_ledger")
    flow = example.build_flow(systems=systems)
    planner = flow.routes["procurement"].planner  # type: ignore[attr-defined]
    url = f"sqlite:///{tmp_path}/desk.db"
    async with Runtime(url, retry=NO_RETRY) as rt:
        first = await rt.run(flow, example.SAMPLE)
    assert first.status == RunStatus.FAILED
    assert f"at {TOP}/purchase_order#0 failed" in (first.error or "")
    assert "budget_ledger is not answering" in (first.error or "")
    before = list(systems.calls)
    assert sorted(before) == sorted(
        ["acme", "globex", "initech", "vendor_registry", "erp", "budget_ledger"]
    )

    systems.down.discard("budget_ledger")
    async with Runtime(url, retry=NO_RETRY) as rt:
        second = await rt.resume(first.run_id, flow)
        replayed = {e.key for e in await rt.events(first.run_id) if e.kind == "step.replayed"}
    assert second.status == RunStatus.COMPLETED, second.error
    assert second.output.output.startswith("PO-040-GLOBEX: globex, 43600 EUR held")
    assert systems.calls[len(before) :] == ["budget_ledger"]  # nothing else touched again
    assert len(planner.model.calls) == 1  # the plan was replayed, not asked again
    assert {
        f"{TOP}/planner#0",
        f"{TOP}/quotes#0",
        f"{TOP}/evaluation#0",
        f"{TOP}/purchase_order#0/po_writer#0",
    } <= replayed


def test_main_prints_the_order_and_fails_over_budget(capsys: Any) -> None:
    assert example.main([]) == 0
    assert "PO-040-GLOBEX" in capsys.readouterr().out
    assert example.main(["--budget", "1000"]) == 1
    assert "over the budget of 1000" in capsys.readouterr().err
