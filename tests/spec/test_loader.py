"""The YAML loader: the first three patterns and LLM agents built from a spec, and every
problem in a bad spec reported at once with its path and line."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest

from podium import Parallel, Runtime, Sequential, SpecError, TargetError
from podium.agents.llm import LLMAgent
from podium.core.targets import load_target
from podium.patterns.router import Router
from podium.spec.loader import SpecProblemsError, load_yaml, load_yaml_text

AGENTS = """
from pydantic import BaseModel
from podium import agent

@agent
def understand(text: str) -> str:
    return text.upper()

@agent
async def inventory(text: str) -> dict:
    return {"stock": len(text)}

@agent
async def pricing(text: str) -> dict:
    return {"price": 9.5}

@agent
def billing(x) -> str:
    return "billing"

@agent
def returns(x) -> str:
    return "returns"

def classify(x):
    return ("billing", 0.9) if "INVOICE" in str(x) else ("returns", 0.3)

def first(results):
    return sorted(results)[0]

class Summary(BaseModel):
    text: str

not_an_agent = 42
"""


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, str]:
    """A folder with an agents file; returns it and a module name unique to this test."""
    module = f"flowagents_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(AGENTS)
    return tmp_path, module


def write(folder: Path, text: str, name: str = "flow.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


async def test_sequential_with_parallel_router_and_llm_runs(project: tuple[Path, str]) -> None:
    folder, mod = project
    path = write(
        folder,
        f"""
        name: support
        kind: sequential
        steps:
          - python: {mod}.py:understand
          - kind: parallel
            name: checks
            min_success: 1
            branch_timeout: 5
            merge: python:{mod}:first
            branches:
              - python: {mod}:inventory
              - python: {mod}:pricing
          - kind: router
            name: front
            threshold: 0.6
            classifier: {{python: {mod}:classify}}
            routes: {{billing: {{python: {mod}:billing}}, returns: {{python: {mod}:returns}}}}
            fallback: {{python: {mod}:returns}}
          - kind: llm
            name: summarize
            model: scripted
            instructions: Summarize.
        """,
    )
    flow = load_yaml(path)
    assert isinstance(flow, Sequential)
    assert flow.name == "support"
    assert flow.target == str(path.resolve())
    checks, front, summarize = flow.steps[1:]
    assert isinstance(checks, Parallel) and checks.min_success == 1
    assert checks.branch_timeout == 5
    assert isinstance(front, Router) and front.threshold == 0.6
    assert front.fallback is not None and front.fallback.name == "returns"
    assert isinstance(summarize, LLMAgent)

    result = await Runtime("memory://").run(flow, "an invoice")
    result.raise_for_status()
    # parallel output is a ParallelResult; the classifier sees it and is unsure -> fallback
    assert result.output == "(scripted echo) returns"


async def test_rules_router_and_vote(project: tuple[Path, str]) -> None:
    folder, mod = project
    path = write(
        folder,
        f"""
        name: front
        kind: router
        rules:
          - {{route: billing, keywords: [invoice, refund]}}
        routes:
          billing:
            kind: parallel
            name: panel
            merge: vote
            branches: [{{python: {mod}:billing}}, {{python: {mod}:billing}}]
          returns: {{python: {mod}:returns}}
        fallback: {{python: {mod}:returns}}
        """,
    )
    rt = Runtime("memory://")
    routed = await rt.run(load_yaml(path), "please refund me")
    assert routed.output.value == "billing"
    other = await rt.run(load_yaml(path), "hello")
    assert other.output == "returns"


def test_load_target_reads_yaml(project: tuple[Path, str]) -> None:
    folder, mod = project
    path = write(folder, f"name: one\nkind: sequential\nsteps: [{{python: {mod}:billing}}]\n")
    assert load_target(str(path)).name == "one"


def test_every_problem_is_listed_with_path_and_line(project: tuple[Path, str]) -> None:
    folder, mod = project
    path = write(
        folder,
        f"""\
        name: support
        kind: sequential
        steps:
          - python: {mod}:understand
          - kind: parallel
            name: checks
            merge: nope
            branches:
              - python: no_such_module_xyz:x
              - python: {mod}:not_an_agent
              - pyton: {mod}:billing
          - kind: whirl
          - kind: llm
            instructions: hi
        """,
    )
    with pytest.raises(SpecError) as info:
        load_yaml(path)
    err = info.value
    assert isinstance(err, SpecProblemsError)
    found = {(p.path, p.line) for p in err.problems}
    assert ("steps[1].merge", 7) in found
    assert ("steps[1].branches[0].python", 9) in found
    assert ("steps[1].branches[1].python", 10) in found
    assert ("steps[1].branches[2].pyton", 11) in found
    assert ("steps[2]", 12) in found
    assert ("steps[3].name", 13) in found
    text = str(err)
    assert "\n" not in text
    assert "steps[1].branches[0].python (line 9): cannot import 'no_such_module_xyz:x'" in text
    assert "'not_an_agent'" in text or "not an agent" in text
    assert "unknown kind 'whirl'" in text


def test_build_problems_name_the_place(project: tuple[Path, str]) -> None:
    folder, mod = project
    path = write(
        folder,
        f"""\
        name: front
        kind: router
        rules: [{{route: nowhere, keywords: [x]}}]
        routes:
          a: {{python: {mod}:classify}}
        """,
    )
    with pytest.raises(SpecProblemsError) as info:
        load_yaml(path)
    paths = {p.path: p.message for p in info.value.problems}
    assert "is not an agent" in paths["routes.a.python"]
    assert "no route 'nowhere'" in paths["rules[0].route"]


def test_router_needs_exactly_one_classifier(project: tuple[Path, str]) -> None:
    folder, mod = project
    spec = f"name: r\nkind: router\nroutes: {{a: {{python: {mod}:billing}}}}\n"
    with pytest.raises(SpecError, match="exactly one of `classifier`, `rules` or `model`"):
        load_yaml_text(spec, base_dir=folder)


def test_pattern_constructor_errors_become_problems(project: tuple[Path, str]) -> None:
    folder, mod = project
    spec = f"""\
name: p
kind: parallel
min_success: 3
branches: [{{python: {mod}:billing}}]
"""
    with pytest.raises(SpecError, match=r"\(top level\) \(line 1\): Parallel 'p': min_success"):
        load_yaml_text(spec, base_dir=folder)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\nkind: [unclosed\n", r"line 3\): YAML syntax"),
        ("", "must be a mapping"),
        ("- a\n- b\n", "must be a mapping"),
        (
            "name: x\nkind: sequential\nsteps: []\n",
            r"steps \(line 3\): list should have at least 1",
        ),
        ("name: x\nkind: sequential\nsteps: [hello]\n", r"steps\[0\].*expected a mapping"),
        ("name: 'a b'\nkind: sequential\nsteps: [{python: os:path}]\n", "not an agent"),
    ],
)
def test_malformed_specs(text: str, expected: str) -> None:
    with pytest.raises(SpecError, match=expected):
        load_yaml_text(text)


def test_bad_agent_name_is_reported(project: tuple[Path, str]) -> None:
    folder, mod = project
    spec = f"name: 'a b'\nkind: sequential\nsteps: [{{python: {mod}:billing}}]\n"
    with pytest.raises(SpecError, match="agent name 'a b' is not valid"):
        load_yaml_text(spec, base_dir=folder)


def test_missing_file_is_a_target_error(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="no such file"):
        load_yaml(tmp_path / "nope.yaml")


def test_llm_tools_and_output_type(project: tuple[Path, str]) -> None:
    folder, mod = project
    spec = f"""\
name: s
kind: llm
instructions: hi
output_type: {mod}:Summary
tools: [{{python: {mod}:billing}}]
"""
    with pytest.raises(SpecError, match=r"tools\[0\].python \(line 5\):.*is not a tool"):
        load_yaml_text(spec, base_dir=folder)
    ok = load_yaml_text(
        spec.replace("tools: [{python: " + mod + ":billing}]\n", ""), base_dir=folder
    )
    assert isinstance(ok, LLMAgent)
    assert ok.output_type.__name__ == "Summary"
