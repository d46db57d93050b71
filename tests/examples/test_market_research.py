"""The market-research example: a supervisor over four analysts on scripted models, on a real
SQLite store, including a resume that does not ask the models again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from examples.market_research import flow as example
from podium import NO_RETRY, ProviderError, RunStatus, Runtime, ScriptedModel
from podium.patterns.supervisor import SupervisorResult

ROOT = Path(__file__).resolve().parents[2]


async def test_plans_reviews_and_writes_the_brief(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/r.db"
    result = await example.run_once(example.SAMPLE_QUESTION, store=url)
    assert result.status == RunStatus.COMPLETED, result.error
    out: SupervisorResult = result.output
    assert (out.status, out.turns, out.gaps) == ("completed", 3, {})
    assert out.output.startswith("Go, priced at 749 EUR installed.")
    assert example.SHARES in out.results["rivals"].detail
    assert "Wallbox" in out.results["price"].detail  # pricing saw the competitor finding
    async with Runtime(url) as rt:
        reviews = [e.data for e in await rt.events(result.run_id) if e.kind == "supervisor.review"]
        keys = {s.key for s in await rt.steps(result.run_id)}
    assert [(r["subtask"], r["verdict"]) for r in reviews if r] == [
        ("size", "accept"),
        ("rivals", "retry"),
        ("voice", "accept"),
        ("rivals", "accept"),
        ("price", "accept"),
    ]
    assert {"/research/competitors#1/model#0", "/research/research.synthesizer#0"} <= keys


async def test_resume_after_a_provider_outage_asks_nothing_twice(tmp_path: Path) -> None:
    flow = example.build_flow()
    lead = example.scripted_lead()
    asked: list[str] = []
    failed: list[bool] = []

    def flaky(*args: Any) -> Any:
        schema = args[2]
        asked.append(schema.name if schema else "text")
        if asked.count("Review") == 3 and not failed:  # the third review, once
            failed.append(True)
            raise ProviderError("503 from the lead's provider")
        return lead._fn(*args)  # type: ignore[misc]

    model = ScriptedModel(flaky)
    for role in (flow.planner, flow.reviewer, flow.synthesizer):
        role._model_spec, role._step = model, None

    url = f"sqlite:///{tmp_path}/r.db"
    async with Runtime(url, retry=NO_RETRY) as rt:
        first = await rt.run(flow, example.SAMPLE_QUESTION)
    assert first.status == RunStatus.FAILED and "503" in (first.error or "")
    assert asked == ["Plan", "Review", "Review", "Review"]
    async with Runtime(url, retry=NO_RETRY) as rt:
        second = await rt.resume(first.run_id, flow)
    assert second.status == RunStatus.COMPLETED, second.error
    # Plan and the two reviews that completed were replayed; the failed one is asked again.
    assert asked[4:] == ["Review", "Review", "Review", "text"]
    assert second.output.status == "completed" and second.output.turns == 3
    analyst_calls = {name: len(w.model.calls) for name, w in flow.workers.items()}
    assert analyst_calls == {"sizing": 1, "competitors": 2, "customers": 1, "pricing": 1}


def test_main_prints_the_brief(capsys: Any) -> None:
    assert example.main([]) == 0
    printed = capsys.readouterr().out
    assert "Go, priced at 749 EUR installed." in printed
    assert "status: completed, turns: 3, gaps: 0" in printed
