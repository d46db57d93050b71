"""`podium run --stream` / `podium resume --stream`: model text as it is written, with the
steps beside it on a terminal (a real pseudo-terminal here), plain text when piped, JSON
lines with `--json`."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import textwrap
import time
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from forked import run_module
from podium.cli.stream import PlainStream, StreamView
from podium.core.records import Event, Usage

POEM = "Roses are red, violets are blue, the tide comes in and so do you."

AGENTS = f"""
import os
from podium import LLMAgent, ScriptedModel, Sequential, agent

poet = LLMAgent(
    "poet",
    model=ScriptedModel(lambda messages, tools, schema: {POEM!r}, chunk=6),
    instructions="Write one line.",
)

@agent
def fragile(text: str) -> str:
    if os.path.exists(os.environ["PODIUM_TEST_FLAG"]):
        raise ValueError("flag is up")
    return "checked: " + text

flow = Sequential("flow", [poet, fragile])
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "agents.py").write_text(textwrap.dedent(AGENTS))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PODIUM_STORE", raising=False)
    monkeypatch.setenv("PODIUM_TEST_FLAG", str(tmp_path / "flag"))
    return tmp_path


def podium(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PODIUM_STORE"}
    return run_module("podium.cli.app", *args, cwd=cwd, env=env)


def test_piped_stream_is_plain_text_with_the_steps(project: Path) -> None:
    done = podium(project, "run", "agents.py:poet", "-i", '"roses"', "--stream")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    header = "▸ /poet/model#0\n"
    assert out.startswith(header + POEM + "\n"), out
    step, agent = out.splitlines()[2:4]
    assert step.startswith("  ✓ model#0  completed  ") and step.endswith(" tok")
    assert agent.startswith("✓ poet  completed")
    assert "\x1b[" not in out  # no colours or cursor moves in a pipe
    tail = out[out.index(agent) + len(agent) :]
    assert "completed  run " in tail and tail.rstrip().endswith(POEM)  # the usual result


def test_stream_json_lines_end_with_the_result(project: Path) -> None:
    store = f"sqlite:///{project / 'runs.db'}"
    done = podium(
        project, "run", "agents.py:poet", "-i", '"x"', "--stream", "--json", "--store", store
    )
    assert done.returncode == 0, done.stderr
    *events, result = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0]["kind"] == "run.started" and events[-1]["kind"] == "run.completed"
    deltas = [e for e in events if e["kind"] == "model.delta"]
    assert "".join(e["data"]["text"] for e in deltas) == POEM == result["output"]
    assert {e["key"] for e in deltas} == {"/poet/model#0"}
    assert result["status"] == "completed" and result["agent"] == "poet"
    shown = podium(project, "trace", result["run_id"], "--json", "--store", store)
    assert "model.delta" not in shown.stdout  # the store never saw a delta


def test_resume_stream_replays_without_the_old_text(project: Path) -> None:
    (project / "flag").touch()
    store = f"sqlite:///{project / 'runs.db'}"
    failed = podium(
        project,
        "run",
        "agents.py:flow",
        "-i",
        '"x"',
        "--run-id",
        "r1",
        "--store",
        store,
        "--stream",
    )
    assert failed.returncode == 1
    assert "▸ /flow/poet#0/model#0\n" + POEM in failed.stdout
    assert "✗ fragile#0  failed" in failed.stdout
    (project / "flag").unlink()
    done = podium(project, "resume", "r1", "--store", store, "--stream")
    assert done.returncode == 0, done.stderr
    assert "↺ poet#0  replayed" in done.stdout
    assert "▸" not in done.stdout and POEM not in done.stdout.split("completed  run")[0]
    assert "✓ fragile#0  completed" in done.stdout
    assert done.stdout.rstrip().endswith("checked: " + POEM)


def test_on_a_terminal_the_text_is_drawn_beside_the_steps(project: Path) -> None:
    """A real pseudo-terminal: rich's live view, not the plain text."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "PODIUM_STORE"}
    env.update(COLUMNS="140", LINES="40", TERM="xterm-256color")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "podium.cli.app",
            "run",
            "agents.py:poet",
            "-i",
            '"x"',
            "--stream",
            "--store",
            "memory://",
        ],
        cwd=project,
        env=env,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        close_fds=True,
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is gone
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(leader)
    assert proc.wait(10) == 0
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert "\x1b[" in screen  # drawn, not printed
    beside = [line for line in screen.splitlines() if "poet" in line and "│" in line]
    assert beside, screen  # a step row and the text panel share a line
    assert "/poet/model#0" in screen and "violets are blue" in screen
    assert "completed" in screen


def _events(text_pieces: list[str]) -> list[Event]:
    ev = [
        Event("r", 1, 0, "run.started", agent="poet"),
        Event("r", 2, 0, "step.started", "/poet", "poet", 1, data={"kind": "agent"}),
        Event("r", 3, 0, "step.started", "/poet/model#0", "model", 1, data={"kind": "model"}),
    ]
    ev += [
        Event("r", 3, 0, "model.delta", "/poet/model#0", "model", 1, data={"text": t})
        for t in text_pieces
    ]
    return ev


def test_the_view_shows_the_tail_of_the_text_beside_the_tree() -> None:
    view = StreamView(text_lines=3)
    lines = [f"line {i}" for i in range(10)]
    for e in _events([line + "\n" for line in lines]):
        view.on_event(e)
    out = StringIO()
    Console(file=out, width=100).print(view)
    drawn = out.getvalue()
    assert "line 9" in drawn and "line 7" in drawn and "line 6" not in drawn
    row = next(line for line in drawn.splitlines() if "poet" in line)
    assert "/poet/model#0" in row or "│" in row  # the tree and the text share rows
    view.on_event(Event("r", 4, 0, "step.retried", "/poet/model#0", "model", 1))
    view.on_event(
        Event("r", 4, 0, "model.delta", "/poet/model#0", "model", 2, data={"text": "again"})
    )
    out = StringIO()
    Console(file=out, width=100).print(view)
    assert "again" in out.getvalue() and "line 9" not in out.getvalue()


def test_plain_text_starts_a_new_block_per_step_and_attempt() -> None:
    out = StringIO()
    plain = PlainStream(out)
    for e in _events(["Hel", "lo"]):
        plain.on_event(e)
    plain.on_event(Event("r", 4, 0, "step.retried", "/poet/model#0", "model", 1))
    plain.on_event(
        Event("r", 4, 0, "model.delta", "/poet/model#0", "model", 2, data={"text": "Hi"})
    )
    plain.on_event(
        Event("r", 5, 0, "step.completed", "/poet/model#0", "model", 2, 0.25, Usage(3, 1, 1))
    )
    plain.close()
    assert out.getvalue() == (
        "▸ /poet/model#0\nHello\n▸ /poet/model#0 (attempt 2)\nHi\n"
        "  ✓ model#0  completed  0.25s  4 tok\n"
    )
