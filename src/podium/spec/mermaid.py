"""An agent's topology as a Mermaid `flowchart` (`podium graph FILE`).

    flowchart TD
      subgraph support["support (sequential)"]
        support__understand["understand (python)"]
        ...
      end

The diagram is drawn from the built agents, not from the YAML, so a `python:` reference to a
pattern written in Python is drawn in full too. Every pattern is a subgraph holding its
children; edges show what the pattern does with them: the order of a sequence, fan-out and
merge, labelled routes, graph edges with their conditions, handoff routes, a loop's way back.

Node ids are made only of letters, digits and `_` (unique per diagram, never a Mermaid
keyword such as `end`), and labels are quoted, so any agent name draws.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

__all__ = ["to_mermaid"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


def to_mermaid(agent: Any, *, direction: str = "TD") -> str:
    """The Mermaid flowchart of `agent` and everything inside it."""
    diagram = _Diagram()
    diagram.draw(agent, "")
    return "\n".join([f"flowchart {direction}", *diagram.lines]) + "\n"


def _quote(text: str) -> str:
    cleaned = " ".join(str(text).split()).replace('"', "#quot;")
    return f'"{cleaned}"'


def _fn_name(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or "condition")


@dataclass(slots=True)
class _Diagram:
    lines: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    depth: int = 1

    # primitives ------------------------------------------------------------------------------
    def new_id(self, parent: str, name: str) -> str:
        base = _UNSAFE.sub("_", name).strip("_") or "agent"
        base = f"{parent}__{base}" if parent else f"n_{base}"
        candidate, n = base, 1
        while candidate in self.ids:
            n += 1
            candidate = f"{base}_{n}"
        self.ids.add(candidate)
        return candidate

    def emit(self, line: str) -> None:
        self.lines.append("  " * self.depth + line)

    def box(self, parent: str, name: str, label: str, shape: str = "[]") -> str:
        """A plain node; `shape` is Mermaid's pair of brackets (`[]`, `(())`, `{}`, ...)."""
        node = self.new_id(parent, name)
        half = len(shape) // 2
        self.emit(f"{node}{shape[:half]}{_quote(label)}{shape[half:]}")
        return node

    def edge(self, a: str, b: str, label: str | None = None, *, dotted: bool = False) -> None:
        arrow = "-.->" if dotted else "-->"
        text = "" if label is None else f"|{_quote(label)}|"
        self.emit(f"{a} {arrow}{text} {b}")

    # agents ----------------------------------------------------------------------------------
    def draw(self, agent: Any, parent: str) -> str:
        """Draw `agent` inside `parent`; the id to draw edges to and from."""
        drawer = _drawer_for(agent)
        name = str(getattr(agent, "name", "agent"))
        if drawer is None:
            kind, shape = _leaf_kind(agent)
            return self.box(parent, name, f"{name} ({kind})", shape)
        kind, draw_inside = drawer
        node = self.new_id(parent, name)
        self.emit(f"subgraph {node}[{_quote(f'{name} ({kind})')}]")
        self.depth += 1
        self.emit("direction TB")
        draw_inside(self, agent, node)
        self.depth -= 1
        self.emit("end")
        return node

    def draw_all(self, agents: Iterable[Any], parent: str) -> list[str]:
        return [self.draw(a, parent) for a in agents]


# one function per pattern ------------------------------------------------------------------
def _sequential(d: _Diagram, agent: Any, me: str) -> None:
    steps = d.draw_all(agent.steps, me)
    for a, b in pairwise(steps):
        d.edge(a, b)


def _parallel(d: _Diagram, agent: Any, me: str) -> None:
    fan = d.box(me, "fan_out", "fan out", "(())")
    merge = agent.merge if isinstance(agent.merge, str) else _merge_name(agent.merge)
    join = d.box(me, "merge", f"merge: {merge}", "(())")
    for branch in d.draw_all(agent.branches, me):
        d.edge(fan, branch)
        d.edge(branch, join)


def _merge_name(merge: Any) -> str:
    return str(getattr(merge, "name", None) or _fn_name(merge))


def _router(d: _Diagram, agent: Any, me: str) -> None:
    choose = d.box(me, "classify", "classify", "{}")
    for route, target in agent.routes.items():
        d.edge(choose, d.draw(target, me), route)
    if agent.fallback is not None:
        d.edge(choose, d.draw(agent.fallback, me), "fallback", dotted=True)


def _supervisor(d: _Diagram, agent: Any, me: str) -> None:
    planner = d.draw(agent.planner, me)
    reviewer = None if agent.reviewer is None else d.draw(agent.reviewer, me)
    synthesizer = None if agent.synthesizer is None else d.draw(agent.synthesizer, me)
    for worker_name, worker in agent.workers.items():
        node = d.draw(worker, me)
        d.edge(planner, node, f"assigns {worker_name}")
        if reviewer is not None:
            d.edge(node, reviewer, "result")
    if reviewer is not None:
        d.edge(reviewer, planner, "retry / reassign", dotted=True)
    if synthesizer is not None:
        d.edge(reviewer or planner, synthesizer, "accepted")


def _magentic(d: _Diagram, agent: Any, me: str) -> None:
    ledger = d.draw(agent.ledger, me)
    progress = d.draw(agent.progress, me)
    d.edge(ledger, progress, "task ledger")
    d.edge(progress, ledger, "re-plan", dotted=True)
    for name, participant in agent.participants.items():
        node = d.draw(participant, me)
        d.edge(progress, node, f"next: {name}")
        d.edge(node, progress, dotted=True)
    if agent.answer is not None:
        d.edge(progress, d.draw(agent.answer, me), "satisfied")


def _groupchat(d: _Diagram, agent: Any, me: str) -> None:
    how = agent.selection if agent.selection != "function" else _fn_name(agent.speaker)
    chat = d.box(me, "transcript", f"transcript (speaker: {how})", "(())")
    for name, participant in agent.participants.items():
        node = d.draw(participant, me)
        d.edge(chat, node, "critic" if name == agent.critic else "turn")
        d.edge(node, chat, dotted=True)
    if agent.selection == "manager":
        d.edge(d.draw(agent.speaker, me), chat, "picks speaker", dotted=True)
    if agent.fallback is not None:
        d.edge(chat, d.draw(agent.fallback, me), "deadlock", dotted=True)


def _handoff(d: _Diagram, agent: Any, me: str) -> None:
    start = d.box(me, "start", "start", "(())")
    ids = {name: d.draw(member, me) for name, member in agent.agents.items()}
    d.edge(start, ids[agent.start])
    for sender, receivers in agent.routes.items():
        for receiver in receivers:
            d.edge(ids[sender], ids[receiver], "handoff")


def _loop(d: _Diagram, agent: Any, me: str) -> None:
    body = d.draw(agent.body, me)
    until = agent.until
    if until is None:
        d.edge(body, body, f"again (max {agent.max_turns})", dotted=True)
        return
    if hasattr(until, "name") and hasattr(until, "run"):
        check = d.draw(until, me)
    else:
        check = d.box(me, "until", f"until: {_fn_name(until)}", "{}")
    d.edge(body, check)
    d.edge(check, body, f"again (max {agent.max_turns})", dotted=True)


def _graph(d: _Diagram, agent: Any, me: str) -> None:
    topology = agent.topology()
    handles = getattr(agent, "_nodes", {})
    ids = {
        label: d.draw(handles[label].agent, me)
        if label in handles
        else d.box(me, label, f"{label} ({name})")
        for label, name in topology["nodes"].items()
    }
    end = d.box(me, "END", "END", "(())")
    if topology["start"] is not None:
        d.edge(d.box(me, "start", "start", "(())"), ids[topology["start"]])
    for e in topology["edges"]:
        target = end if e["target"] == "END" else ids[e["target"]]
        d.edge(ids[e["source"]], target, None if e["when"] is None else f"when {e['when']}")


def _adaptive(d: _Diagram, agent: Any, me: str) -> None:
    how = ["classifier"] if agent.classifier is not None else []
    how += ["learned"] if agent.learning else []
    choose = d.box(me, "choose", f"choose strategy ({' + '.join(how)})", "{}")
    for key, strategy in agent.strategies.items():
        d.edge(choose, d.draw(strategy, me), key)


_Draw = Callable[[_Diagram, Any, str], None]


def _drawer_for(agent: Any) -> tuple[str, _Draw] | None:
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

    table: list[tuple[type[Any], str, _Draw]] = [
        (Sequential, "sequential", _sequential),
        (Parallel, "parallel", _parallel),
        (Router, "router", _router),
        (Supervisor, "supervisor", _supervisor),
        (Magentic, "magentic", _magentic),
        (GroupChat, "groupchat", _groupchat),
        (Handoff, "handoff", _handoff),
        (Loop, "loop", _loop),
        (Graph, "graph", _graph),
        (Adaptive, "adaptive", _adaptive),
    ]
    for cls, kind, draw in table:
        if isinstance(agent, cls):
            return kind, draw
    return None


def _leaf_kind(agent: Any) -> tuple[str, str]:
    """What to call a single agent, and its shape: people are rounded, models boxed."""
    from podium.agents.function import FunctionAgent
    from podium.agents.human import HumanAgent, HumanApproval
    from podium.agents.llm import LLMAgent

    if isinstance(agent, LLMAgent):
        return "llm", "[]"
    if isinstance(agent, HumanApproval):
        return "approval", "([])"
    if isinstance(agent, HumanAgent):
        return "human", "([])"
    if isinstance(agent, FunctionAgent):
        return "python", "[]"
    return type(agent).__name__, "[]"
