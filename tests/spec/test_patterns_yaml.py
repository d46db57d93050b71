"""Every pattern and agent kind in YAML: the examples in examples/yaml/ load, validate and run
offline; names that refer to other agents are checked with their path and line; the JSON
Schema committed in docs/ is the one the code publishes."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from podium import Runtime
from podium.agents.human import Decision, HumanAgent, HumanApproval
from podium.agents.llm import LLMAgent
from podium.cli.app import app
from podium.core.records import RunStatus
from podium.patterns.adaptive import Adaptive
from podium.patterns.graph import Graph
from podium.patterns.groupchat import GroupChat
from podium.patterns.handoff import Handoff
from podium.patterns.loop import Loop
from podium.patterns.magentic import Magentic
from podium.patterns.parallel import Parallel
from podium.patterns.router import Router
from podium.patterns.sequential import Sequential
from podium.patterns.supervisor import Supervisor
from podium.spec.loader import SpecProblemsError, load_yaml, load_yaml_spec, load_yaml_text
from podium.spec.schema import NODE_KINDS, json_schema

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "yaml"

# file -> (pattern class, input, a check on the output)
RUNS: dict[str, tuple[type[Any], Any, Any]] = {
    "sequential": (Sequential, "  a   b ", lambda out: out == "A B"),
    "parallel": (Parallel, {"sku": 1}, lambda out: out.value["pricing"] == {"price": 9.5}),
    "router": (Router, "I want a refund", lambda out: out.startswith("billing desk")),
    "supervisor": (Supervisor, "pet food", lambda out: out.status == "completed"),
    "magentic": (Magentic, "what?", lambda out: out.output == "answer: 42"),
    "groupchat": (GroupChat, "ACME", lambda out: out.decision == "buy"),
    "handoff": (Handoff, "my invoice", lambda out: out.agent == "invoices"),
    "loop": (Loop, "go", lambda out: out.output == "go!!!!!!" and out.status == "completed"),
    "graph": (Graph, "x", lambda out: out == "x (draft) (draft)"),
    "adaptive": (Adaptive, "compare these", lambda out: set(out.value) == {"team", "solo"}),
}


def test_every_kind_has_an_example() -> None:
    files = {p.stem for p in EXAMPLES.glob("*.yaml")}
    patterns = set(NODE_KINDS) - {"python", "llm", "human", "remote"}
    assert patterns <= files | {"approval"}
    assert {"approval", "human"} <= files


@pytest.mark.parametrize("name", sorted(RUNS))
async def test_example_loads_and_runs(name: str) -> None:
    cls, given, check = RUNS[name]
    spec, flow = load_yaml_spec(EXAMPLES / f"{name}.yaml")
    assert isinstance(flow, cls)
    assert spec.kind == name
    result = await Runtime("memory://").run(flow, given)
    result.raise_for_status()
    assert check(result.output), result.output


def test_example_details_are_mapped() -> None:
    sup = load_yaml(EXAMPLES / "supervisor.yaml")
    assert sup.limits.max_turns == 5
    assert sup.worker_timeouts == {"sizing": 10, "competitors": 30}
    chat = load_yaml(EXAMPLES / "groupchat.yaml")
    assert chat.selection == "function" and chat.consensus == "weighted"
    assert chat.weights == {"growth": 2, "value": 1, "risk": 1}
    assert chat.on_deadlock == "stop" and chat.max_turns == 6
    support = load_yaml(EXAMPLES / "handoff.yaml")
    assert support.routes == {"triage": ["invoices"], "invoices": ["triage"]}
    assert support.max_turns == 5  # `max_handoffs: 4`, and the first agent's turn
    graph = load_yaml(EXAMPLES / "graph.yaml")
    edges = graph.topology()["edges"]
    assert [(e["source"], e["target"], e["when"]) for e in edges] == [
        ("draft", "check", None),
        ("check", "draft", "needs_work"),
        ("check", "END", None),
    ]
    desk = load_yaml(EXAMPLES / "router.yaml")
    assert isinstance(desk.fallback, LLMAgent)
    claim = load_yaml(EXAMPLES / "approval.yaml")
    approval = claim.steps[1]
    assert isinstance(approval, HumanApproval)
    assert approval.assignee == "claims-team" and approval.prompt == "Pay this claim?"
    assert approval._wait.on_timeout == "escalate"
    assert approval._wait.escalate_to == "claims-lead"
    ask = load_yaml(EXAMPLES / "human.yaml")
    assert isinstance(ask.steps[1], HumanAgent)
    assert ask.steps[1].question == "Refund or replace?"


async def test_approval_waits_then_resumes_on_sqlite(tmp_path: Path) -> None:
    rt = Runtime(f"sqlite:///{tmp_path}/x.db")
    flow = load_yaml(EXAMPLES / "approval.yaml")
    first = await rt.run(flow, {"amount": 120, "who": "Ada"})
    assert first.status == RunStatus.WAITING
    done = await rt.resume(
        first.run_id,
        load_yaml(EXAMPLES / "approval.yaml"),
        decision=Decision(approved=True, by="ada"),
    )
    assert done.output == "paid 120 to Ada"


async def test_human_answer_is_the_output() -> None:
    rt = Runtime("memory://")
    first = await rt.run(load_yaml(EXAMPLES / "human.yaml"), "order  17 broken")
    assert first.status == RunStatus.WAITING
    done = await rt.resume(
        first.run_id, load_yaml(EXAMPLES / "human.yaml"), decision=Decision(answer="refund")
    )
    assert done.output == "refund"


def test_committed_schema_is_current() -> None:
    committed = json.loads((ROOT / "docs" / "podium-workflow.schema.json").read_text())
    assert committed == json_schema(), "run: podium schema > docs/podium-workflow.schema.json"


# problems -----------------------------------------------------------------------------------
def problems(text: str) -> dict[str, tuple[int | None, str]]:
    with pytest.raises(SpecProblemsError) as info:
        load_yaml_text(textwrap.dedent(text), base_dir=EXAMPLES)
    return {p.path: (p.line, p.message) for p in info.value.problems}


def test_unknown_names_in_handoff_routes_and_start() -> None:
    found = problems(
        """\
        name: s
        kind: handoff
        start: nobody
        routes:
          triage: [invoices, ghost]
          phantom: [triage]
        agents:
          - python: agents.py:triage
          - python: agents.py:invoices
        """
    )
    assert found["start"][0] == 3 and "no agent named 'nobody'" in found["start"][1]
    assert "triage, invoices" in found["start"][1]
    assert found["routes.triage[1]"][0] == 5
    assert "'ghost'" in found["routes.triage[1]"][1]
    assert found["routes.phantom"][0] == 6


def test_unknown_nodes_in_graph_edges_and_start() -> None:
    found = problems(
        """\
        name: g
        kind: graph
        start: begin
        nodes:
          draft: {python: agents.py:draft}
        edges:
          - {from: draft, to: nowhere}
          - {from: elsewhere, to: END, when: "python:agents.py:not_there"}
        """
    )
    assert found["start"][0] == 3
    assert found["edges[0].to"][0] == 7 and "no node named 'nowhere'" in found["edges[0].to"][1]
    assert found["edges[1].from"][0] == 8
    assert "has no attribute 'not_there'" in found["edges[1].when"][1]


def test_graph_structure_problems_come_from_the_graph() -> None:
    found = problems(
        """\
        name: g
        kind: graph
        start: draft
        nodes:
          draft: {python: agents.py:draft}
          check: {python: agents.py:check}
        edges:
          - {from: draft, to: END}
        """
    )
    assert "check" in found[""][1] and "Graph 'g'" in found[""][1]


def test_groupchat_supervisor_adaptive_names() -> None:
    chat = problems(
        """\
        name: c
        kind: groupchat
        critic: judge
        rounds: 2
        weights: {growth: 1, nobody: 2}
        participants: [{python: agents.py:growth}]
        """
    )
    assert chat["critic"][0] == 3 and "no participant named 'judge'" in chat["critic"][1]
    assert chat["weights.nobody"][0] == 5
    sup = problems(
        """\
        name: s
        kind: supervisor
        planner: {python: agents.py:planner}
        worker_timeouts: {sizing: 1, nobody: 2}
        workers: [{python: agents.py:sizing}]
        """
    )
    assert sup["worker_timeouts.nobody"][0] == 4
    ada = problems(
        """\
        name: a
        kind: adaptive
        default: nope
        rules: [{route: crew, keywords: [x]}]
        strategies: {direct: {python: agents.py:solo}}
        """
    )
    assert ada["default"][0] == 3
    assert "no strategy 'crew' in `strategies`" in ada["rules[0].route"][1]


def test_shape_problems_in_new_kinds_have_paths_and_lines() -> None:
    found = problems(
        """\
        name: s
        kind: sequential
        steps:
          - kind: loop
            name: l
          - kind: approval
            name: ok
            on_timeout: escalate
          - kind: supervisor
            name: sup
            model: scripted
            planner: {python: agents.py:planner}
            workers: [{python: agents.py:sizing}]
          - kind: graph
            name: g
            start: a
            nodes: {a: {python: agents.py:draft}}
            edges: [{from: a, to: END, when: 3}]
          - kind: handoff
            name: h
            agents: [{python: agents.py:no_such_agent}]
        """
    )
    assert found["steps[0].body"] == (4, "required field is missing")
    assert found["steps[1]"][0] == 6 and "escalate_to" in found["steps[1]"][1]
    assert (
        found["steps[2]"][0] == 9 and "exactly one of `planner` or `model`" in found["steps[2]"][1]
    )
    assert found["steps[3].edges[0].when"][0] == 18
    assert found["steps[4].agents[0].python"][0] == 21


def test_a_misspelt_speaker_is_a_problem_before_anything_is_imported(tmp_path: Path) -> None:
    """`round_robn` is neither the built-in speaker nor a `module:object`: said by the shape
    pass, so `podium validate` (which imports nothing) reports it too."""
    found = problems(
        """\
        name: chat
        kind: groupchat
        speaker: round_robn
        participants: [{python: agents.py:draft}]
        """
    )
    assert found["speaker"][0] == 3 and "'round_robn' is not round_robin" in found["speaker"][1]
    spec = tmp_path / "chat.yaml"
    spec.write_text(
        "name: chat\nkind: groupchat\nspeaker: round_robn\nparticipants: [{python: a.py:x}]\n"
    )
    (tmp_path / "a.py").write_text("x = 1\n")
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 2 and "speaker (line 3)" in result.output


def test_an_unknown_key_close_to_a_field_says_which_was_meant() -> None:
    found = problems(
        """\
        name: s
        kind: sequential
        steps:
          - kind: groupchat
            name: chat
            max_turn: 4
            participants: [{python: agents.py:draft}]
          - kind: parallel
            name: p
            colour: red
            branches: [{python: agents.py:draft}]
        """
    )
    assert found["steps[0].max_turn"] == (6, "unknown field (did you mean `max_turns`?)")
    assert found["steps[1].colour"] == (10, "unknown field")  # nothing close: no guess


def test_remote_needs_an_http_url() -> None:
    found = problems("name: r\nkind: remote\nurl: ftp://x\n")
    assert "must be an http:// or https:// URL" in found[""][1]


def test_functions_must_be_functions() -> None:
    found = problems(
        """\
        name: l
        kind: loop
        body: {python: agents.py:extend}
        until: python:agents.py:annotations
        """
    )
    assert "is not a function or an agent" in found["until"][1]


def test_model_managers_and_inline_agents_build() -> None:
    flow = load_yaml_text(
        textwrap.dedent(
            """\
            name: top
            kind: sequential
            steps:
              - kind: supervisor
                name: desk
                model: scripted
                review: false
                workers: [{python: agents.py:sizing}]
              - kind: magentic
                name: team
                model: scripted
                participants: [{python: agents.py:researcher}]
              - kind: adaptive
                name: pick
                model: scripted
                kinds: [easy, hard]
                learning: true
                seed: 7
                strategies: {direct: {python: agents.py:solo}}
              - kind: loop
                name: polish
                check_first: true
                state: true
                max_stalls: null
                body: {kind: llm, name: reviser, model: scripted, instructions: Revise.}
                critic: {kind: llm, name: critic, model: scripted, instructions: Judge.}
              - kind: groupchat
                name: debate
                critic: judge
                rounds: 2
                manager: {kind: llm, name: chair, model: scripted, instructions: Pick.}
                participants:
                  - {kind: llm, name: pro, model: scripted, instructions: Argue.}
                  - {kind: llm, name: judge, model: scripted, instructions: Judge.}
            """
        ),
        base_dir=EXAMPLES,
    )
    desk, team, pick, polish, debate = flow.steps
    assert desk.planner.name == "desk.planner" and desk.reviewer is None
    assert team.ledger.name == "team.ledger"
    assert pick.learning and pick.classifier.name == "pick.classify"
    assert polish.until.name == "critic" and polish.max_stalls is None and polish.state
    assert debate.critic == "judge" and debate.max_turns == 4
    assert debate.selection == "manager" and debate.speaker.name == "chair"
