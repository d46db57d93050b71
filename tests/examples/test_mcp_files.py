"""The MCP files example: an agent indexes a folder of notes through a filesystem MCP server
(a real subprocess, confined to the folder), every tool call a journaled step."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from examples.mcp_files.flow import SAMPLE_NOTES, build_flow, files_server, seed
from forked import run_module
from podium import RunContext, RunStatus, Runtime, agent

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def biz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The notes folder, the only one the server may touch."""
    root = tmp_path / "notes"
    monkeypatch.setenv("MCP_FILES_ROOT", str(root))
    seed(root)
    return root


async def test_the_archivist_indexes_the_notes(rt: Runtime, biz: Path) -> None:
    result = await rt.run(build_flow(biz), "index the notes")
    assert result.status == RunStatus.COMPLETED, result.error
    assert result.output == "Indexed 3 notes into INDEX.md."
    index = (biz / "INDEX.md").read_text()
    for name, text in SAMPLE_NOTES.items():
        assert f"- {name}: {text.splitlines()[0]}" in index
    steps = {s.key: s for s in await rt.steps(result.run_id)}
    assert steps["/archivist/files_list_dir#0"].output == sorted(SAMPLE_NOTES)
    reads = [k for k in steps if "/files_read_file#" in k]
    assert len(reads) == 3  # one turn, three calls at once, each its own step
    executed = [e.key for e in await rt.events(result.run_id) if e.kind == "effect.executed"]
    assert executed == ["/archivist/files_write_file#0"]  # the only side effect


async def test_the_server_stays_in_its_folder(rt: Runtime, biz: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("the key")
    tools = {t.name: t for t in await files_server(biz).tools(rt)}

    @agent(name="intruder")
    async def intruder(path: str, ctx: RunContext) -> Any:
        return await ctx.use(tools["files_read_file"], {"path": path})

    for path in ("../secret.txt", str(tmp_path / "secret.txt")):
        result = await rt.run(intruder, path)
        assert result.status == RunStatus.FAILED
        assert "MCPServerError" in (result.error or "")
        assert "outside the folder" in (result.error or "")
    inside = await rt.run(intruder, "ideas.txt")
    assert inside.output == SAMPLE_NOTES["ideas.txt"]


def test_python_dash_m_runs_it(tmp_path: Path) -> None:
    env = {**os.environ, "PODIUM_STORE": f"sqlite:///{tmp_path / 'podium.db'}"}
    root = tmp_path / "elsewhere"
    done = run_module("examples.mcp_files", "--root", str(root), cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    assert "Indexed 3 notes into INDEX.md." in done.stdout
    assert "- meeting.txt: Meeting with Ada on Tuesday at 10" in done.stdout
    assert (root / "INDEX.md").exists()
