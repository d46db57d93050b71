"""`Graph`: the escape hatch. Nodes are agents, edges may be conditional, cycles are allowed.

    g = Graph("review", max_turns=20)
    draft = g.node(writer)
    check = g.node(critic)
    g.start(draft)
    g.edge(draft, check)
    g.edge(check, draft, when=lambda review: not review.approved)
    g.edge(check, g.END)

Nodes are added with `g.node(agent)`, which returns a handle; edges join handles, so a typo is
a `NameError` in Python rather than a string that fails at run time. `g.END` ends the run.

Traversal is one node at a time and deterministic: each node gets the previous node's output
(the start node gets the graph's input); then its outgoing edges are tried in the order they
were added and the first whose `when(output)` is true is taken (an edge without `when` always
matches, so put it last: an edge added after it could never fire and is refused). For several
branches at once, make one node a `Parallel`. The graph's output is the output of the node
that took the edge to `END`.

`when` must be a pure function of the output (sync or async): a resumed run replays each
node's journaled output and takes the same edges again. Declare the nodes' output types so the
conditions see the same typed value on replay.

The graph is checked before it first runs (and by `g.validate()`): it needs a start, every
node must be reachable from it, and every reachable node must have a path to `END`; a problem
raises `UsageError` naming the graph and the nodes. At run time, an output that matches none
of its node's edges is a `RunError`, and so is running more than `max_turns` nodes (default
50): `MaxStepsExceededError` names the graph and the last nodes it went through. The walk runs on
the turn driver (`_turns`), one node per turn; a graph has no result of its own to stop
with, so a `deadline` that passes is a `RunError` too, and a call the door refuses for
budget fails the graph with that `BudgetExceededError`.

Events: `graph.edge` for every edge taken (`source`, `target`, `step`, `edge` index among the
source's edges, `conditional`), `graph.stop` when the run leaves the graph (`status`
`completed` at `END`, or the limit; `reason`, `turns`, `last` node).
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from podium.agents.base import AgentBase
from podium.agents.kinds import (
    FAILED,
    REF,
    Builder,
    Canvas,
    Loc,
    NodeFields,
    Ref,
    Spec,
    register,
)
from podium.core.bounds import SECONDS, TURNS
from podium.core.names import check_name
from podium.errors import MaxStepsExceededError, RunError, UsageError, renamed
from podium.patterns._turns import (
    Act,
    Ask,
    Halt,
    Limited,
    Limits,
    Outcomes,
    Stop,
    TurnState,
    drive,
    renamed_field,
    renamed_options,
    turn,
)

if TYPE_CHECKING:
    from podium.agents.kinds import NodeSpec
    from podium.runtime.budget import Budget
    from podium.runtime.context import RunContext
    from podium.runtime.policies import Retry

When = Callable[[Any], bool] | Callable[[Any], Awaitable[bool]]
_TRAIL = 6  # how many of the last nodes an error names


@dataclass(frozen=True, slots=True, eq=False)
class Node:
    """A handle to one node of one graph, returned by `Graph.node`."""

    label: str
    agent: Any
    owner: object  # the graph's token: a handle from another graph is refused

    def __repr__(self) -> str:
        return f"Node({self.label!r})"


@dataclass(frozen=True, slots=True)
class Edge:
    source: Node
    target: Node
    when: When | None

    @property
    def conditional(self) -> bool:
        return self.when is not None


END = Node("END", None, object())


@dataclass(slots=True)
class _Walk(TurnState):
    input: Any
    node: Node
    sender: str | None = None
    trail: deque[str] = field(default_factory=lambda: deque(maxlen=_TRAIL))


class Graph(Limited, AgentBase[Any, Any]):
    """Agents joined by (possibly conditional) edges; see the module docstring.

    Renamed option, still accepted for one release with a `DeprecationWarning`: `max_steps`
    (now `max_turns`)."""

    END: ClassVar[Node] = END

    def __init__(
        self,
        name: str,
        *,
        max_turns: int = 50,
        deadline: float | None = None,
        budget: Budget | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        description: str = "",
        **renamed: Any,
    ) -> None:
        old = renamed_options("Graph", renamed, {"max_steps": "max_turns"})
        self.limits = Limits.checked(
            f"Graph {name!r}", max_turns=old.get("max_turns", max_turns), deadline=deadline
        )
        self.budget = budget
        self._token = object()
        self._nodes: dict[str, Node] = {}
        self._edges: dict[str, list[Edge]] = {}
        self._start: Node | None = None
        self._valid = False
        self._setup(name, retry=retry, timeout=timeout, description=description)
        # Checked where a run begins (Runtime.run, or a parent's ctx.call), so a malformed
        # graph is refused before anything is journaled.
        self.check_input = self._checked_input

    @classmethod
    def build(
        cls,
        name: str,
        *,
        nodes: Mapping[str, Any] | Sequence[Any],
        edges: Sequence[Sequence[Any]],
        start: str,
        max_turns: int = 50,
        description: str = "",
    ) -> Graph:
        """A graph from plain data (for specs): nodes as agents (labelled by name) or a dict of
        label to agent; edges as `(source, target)` or `(source, target, when)` labels in
        order, `"END"` for the end; `start` a label."""
        g = cls(name, max_turns=max_turns, description=description)
        pairs = nodes.items() if isinstance(nodes, Mapping) else [(None, a) for a in nodes]
        handles = {h.label: h for h in (g.node(agent, label=label) for label, agent in pairs)}
        handles[END.label] = END

        def handle(label: Any, where: str) -> Node:
            if label not in handles:
                raise UsageError(
                    f"Graph {name!r}: {where} names node {label!r}; nodes are "
                    f"{_names(h for h in handles if h != END.label)}"
                )
            return handles[label]

        for i, edge in enumerate(edges):
            if len(edge) not in (2, 3):
                raise UsageError(f"Graph {name!r}: edge {i} must be (source, target[, when])")
            when = edge[2] if len(edge) == 3 else None
            g.edge(handle(edge[0], f"edge {i}"), handle(edge[1], f"edge {i}"), when=when)
        g.start(handle(start, "start"))
        return g

    # building ---------------------------------------------------------------------------------
    def node(self, agent: Any, *, label: str | None = None) -> Node:
        """Add `agent` as a node; `label` (default: the agent's name) tells two nodes running
        the same agent apart."""
        if not (hasattr(agent, "name") and hasattr(agent, "run")):
            raise UsageError(f"Graph {self.name!r}: {agent!r} is not an agent")
        label = check_name(agent.name if label is None else label, "node")
        if label == END.label:
            raise UsageError(f"Graph {self.name!r}: the node label 'END' is reserved")
        if label in self._nodes:
            raise UsageError(
                f"Graph {self.name!r}: there is already a node {label!r}; pass label= to add "
                "the same agent twice"
            )
        handle = Node(label, agent, self._token)
        self._nodes[label] = handle
        self._edges[label] = []
        self._valid = False
        return handle

    def edge(self, source: Node, target: Node, *, when: When | None = None) -> None:
        """Go from `source` to `target` (a node or `g.END`) when `when(output)` is true, or
        always when `when` is None."""
        self._own(source, "edge source")
        if target is not END:
            self._own(target, "edge target")
        if when is not None and not callable(when):
            raise UsageError(
                f"Graph {self.name!r}: when= of edge {source.label} -> "
                f"{target.label} must be a function of the output"
            )
        edges = self._edges[source.label]
        always = next((e for e in edges if not e.conditional), None)
        if always is not None:
            raise UsageError(
                f"Graph {self.name!r}: edge {source.label} -> {target.label} can never be "
                f"taken: the edge {source.label} -> {always.target.label} before it has no "
                "condition and always wins"
            )
        edges.append(Edge(source, target, when))
        self._valid = False

    def start(self, node: Node) -> None:
        """Where a run begins; the node gets the graph's input."""
        self._own(node, "start")
        self._start = node
        self._valid = False
        self.input_type = getattr(node.agent, "input_type", Any)  # the start node takes it

    def _own(self, node: Any, what: str) -> None:
        if node is END:
            raise UsageError(f"Graph {self.name!r}: END cannot be the {what}")
        if not isinstance(node, Node):
            raise UsageError(
                f"Graph {self.name!r}: {what} {node!r} is not a node handle; add the agent "
                "with g.node(agent) and use what it returns"
            )
        if node.owner is not self._token or self._nodes.get(node.label) is not node:
            raise UsageError(
                f"Graph {self.name!r}: {what} node {node.label!r} is not a node of this graph"
            )

    # checking ---------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise `UsageError` if the graph cannot run as built: no start, nodes that cannot be
        reached, nodes with no way to END."""
        if self._valid:
            return
        if not self._nodes:
            raise UsageError(f"Graph {self.name!r} has no nodes; add them with g.node(agent)")
        if self._start is None:
            raise UsageError(f"Graph {self.name!r} has no start; call g.start(node)")
        reachable = self._walk([self._start.label], self._successors())
        lost = [n for n in self._nodes if n not in reachable]
        if lost:
            raise UsageError(
                f"Graph {self.name!r}: node(s) {_names(lost)} cannot be reached from the start "
                f"node {self._start.label!r}"
            )
        finishing = self._walk([END.label], self._predecessors())
        stuck = [n for n in self._nodes if n not in finishing]
        if stuck:
            raise UsageError(
                f"Graph {self.name!r}: no path to END from node(s) {_names(stuck)}; "
                "add an edge to g.END"
            )
        self._valid = True

    def _checked_input(self, value: Any) -> Any:
        self.validate()
        return value

    def _successors(self) -> dict[str, list[str]]:
        return {n: [e.target.label for e in edges] for n, edges in self._edges.items()}

    def _predecessors(self) -> dict[str, list[str]]:
        back: dict[str, list[str]] = {}
        for n, edges in self._edges.items():
            for e in edges:
                back.setdefault(e.target.label, []).append(n)
        return back

    @staticmethod
    def _walk(roots: Iterable[str], links: dict[str, list[str]]) -> set[str]:
        seen = set(roots)
        todo = deque(seen)
        while todo:
            for nxt in links.get(todo.popleft(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def topology(self) -> dict[str, Any]:
        """The graph as plain data (for diagrams and specs): nodes, start and edges in order,
        each edge with the name of its condition."""
        return {
            "name": self.name,
            "start": None if self._start is None else self._start.label,
            "nodes": {label: n.agent.name for label, n in self._nodes.items()},
            "edges": [
                {
                    "source": e.source.label,
                    "target": e.target.label,
                    "when": None if e.when is None else getattr(e.when, "__name__", repr(e.when)),
                }
                for edges in self._edges.values()
                for e in edges
            ],
        }

    max_steps = renamed_field("max_steps", "limits.max_turns")

    # running ----------------------------------------------------------------------------------
    async def run(self, input: Any, ctx: RunContext) -> Any:
        self.validate()
        assert self._start is not None
        walk = _Walk(input=input, node=self._start)
        stop = await drive(ctx, "graph", partial(self._decide, ctx), walk, self.limits)
        return stop.output

    async def _decide(
        self, ctx: RunContext, walk: _Walk, last: Outcomes | Halt | None
    ) -> Act | Stop:
        """The edge the node's output takes: the next node's turn, or END."""
        if isinstance(last, Halt):
            return self._halted(walk, last)
        if last is None:
            return turn(Ask(walk.node.agent, walk.input))
        node, value = walk.node, last[0]
        walk.trail.append(node.label)
        index, edge = await self._choose(node, value, ctx)
        ctx.emit(
            "graph.edge",
            source=node.label,
            target=edge.target.label,
            step=walk.turns,
            edge=index,
            conditional=edge.conditional,
        )
        if edge.target is END:
            return Stop("completed", value, "reached END", {"last": node.label})
        walk.node, walk.sender = edge.target, node.agent.name
        return turn(Ask(edge.target.agent, value, sender=walk.sender))

    def _halted(self, walk: _Walk, halt: Halt) -> Stop:
        """A graph has no partial result: a limit fails it, naming the last nodes."""
        trail = [*walk.trail, walk.node.label + " (next)"]
        error: BaseException
        if halt.status == "max_turns":
            error = MaxStepsExceededError(self.name, int(self.limits.max_turns or 0), trail)
        elif halt.error is not None:
            error = halt.error
        else:
            error = RunError(
                f"Graph {self.name!r}: {halt.reason} before END; last nodes: {' -> '.join(trail)}"
            )
        data = {"last": walk.trail[-1] if walk.trail else None}
        return Stop(halt.status, None, halt.reason, data, error)

    async def _choose(self, node: Node, output: Any, ctx: RunContext) -> tuple[int, Edge]:
        """The first of the node's edges whose condition holds for its output."""
        edges = self._edges[node.label]
        for i, edge in enumerate(edges):
            if edge.when is None:
                return i, edge
            try:
                ok = edge.when(output)
                if inspect.isawaitable(ok):
                    ok = await ok
            except Exception as e:
                raise RunError(
                    f"Graph {self.name!r} at {ctx.key}: the condition of edge {node.label} -> "
                    f"{edge.target.label} raised {type(e).__name__}: {e}"
                ) from e
            if ok:
                return i, edge
        raise RunError(
            f"Graph {self.name!r} at {ctx.key}: the output of node {node.label!r} matched none "
            f"of its edges (to {_names(e.target.label for e in edges)}); add an edge without "
            "when= as the last one to say where everything else goes"
        )


def _names(labels: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in labels)


# YAML: `kind: graph` --------------------------------------------------------------------------
class EdgeSpec(Spec):
    """From one node id to another (or `END`), when `when` (`python:module:function` of the
    source's output) says so; without `when` the edge always matches."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    source: str = Field(alias="from", min_length=1)
    target: str = Field(alias="to", min_length=1)
    when: Ref | None = Field(None, description=REF)


class GraphSpec(NodeFields):
    """Nodes by id, edges in order (the first matching edge is taken), a `start` id."""

    kind: Literal["graph"]
    nodes: dict[str, NodeSpec] = Field(min_length=1)
    edges: list[EdgeSpec] = Field(min_length=1)
    start: str = Field(min_length=1)
    max_turns: int = TURNS.field(50, description="nodes run at most")
    deadline: float | None = SECONDS.field(None, description="seconds for the whole graph")


def _build(b: Builder, spec: GraphSpec, loc: Loc) -> Graph | None:
    nodes = {k: b.node(v, (*loc, "nodes", k)) for k, v in spec.nodes.items()}
    ids = list(spec.nodes)
    ok = b.known(spec.start, ids, (*loc, "start"), "node")
    edges: list[tuple[str, str, Any]] = []
    for i, e in enumerate(spec.edges):
        where = (*loc, "edges", i)
        good = b.known(e.source, ids, (*where, "from"), "node")
        good = b.known(e.target, [*ids, "END"], (*where, "to"), "node") and good
        when = b.function(e.when, (*where, "when"))
        ok = ok and good and when is not FAILED
        edges.append((e.source, e.target, when))
    if not ok or any(n is None for n in nodes.values()):
        return None

    def make() -> Graph:
        g = Graph(spec.name, max_turns=spec.max_turns, deadline=spec.deadline, **b.common(spec))
        handles = {k: g.node(agent, label=k) for k, agent in nodes.items()}
        handles["END"] = g.END
        for source, target, when in edges:
            g.edge(handles[source], handles[target], when=when)
        g.start(handles[spec.start])
        g.validate()  # unreachable nodes or no way to END: a problem now, not at run time
        return g

    return b.construct(loc, make)


def _draw(d: Canvas, agent: Graph, me: str) -> None:
    topology = agent.topology()
    handles = agent._nodes
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


register(GraphSpec, _build, draws=Graph, draw=_draw, renamed={"max_steps": "max_turns"})


__getattr__ = renamed(__name__, ["MaxStepsExceeded"])
