"""`podium graph`: the topology as a Mermaid flowchart that is well formed (balanced
subgraphs, safe ids, edges only between declared ids) and shows each pattern's structure."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from podium import Parallel, Sequential, agent
from podium.spec.loader import load_yaml
from podium.spec.mermaid import to_graph, to_mermaid

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "yaml"
ID = r"[A-Za-z_][A-Za-z0-9_]*"
NODE = re.compile(rf"^({ID})(\[|\(|\{{)")
SUBGRAPH = re.compile(rf"^subgraph ({ID})\[\"[^\"]*\"\]$")
EDGE = re.compile(rf"^({ID}) (-->|-\.->)(\|\"[^\"]*\"\|)? ({ID})$")


def check_wellformed(text: str) -> tuple[set[str], list[tuple[str, str, str | None]]]:
    """Parse the diagram line by line; return the declared ids and the edges."""
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] in ("flowchart TD", "flowchart LR")
    declared: set[str] = set()
    edges: list[tuple[str, str, str | None]] = []
    depth = 0
    for line in lines[1:]:
        if line == "end":
            depth -= 1
            assert depth >= 0, "an `end` without its subgraph"
        elif m := SUBGRAPH.match(line):
            depth += 1
            declared.add(m[1])
        elif m := EDGE.match(line):
            label = m[3][2:-2] if m[3] else None
            edges.append((m[1], m[4], label))
        elif m := NODE.match(line):
            assert line.endswith(("]", ")", "}")), line
            declared.add(m[1])
        else:
            assert line == "direction TB", f"unexpected line {line!r}"
    assert depth == 0, "unbalanced subgraph/end"
    assert "end" not in {i.lower() for i in declared}
    for a, b, _ in edges:
        assert a in declared and b in declared, (a, b)
    return declared, edges


@pytest.mark.parametrize("file", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_draws_well_formed(file: Path) -> None:
    declared, edges = check_wellformed(to_mermaid(load_yaml(file)))
    assert declared and (edges or file.stem in ("human",))


def labels(text: str) -> set[tuple[str, str, str | None]]:
    return set(check_wellformed(text)[1])


def test_graph_edges_with_conditions() -> None:
    text = to_mermaid(load_yaml(EXAMPLES / "graph.yaml"))
    edges = labels(text)
    assert ("n_review__draft", "n_review__check", None) in edges
    assert ("n_review__check", "n_review__draft", "when needs_work") in edges
    assert ("n_review__check", "n_review__END", None) in edges
    assert ("n_review__start", "n_review__draft", None) in edges
    assert 'subgraph n_review["review (graph)"]' in text


def test_router_routes_are_labelled_and_fallback_dotted() -> None:
    text = to_mermaid(load_yaml(EXAMPLES / "router.yaml"))
    edges = labels(text)
    assert ("n_desk__classify", "n_desk__billing", "billing") in edges
    assert ("n_desk__classify", "n_desk__returns", "returns") in edges
    assert 'n_desk__classify -.->|"fallback"| n_desk__frontline' in text
    assert 'n_desk__frontline["frontline (llm)"]' in text


def test_handoff_routes_and_sequence_and_people() -> None:
    edges = labels(to_mermaid(load_yaml(EXAMPLES / "handoff.yaml")))
    assert ("n_support__triage", "n_support__invoices", "handoff") in edges
    assert ("n_support__invoices", "n_support__triage", "handoff") in edges
    assert ("n_support__start", "n_support__triage", None) in edges
    text = to_mermaid(load_yaml(EXAMPLES / "approval.yaml"))
    edges = labels(text)
    assert ("n_claim__propose", "n_claim__approve_payment", None) in edges
    assert ("n_claim__approve_payment", "n_claim__pay", None) in edges
    assert 'n_claim__approve_payment(["approve_payment (approval)"])' in text


def test_nested_patterns_are_nested_subgraphs() -> None:
    text = to_mermaid(load_yaml(EXAMPLES / "adaptive.yaml"))
    declared, edges = check_wellformed(text)
    assert "n_solve__crew" in declared
    assert ("n_solve__choose", "n_solve__crew", "team") in edges
    assert ("n_solve__crew__fan_out", "n_solve__crew__team", None) in edges
    lines = [line.strip() for line in text.splitlines()]
    outer, inner = (
        lines.index('subgraph n_solve["solve (adaptive)"]'),
        lines.index('subgraph n_solve__crew["crew (parallel)"]'),
    )
    assert outer < inner


def test_odd_names_are_sanitized_and_quoted() -> None:
    @agent(name="end")
    def ending(x: str) -> str:
        return x

    @agent(name="say_hi")
    def hi(x: str) -> str:
        return x

    flow = Sequential("a-flow", [Parallel("fan", [ending, ending]), hi, ending])
    text = to_mermaid(flow, direction="LR")
    declared, edges = check_wellformed(text)
    assert len(edges) == 2 + 2 + 2  # fan out and merge, twice; two sequence edges
    assert text.startswith("flowchart LR\n")
    ends = {d for d in declared if d.split("__")[-1].startswith("end")}
    assert ends == {"n_a_flow__fan__end", "n_a_flow__fan__end_2", "n_a_flow__end"}
    assert len(declared) == len(set(declared))
    assert 'subgraph n_a_flow["a-flow (sequential)"]' in text


BRACKETS = {"[": "box", "((": "circle", "{": "diamond", "([": "stadium"}
LEAF = re.compile(rf'^({ID})(\(\[|\(\(|\[|\{{)"([^"]*)"(\]\)|\)\)|\]|\}})$')
ARROW = re.compile(rf'^({ID}) (-->|-\.->)(?:\|"([^"]*)"\|)? ({ID})$')


def read_back(text: str) -> tuple[set[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The nodes (id, label, shape, parent) and edges (source, target, label, dotted) a
    Mermaid text declares, read from the text alone."""
    nodes: set[tuple[Any, ...]] = set()
    edges: list[tuple[Any, ...]] = []
    parents: list[str] = []
    for line in (line.strip() for line in text.splitlines()[1:]):
        parent = parents[-1] if parents else None
        if line == "end":
            parents.pop()
        elif m := SUBGRAPH.match(line):
            label = line.split("[", 1)[1][1:-2]
            nodes.add((m[1], label.replace("#quot;", '"'), "group", parent))
            parents.append(m[1])
        elif m := ARROW.match(line):
            label = None if m[3] is None else m[3].replace("#quot;", '"')
            edges.append((m[1], m[4], label, m[2] == "-.->"))
        elif m := LEAF.match(line):
            nodes.add((m[1], m[3].replace("#quot;", '"'), BRACKETS[m[2]], parent))
        else:
            assert line == "direction TB", line
    return nodes, edges


@pytest.mark.parametrize("file", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_the_data_is_the_drawing(file: Path) -> None:
    """`to_graph`'s nodes and edges are exactly what its Mermaid text declares."""
    topology = to_graph(load_yaml(file), direction="LR")
    assert topology.mermaid == to_mermaid(load_yaml(file), direction="LR")
    nodes, edges = read_back(topology.mermaid)
    data_nodes = {(n.id, n.label, n.shape, n.parent) for n in topology.nodes}
    assert len(topology.nodes) == len(data_nodes)  # ids are unique
    assert data_nodes == nodes
    assert [(e.source, e.target, e.label, e.dotted) for e in topology.edges] == edges
    ids = {n.id for n in topology.nodes}
    assert all(n.parent is None or n.parent in ids for n in topology.nodes)


def test_the_data_keeps_odd_labels_and_dotted_routes() -> None:
    @agent(name="end")
    def hi(x: str) -> str:
        return x

    topology = to_graph(Sequential("outer", [Parallel("fan", [hi, hi]), hi]))
    (fan,) = [n for n in topology.nodes if n.label == "fan (parallel)"]
    assert fan.shape == "group" and fan.parent == "n_outer"
    inside = {n.id: n.label for n in topology.nodes if n.parent == fan.id}
    assert inside["n_outer__fan__end"].startswith("end (") and "n_outer__fan__end_2" in inside
    assert {n.shape for n in topology.nodes if n.parent == fan.id} == {"circle", "box"}
    read_nodes, _ = read_back(topology.mermaid)
    assert {(n.id, n.label, n.shape, n.parent) for n in topology.nodes} == read_nodes
    router = to_graph(load_yaml(EXAMPLES / "router.yaml"))
    (fallback,) = [e for e in router.edges if e.label == "fallback"]
    assert fallback.dotted and fallback.target == "n_desk__frontline"
