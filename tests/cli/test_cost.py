"""`podium cost RUN` (table and --json), the cost column of `podium runs`, `--budget` on run,
resume and submit, and the warning line a budget alert prints."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from podium.cli.app import app

FLOW = """
from podium import LLMAgent, ScriptedModel, Sequential, Usage, tool, tool_call


@tool
def lookup(order: int) -> str:
    \"\"\"Look an order up.\"\"\"
    return "shipped"


def triage_answer(messages, tools, schema):
    if any(m.role == "tool" for m in messages):
        return "It shipped yesterday."
    return tool_call("lookup", order=7)


triage = LLMAgent(
    "triage",
    model=ScriptedModel(triage_answer, name="gpt-4o-mini", usage=Usage(1000, 100, 1)),
    instructions="Answer.",
    tools=[lookup],
)
writer = LLMAgent(
    "writer",
    model=ScriptedModel(
        lambda m, t, s: "Dear customer",
        name="claude-sonnet-4-5",
        usage=Usage(2000, 400, 1, cache_read_tokens=1500),
    ),
    instructions="Write.",
)
support = Sequential("support", [triage, writer])


def loop_answer(messages, tools, schema):
    return tool_call("lookup", order=len(messages))


looper = LLMAgent(
    "looper",
    model=ScriptedModel(loop_answer, name="gpt-4o-mini", usage=Usage(10000, 0, 1)),
    instructions="Loop.",
    tools=[lookup],
    max_turns=1000,
)
"""

# triage: 2 calls of 1,000 in + 100 out at gpt-4o-mini ($0.15 / $0.60 per million)
TRIAGE_USD = 2 * (1000 * 0.15 + 100 * 0.60) / 1e6
# writer: 500 fresh input at $3, 1,500 cache reads at $0.30, 400 out at $15 (claude-sonnet-4-5)
WRITER_USD = (500 * 3.0 + 1500 * 0.30 + 400 * 15.0) / 1e6
LOOP_CALL_USD = 10000 * 0.15 / 1e6  # $0.0015 a call


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "flow.py").write_text(textwrap.dedent(FLOW))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PODIUM_STORE", raising=False)
    monkeypatch.delenv("PODIUM_PRICES", raising=False)
    return f"sqlite:///{tmp_path / 'runs.db'}"


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def run_support(store: str) -> str:
    done = cli("run", "flow.py:support", "-i", '"where is 7?"', "--store", store, "--json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["usage"]["usd"] == pytest.approx(TRIAGE_USD + WRITER_USD)
    return str(result["run_id"])


def test_cost_json_has_totals_by_agent_model_and_step(project: str) -> None:
    run_id = run_support(project)
    out = cli("cost", run_id, "--store", project, "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["usd"] == pytest.approx(TRIAGE_USD + WRITER_USD)
    assert data["tokens"] == 2 * 1100 + 2400
    assert (data["model_calls"], data["tool_calls"]) == (3, 1)
    assert data["cache_read_tokens"] == 1500
    agents = {a["name"]: a for a in data["by_agent"]}
    assert agents["triage"]["usd"] == pytest.approx(TRIAGE_USD)
    assert (agents["triage"]["model_calls"], agents["triage"]["tool_calls"]) == (2, 1)
    assert agents["writer"]["usd"] == pytest.approx(WRITER_USD)
    assert [a["name"] for a in data["by_agent"]] == ["writer", "triage"]  # costliest first
    models = {m["name"]: m for m in data["by_model"]}
    assert set(models) == {"gpt-4o-mini", "claude-sonnet-4-5"}
    assert models["gpt-4o-mini"]["model_calls"] == 2
    steps = [(s["key"], s["agent"], s["model"], s["kind"]) for s in data["steps"]]
    assert steps == [
        ("/support/triage#0/model#0", "triage", "gpt-4o-mini", "model"),
        ("/support/triage#0/lookup#0", "triage", None, "tool"),
        ("/support/triage#0/model#1", "triage", "gpt-4o-mini", "model"),
        ("/support/writer#0/model#0", "writer", "claude-sonnet-4-5", "model"),
    ]
    assert data["budget"] is None and data["alerts"] == []


def test_cost_table_and_the_runs_cost_column(project: str) -> None:
    run_id = run_support(project)
    table = cli("cost", run_id, "--store", project)
    assert table.exit_code == 0, table.output
    text = table.stdout
    total = f"${TRIAGE_USD + WRITER_USD:,.4f}"
    assert f"run {run_id}" in text and total in text
    for heading in ("by agent", "by model", "by step"):
        assert heading in text
    assert text.index("by agent") < text.index("writer") < text.index("by model")
    assert "claude-sonnet-4-5" in text and "/support/triage#0/lookup#0" in text
    assert f"${WRITER_USD:,.4f}" in text
    runs = cli("runs", "--store", project)
    assert "cost" in runs.stdout.splitlines()[0] and total in runs.stdout
    listed = json.loads(cli("runs", "--store", project, "--json").stdout)
    assert listed[0]["usage"]["usd"] == pytest.approx(TRIAGE_USD + WRITER_USD)


def test_budget_option_stops_the_run_warns_and_cost_shows_it(project: str) -> None:
    # $0.01: the seventh call ($0.0105) passes it; 70% ($0.007) with the fifth ($0.0075)
    run = cli("run", "flow.py:looper", "-i", '"go"', "--budget", "usd=0.01", "--store", project)
    assert run.exit_code == 1, run.output
    assert "run budget exhausted: usd $0.0105 of $0.0100 spent" in run.stdout
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: run budget: usd at 75% ($0.0075 of $0.0100) at /looper/model#4"]
    run_id = json.loads(cli("runs", "--store", project, "--json").stdout)[0]["run_id"]
    data = json.loads(cli("cost", run_id, "--store", project, "--json").stdout)
    assert data["usd"] == pytest.approx(7 * LOOP_CALL_USD) and data["model_calls"] == 7
    assert data["budget"] == {"usd": 0.01, "alert_at": 0.7}
    assert [a["kind"] for a in data["alerts"]] == ["budget.alert", "budget.exceeded"]
    table = cli("cost", run_id, "--store", project).stdout
    assert "budget   usd $0.0100 (alert at 70%)" in table
    assert "⚠ run budget: usd at 75%" in table and "✗ run budget exhausted" in table

    # a resume keeps the budget; --budget replaces it and the run counts on
    again = cli("resume", run_id, "--store", project, "--json")
    assert again.exit_code == 1 and json.loads(again.stdout)["usage"]["requests"] == 7
    more = cli("resume", run_id, "--budget", "usd=0.012", "--store", project, "--json")
    assert more.exit_code == 1
    assert json.loads(more.stdout)["usage"]["requests"] == 8  # one more call: $0.012


def test_submit_takes_a_budget(project: str) -> None:
    queued = cli(
        "submit", "flow.py:looper", "-i", '"go"', "--budget", "model_calls=2", "--store", project
    )
    assert queued.exit_code == 0, queued.output
    run_id = queued.stdout.strip()
    worked = cli("worker", "--until-idle", "--store", project, "--json")
    assert worked.exit_code == 0, worked.output
    data = json.loads(cli("cost", run_id, "--store", project, "--json").stdout)
    assert data["model_calls"] == 2 and data["status"] == "failed"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("usd", "write limits as name=number"),
        ("usd=abc", "write limits as name=number"),
        ("dollars=1", "unknown budget limit(s) ['dollars']"),
        ("usd=-1", "Budget(usd=...) must be a positive number"),
    ],
)
def test_a_bad_budget_option_is_one_line_and_writes_nothing(
    project: str, value: str, message: str
) -> None:
    result = cli("run", "flow.py:looper", "-i", '"go"', "--budget", value, "--store", project)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --budget") and message in lines[0]
    assert not Path(project.removeprefix("sqlite:///")).exists()


def test_cost_of_an_unknown_run_is_one_line(project: str) -> None:
    result = cli("cost", "nope", "--store", project)
    assert result.exit_code == 2 and "no run with id 'nope'" in result.stderr
