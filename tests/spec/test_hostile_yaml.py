"""Hostile workflow files: recursive aliases, alias bombs, absurd nesting and control
characters are refused with a `SpecError` at once, in little memory, and the CLI says so in
one line (or the problem list) without a traceback."""

from __future__ import annotations

import os
import subprocess
import time
import tracemalloc
from pathlib import Path

import pytest

from forked import run_module
from podium import SpecError
from podium.spec.loader import SpecProblemsError, load_yaml_text

RECURSIVE = "name: x\nkind: sequential\nsteps: &s [*s]\n"
RECURSIVE_MAP = "name: x\nkind: sequential\nsteps: [&m {python: a:b, more: *m}]\n"
CONTROL = 'name: x\nkind: sequential\nsteps: [{python: "a:\x01b"}]\n'
DEEP = "name: x\nkind: sequential\nsteps: " + "[" * 5000 + "]" * 5000 + "\n"


def laughs(levels: int = 9, fan: int = 9) -> str:
    """A billion-laughs file: each alias level repeats the previous one `fan` times."""
    lines = ["name: x", "kind: sequential", 'a0: &a0 [{python: "m:f"}]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]")
    lines.append(f"steps: *a{levels}")
    return "\n".join(lines) + "\n"


def refused(text: str) -> tuple[SpecProblemsError, float, int]:
    """The error loading `text` raises, the seconds it took and the peak bytes allocated."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(SpecProblemsError) as caught:
            load_yaml_text(text)
        took = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return caught.value, took, peak


@pytest.mark.timeout(10)
@pytest.mark.parametrize("text", [RECURSIVE, RECURSIVE_MAP], ids=["list", "mapping"])
def test_a_recursive_alias_is_refused_at_once(text: str) -> None:
    error, took, peak = refused(text)
    assert isinstance(error, SpecError)
    (problem,) = error.problems
    assert "recursive alias" in problem.message and problem.line == 3
    assert took < 0.5 and peak < 5_000_000


@pytest.mark.timeout(10)
def test_an_alias_bomb_is_refused_before_it_expands() -> None:
    text = laughs()
    assert len(text) < 600
    error, took, peak = refused(text)
    (problem,) = error.problems
    assert "aliases are expanded" in problem.message and "100000" in problem.message
    assert took < 0.5 and peak < 5_000_000


@pytest.mark.timeout(10)
def test_absurd_nesting_is_refused_not_a_recursion_error() -> None:
    error, took, _ = refused(DEEP)
    (problem,) = error.problems
    assert "nested deeper than" in problem.message and problem.line == 3
    assert took < 2


def test_control_characters_are_a_syntax_problem() -> None:
    error, _, _ = refused(CONTROL)
    (problem,) = error.problems
    assert problem.message.startswith("YAML syntax: unacceptable character #x0001")
    assert problem.line == 3 and "\n" not in problem.message


def test_ordinary_aliases_and_merge_keys_still_load(tmp_path: Path) -> None:
    (tmp_path / "ycheap.py").write_text(
        "from podium import agent\n\n@agent\ndef up(text: str) -> str:\n    return text.upper()\n"
    )
    text = (
        "name: x\nkind: sequential\nsteps:\n"
        "  - &up {python: ycheap.py:up}\n"
        "  - *up\n"
        "  - &p {kind: parallel, name: p, branches: [*up, *up]}\n"
        "  - {<<: *p, name: q}\n"
    )
    flow = load_yaml_text(text, base_dir=tmp_path)
    assert [s.name for s in flow.steps] == ["up", "up", "p", "q"]


def _podium(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PODIUM_STORE"}
    return run_module("podium.cli.app", *args, cwd=cwd, env=env)


HOSTILE = {
    "recursive": (RECURSIVE, "recursive alias"),
    "laughs": (laughs(), "aliases are expanded"),
    "deep": (DEEP, "nested deeper than"),
    "control": (CONTROL, "YAML syntax"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", list(HOSTILE))
def test_cli_refuses_hostile_files_in_one_line(tmp_path: Path, name: str) -> None:
    text, message = HOSTILE[name]
    (tmp_path / "flow.yaml").write_text(text, encoding="utf-8")

    start = time.perf_counter()
    checked = _podium(tmp_path, "validate", "flow.yaml")
    ran = _podium(tmp_path, "run", "flow.yaml", "-i", '"x"')
    took = time.perf_counter() - start

    assert checked.returncode == 2, checked.stderr
    (line,) = checked.stdout.splitlines()
    assert line.startswith("flow.yaml: ") and message in line
    assert checked.stderr == "error: flow.yaml has 1 problem\n"

    assert ran.returncode == 2, ran.stderr
    assert ran.stdout == "" and "Traceback" not in ran.stderr
    (line,) = ran.stderr.splitlines()
    assert line.startswith("error: flow.yaml has a problem: ") and message in line
    assert not (tmp_path / ".podium").exists()
    assert took < 20  # two interpreter start-ups; a hang or an expansion takes far longer
