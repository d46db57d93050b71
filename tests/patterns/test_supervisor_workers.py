"""Patterns as Supervisor workers: a pattern declares the input type its members share, so a
worker made of `str` agents (a Parallel, a Sequential, a Router, nested in each other) gets
the assignment's text, and one made of agents typed `Assignment` gets the `Assignment`."""

from __future__ import annotations

from typing import Any

import pytest

from podium import NO_RETRY, Parallel, RunStatus, Runtime, Sequential, agent
from podium.patterns.adaptive import Adaptive
from podium.patterns.graph import Graph
from podium.patterns.router import Router, Rule
from podium.patterns.supervisor import Assignment, Plan, Subtask, Supervisor


def planner_for(worker: str) -> Any:
    @agent(name="planner")
    def planner(request: Any) -> Plan:
        step = Subtask(id="job", worker=worker, instruction="summarise the memo")
        return Plan(subtasks=[step])

    return planner


def text_agent(name: str) -> Any:
    @agent(name=name)
    def read(text: str) -> str:
        return f"{name} read: {text}"

    return read


def assignment_agent(name: str) -> Any:
    @agent(name=name)
    def read(task: Assignment) -> str:
        return f"{name} got {task.subtask_id}: {task.instruction}"

    return read


async def supervise(worker: Any) -> Any:
    desk = Supervisor("desk", [worker], planner=planner_for(worker.name))
    async with Runtime("memory://", retry=NO_RETRY) as rt:
        result = await rt.run(desk, "the memo")
    assert result.status == RunStatus.COMPLETED, result.error
    return result.output.results["job"]


async def test_a_parallel_of_text_agents_gets_the_text() -> None:
    team = Parallel("team", [text_agent("a"), text_agent("b")])
    assert team.input_type is str
    out = await supervise(team)
    assert out.value == {"a": "a read: summarise the memo", "b": "b read: summarise the memo"}


async def test_a_sequential_of_text_agents_gets_the_text() -> None:
    pipe = Sequential("pipe", [text_agent("a"), text_agent("b")])
    assert await supervise(pipe) == "b read: a read: summarise the memo"


async def test_nested_patterns_of_text_agents_get_the_text() -> None:
    @agent
    def join(result: Any) -> str:
        return " | ".join(result.value[k] for k in sorted(result.value))

    inner = Parallel("inner", [text_agent("a"), Sequential("s", [text_agent("b")])])
    outer = Sequential("outer", [inner, join])
    assert outer.input_type is str
    assert await supervise(outer) == "a read: summarise the memo | b read: summarise the memo"


async def test_routers_and_adaptives_of_text_agents_get_the_text() -> None:
    router = Router(
        "desk_router",
        [text_agent("a"), text_agent("b")],
        classifier=[Rule("b", keywords=["memo"])],
    )
    assert (await supervise(router)).endswith("b read: summarise the memo")
    adaptive = Adaptive(
        "chooser", {"a": text_agent("a")}, classifier=[Rule("a", keywords=["memo"])]
    )
    assert (await supervise(adaptive)).endswith("a read: summarise the memo")
    graph = Graph("flow")
    first = graph.node(text_agent("a"))
    graph.edge(first, graph.END)
    graph.start(first)
    assert await supervise(graph) == "a read: summarise the memo"


async def test_a_parallel_of_assignment_agents_still_gets_the_assignment() -> None:
    team = Parallel("team", [assignment_agent("a"), assignment_agent("b")])
    assert team.input_type is Assignment
    out = await supervise(Sequential("outer", [team]))
    assert out.value["a"] == "a got job: summarise the memo"


@pytest.mark.parametrize(
    "members",
    [
        [text_agent("a"), assignment_agent("b")],
        [text_agent("a"), agent(name="b")(lambda x: x)],
    ],
    ids=["str and Assignment", "str and untyped"],
)
def test_members_that_disagree_declare_no_input_type(members: list[Any]) -> None:
    assert Parallel("mixed", members).input_type is Any
