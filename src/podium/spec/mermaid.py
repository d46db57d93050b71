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
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from podium.agents.kinds import drawn_as

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
        """Draw `agent` inside `parent`; the id to draw edges to and from. A pattern is a
        subgraph its kind draws the inside of (`Kind.draw`); anything else one box."""
        kind = drawn_as(agent)
        name = str(getattr(agent, "name", "agent"))
        if kind is None or kind.draw is None:
            label, shape = _leaf_kind(agent)
            return self.box(parent, name, f"{name} ({label})", shape)
        node = self.new_id(parent, name)
        self.emit(f"subgraph {node}[{_quote(f'{name} ({kind.name})')}]")
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
