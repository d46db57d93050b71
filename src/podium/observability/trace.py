"""A run as a tree: which agent called which, how it went, how long it took, what it cost.

`build_trace(steps, events)` turns journal rows (and the run's events, for retries and
pattern decisions) into plain `TraceNode`s that tests and tools can read; `render_trace`
draws them as a rich `Tree` for `podium trace`. Tokens roll up: a node's `total_usage` is
its own plus all of its descendants'.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from podium.core.records import ZERO_USAGE, Event, StepRecord, StepStatus, Usage

if TYPE_CHECKING:
    from rich.tree import Tree

    from podium.core.records import RunRecord

__all__ = ["TraceNode", "build_trace", "render_trace", "trace_to_dicts"]

_STEP_EVENTS = frozenset(
    {
        "step.started",
        "step.completed",
        "step.failed",
        "step.suspended",
        "step.cancelled",
        "step.replayed",
        "step.retried",
    }
)


@dataclass(slots=True)
class TraceNode:
    """One step of a run and the steps it made."""

    key: str
    agent: str
    kind: str
    status: str
    attempts: int = 1
    duration: float | None = None
    usage: Usage = ZERO_USAGE
    total_usage: Usage = ZERO_USAGE
    error: str | None = None
    retries: list[str] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    replayed: bool = False
    cached: bool = False  # answered from the cache (`cache.hit`): no call was made
    saved_usd: float = 0.0  # what that answer would have cost
    children: list[TraceNode] = field(default_factory=list)

    def walk(self) -> Iterable[TraceNode]:
        """This node and every descendant, depth first, in the order they started."""
        yield self
        for child in self.children:
            yield from child.walk()

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "agent": self.agent,
            "kind": self.kind,
            "status": self.status,
            "attempts": self.attempts,
            "duration": self.duration,
            "usage": self.usage.to_dict(),
            "total_usage": self.total_usage.to_dict(),
            "error": self.error,
            "retries": list(self.retries),
            "notes": list(self.notes),
            "replayed": self.replayed,
            "cached": self.cached,
            "saved_usd": round(self.saved_usd, 10),
            "children": [c.to_dict() for c in self.children],
        }


def build_trace(steps: Sequence[StepRecord], events: Sequence[Event] = ()) -> list[TraceNode]:
    """The run's roots (normally one: the root agent), each with its subtree.

    A step whose parent has no journal row hangs under its nearest recorded ancestor, so a
    partial journal (a crashed run) still gives a tree.
    """
    nodes: dict[str, TraceNode] = {}
    for s in steps:
        nodes[s.key] = TraceNode(
            key=s.key,
            agent=s.agent,
            kind=s.kind,
            status=str(s.status),
            attempts=s.attempt,
            duration=s.duration,
            usage=s.usage or ZERO_USAGE,
            error=s.error,
        )
    _attach_events(nodes, events)
    roots: list[TraceNode] = []
    for node in nodes.values():
        parent = _nearest_ancestor(node.key, nodes)
        (roots if parent is None else parent.children).append(node)
    for root in roots:
        _roll_up(root)
    return roots


# Security events of a call that wrote no step row (a tool call the policy refused never
# reaches the journal): shown under the nearest step that did, naming the call.
_ROWLESS = ("policy.", "approval.", "taint.", "guard.")


def _attach_events(nodes: dict[str, TraceNode], events: Sequence[Event]) -> None:
    for e in events:
        node = nodes.get(e.key)
        if node is None:
            if e.key and e.kind.startswith(_ROWLESS):
                near = _nearest_ancestor(e.key, nodes)
                if near is not None:
                    call = e.key.rsplit("/", 1)[-1]
                    near.notes.append({"kind": e.kind, "call": call, **(e.data or {})})
            continue
        if e.kind == "step.retried":
            node.retries.append(str((e.data or {}).get("error", "")))
        elif e.kind == "step.replayed":
            node.replayed = True
        elif e.kind == "cache.hit":
            node.cached = True
            node.saved_usd += float((e.data or {}).get("saved_usd", 0.0))
        elif e.kind not in _STEP_EVENTS and not e.kind.startswith("run."):
            node.notes.append({"kind": e.kind, **(e.data or {})})


def _nearest_ancestor(key: str, nodes: dict[str, TraceNode]) -> TraceNode | None:
    while "/" in key:
        key = key.rsplit("/", 1)[0]
        if key in nodes:
            return nodes[key]
    return None


def _roll_up(root: TraceNode) -> Usage:
    """Set `total_usage` on every node below and including `root` (iteratively: a long
    chain must not hit the recursion limit)."""
    order: list[TraceNode] = []
    stack = [root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(node.children)
    for node in reversed(order):  # children before parents
        total = node.usage
        for child in node.children:
            total = total + child.total_usage
        node.total_usage = total
    return root.total_usage


def trace_to_dicts(roots: Sequence[TraceNode]) -> list[dict[str, Any]]:
    return [r.to_dict() for r in roots]


# rendering ---------------------------------------------------------------------------------
_STYLE = {
    str(StepStatus.COMPLETED): ("✓", "green"),
    str(StepStatus.FAILED): ("✗", "red"),
    str(StepStatus.SUSPENDED): ("⏸", "yellow"),
    str(StepStatus.STARTED): ("…", "cyan"),
}


def describe(node: TraceNode) -> str:
    """The one-line label of a node, in rich markup."""
    from rich.markup import escape

    mark, color = _STYLE.get(node.status, ("?", "white"))
    parts = [f"[{color}]{mark}[/] [bold]{escape(node.agent)}[/]"]
    if node.kind != "agent":
        parts.append(f"[dim]({node.kind})[/]")
    parts.append(f"[{color}]{node.status}[/]")
    if node.duration is not None:
        parts.append(_seconds(node.duration))
    if node.attempts > 1:
        parts.append(f"[yellow]{node.attempts} attempts[/]")
    tokens = node.total_usage.total_tokens
    if tokens:
        own = node.usage.total_tokens
        shown = f"{tokens} tok" if own in (0, tokens) else f"{tokens} tok ({own} own)"
        parts.append(f"[magenta]{shown}[/]")
    usd = node.total_usage.usd
    if usd:
        parts.append(f"[magenta]${usd:,.4f}[/]")
    if node.cached:
        saved = f" (saved ${node.saved_usd:,.4f})" if node.saved_usd else ""
        parts.append(f"[cyan]cached{saved}[/]")
    if node.replayed:
        parts.append("[dim]replayed[/]")
    return " ".join(parts)


def render_trace(roots: Sequence[TraceNode], run: RunRecord | None = None) -> Tree:
    """A rich `Tree`: the run at the top, then each step with its retries, pattern decisions
    (`route.decision`, `parallel.gap`) and error under it."""
    from rich.markup import escape
    from rich.tree import Tree

    if run is None:
        top = Tree("[bold]run[/]")
    else:
        tokens, usd = run.usage.total_tokens, run.usage.usd
        top = Tree(
            f"[bold]run {escape(run.run_id)}[/] {escape(run.agent)} [dim]{run.status}[/]"
            + (f" [magenta]{tokens} tok[/]" if tokens else "")
            + (f" [magenta]${usd:,.4f}[/]" if usd else "")
        )
    stack: list[tuple[Tree, TraceNode]] = [(top, r) for r in reversed(roots)]
    while stack:
        parent, node = stack.pop()
        branch = parent.add(describe(node))
        for i, error in enumerate(node.retries, 1):
            branch.add(f"[yellow]↻ retry {i}[/] [dim]{escape(error)}[/]")
        for note in node.notes:
            branch.add(f"[blue]• {escape(_note(note))}[/]")
        if node.error and node.status != str(StepStatus.COMPLETED):
            branch.add(f"[red]{escape(node.error)}[/]")
        stack.extend((branch, c) for c in reversed(node.children))
    return top


def _note(note: dict[str, Any]) -> str:
    rest = {k: v for k, v in note.items() if k != "kind" and v not in (None, "")}
    inner = ", ".join(f"{k}={v}" for k, v in rest.items())
    return f"{note['kind']}: {inner}" if inner else str(note["kind"])


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"
