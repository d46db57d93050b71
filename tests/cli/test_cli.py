"""The `podium` CLI: run, runs, show, trace, resume; misuse exits 2 with one line and writes
nothing; a failed run exits 1."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from forked import run_module
from podium.cli.app import app
from podium.cli.progress import ProgressView
from podium.core.records import Event, Usage

AGENTS = """
import os
from podium import agent

@agent
def shout(text: str) -> str:
    return text.upper()

@agent
async def count(text: str) -> int:
    return len(text)

@agent
def double(n: int) -> int:
    return n * 2

@agent
def fragile(text: str) -> str:
    if os.path.exists(os.environ["PODIUM_TEST_FLAG"]):
        raise ValueError("flag is up")
    return "ok " + text

@agent
def pick(x) -> str:
    return "picked"
"""

FLOW = """
name: pipeline
kind: sequential
steps:
  - python: agents.py:shout
  - kind: parallel
    name: fan
    branches:
      - python: agents.py:count
      - python: agents.py:shout
"""

WAITS = """
name: desk
kind: router
rules: [{route: a, keywords: [zzz]}]
routes: {a: {python: agents.py:pick}}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with agents and workflows, as the current directory, no store yet."""
    (tmp_path / "agents.py").write_text(textwrap.dedent(AGENTS))
    (tmp_path / "flow.yaml").write_text(FLOW)
    (tmp_path / "waits.yaml").write_text(WAITS)
    (tmp_path / "seq.yaml").write_text(
        "name: seq\nkind: sequential\nsteps:\n  - python: agents.py:fragile\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PODIUM_STORE", raising=False)
    monkeypatch.setenv("PODIUM_TEST_FLAG", str(tmp_path / "flag"))
    return tmp_path


def cli(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=input)


def test_run_then_runs_show_trace_on_sqlite(project: Path) -> None:
    store = f"sqlite:///{project / 'runs.db'}"
    done = cli("run", "flow.yaml", "--input", '"hello"', "--store", store, "--json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["status"] == "completed"
    assert result["output"]["value"] == {"count": 5, "shout": "HELLO"}
    run_id = result["run_id"]

    listed = cli("runs", "--json", "--store", store)
    assert listed.exit_code == 0
    (row,) = json.loads(listed.stdout)
    assert row["run_id"] == run_id and row["agent"] == "pipeline"
    assert row["target"] == str((project / "flow.yaml").resolve())

    shown = cli("show", run_id, "--json", "--store", store)
    data = json.loads(shown.stdout)
    for key in ("run_id", "status", "output", "error", "agent", "target", "input", "usage"):
        assert key in data
    assert data["input"] == "hello" and data["error"] is None
    assert data["created_at"] <= data["updated_at"]
    assert [s["key"] for s in data["steps"]][:2] == ["/pipeline", "/pipeline/shout#0"]
    assert all(s["status"] == "completed" for s in data["steps"])

    traced = cli("trace", run_id, "--store", store)
    assert traced.exit_code == 0
    text = traced.stdout
    assert f"run {run_id}" in text
    assert text.index("pipeline") < text.index("fan") < text.index("count")

    table = cli("runs", "--store", store)
    assert run_id in table.stdout and "completed" in table.stdout
    human = cli("show", run_id, "--store", store)
    assert "pipeline" in human.stdout and "HELLO" in human.stdout


def test_run_prints_status_and_output(project: Path) -> None:
    done = cli("run", "agents.py:shout", "-i", '"hi"', "--store", "memory://")
    assert done.exit_code == 0
    assert "completed" in done.stdout and "HI" in done.stdout


def test_failed_run_exits_1_and_resume_finishes_it(project: Path) -> None:
    (project / "flag").touch()
    store = f"sqlite:///{project / 'runs.db'}"
    failed = cli("run", "seq.yaml", "-i", '"x"', "--run-id", "r-1", "--store", store)
    assert failed.exit_code == 1
    assert "failed" in failed.stdout and "flag is up" in failed.stdout
    (project / "flag").unlink()
    only_failed = json.loads(cli("runs", "--status", "failed", "--json", "--store", store).stdout)
    assert [r["run_id"] for r in only_failed] == ["r-1"]

    elsewhere = project / "elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)
    # the stored target is absolute, but outside this folder's project: a stored target is
    # not trusted unless it is in the project or named with --target
    refused = cli("resume", "r-1", "--store", store, "--json")
    assert refused.exit_code == 2 and "--target" in refused.stderr
    resumed = cli("resume", "r-1", "--target", "../seq.yaml", "--store", store, "--json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["output"] == "ok x"


def test_waiting_run_exits_0_and_says_so(project: Path) -> None:
    waits = cli("run", "waits.yaml", "-i", '"hello"', "--store", "memory://")
    assert waits.exit_code == 0
    assert "waiting" in waits.stdout and "podium answer" in waits.stdout  # a router's triage


def test_input_from_file_and_stdin(project: Path) -> None:
    (project / "in.json").write_text("21")
    done = cli("run", "agents.py:double", "-i", "@in.json", "--store", "memory://", "--json")
    assert json.loads(done.stdout)["output"] == 42
    piped = cli("run", "agents.py:double", "-i", "@-", "--store", "memory://", "--json", input="4")
    assert json.loads(piped.stdout)["output"] == 8


BAD = [
    (["run", "no_such_module_q:thing", "-i", "1"], "cannot import module 'no_such_module_q'"),
    (["run", "agents.py:nobody", "-i", "1"], "has no attribute 'nobody'"),
    (["run", "missing.py:x", "-i", "1"], "no such file"),
    (["run", "missing.yaml", "-i", "1"], "no such file"),
    (["run", "nocolon", "-i", "1"], "neither"),
    (["run", "agents.py:shout", "-i", "{bad"], "--input is not valid JSON"),
    (["run", "agents.py:shout", "-i", "@nope.json"], "cannot read input file 'nope.json'"),
    (["run", "agents.py:double", "-i", '"ten"'], "input for agent 'double'"),
    (["run", "broken.yaml", "-i", "1"], "broken.yaml has 2 problems"),
    (["run", "agents.py:shout", "-i", '"a"', "--store", "mysql://x"], "unknown store URL"),
    (["show", "nope"], "no run with id 'nope'"),
    (["trace", "nope"], "no run with id 'nope'"),
    (["resume", "nope"], "no run with id 'nope'"),
    (["runs", "--status", "sleeping"], "unknown status 'sleeping'"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a[:2]) for a, _ in BAD])
def test_misuse_exits_2_with_one_line_and_writes_nothing(
    project: Path, args: list[str], message: str
) -> None:
    (project / "broken.yaml").write_text(
        "name: b\nkind: sequential\nsteps:\n  - kind: whirl\n  - {}\n"
    )
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
    assert "Traceback" not in result.stderr
    assert not (project / ".podium").exists()


def test_runs_on_a_missing_store_is_empty_and_creates_nothing(project: Path) -> None:
    assert json.loads(cli("runs", "--json").stdout) == []
    assert "no runs" in cli("runs").stdout
    assert not (project / ".podium").exists()


def test_progress_view_tracks_steps() -> None:
    view = ProgressView()
    ev = [
        Event("r", 1, 0, "run.started", agent="flow"),
        Event("r", 2, 0, "step.started", "/flow", "flow", 1, data={"kind": "agent"}),
        Event("r", 3, 0, "step.started", "/flow/m#0", "m", 1, data={"kind": "model"}),
        Event("r", 4, 0, "step.retried", "/flow/m#0", "m", 1),
        Event("r", 5, 0, "step.completed", "/flow/m#0", "m", 2, 0.5, Usage(3, 4, 1)),
    ]
    for e in ev:
        view.on_event(e)
    out = StringIO()
    Console(file=out, width=120).print(view)
    text = out.getvalue()
    assert "1/2 steps finished" in text
    assert "m (model)" in text and "attempt 2" in text and "7 tok" in text
    view.on_event(Event("r", 6, 0, "step.failed", "/flow", "flow", 1, 1.0))
    view.on_event(Event("r", 7, 0, "run.failed", agent="flow"))
    out = StringIO()
    Console(file=out, width=120).print(view)
    assert out.getvalue().startswith("failed") and "2/2 steps" in out.getvalue()


def _podium(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PODIUM_STORE"}
    return run_module("podium.cli.app", *args, cwd=cwd, env=env)


def test_subprocess_bad_input_exits_2_and_creates_no_store(project: Path) -> None:
    bad = _podium(project, "run", "flow.yaml", "--input", "{not json")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: --input is not valid JSON") and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1
    missing = _podium(project, "run", "nowhere_mod:agent", "--input", "1")
    assert missing.returncode == 2 and missing.stderr.startswith("error: ")
    assert not (project / ".podium").exists()


def test_subprocess_run_then_show_on_the_default_store(project: Path) -> None:
    done = _podium(project, "run", "flow.yaml", "--input", '"abc"', "--json")
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    assert (project / ".podium" / "podium.db").exists()
    shown = _podium(project, "show", run_id, "--json")
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["output"]["value"] == {"count": 3, "shout": "ABC"}
    traced = _podium(project, "trace", run_id)
    assert traced.returncode == 0 and "fan" in traced.stdout


def test_unknown_run_in_an_existing_store(project: Path) -> None:
    store = f"sqlite:///{project / 'runs.db'}"
    assert cli("run", "agents.py:shout", "-i", '"a"', "--store", store).exit_code == 0
    for command in ("show", "trace", "resume"):
        result = cli(command, "ghost", "--store", store)
        assert result.exit_code == 2
        assert result.stderr.strip() == "error: no run with id 'ghost'"


def test_resume_of_a_completed_run_returns_its_result(project: Path) -> None:
    store = f"sqlite:///{project / 'runs.db'}"
    cli("run", "agents.py:double", "-i", "5", "--run-id", "d1", "--store", store)
    again = cli("resume", "d1", "--store", store, "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["output"] == 10


def test_bad_sqlite_url_on_read_commands(project: Path) -> None:
    result = cli("runs", "--store", "sqlite://host/x.db")
    assert result.exit_code == 2 and result.stderr.startswith("error: SQLite store URL")
