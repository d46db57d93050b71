"""`podium run` and `podium resume` set a run's limits (--deadline, --max-steps, --max-*-bytes);
a run past one exits 1 naming it, a wrong value exits 2 and writes nothing; `podium runs`
lists summaries without inputs or outputs; `podium validate` refuses a limit over its
ceiling."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from podium.cli.app import app

AGENTS = """
from podium import RunContext, agent, tool

@tool
def echo(i: int) -> int:
    \"\"\"Echo.\"\"\"
    return i

@agent
async def chatter(n: int, ctx: RunContext) -> int:
    total = 0
    for i in range(n):
        total += await ctx.use(echo, {"i": i})
    return total

@agent
def big(n: int) -> str:
    return "x" * n
"""

FOREVER = """
name: forever
kind: loop
body: {python: agents.py:big}
max_turns: 1000000000
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "agents.py").write_text(textwrap.dedent(AGENTS))
    (tmp_path / "forever.yaml").write_text(FOREVER)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PODIUM_STORE", raising=False)
    for name in ("PODIUM_MAX_STEPS", "PODIUM_RUN_DEADLINE", "PODIUM_MAX_OUTPUT_BYTES"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_max_steps_stops_the_run_and_resume_gives_it_more(project: Path) -> None:
    store = f"sqlite:///{project / 'runs.db'}"
    failed = cli("run", "agents.py:chatter", "-i", "8", "--max-steps", "4", "--store", store)
    assert failed.exit_code == 1, failed.output
    assert "max_steps limit: 5 steps, the limit is 4 steps" in failed.stdout
    (row,) = json.loads(cli("runs", "--json", "--store", store).stdout)
    assert row["status"] == "failed"
    again = cli("resume", row["run_id"], "--store", store, "--json")
    assert again.exit_code == 1  # the run keeps its limit of 4
    done = cli("resume", row["run_id"], "--max-steps", "50", "--store", store, "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["output"] == sum(range(8))


def test_the_environment_sets_the_default(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_MAX_STEPS", "3")
    failed = cli("run", "agents.py:chatter", "-i", "5", "--store", "memory://")
    assert failed.exit_code == 1 and "PODIUM_MAX_STEPS" in failed.stdout


def test_an_output_over_the_limit_names_the_step(project: Path) -> None:
    failed = cli(
        "run", "agents.py:big", "-i", "5000", "--max-output-bytes", "1000", "--store", "memory://"
    )
    assert failed.exit_code == 1
    assert "/big" in failed.stdout and "max_output_bytes" in failed.stdout


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--max-steps", "0"),
        ("--max-steps", "-5"),
        ("--max-steps", "99999999999"),
        ("--deadline", "nan"),
        ("--deadline", "inf"),
        ("--deadline", "0"),
        ("--max-output-bytes", "0"),
        ("--max-journal-bytes", "-1"),
        ("--max-input-bytes", "4294967296"),
    ],
)
def test_a_wrong_limit_exits_2_and_writes_nothing(project: Path, option: str, value: str) -> None:
    store = f"sqlite:///{project / 'runs.db'}"
    done = cli("run", "agents.py:chatter", "-i", "2", option, value, "--store", store)
    assert done.exit_code == 2, done.output
    assert option.lstrip("-").replace("-", "_") in done.output
    assert not (project / "runs.db").exists()


def test_runs_lists_no_inputs_or_outputs(project: Path) -> None:
    store = f"sqlite:///{project / 'runs.db'}"
    assert cli("run", "agents.py:big", "-i", "20000", "--store", store).exit_code == 0
    listed = cli("runs", "--json", "--store", store)
    (row,) = json.loads(listed.stdout)
    assert "output" not in row and "input" not in row and row["status"] == "completed"
    assert "xxxx" not in cli("runs", "--store", store).stdout
    shown = json.loads(cli("show", row["run_id"], "--json", "--store", store).stdout)
    assert shown["output"] == "x" * 20000


def test_validate_refuses_a_limit_over_its_ceiling(project: Path) -> None:
    done = cli("validate", "forever.yaml")
    assert done.exit_code != 0
    assert "max_turns" in done.output and "1000" in done.output
