"""Graph: handles, conditional edges and cycles, first-match-wins traversal, validation before
a run, max_steps, events, and resume on a real SQLite store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from podium import NO_RETRY, RunError, RunStatus, Runtime, Sequential, StepError, agent
from podium.errors import UsageError
from podium.patterns.graph import Graph, MaxStepsExceededError
from podium.runtime.budget import Budget


@pytest.fixture
def rt() -> Runtime:
    return Runtime("memory://", retry=NO_RETRY)


@agent
def inc(x: int) -> int:
    return x + 1


@agent
def double(x: int) -> int:
    return 2 * x


async def graph_events(rt: Runtime, run_id: str, kind: str) -> list[dict[str, Any]]:
    return [e.data or {} for e in await rt.events(run_id) if e.kind == kind]


async def test_a_chain_passes_each_output_on(rt: Runtime) -> None:
    g = Graph("chain")
    a, b = g.node(inc), g.node(double)
    g.start(a)
    g.edge(a, b)
    g.edge(b, g.END)
    result = await rt.run(g, 3)
    assert result.output == 8
    assert [s.key for s in await rt.steps(result.run_id)] == [
        "/chain",
        "/chain/inc#0",
        "/chain/double#0",
    ]
    assert await graph_events(rt, result.run_id, "graph.edge") == [
        {"source": "inc", "target": "double", "step": 1, "edge": 0, "conditional": False},
        {"source": "double", "target": "END", "step": 2, "edge": 0, "conditional": False},
    ]
    assert await graph_events(rt, result.run_id, "graph.stop") == [
        {"status": "completed", "reason": "reached END", "turns": 2, "last": "double"}
    ]


async def test_a_conditional_cycle_runs_until_its_exit(rt: Runtime) -> None:
    g = Graph("grow")
    a, b = g.node(inc), g.node(double)
    g.start(a)
    g.edge(a, b)
    g.edge(b, g.END, when=lambda n: n > 20)
    g.edge(b, a)
    result = await rt.run(g, 0)
    assert result.output == 30  # 0 -> 1 -> 2 -> 3 -> 6 -> 7 -> 14 -> 15 -> 30
    keys = [s.key for s in await rt.steps(result.run_id)]
    assert keys[-2:] == ["/grow/inc#3", "/grow/double#3"]
    edges = await graph_events(rt, result.run_id, "graph.edge")
    assert [(e["source"], e["target"], e["edge"]) for e in edges[-3:]] == [
        ("double", "inc", 1),
        ("inc", "double", 0),
        ("double", "END", 0),
    ]


async def test_first_matching_edge_wins_in_the_order_added(rt: Runtime) -> None:
    @agent
    def small(x: int) -> str:
        return f"small {x}"

    @agent
    def even(x: int) -> str:
        return f"even {x}"

    @agent
    def other(x: int) -> str:
        return f"other {x}"

    async def is_small(x: int) -> bool:
        return x < 10

    g = Graph("sort")
    start = g.node(agent(name="given")(lambda x: x))
    s, e, o = g.node(small), g.node(even), g.node(other)
    g.start(start)
    g.edge(start, s, when=is_small)
    g.edge(start, e, when=lambda x: x % 2 == 0)
    g.edge(start, o)
    for n in (s, e, o):
        g.edge(n, g.END)
    assert (await rt.run(g, 4)).output == "small 4"  # both conditions hold: the first wins
    assert (await rt.run(g, 12)).output == "even 12"
    assert (await rt.run(g, 13)).output == "other 13"


async def test_the_same_agent_twice_under_two_labels(rt: Runtime) -> None:
    g = Graph("twice")
    first, second = g.node(inc), g.node(inc, label="inc_again")
    g.start(first)
    g.edge(first, second)
    g.edge(second, g.END)
    result = await rt.run(g, 0)
    assert result.output == 2
    assert [s.key for s in await rt.steps(result.run_id)][1:] == ["/twice/inc#0", "/twice/inc#1"]
    assert g.topology() == {
        "name": "twice",
        "start": "inc",
        "nodes": {"inc": "inc", "inc_again": "inc"},
        "edges": [
            {"source": "inc", "target": "inc_again", "when": None},
            {"source": "inc_again", "target": "END", "when": None},
        ],
    }


def test_building_mistakes_name_the_graph_and_the_nodes() -> None:
    g = Graph("g")
    a, b = g.node(inc), g.node(double)
    with pytest.raises(UsageError, match="'g': there is already a node 'inc'; pass label="):
        g.node(inc)
    with pytest.raises(UsageError, match="edge source 'inc' is not a node handle"):
        g.edge("inc", b)  # type: ignore[arg-type]
    other = Graph("other")
    foreign = other.node(inc)
    with pytest.raises(UsageError, match="edge target node 'inc' is not a node of this graph"):
        g.edge(a, foreign)
    with pytest.raises(UsageError, match="END cannot be the edge source"):
        g.edge(g.END, a)
    g.edge(a, b)
    with pytest.raises(UsageError, match="edge inc -> END can never be taken"):
        g.edge(a, g.END)
    with pytest.raises(UsageError, match="max_turns must be a positive integer"):
        Graph("h", max_turns=0)
    with pytest.raises(UsageError, match="label 'END' is reserved"):
        g.node(double, label="END")


async def test_validation_refuses_a_bad_graph_before_the_run_starts(rt: Runtime) -> None:
    g = Graph("g")
    with pytest.raises(UsageError, match="'g' has no nodes"):
        g.validate()
    a, b, c = g.node(inc), g.node(double), g.node(agent(name="spare")(lambda x: x))
    with pytest.raises(UsageError, match="'g' has no start"):
        await rt.run(g, 1)
    g.start(a)
    g.edge(a, b, when=lambda x: x > 0)
    g.edge(a, g.END)
    with pytest.raises(UsageError, match=r"node\(s\) 'spare' cannot be reached from .* 'inc'"):
        await rt.run(g, 1)
    g.edge(b, c, when=lambda x: x < 100)
    g.edge(c, b)
    with pytest.raises(UsageError, match=r"no path to END from node\(s\) 'double', 'spare'"):
        await rt.run(g, 1)
    assert await rt.list_runs() == []  # nothing was started
    g.edge(b, g.END)
    g.validate()
    assert (await rt.run(g, 1)).output == 128  # 2 -> 4 -> spare -> 8 ... -> 128 -> END


async def test_an_output_that_matches_no_edge_fails_the_run(rt: Runtime) -> None:
    g = Graph("g")
    a = g.node(inc)
    g.start(a)
    g.edge(a, g.END, when=lambda x: x > 5)
    result = await rt.run(g, 1)
    assert result.status == RunStatus.FAILED
    assert "node 'inc' matched none of its edges (to 'END')" in (result.error or "")


async def test_max_turns_ends_a_runaway_cycle_naming_the_last_nodes(rt: Runtime) -> None:
    g = Graph("spin", max_turns=5)
    a, b = g.node(inc), g.node(double)
    g.start(a)
    g.edge(a, b)
    g.edge(b, g.END, when=lambda x: x < 0)
    g.edge(b, a)
    result = await rt.run(g, 0)
    assert result.status == RunStatus.FAILED
    assert isinstance(result.exception, StepError)
    cause = result.exception.cause
    assert isinstance(cause, MaxStepsExceededError) and isinstance(cause, RunError)
    assert cause.trail == ("inc", "double", "inc", "double", "inc", "double (next)")
    assert "Graph 'spin' reached max_turns=5 without reaching END" in (result.error or "")
    assert await graph_events(rt, result.run_id, "graph.stop") == [
        {"status": "max_turns", "reason": "max_turns=5 reached", "turns": 5, "last": "inc"}
    ]
    assert len(await graph_events(rt, result.run_id, "graph.edge")) == 5


async def test_a_condition_that_raises_names_the_edge(rt: Runtime) -> None:
    g = Graph("g")
    a = g.node(inc)
    g.start(a)
    g.edge(a, g.END, when=lambda x: x["missing"])
    result = await rt.run(g, 1)
    assert "the condition of edge inc -> END raised TypeError" in (result.error or "")


class Draft(BaseModel):
    text: str
    rounds: int = 0


class Review(BaseModel):
    approved: bool
    draft: Draft


async def test_resume_replays_nodes_and_takes_the_same_edges_on_sqlite(tmp_path: Path) -> None:
    calls: list[str] = []
    broken = {"on": True}

    @agent
    def write(d: Draft) -> Draft:
        calls.append(f"write {d.rounds}")
        return Draft(text=d.text + "+", rounds=d.rounds + 1)

    @agent
    def review(d: Draft) -> Review:
        calls.append(f"review {d.rounds}")
        if d.rounds == 2 and broken["on"]:
            raise ValueError("reviewer away")
        return Review(approved=d.rounds >= 3, draft=d)

    @agent
    def unwrap(r: Review) -> Draft:
        return r.draft

    g = Graph("essay")
    w, r, u = g.node(write), g.node(review), g.node(unwrap)
    g.start(w)
    g.edge(w, r)
    g.edge(r, g.END, when=lambda review: review.approved)  # a typed Review, even on replay
    g.edge(r, u)
    g.edge(u, w)
    flow = Sequential("outer", [g])
    url = f"sqlite:///{tmp_path}/x.db"
    async with Runtime(url, retry=NO_RETRY) as rt:
        first = await rt.run(flow, {"text": "a"})
        assert first.status == RunStatus.FAILED and "reviewer away" in (first.error or "")
    assert calls == ["write 0", "review 1", "write 1", "review 2"]
    broken["on"] = False
    calls.clear()
    async with Runtime(url, retry=NO_RETRY) as rt:
        second = await rt.resume(first.run_id, flow)
        assert second.status == RunStatus.COMPLETED, second.error
        assert second.output == Review(approved=True, draft=Draft(text="a+++", rounds=3))
        assert calls == ["review 2", "write 2", "review 3"]
        replayed = [e.key for e in await rt.events(first.run_id) if e.kind == "step.replayed"]
        assert replayed == [
            "/outer/essay#0/write#0",
            "/outer/essay#0/review#0",
            "/outer/essay#0/unwrap#0",
            "/outer/essay#0/write#1",
        ]


async def test_a_bad_nested_graph_fails_its_parent_with_a_usage_error(rt: Runtime) -> None:
    g = Graph("inner")
    g.node(inc)
    result = await rt.run(Sequential("outer", [g]), 1)
    assert result.status == RunStatus.FAILED
    assert "Graph 'inner' has no start" in (result.error or "")


async def test_build_from_plain_data(rt: Runtime) -> None:
    def big(n: int) -> bool:
        return n > 20

    g = Graph.build(
        "grow",
        nodes=[inc, double],
        edges=[("inc", "double"), ("double", "END", big), ("double", "inc")],
        start="inc",
        max_turns=20,
    )
    assert (await rt.run(g, 0)).output == 30
    assert g.topology()["edges"][1] == {"source": "double", "target": "END", "when": "big"}
    with pytest.raises(UsageError, match="edge 0 names node 'nope'; nodes are 'inc'"):
        Graph.build("g", nodes={"inc": inc}, edges=[("inc", "nope")], start="inc")
    with pytest.raises(UsageError, match="start names node 'x'"):
        Graph.build("g", nodes=[inc], edges=[("inc", "END")], start="x")


def test_the_renamed_max_steps_still_works_and_warns() -> None:
    with pytest.warns(DeprecationWarning, match=r"Graph\(max_steps=...\) is deprecated"):
        g = Graph("g", max_steps=7)
    assert g.max_turns == 7
    with pytest.warns(DeprecationWarning, match="Graph.max_steps is deprecated"):
        assert g.max_steps == 7


async def test_a_deadline_fails_the_graph_naming_where_it_was() -> None:
    from podium.testing import FakeClock

    clock = FakeClock()
    rt = Runtime("memory://", retry=NO_RETRY, clock=clock)

    @agent
    async def slow(n: int) -> int:
        await clock.advance(30)  # each node takes half a minute
        return n + 1

    g = Graph("g", deadline=20)
    s = g.node(slow)
    g.start(s)
    g.edge(s, g.END, when=lambda n: n > 5)
    g.edge(s, s)
    result = await rt.run(g, 0)
    assert result.status == RunStatus.FAILED
    assert "Graph 'g': deadline of 20s passed before END; last nodes: slow -> slow (next)" in (
        result.error or ""
    )


async def test_a_refused_call_fails_the_graph_with_the_budget_error() -> None:
    from podium import BudgetExceededError, LLMAgent, ScriptedModel

    writer = LLMAgent("writer", model=ScriptedModel(["a", "b", "c"]), instructions="W.")
    g = Graph("g", budget=Budget(model_calls=1))
    w = g.node(writer)
    g.start(w)
    g.edge(w, g.END, when=lambda text: text == "c")
    g.edge(w, w)
    rt = Runtime("memory://", retry=NO_RETRY)
    result = await rt.run(g, "go")
    assert result.status == RunStatus.FAILED
    assert isinstance(result.exception, BudgetExceededError) and result.exception.key == "/g"
    reason = str(result.exception)
    stops = [e.data for e in await rt.events(result.run_id) if e.kind == "graph.stop"]
    assert stops == [
        {
            "status": "budget_exhausted",
            "reason": reason,
            "turns": 1,
            "last": "writer",
        }
    ]
