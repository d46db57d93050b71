"""Hierarchy is nesting, not a class: a Router at the top sends procurement requests to a
Supervisor whose workers are Parallel groups. Step keys, events and resume work through
every level."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from podium import NO_RETRY, Parallel, ParallelResult, Router, Rule, RunStatus, Runtime, agent
from podium.patterns.supervisor import (
    Assignment,
    Plan,
    PlanRequest,
    Subtask,
    Supervisor,
    SupervisorResult,
    SynthesisRequest,
)


class Desk:
    """The whole tree, with call counters on every leaf and a switch to break one deep leaf."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.risk_down = False
        self.tree = self._build()

    def leaf(self, name: str, answer: Any) -> Any:
        @agent(name=name)
        def run(task: Assignment) -> Any:
            self.calls[name] += 1
            if name == "vendor_c":
                raise ConnectionError("vendor portal offline")
            if name == "risk" and self.risk_down:
                raise ValueError("risk feed down")
            return answer(task) if callable(answer) else answer

        return run

    def _build(self) -> Router:
        def cheapest(task: Assignment) -> str:
            quotes = ParallelResult.model_validate(task.inputs["q"]).results
            return min(quotes, key=lambda v: quotes[v]["price"])

        quotes = Parallel(
            "quotes",
            [
                self.leaf("vendor_a", {"price": 120}),
                self.leaf("vendor_b", {"price": 95}),
                self.leaf("vendor_c", {"price": 80}),
            ],
            min_success=2,
        )
        evaluation = Parallel(
            "evaluation", [self.leaf("price", cheapest), self.leaf("risk", "low")]
        )
        ordering = Parallel(
            "ordering", [self.leaf("po_writer", "PO-1"), self.leaf("budget_hold", "held")]
        )

        @agent(name="planner")
        def planner(request: PlanRequest) -> Plan:
            self.calls["planner"] += 1
            return Plan(
                subtasks=[
                    Subtask(id="q", worker="quotes", instruction="collect quotes"),
                    Subtask(id="e", worker="evaluation", instruction="evaluate", depends_on=["q"]),
                    Subtask(id="po", worker="ordering", instruction="order", depends_on=["e"]),
                ]
            )

        @agent(name="summary")
        def summary(request: SynthesisRequest) -> str:
            evaluation = ParallelResult.model_validate(request.results["e"])
            order = ParallelResult.model_validate(request.results["po"])
            return f"{order.results['po_writer']} to {evaluation.results['price']}"

        @agent
        def inquiry(text: str) -> str:
            return f"answered: {text}"

        procurement = Supervisor(
            "procurement",
            [quotes, evaluation, ordering],
            planner=planner,
            synthesizer=summary,
        )
        return Router(
            "desk",
            {"procurement": procurement, "inquiry": inquiry},
            classifier=[Rule("procurement", keywords=["buy", "purchase"])],
            fallback=inquiry,
        )


async def test_keys_and_events_reach_three_levels_down() -> None:
    desk = Desk()
    rt = Runtime("memory://", retry=NO_RETRY)
    result = await rt.run(desk.tree, "buy 40 laptops")
    assert result.status == RunStatus.COMPLETED, result.error
    out: SupervisorResult = result.output
    assert out.status == "completed" and out.output == "PO-1 to vendor_b"
    assert out.turns == 3
    keys = [s.key for s in await rt.steps(result.run_id)]
    top = "/desk/procurement#0"
    assert keys == [
        "/desk",
        "/desk/desk.classify#0",
        top,
        f"{top}/planner#0",
        f"{top}/quotes#0",
        f"{top}/quotes#0/vendor_a#0",
        f"{top}/quotes#0/vendor_b#0",
        f"{top}/quotes#0/vendor_c#0",
        f"{top}/evaluation#0",
        f"{top}/evaluation#0/price#0",
        f"{top}/evaluation#0/risk#0",
        f"{top}/ordering#0",
        f"{top}/ordering#0/po_writer#0",
        f"{top}/ordering#0/budget_hold#0",
        f"{top}/summary#0",
    ]
    events = await rt.events(result.run_id)
    decided = {(e.kind, e.key) for e in events if "." in e.kind and not e.kind.startswith("step")}
    assert ("route.decision", "/desk") in decided
    assert ("supervisor.plan", top) in decided and ("supervisor.stop", top) in decided
    assert ("parallel.gap", f"{top}/quotes#0") in decided  # vendor_c, a leaf two levels down
    failed = [e.key for e in events if e.kind == "step.failed"]
    assert failed == [f"{top}/quotes#0/vendor_c#0"]
    # The other route is a plain agent: the tree is only as deep as it needs to be.
    other = await rt.run(desk.tree, "where is my order?")
    assert other.output == "answered: where is my order?"


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_a_deep_failure_resumes_without_rerunning_finished_steps(
    store: str, tmp_path: Path
) -> None:
    desk = Desk()
    desk.risk_down = True
    url = "memory://" if store == "memory" else f"sqlite:///{tmp_path / 'desk.db'}"
    rt = Runtime(url, retry=NO_RETRY)
    first = await rt.run(desk.tree, "purchase 3 forklifts")
    assert first.status == RunStatus.FAILED
    # The error names the failing step two levels down, and the leaf's own error.
    assert (first.error or "").startswith(
        "agent 'evaluation' at /desk/procurement#0/evaluation#0 failed: QuorumNotMetError"
    )
    assert "(risk: ValueError: risk feed down)" in (first.error or "")
    before = Counter(desk.calls)
    assert before == Counter(planner=1, vendor_a=1, vendor_b=1, vendor_c=1, price=1, risk=1)

    desk.risk_down = False  # the fix
    if store == "sqlite":
        await rt.close()
        rt = Runtime(url, retry=NO_RETRY)  # as if in another process
    second = await rt.resume(first.run_id, desk.tree)
    assert second.status == RunStatus.COMPLETED, second.error
    assert second.output.output == "PO-1 to vendor_b"
    ran_again = desk.calls - before
    # Only the failed leaf ran again (vendor_c failed too, but inside a Parallel that
    # completed without it, so its gap is part of a journaled result), then the rest.
    assert ran_again == Counter(risk=1, po_writer=1, budget_hold=1)
    events = await rt.events(first.run_id)
    replayed = [e.key for e in events if e.kind == "step.replayed"]
    assert replayed == [
        "/desk/desk.classify#0",
        "/desk/procurement#0/planner#0",
        "/desk/procurement#0/quotes#0",
        "/desk/procurement#0/evaluation#0/price#0",
    ]
    steps = {s.key: s for s in await rt.steps(first.run_id)}
    assert steps["/desk/procurement#0/evaluation#0/risk#0"].status == "completed"
    assert steps["/desk"].status == "completed"
    await rt.close()
