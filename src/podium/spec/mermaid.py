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
Each pattern's drawing is registered beside the pattern (`podium.agents.kinds`); this module
only lays them out.

Node ids are made only of letters, digits and `_` (unique per diagram, never a Mermaid
keyword such as `end`), and labels are quoted, so any agent name draws.

`to_graph` gives the same drawing as data too (nodes with their parent subgraph, edges), for
the web UI to lay out itself: both come from one walk, so the picture and the text agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from podium.agents.kinds import drawn_as

__all__ = ["Topology", "TopologyEdge", "TopologyNode", "to_graph", "to_mermaid"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")
SHAPES = {"[]": "box", "(())": "circle", "{}": "diamond", "([])": "stadium"}
"""Mermaid's brackets by the name the data gives the shape (anything else is a box)."""


@dataclass(frozen=True, slots=True)
class TopologyNode:
    """A box of the drawing, or a subgraph (`group`): a pattern holding its children."""

    id: str
    label: str
    shape: str  # box, circle, diamond, stadium; "group" for a subgraph
    parent: str | None  # the subgraph it is drawn in; None at the top

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "shape": self.shape, "parent": self.parent}


@dataclass(frozen=True, slots=True)
class TopologyEdge:
    """An arrow between two nodes (either may be a subgraph), labelled or not."""

    source: str
    target: str
    label: str | None = None
    dotted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "label": self.label,
            "dotted": self.dotted,
        }


@dataclass(frozen=True, slots=True)
class Topology:
    """One drawing of an agent: the Mermaid text and the same nodes and edges as data."""

    mermaid: str
    nodes: tuple[TopologyNode, ...]
    edges: tuple[TopologyEdge, ...]


def to_graph(agent: Any, *, direction: str = "TD") -> Topology:
    """The topology of `agent` as Mermaid text and as data, from one walk."""
    diagram = _Diagram()
    diagram.draw(agent, "")
    text = "\n".join([f"flowchart {direction}", *diagram.lines]) + "\n"
    return Topology(text, tuple(diagram.nodes), tuple(diagram.edges))


def to_mermaid(agent: Any, *, direction: str = "TD") -> str:
    """The Mermaid flowchart of `agent` and everything inside it."""
    return to_graph(agent, direction=direction).mermaid


def _clean(text: str) -> str:
    """A label on one line, as the drawing shows it."""
    return " ".join(str(text).split())


def _quote(text: str) -> str:
    return '"' + _clean(text).replace('"', "#quot;") + '"'


@dataclass(slots=True)
class _Diagram:
    lines: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    depth: int = 1
    nodes: list[TopologyNode] = field(default_factory=list)
    edges: list[TopologyEdge] = field(default_factory=list)

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
        self.nodes.append(
            TopologyNode(node, _clean(label), SHAPES.get(shape, "box"), parent or None)
        )
        return node

    def edge(self, a: str, b: str, label: str | None = None, *, dotted: bool = False) -> None:
        arrow = "-.->" if dotted else "-->"
        text = "" if label is None else f"|{_quote(label)}|"
        self.emit(f"{a} {arrow}{text} {b}")
        self.edges.append(TopologyEdge(a, b, None if label is None else _clean(label), dotted))

    # agents ----------------------------------------------------------------------------------
    def draw(self, agent: Any, parent: str) -> str:
        """Draw `agent` inside `parent`; the id to draw edges to and from. A pattern is a
        subgraph its kind draws the inside of (`Kind.draw`); anything else one box."""
        kind = drawn_as(agent)
        name = str(getattr(agent, "name", "agent"))
        if kind is None or kind.draw is None:
            label, shape = _leaf_kind(agent)
            return self.box(parent, name, f"{name} ({label})", shape)
        node = self.new_id(parent, name)
        title = f"{name} ({kind.name})"
        self.emit(f"subgraph {node}[{_quote(title)}]")
        self.nodes.append(TopologyNode(node, _clean(title), "group", parent or None))
        self.depth += 1
        self.emit("direction TB")
        kind.draw(self, agent, node)
        self.depth -= 1
        self.emit("end")
        return node

    def draw_all(self, agents: Iterable[Any], parent: str) -> list[str]:
        return [self.draw(a, parent) for a in agents]


def _leaf_kind(agent: Any) -> tuple[str, str]:
    """What to call a single agent, and its shape (people are rounded): its kind's, or the
    name of its class."""
    kind = drawn_as(agent)
    if kind is None:
        return type(agent).__name__, "[]"
    return kind.name, kind.shape
