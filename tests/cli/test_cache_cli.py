"""Cache hits from a terminal: `PODIUM_CACHE` shares the cache across commands, `podium trace`
shows the step as cached with what it saved, `podium cost` adds the savings up."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from podium.cli.app import app

FLOW = """
from podium import LLMAgent, ScriptedModel, Usage

clerk = LLMAgent(
    "clerk",
    model=ScriptedModel(lambda m, t, s: "It shipped.", name="gpt-4o", usage=Usage(1000, 100, 1)),
    instructions="Answer.",
    cache=True,
)
"""
CALL_USD = (1000 * 2.5 + 100 * 10.0) / 1e6  # gpt-4o


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "flow.py").write_text(textwrap.dedent(FLOW))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PODIUM_STORE", raising=False)
    monkeypatch.setenv("PODIUM_CACHE", f"sqlite:///{tmp_path / 'cache.db'}")
    return f"sqlite:///{tmp_path / 'runs.db'}"


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def run_clerk(store: str) -> dict[str, Any]:
    done = cli("run", "flow.py:clerk", "-i", '"where is 7?"', "--store", store, "--json")
    assert done.exit_code == 0, done.output
    return dict(json.loads(done.stdout))


def test_trace_shows_a_hit_as_cached_and_cost_adds_up_the_savings(project: str) -> None:
    first = run_clerk(project)
    assert first["usage"]["usd"] == pytest.approx(CALL_USD)
    second = run_clerk(project)  # another command, the same cache file: a hit
    assert second["usage"] == {"input_tokens": 0, "output_tokens": 0, "requests": 0}
    rid = second["run_id"]
    trace = cli("trace", rid, "--store", project)
    assert trace.exit_code == 0, trace.output
    model_line = next(line for line in trace.stdout.splitlines() if "(model)" in line)
    assert "cached (saved $0.0035)" in model_line
    traced = json.loads(cli("trace", rid, "--store", project, "--json").stdout)
    node = traced["steps"][0]["children"][0]
    assert node["cached"] is True and node["saved_usd"] == pytest.approx(CALL_USD)
    table = cli("cost", rid, "--store", project)
    assert "cache    1 hit saved $0.0035 (1,100 tokens)" in table.stdout
    data = json.loads(cli("cost", rid, "--store", project, "--json").stdout)
    assert (data["cache_hits"], data["saved_tokens"], data["usd"]) == (1, 1100, 0)
    assert data["saved_usd"] == pytest.approx(CALL_USD)
    assert data["steps"][0]["cached"] is True and data["steps"][0]["model_calls"] == 0
